"""The model registry: build any backbone + head from a RunConfig, freeze part of it, describe it.

A built model has three parts, in order:

1. preprocessing: upscaling (`Resizing`, when input_size is not 32) and the
   backbone's own input normalisation, so a saved model takes raw 0-255 pixels;
2. the backbone: a nested model named "backbone" (lab/models/scratch.py for the
   from-scratch networks, lab/models/pretrained.py for keras.applications);
3. the head: pooling or flattening, then the "predictions" layer (softmax over
   the classes, or one sigmoid unit for a two-class task).

Importing this module registers the lab's own layers and loss with Keras, which
`keras.models.load_model` needs to rebuild a saved model in safe mode.
"""

from __future__ import annotations

import functools
import numbers

import keras
import numpy as np
from keras import layers, ops

from lab.config import IMAGE_SHAPE, RunConfig
from lab.models.pretrained import (
    APPLICATIONS,
    PRETRAINED_MIN_INPUT_SIZE,
    build_pretrained_backbone,
    preprocessing_layers,
    resolve_weights,
)
from lab.models.scratch import FAST_CNN_HEAD_SCALE, SCRATCH_MIN_INPUT_SIZE, build_scratch_backbone


def build_model(config: RunConfig, num_classes: int) -> keras.Model:
    """The (uncompiled) classifier `config` describes, for `num_classes` classes."""
    output_units = _output_units(num_classes)
    check_input_size(config.backbone, config.input_size)
    # Find (or fail to find) the weights before building anything, so an offline
    # user hears about missing files straight away, not after a long build.
    weights_path = resolve_weights(config.backbone, config.weights, config.input_size)
    starts_pretrained = weights_path is not None
    backbone = build_backbone(config.backbone, config.input_size, weights_path, width=config.width)
    apply_freeze_depth(backbone, config.freeze_depth)

    images = keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="image")
    x = images
    if config.input_size != IMAGE_SHAPE[0]:
        x = layers.Resizing(config.input_size, config.input_size, interpolation="bilinear", name="upscale")(x)
    for layer in _preprocessing(config.backbone, backbone, starts_pretrained):
        x = layer(x)
    # A pre-trained backbone keeps its BatchNorm statistics even where it is
    # unfrozen (Keras transfer-learning guide). training=False says so here, but
    # Keras 3's fit overrides it, so InferenceModeBackbone (lab/models/pretrained.py)
    # enforces it. A backbone that starts from random numbers trains normally.
    features = backbone(x, training=False) if starts_pretrained else backbone(x)
    outputs = _head(features, config, output_units)
    return keras.Model(images, outputs, name=config.backbone.replace("-", "_") + "_classifier")


def _output_units(num_classes: int) -> int:
    # numbers.Integral also accepts NumPy integers, such as a label array's max() + 1.
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be a whole number >= 2; got {num_classes!r}.")
    # Two classes need only one number: the probability of class 1.
    return 1 if num_classes == 2 else int(num_classes)


def check_input_size(backbone: str, input_size: int) -> None:
    """Refuse an input size the backbone cannot shrink to a feature map."""
    smallest = PRETRAINED_MIN_INPUT_SIZE if backbone in APPLICATIONS else SCRATCH_MIN_INPUT_SIZE.get(backbone)
    if smallest is None:
        known = ", ".join([*SCRATCH_MIN_INPUT_SIZE, *APPLICATIONS])
        raise ValueError(f"backbone {backbone!r} is unknown; choose one of: {known}.")
    if input_size < smallest:
        raise ValueError(f"input_size must be at least {smallest} pixels for {backbone}; got {input_size}.")
    if backbone == "vit-tiny" and input_size % 4:
        raise ValueError(f"input_size must be a multiple of the ViT patch size (4); got {input_size}.")


def build_backbone(backbone: str, input_size: int = 32, weights_path=None, *, width: float | None = None) -> keras.Model:
    """The nested "backbone" model alone, with random weights unless a weights file is given.

    `width` scales the fast-cnn's channels (see RunConfig.width); other backbones ignore it.
    """
    check_input_size(backbone, input_size)
    if backbone in APPLICATIONS:
        return build_pretrained_backbone(backbone, input_size, weights_path)
    return build_scratch_backbone(backbone, input_size, width)


def _preprocessing(backbone_name: str, backbone: keras.Model, pretrained: bool) -> list[layers.Layer]:
    if backbone_name in APPLICATIONS:
        return preprocessing_layers(backbone_name, backbone, pretrained)
    # The from-scratch networks learn best from pixels in [0, 1].
    return [layers.Rescaling(1 / 255, name="rescale")]


def _head(features, config: RunConfig, output_units: int):
    """Pool or flatten the backbone's features and classify them."""
    if config.backbone == "seed-cnn":
        x = layers.Flatten(name="flatten")(features)
        x = layers.Dense(128, activation="relu", name="dense128")(x)
    elif config.backbone == "fast-cnn":
        # Max pooling asks "does this feature appear anywhere?", a good fit for small objects.
        x = layers.GlobalMaxPooling2D(name="global_max_pool")(features)
        x = layers.Rescaling(FAST_CNN_HEAD_SCALE, name="head_scale")(x)
    elif config.backbone == "vit-tiny":
        x = layers.GlobalAveragePooling1D(name="token_average")(features)
    else:
        x = layers.GlobalAveragePooling2D(name="global_average_pool")(features)
        if config.head == "dense256":
            x = layers.Dense(256, activation="relu", name="dense256")(x)
            x = layers.Dropout(config.dropout, name="dropout")(x)
    activation = "sigmoid" if output_units == 1 else "softmax"
    # float32 even under mixed precision: probabilities near 0 or 1 need its precision.
    return layers.Dense(output_units, activation=activation, dtype="float32", name="predictions")(x)


def apply_freeze_depth(backbone: keras.Model, freeze_depth: int | None) -> None:
    """Freeze the first `freeze_depth` layers of `backbone` (None: all of them) and unfreeze the rest."""
    layer_count = len(backbone.layers)
    if freeze_depth is None:
        backbone.trainable = False
        return
    if not isinstance(freeze_depth, int) or not 0 <= freeze_depth <= layer_count:
        raise ValueError(
            f"freeze_depth must be from 0 to {layer_count} (the {backbone.name}'s layer count) or 'all'; got {freeze_depth!r}."
        )
    # Setting the model trainable first resets every layer, so a model can be re-frozen at another depth.
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= freeze_depth


@functools.cache
def backbone_layer_count(backbone: str, input_size: int = 32) -> int:
    """How many layers `backbone` has: the largest freeze_depth it accepts.

    Cached, because building VGG16 or ResNet50 just to count takes a second or two.
    """
    return len(build_backbone(backbone, input_size).layers)


def describe_layers(model: keras.Model) -> list[dict]:
    """One row per layer, looking inside the nested backbone.

    Each row: name, type, output_shape (e.g. "(None, 16, 16, 64)"), params,
    trainable_params, trainable, part ("preprocessing" | "backbone" | "head") and
    index (the backbone layer's position, the number freeze_depth counts; None elsewhere).
    """
    rows = []
    part = "preprocessing"
    for layer in model.layers:
        if layer.name == "backbone":
            rows.extend(_layer_row(inner, "backbone", index, layer.trainable) for index, inner in enumerate(layer.layers))
            part = "head"
            continue
        rows.append(_layer_row(layer, part, None, True))
    return rows


def _layer_row(layer: layers.Layer, part: str, index: int | None, parent_trainable: bool) -> dict:
    return {
        "name": layer.name,
        "type": type(layer).__name__,
        "output_shape": _output_shape(layer),
        "params": _size(layer.weights),
        "trainable_params": _size(layer.trainable_weights) if parent_trainable else 0,
        "trainable": bool(layer.trainable and parent_trainable),
        "part": part,
        "index": index,
    }


def _output_shape(layer: layers.Layer) -> str:
    try:
        return str(tuple(layer.output.shape))
    except (AttributeError, ValueError):  # a layer that was never called has no output
        return "?"


def _size(weights) -> int:
    return int(sum(np.prod(weight.shape, dtype=np.int64) for weight in weights))


def count_params(model: keras.Model) -> dict[str, int]:
    """Total, trainable and frozen parameter counts (BatchNorm's moving statistics count as frozen)."""
    trainable = _size(model.trainable_weights)
    frozen = _size(model.non_trainable_weights)
    return {"total_params": trainable + frozen, "trainable_params": trainable, "non_trainable_params": frozen}


@keras.saving.register_keras_serializable(package="lab")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing.

    Keras only smooths one-hot labels, so this loss one-hots the integer labels
    first. Smoothing by 0.1 trains against 0.9 for the true class and 0.01 for
    each of the other nine, which stops the model from becoming over-confident.
    """

    def __init__(self, num_classes: int, label_smoothing: float = 0.1, name: str = "sparse_categorical_crossentropy_smoothed", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}


def loss_for(num_classes: int, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The loss matching build_model's output for integer labels 0..num_classes-1."""
    if _output_units(num_classes) == 1:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    if label_smoothing > 0:
        # Plain Python numbers, so the loss's config can be saved as JSON with the model.
        return SparseCategoricalCrossentropyWithSmoothing(int(num_classes), float(label_smoothing))
    return keras.losses.SparseCategoricalCrossentropy()


def metrics_for(num_classes: int) -> list[keras.metrics.Metric]:
    """Accuracy for integer labels, named "accuracy" for both output kinds so the logs look alike."""
    if _output_units(num_classes) == 1:
        return [keras.metrics.BinaryAccuracy(name="accuracy")]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
