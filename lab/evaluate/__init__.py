"""How good is a trained model: test metrics, safe decoding of uploaded pictures, prediction."""
