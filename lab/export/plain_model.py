"""A run's model rebuilt from Keras' own layers only, so that it opens in any Python with Keras 3.

The lab's models use a few layers of its own (the whitening layer, batch norm and GELU rewritten to
train faster, VGG's colour preprocessing, a ViT's position embedding). A `.keras` file names their
classes, so `keras.models.load_model` fails without this project: "Could not locate class
'PatchWhitening'". For inference each of them has an exact equivalent among Keras' built-in layers:

- `PatchWhitening`: its kernel is fixed once fitted, so it is a plain `Conv2D` with the same kernel and bias;
- `FusedBatchNormalization` and `Gelu`: Keras' `BatchNormalization` and `Activation("gelu")`, which
  is what they compute outside training anyway;
- `CaffePreprocess` (RGB to BGR, minus ImageNet's mean colour): a 1x1 `Conv2D` whose kernel swaps
  the channels and whose bias subtracts the mean;
- `PositionEmbedding` (a learned vector added to every token): `Rescaling(scale=1, offset=vectors)`;
- `InferenceModeBackbone`: a plain functional model (outside training there is nothing to enforce);
- `DiracInitializer`: only used to start training, so the copy names Keras' default initializer.

`plain_model(model)` clones the network layer by layer with those swaps and copies every weight.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from lab.models.fused_layers import FusedBatchNormalization, Gelu
from lab.models.pretrained import IMAGENET_BGR_MEAN, CaffePreprocess, InferenceModeBackbone
from lab.models.scratch import DiracInitializer, PatchWhitening, PositionEmbedding


def plain_model(model: keras.Model) -> keras.Model:
    """The same network and weights as `model`, built only from Keras' built-in layers (float32)."""
    pairs: list[tuple[layers.Layer, layers.Layer]] = []

    def clone_layer(layer: layers.Layer) -> layers.Layer:
        if isinstance(layer, keras.Model):  # the nested backbone: cloned layer by layer as well
            return _clone_nested(layer, clone_layer)
        copy = _built_in_equivalent(layer)
        pairs.append((layer, copy))
        return copy

    copy = keras.models.clone_model(model, clone_function=clone_layer)
    for original, equivalent in pairs:
        weights = _weights_for(original, equivalent)
        if weights:
            equivalent.set_weights(weights)
    _check_built_in_only(copy)
    return copy


def _clone_nested(model: keras.Model, clone_layer) -> keras.Model:
    """A nested functional model (the backbone) as a plain functional model with cloned layers."""
    inner = keras.models.clone_model(model, clone_function=clone_layer)
    if isinstance(model, InferenceModeBackbone) or type(inner) is not type(keras.Model(inner.inputs, inner.outputs)):
        # The wrapper class only matters while training; rewrap the same layers as a plain model.
        inner = keras.Model(inner.inputs, inner.outputs, name=model.name)
    return inner


def _float32_config(layer: layers.Layer) -> dict:
    """The layer's settings, computing in float32 (a run trained in mixed precision is saved in float32 already)."""
    config = layer.get_config()
    config["dtype"] = "float32"
    return config


def _built_in_equivalent(layer: layers.Layer) -> layers.Layer:
    """A new, unbuilt Keras layer that computes what `layer` computes at inference."""
    config = _float32_config(layer)
    if isinstance(layer, PatchWhitening):
        size = layer.patch_size
        return layers.Conv2D(layer.filters, size, padding="valid", name=layer.name, trainable=False, dtype="float32")
    if isinstance(layer, FusedBatchNormalization):
        return layers.BatchNormalization.from_config(config)
    if isinstance(layer, Gelu):
        return layers.Activation("gelu", name=layer.name, dtype="float32")
    if isinstance(layer, CaffePreprocess):
        return layers.Conv2D(3, 1, name=layer.name, trainable=False, dtype="float32")
    if isinstance(layer, PositionEmbedding):
        embedding = keras.ops.convert_to_numpy(layer.embedding).astype("float32")
        return layers.Rescaling(scale=1.0, offset=embedding.tolist(), name=layer.name, dtype="float32")
    if isinstance(layer, layers.Conv2D) and isinstance(layer.kernel_initializer, DiracInitializer):
        config["kernel_initializer"] = "glorot_uniform"
    return layer.__class__.from_config(config)


def _weights_for(original: layers.Layer, equivalent: layers.Layer) -> list[np.ndarray]:
    """The weights to load into `equivalent`, in its own order."""
    if isinstance(original, CaffePreprocess):
        swap_rgb_to_bgr = np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)
        return [swap_rgb_to_bgr, -np.asarray(IMAGENET_BGR_MEAN, dtype="float32")]
    if isinstance(original, PositionEmbedding):
        return []  # its vectors are the Rescaling's offset, set when it was made
    if type(original) is type(equivalent):  # the same class: the same weights in the same order
        return [np.asarray(weight, dtype="float32") if weight.dtype.kind == "f" else weight for weight in original.get_weights()]
    # Matched by name ("kernel", "bias", "moving_mean", ...): a layer lists its trainable weights first,
    # so the whitening layer (fixed kernel, trainable bias) holds them in the opposite order to Conv2D.
    by_name = {weight.name: keras.ops.convert_to_numpy(weight) for weight in original.weights}
    return [np.asarray(by_name[weight.name], dtype=_numpy_dtype(weight)) for weight in equivalent.weights]


def _numpy_dtype(weight) -> str:
    return "float32" if "float" in str(weight.dtype) else str(weight.dtype)


def _check_built_in_only(model: keras.Model) -> None:
    """Refuse to hand out a copy that would still need this project to load."""
    for layer in _all_layers(model):
        module = type(layer).__module__
        if not module.startswith("keras."):
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no built-in Keras equivalent yet; it cannot be exported.")


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
