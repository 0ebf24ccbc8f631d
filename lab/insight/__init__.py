"""Looking inside a model: Grad-CAM, layer taps, activations, freezing notes, the learning-rate finder."""
