"""What a network's layers compute for one picture, and what its first filters look for.

- `activation_maps` / `activation_grid`: the feature maps a convolutional layer
  computes for one picture, tiled into one image (one tile per channel).
- `first_layer_filters`: the first convolution's filters as tiny RGB pictures;
  a trained network's often look like edges and colour blobs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from lab.insight.layer_taps import CONV_TYPES, cached_for, conv_layers, find_layer, tap_model, walk_layers

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
