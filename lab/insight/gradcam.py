"""Grad-CAM: which part of the picture made the model choose its answer?

Grad-CAM (Selvaraju et al., 2017) looks at the last convolutional layer, whose
feature maps still know *where* things are in the image. It asks how much the
chosen class's score would rise if each feature map grew (the gradient), averages
that over the map to get one importance weight per channel, and adds the maps up
with those weights. Keeping only the positive part and stretching the small map
(4x4 for the seed CNN) to the image's size gives a heatmap: bright where the
evidence for the class is. The small map is kept too (`GradCam.coarse`), so a page
can stretch it over the picture as uploaded (lab/insight/heatmaps.py draws it).

The class score is the number before softmax (the "logit"): softmax flattens its
gradients once the model is sure, which would fade the heatmap exactly for the
images the model knows best. A one-sigmoid-unit model has one logit z for class 1;
class 0's logit is -z (sigmoid(-z) = 1 - sigmoid(z)).

A Vision Transformer has no convolutional maps at its end, but its tokens are one
per 4x4 patch, so its last token layer is laid back out on the patch grid. A model
with neither falls back to input-gradient saliency, and `GradCam.method` says so.

The gradient function is built once per model and layer (a `tf.function`, kept in
a cache that forgets a model when the model is deleted), so each later picture
takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from lab.insight.heatmaps import smooth_resize
from lab.insight.layer_taps import LayerInfo, cached_for, find_layer, output_features_model, output_layer, tap_model, walk_layers

# A map smaller than this many cells per side cannot show *where*: 1x1 is one number.
MIN_GRID = 2
# Said when no part of the map counts *for* the class (every weighted sum is negative).
EMPTY_NOTE = (
    "No part of the picture adds evidence for this class at this layer, so the heatmap is empty: "
    "the model may recognise the class by what is missing. The other classes' heatmaps may say more."
)


@dataclass(frozen=True)
class GradCam:
    """A heatmap and what it explains."""

    heatmap: np.ndarray  # (height, width) float32 in [0, 1]; 1 = where the evidence for the class is strongest
    class_index: int  # the class the heatmap explains
    probability: float  # the model's probability for that class
    probabilities: np.ndarray  # (num_classes,) every class's probability (two columns for a one-sigmoid model)
    method: str  # "grad-cam", "grad-cam on tokens" or "saliency"
    layer: str | None  # the layer whose maps were weighed (None for saliency)
    grid: tuple[int, int]  # that layer's spatial size before upsampling
    note: str  # one sentence saying what was done, for the page or the command line
    coarse: np.ndarray | None = None  # the map at its layer's grid size, in [0, 1], before any stretching


def gradcam_layer(model: keras.Model) -> LayerInfo | None:
    """The layer Grad-CAM should use: the last convolutional map (or token grid) that is at least 2x2.

    Small inputs shrink the deep maps of ImageNet networks to 1x1 (MobileNetV2 at 32
    pixels), so the deepest layer that still has a grid is chosen instead.
    """
    candidates = [info for info in walk_layers(model) if info.kind in ("grid", "tokens")]
    with_grid = [info for info in candidates if min(info.grid) >= MIN_GRID]
    if with_grid:
        return with_grid[-1]
    return candidates[-1] if candidates else None


def gradcam(
    model: keras.Model,
    image_uint8: np.ndarray,
    class_index: int | None = None,
    *,
    layer_name: str | None = None,
    size: int | tuple[int, int] | None = None,
) -> GradCam:
    """Explain the model's answer for one (32, 32, 3) uint8 image.

    `class_index` None explains the most probable class. `layer_name` picks another
    layer than `gradcam_layer`'s choice. `size` (pixels, or (height, width)) is the
    heatmap's size; by default the image's own.
    """
    image = _as_batch(model, image_uint8)
    info = find_layer(model, layer_name) if layer_name else gradcam_layer(model)
    probe = _gradient_function(model, info)
    features, gradients, probabilities, chosen = probe(image, _class_argument(class_index, model))
    probabilities = np.asarray(probabilities, dtype=np.float32)[0]
    features, gradients = (np.asarray(ops.convert_to_numpy(t), dtype=np.float32)[0] for t in (features, gradients))
    if info is None:
        # Saliency: how strongly each pixel (its most sensitive colour channel) moves the score.
        small_map, method, grid = np.abs(gradients).max(axis=-1), "saliency", image.shape[1:3]
    else:
        small_map, method, grid = _weighted_maps(features, gradients, info), _method(info), info.grid
    coarse = _normalise(small_map)
    heatmap = _normalise(smooth_resize(coarse, _target_size(size, image_uint8.shape[:2])))
    note = _note(model, info)
    if not heatmap.any():
        note += f" {EMPTY_NOTE}"
    index = int(chosen)
    return GradCam(
        heatmap=heatmap,
        class_index=index,
        probability=float(probabilities[index]),
        probabilities=probabilities,
        method=method,
        layer=None if info is None else info.name,
        grid=(int(grid[0]), int(grid[1])),
        note=note,
        coarse=coarse,
    )


def _as_batch(model: keras.Model, image_uint8: np.ndarray) -> np.ndarray:
    image = np.asarray(image_uint8)
    expected = tuple(model.input_shape[1:])
    if image.shape != expected:
        raise ValueError(
            f"the image must be {expected} pixels (height, width, RGB), like the model's input; got {image.shape}. "
            "lab.evaluate.predict.to_model_input resizes any picture."
        )
    return image[np.newaxis].astype(np.float32)  # the model normalises the 0-255 values itself


def _class_argument(class_index: int | None, model: keras.Model) -> np.int32:
    num_classes = max(2, int(model.output_shape[-1]))  # one sigmoid unit = two classes
    if class_index is None:
        return np.int32(-1)  # -1 asks the gradient function for the most probable class
    if not 0 <= int(class_index) < num_classes:
        raise ValueError(f"class_index must be from 0 to {num_classes - 1}; got {class_index}.")
    return np.int32(class_index)


def _method(info: LayerInfo) -> str:
    return "grad-cam on tokens" if info.kind == "tokens" else "grad-cam"


def _note(model: keras.Model, info: LayerInfo | None) -> str:
    if info is None:
        return (
            "The model has no convolutional layer or token grid, so this is input-gradient saliency: how much each pixel moves the score."
        )
    height, width = info.grid
    where = f"Grad-CAM on {info.name}, a {height}x{width} grid"
    if info.kind == "tokens":
        where = f"Grad-CAM on the tokens of {info.name}, laid out as the {height}x{width} grid of image patches they came from"
    deepest = [c for c in walk_layers(model) if c.kind in ("grid", "tokens")][-1]
    if deepest.name != info.name and min(deepest.grid) < MIN_GRID:
        where += f" (the deepest map, {deepest.name}, is only {deepest.grid[0]}x{deepest.grid[1]} at this input size)"
    return where + ", stretched to the picture."


COARSE_GRID = 8  # a grid this small or smaller is worth a word on why the heatmap is blurry


def coarse_sentence(result: GradCam) -> str:
    """Why the heatmap is soft blobs rather than sharp outlines, in one sentence ("" for a fine map or saliency)."""
    height, width = result.grid
    if result.method == "saliency" or max(height, width) > COARSE_GRID:
        return ""
    seen_as = "its tokens cover the picture as" if result.method == "grad-cam on tokens" else "its last convolution sees the picture as"
    return (
        f"The map is blurry on purpose: {seen_as} a {height}x{width} grid of squares, so it can say roughly where "
        "the model looked, not which pixels."
    )


# ---------------------------------------------------------------- the gradient function


def _gradient_function(model: keras.Model, info: LayerInfo | None):
    """The compiled function for (model, layer), built on first use and then cached."""
    key = "gradcam:" + ("saliency" if info is None else "/".join(info.path))
    return cached_for(model, key, lambda: _build_gradient_function(model, info))


def _build_gradient_function(model: keras.Model, info: LayerInfo | None):
    import tensorflow as tf

    last = output_layer(model)
    # One model from the image to (the tapped layer's maps, the features the last layer reads).
    probe = output_features_model(model) if info is None else tap_model(model, info.path, before_output=True)

    @tf.function(reduce_retracing=True)
    def gradients(images, class_index):
        with tf.GradientTape() as tape:
            tape.watch(images)  # only saliency needs gradients with respect to the pixels
            if info is None:
                features, last_input = images, probe(images, training=False)
            else:
                features, last_input = probe(images, training=False)
            scores, probabilities = class_scores(last, last_input)
            chosen = tf.where(class_index >= 0, class_index, tf.argmax(probabilities[0], output_type=tf.int32))
            score = scores[0, chosen]
        return features, tape.gradient(score, features), probabilities, chosen

    return gradients


def class_scores(last: layers.Layer, last_input):
    """(class scores before softmax / sigmoid, class probabilities), both (batch, num_classes)."""
    if isinstance(last, layers.Dense):
        # The Dense layer's own arithmetic, stopping short of its activation.
        logits = ops.matmul(ops.cast(last_input, last.kernel.dtype), last.kernel)
        if last.use_bias:
            logits = logits + last.bias
        raw = last.activation(logits)
    else:
        raw = last(last_input, training=False)
        logits = ops.log(ops.maximum(ops.cast(raw, "float32"), 1e-7))
    raw = ops.cast(raw, "float32")
    logits = ops.cast(logits, "float32")
    if raw.shape[-1] == 1:
        # One sigmoid unit: p = P(class 1). Class 0's score is -z, its probability 1 - p.
        return ops.concatenate([-logits, logits], axis=-1), ops.concatenate([1.0 - raw, raw], axis=-1)
    return logits, raw


# ---------------------------------------------------------------- from maps to a heatmap


def _weighted_maps(features: np.ndarray, gradients: np.ndarray, info: LayerInfo) -> np.ndarray:
    """Grad-CAM proper: weigh each channel by its average gradient, add the channels, keep the positive part."""
    if info.kind == "tokens":
        height, width = info.grid
        # Token i came from patch (i // width, i % width): reading the tokens row by row rebuilds the grid.
        features = features.reshape(height, width, -1)
        gradients = gradients.reshape(height, width, -1)
    channel_weights = gradients.mean(axis=(0, 1))  # (channels,)
    return np.maximum((features * channel_weights).sum(axis=-1), 0.0)


def _target_size(size: int | tuple[int, int] | None, image_size: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return int(image_size[0]), int(image_size[1])
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def _normalise(heatmap: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the largest value; an all-zero map (no positive evidence) stays zero."""
    heatmap = np.maximum(np.nan_to_num(heatmap), 0.0)
    peak = float(heatmap.max(initial=0.0))
    return (heatmap / peak if peak > 0 else heatmap).astype(np.float32)
