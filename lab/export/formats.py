"""One model, four files: Keras, TensorFlow SavedModel, LiteRT (TensorFlow Lite) and ONNX.

Each format is made by Keras 3's own `model.export(path, format=...)` from the plain copy of the
model (lab/export/plain_model.py), so none of them needs this project to open:

- `model.keras`: Keras 3 (`keras.models.load_model`), to train further or to look inside;
- `saved_model/`: TensorFlow Serving, TensorFlow.js's converter, any TensorFlow program (`tf.saved_model.load`);
- `model.tflite`: LiteRT, the runtime on phones and small boards (`ai_edge_litert.interpreter.Interpreter`);
- `model.onnx`: ONNX Runtime and the tools that read ONNX (made with tf2onnx).

Every file takes 32x32 RGB pictures as float32 numbers from 0 to 255 (shape N x 32 x 32 x 3) and gives
one probability per class (one number, the second class's, for a two-class task).
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import keras

KERAS_FILE = "model.keras"
SAVED_MODEL_FOLDER = "saved_model"
LITERT_FILE = "model.tflite"
ONNX_FILE = "model.onnx"
# The formats in the order a zip lists them, each with the path it is saved under.
FORMATS = {"keras": KERAS_FILE, "saved_model": SAVED_MODEL_FOLDER, "litert": LITERT_FILE, "onnx": ONNX_FILE}


def save_format(model: keras.Model, format_name: str, folder: Path) -> Path:
    """Write `model` (a plain copy: built-in layers, float32) in one format into `folder`; return the path."""
    if format_name not in FORMATS:
        raise ValueError(f"format {format_name!r} is unknown; choose one of: {', '.join(FORMATS)}.")
    path = Path(folder) / FORMATS[format_name]
    if path.is_dir():
        shutil.rmtree(path)
    if format_name == "keras":
        model.save(path)
        return path
    # Keras prints a summary of every export; the lab's own output says what was written.
    with contextlib.redirect_stdout(io.StringIO()):
        if format_name == "saved_model":
            model.export(str(path), format="tf_saved_model", verbose=False)
        elif format_name == "litert":
            model.export(str(path), format="litert", verbose=False)
        else:
            _onnx_ready(model).export(str(path), format="onnx", verbose=False)
    return path


class ErfGelu(keras.layers.Layer):
    """The exact GELU written with erf, 0.5 x (1 + erf(x / sqrt 2)), for the ONNX file only.

    Keras computes the same function as 0.5 x erfc(-x / sqrt 2), and tf2onnx has no ONNX operation
    for TensorFlow's Erfc (it has one for Erf). The ONNX file stands alone, so this layer's class is
    not needed to open it.
    """

    def call(self, inputs):
        return 0.5 * inputs * (1.0 + keras.ops.erf(inputs * SQRT_HALF))


SQRT_HALF = 0.5**0.5


def _onnx_ready(model: keras.Model) -> keras.Model:
    """`model` with every GELU written with erf (ErfGelu); the other layers are shared, weights included."""
    dense_copies = []

    def swap_gelu(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=swap_gelu)
        if isinstance(layer, keras.layers.Activation) and _is_gelu(layer.activation):
            return ErfGelu(name=layer.name)
        if isinstance(layer, keras.layers.Dense) and _is_gelu(layer.activation):
            # A Dense layer with GELU built in (a ViT's MLP): the same Dense without it, then ErfGelu.
            linear = keras.layers.Dense.from_config({**layer.get_config(), "activation": "linear"})
            dense_copies.append((layer, linear))
            return keras.Sequential([linear, ErfGelu()], name=layer.name)
        return layer  # the same layer object: its weights come along

    copy = keras.models.clone_model(model, clone_function=swap_gelu)
    for original, linear in dense_copies:
        linear.set_weights(original.get_weights())
    # Keras' ONNX export wants a model that has run once (it reads the input signature from that call).
    copy(keras.ops.zeros((1, *model.input_shape[1:])))
    return copy


def _is_gelu(activation) -> bool:
    return keras.activations.serialize(activation) == "gelu"


def save_all_formats(model: keras.Model, folder: Path) -> dict[str, Path]:
    """Every format of `model` in `folder`: {format name: path}."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return {name: save_format(model, name, folder) for name in FORMATS}
