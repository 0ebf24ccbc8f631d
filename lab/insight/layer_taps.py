"""Find a hidden layer anywhere in a model, and build a model that lets us read its output.

Grad-CAM and the activation maps both need to see what a layer deep inside the
network computes. A lab model hides most of its layers one level down, inside
the nested model called "backbone" (see lab/models/registry.py), so this module:

1. walks the model *and* every nested model, listing the layers in the order the
   image flows through them, each with its `path` (the names from the outer model
   down, for example ("backbone", "conv3"));
2. builds a "tap" model: images -> [that layer's output, the input of the final
   "predictions" layer]. The tap model shares the original layers (same weights),
   it only adds a second output.

For a layer of the outer model the tap model is one line of Keras. For a layer
inside the backbone, the backbone's inner tensors are not reachable from the outer
model's input, so the outer model is re-wired: `keras.models.clone_model` calls
every layer again (reusing, not copying, it), and where it would call the backbone
it calls a two-output version of the backbone instead.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

# Layers whose output is a picture-like map worth looking at: convolutions and the
# layers that finish a block (normalisation, activation, residual sum).
# Padding, pooling, resizing and rescaling layers are left out on purpose: their
# outputs only move or shrink what the layer before them computed.
CONV_TYPES = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)
BLOCK_OUTPUT_TYPES = (layers.BatchNormalization, layers.Activation, layers.ReLU, layers.Add)
# A Vision Transformer's blocks end in a residual sum and the encoder in a normalisation.
TOKEN_TYPES = (layers.LayerNormalization, layers.Add)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {key: what was built for it}
_CACHE_LOCK = threading.Lock()  # Streamlit serves every browser tab from its own thread


@dataclass(frozen=True)
class LayerInfo:
    """One layer, found anywhere in a model."""

    name: str
    path: tuple[str, ...]  # layer names from the outer model down, e.g. ("backbone", "conv3")
    type: str  # the Keras class name, e.g. "Conv2D"
    output_shape: tuple  # without the batch dimension, e.g. (4, 4, 128)
    kind: str  # "grid" (height, width, channels), "tokens" (a square number of patch tokens, channels) or "other"

    @property
    def grid(self) -> tuple[int, int]:
        """The layer's spatial size: (height, width) of a feature map, or the patch grid of tokens."""
        if self.kind == "grid":
            return int(self.output_shape[0]), int(self.output_shape[1])
        if self.kind == "tokens":
            side = _square_side(self.output_shape[0])
            return side, side
        return 0, 0

    @property
    def channels(self) -> int:
        return int(self.output_shape[-1])


def walk_layers(model: keras.Model, prefix: tuple[str, ...] = ()) -> list[LayerInfo]:
    """Every layer of `model`, nested models opened up, in the order an image meets them."""
    found = []
    for layer in model.layers:
        path = (*prefix, layer.name)
        if isinstance(layer, keras.Model):
            found.extend(walk_layers(layer, path))
            continue
        if isinstance(layer, layers.InputLayer):
            continue
        shape = _output_shape(layer)
        found.append(LayerInfo(layer.name, path, type(layer).__name__, shape, _kind(layer, shape)))
    return found


def _output_shape(layer: layers.Layer) -> tuple:
    try:
        return tuple(layer.output.shape[1:])
    except (AttributeError, ValueError):  # a layer that was never called has no output
        return ()


def _square_side(count) -> int:
    side = int(round((count or 0) ** 0.5))
    return side if side * side == count else 0


def _kind(layer: layers.Layer, shape: tuple) -> str:
    if len(shape) == 3 and isinstance(layer, CONV_TYPES + BLOCK_OUTPUT_TYPES):
        return "grid"
    if len(shape) == 2 and isinstance(layer, TOKEN_TYPES) and _square_side(shape[0]) >= 2:
        return "tokens"
    return "other"


def conv_layers(model: keras.Model) -> list[str]:
    """Names of the convolutional layers (Conv2D, DepthwiseConv2D, SeparableConv2D), input side first."""
    return [info.name for info in walk_layers(model) if info.kind == "grid" and info.type in {t.__name__ for t in CONV_TYPES}]


def find_layer(model: keras.Model, name: str) -> LayerInfo:
    """The layer called `name`, wherever it sits; ValueError (listing the convolutions) if there is none."""
    for info in walk_layers(model):
        if info.name == name:
            return info
    raise ValueError(f"the model has no layer called {name!r}; its convolutional layers are: {', '.join(conv_layers(model)) or 'none'}.")


def output_layer(model: keras.Model) -> layers.Layer:
    """The layer that produces the model's answer (the "predictions" layer of a lab model)."""
    return model.layers[-1]


def tap_model(model: keras.Model, path: tuple[str, ...], *, before_output: bool = False) -> keras.Model:
    """images -> [output of the layer at `path`, the model's output (or, with before_output, what its last layer receives)].

    The result shares every layer (and so every weight) with `model`. Call it with
    training=False, so that BatchNorm and Dropout behave as they do at prediction time.
    """
    last = output_layer(model)
    if len(path) == 1:
        tapped = model.get_layer(path[0]).output
        return keras.Model(model.input, [tapped, last.input if before_output else model.output])

    nested = model.get_layer(path[0])
    inner = tap_model(nested, path[1:])
    captured = {}

    def call_function(layer, *args, **kwargs):
        # clone_model calls every layer on new tensors; we swap the nested model for its
        # two-output version and keep hold of the extra output.
        if layer is nested:
            captured["tapped"], output = inner(*args, **kwargs)
            return output
        if layer is last:
            captured["before_output"] = args[0]
        return layer(*args, **kwargs)

    # clone_function returns each layer itself: the "clone" re-uses the original layers.
    rewired = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call_function)
    return keras.Model(rewired.input, [captured["tapped"], captured["before_output"] if before_output else rewired.output])


def output_features_model(model: keras.Model) -> keras.Model:
    """images -> what the model's last layer receives (the features the class scores are computed from)."""
    return keras.Model(model.input, output_layer(model).input)


def cached_for(model: keras.Model, key: str, build: Callable[[], Any]) -> Any:
    """`build()`'s result for this model and key, built on first use and kept while the model lives.

    Tap models and compiled gradient functions take a while to build (a `tf.function`
    traces on its first call); pictures come one after another, so each is built once.
    """
    with _CACHE_LOCK:
        per_model = _CACHE.setdefault(model, {})
        if key not in per_model:
            per_model[key] = build()
        return per_model[key]
