"""Seeing inside a model: what its layers compute, what its first filters look for, where it errs.

- `activation_maps` / `activation_grid`: the feature maps a convolutional layer
  computes for one picture, tiled into one image (one tile per channel).
- `first_layer_filters`: the first convolution's filters as tiny RGB pictures;
  a trained network's often look like edges and colour blobs.
- `confusion_cell`: the test images behind one cell of the confusion matrix.
- `disagreements` / `compare_per_class`: where two runs differ, image by image and class by class.

Grad-CAM lives in lab/insight/gradcam.py, the learning-rate finder in lab/insight/lr_finder.py and
the frozen-versus-fine-tuned note in lab/insight/freezing.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from lab.evaluate.metrics import as_class_probabilities
from lab.insight.freezing import freezing_summary
from lab.insight.gradcam import GradCam, gradcam, overlay
from lab.insight.layer_taps import CONV_TYPES, cached_for, conv_layers, find_layer, tap_model, walk_layers
from lab.insight.lr_finder import lr_find

# One place to import every "look inside" tool from; the bigger ones live in their own modules.
__all__ = [
    "GradCam",
    "activation_grid",
    "activation_maps",
    "compare_per_class",
    "confusion_cell",
    "conv_layers",
    "disagreements",
    "first_layer_filters",
    "freezing_summary",
    "gradcam",
    "lr_find",
    "overlay",
    "per_class_accuracy",
]

# ---------------------------------------------------------------- activations and filters


def activation_maps(model: keras.Model, image: np.ndarray, layer_name: str) -> np.ndarray:
    """What layer `layer_name` computes for one (32, 32, 3) uint8 image: (height, width, channels) float32.

    A ViT token layer comes back laid out on its patch grid, like a feature map.
    """
    info = find_layer(model, layer_name)
    if info.kind == "other" and len(info.output_shape) != 3:
        raise ValueError(
            f"layer {layer_name!r} outputs {info.output_shape}, not a grid of feature maps; pick one of: {', '.join(conv_layers(model))}."
        )
    tapped = cached_for(model, "activations:" + "/".join(info.path), lambda: tap_model(model, info.path))
    batch = np.asarray(image, dtype=np.float32)[np.newaxis]  # the model normalises 0-255 pixels itself
    maps = np.asarray(keras.ops.convert_to_numpy(tapped(batch, training=False)[0]), dtype=np.float32)[0]
    if info.kind == "tokens":
        height, width = info.grid
        maps = maps.reshape(height, width, -1)
    return maps


def activation_grid(maps: np.ndarray, columns: int = 8, *, max_channels: int | None = None, gap: int = 1) -> np.ndarray:
    """Tile (height, width, channels) maps into one 2-D image in [0, 1], channel 0 top left, row by row.

    Each map is stretched to [0, 1] on its own, so a weak channel is as visible as a
    strong one; an all-zero map (a ReLU that never fired for this picture) stays black.
    Tiles are separated by `gap` white pixels. `max_channels` keeps only the first ones.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (height, width, channels); got shape {maps.shape}.")
    if max_channels is not None:
        maps = maps[..., :max_channels]
    height, width, channels = maps.shape
    columns = max(1, min(int(columns), channels))
    rows = math.ceil(channels / columns)
    lowest = maps.min(axis=(0, 1))
    spread = maps.max(axis=(0, 1)) - lowest
    scaled = (maps - lowest) / np.where(spread > 0, spread, 1.0)
    grid = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap), dtype=np.float32)
    for channel in range(channels):
        top, left = (channel // columns) * (height + gap), (channel % columns) * (width + gap)
        grid[top : top + height, left : left + width] = scaled[..., channel]
    return grid


def first_layer_filters(model: keras.Model) -> np.ndarray:
    """The first convolution's filters as small RGB pictures: (filters, k, k, 3) float32 in [0, 1].

    Each filter is stretched to [0, 1] on its own (0.5 is not "zero"). VGG16 and
    ResNet50 were trained on BGR images (see CaffePreprocess), so their filters'
    colour channels are turned back to RGB for display.
    """
    for info in walk_layers(model):
        if info.type not in {t.__name__ for t in CONV_TYPES}:
            continue
        layer = _layer_at(model, info.path)
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), dtype=np.float32)
        if kernel.ndim == 4 and kernel.shape[2] == 3 and info.type == "Conv2D":
            filters = np.transpose(kernel, (3, 0, 1, 2))  # (k, k, 3, n) -> (n, k, k, 3)
            if any(other.type == "CaffePreprocess" for other in walk_layers(model)):
                filters = filters[..., ::-1]
            lowest = filters.min(axis=(1, 2, 3), keepdims=True)
            spread = filters.max(axis=(1, 2, 3), keepdims=True) - lowest
            return (filters - lowest) / np.where(spread > 0, spread, 1.0)
        break  # the first convolution does not read the RGB picture directly
    raise ValueError("the model has no convolution reading the RGB picture directly, so there are no colour filters to show.")


def _layer_at(model: keras.Model, path: Sequence[str]):
    layer = model
    for name in path:
        layer = layer.get_layer(name)
    return layer


# ---------------------------------------------------------------- the confusion matrix, cell by cell


def confusion_cell(y_true: Sequence[int], probabilities: np.ndarray, true_class: int, predicted_class: int) -> np.ndarray:
    """Indices of the images of class `true_class` the model labelled `predicted_class`: one cell of the confusion matrix.

    Sorted by the probability given to `predicted_class`, highest first: off the
    diagonal that is the most confident mistakes first, on it the surest right answers.
    (evaluation.mistakes answers the same question for off-diagonal cells only.)
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probabilities = as_class_probabilities(probabilities)
    predicted = probabilities.argmax(axis=1)
    in_cell = np.flatnonzero((y_true == true_class) & (predicted == predicted_class))
    # A stable sort on the negated probability: descending, ties in image order.
    return in_cell[np.argsort(-probabilities[in_cell, predicted_class], kind="stable")]


# ---------------------------------------------------------------- two runs side by side


def disagreements(y_true: Sequence[int], probs_a: np.ndarray, probs_b: np.ndarray) -> dict[str, np.ndarray | int]:
    """Where two runs on the same test images differ.

    a_right_b_wrong / b_right_a_wrong: image indices, the wrong run's most confident
    mistakes first. both_right / both_wrong: how many images the runs agree on.
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probs_a, probs_b = as_class_probabilities(probs_a), as_class_probabilities(probs_b)
    if not len(y_true) == len(probs_a) == len(probs_b):
        raise ValueError(
            f"both runs must be scored on the same test images: got {len(y_true)} labels, {len(probs_a)} and {len(probs_b)} predictions."
        )
    right_a = probs_a.argmax(axis=1) == y_true
    right_b = probs_b.argmax(axis=1) == y_true
    return {
        "a_right_b_wrong": _most_confident_first(np.flatnonzero(right_a & ~right_b), probs_b),
        "b_right_a_wrong": _most_confident_first(np.flatnonzero(right_b & ~right_a), probs_a),
        "both_right": int(np.sum(right_a & right_b)),
        "both_wrong": int(np.sum(~right_a & ~right_b)),
    }


def _most_confident_first(indices: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    confidence = probabilities[indices].max(axis=1)  # the probability of the (wrong) answer given
    return indices[np.argsort(-confidence, kind="stable")]


def per_class_accuracy(y_true: Sequence[int], probabilities: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """For each class, the share of its test images the model got right (its recall); NaN for a class with no images."""
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probabilities = as_class_probabilities(probabilities)
    num_classes = num_classes or probabilities.shape[1]
    right = probabilities.argmax(axis=1) == y_true
    totals = np.bincount(y_true, minlength=num_classes).astype(np.float64)
    correct = np.bincount(y_true[right], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, correct / totals, np.nan)


def compare_per_class(y_true: Sequence[int], probs_a: np.ndarray, probs_b: np.ndarray, class_names: Sequence[str]) -> list[dict]:
    """One row per class: accuracy_a, accuracy_b, difference (b - a) and support (test images of the class)."""
    accuracy_a = per_class_accuracy(y_true, probs_a, len(class_names))
    accuracy_b = per_class_accuracy(y_true, probs_b, len(class_names))
    support = np.bincount(np.asarray(y_true, dtype=np.int64).reshape(-1), minlength=len(class_names))
    return [
        {
            "class": str(name),
            "accuracy_a": float(accuracy_a[index]),
            "accuracy_b": float(accuracy_b[index]),
            "difference": float(accuracy_b[index] - accuracy_a[index]),
            "support": int(support[index]),
        }
        for index, name in enumerate(class_names)
    ]
