"""Results that open anywhere: a run as plain Keras, SavedModel, LiteRT and ONNX files, with the code behind it."""
