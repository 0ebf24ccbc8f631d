"""A Grad-CAM heatmap made readable: one colour scale, laid over the picture, and said in words.

`lab.insight.gradcam` works out *how much* each part of the picture counted; this module
turns those numbers into what a student looks at:

- one perceptual colour scale ("inferno": black, purple, orange, pale yellow), whose
  brightness grows steadily with the value, so "brighter" always means "counted more",
  also in grey print and for colour-blind eyes (a rainbow such as "jet" has bright bands
  in the middle of its range, which the eye reads as edges that are not there);
- the heatmap laid over the picture as it was uploaded, stretched smoothly (bicubic) from
  the model's coarse grid to the picture's own size;
- a sentence saying where the bright part is ("the top-left corner", "the centre").
"""

from __future__ import annotations

import numpy as np
from PIL import Image

OVERLAY_ALPHA = 0.55  # how strongly the heatmap's colours cover the picture (0 = not at all, 1 = fully)
# Matplotlib's "inferno" at 0, 0.1, ..., 1 (van der Walt and Smith); straight lines between them are close enough.
INFERNO_STOPS = (
    "#000004", "#160b39", "#420a68", "#6a176e", "#932667", "#bc3754", "#dd513a", "#f37819", "#fca50a", "#f6d746", "#fcffa4",
)  # fmt: skip
HOT = 0.5  # a part of the map counts as "looked at" where it reaches half the peak
SPREAD_SHARE = 0.6  # when the hot part covers more than this share of the picture, the model looked all over it
# The nine parts of a picture, by the third its bright part's centre falls in: (row third, column third).
REGION_WORDS = {
    (0, 0): "the top-left corner",
    (0, 1): "the top",
    (0, 2): "the top-right corner",
    (1, 0): "the left side",
    (1, 1): "the centre",
    (1, 2): "the right side",
    (2, 0): "the bottom-left corner",
    (2, 1): "the bottom",
    (2, 2): "the bottom-right corner",
}
EVERYWHERE = "most of the picture, not one place"


def _stops() -> np.ndarray:
    return np.array([[int(code[i : i + 2], 16) for i in (1, 3, 5)] for code in INFERNO_STOPS], dtype=np.float32)


def inferno(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to colours on the "inferno" scale: 0 black, 1 pale yellow; (..., 3) uint8."""
    values = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    stops = _stops()
    position = values * (len(stops) - 1)
    lower = np.minimum(position.astype(np.int64), len(stops) - 2)
    weight = (position - lower)[..., np.newaxis]
    colours = (1.0 - weight) * stops[lower] + weight * stops[lower + 1]
    return np.rint(colours).astype(np.uint8)


def colour_bar(width: int = 256, height: int = 14) -> np.ndarray:
    """The colour scale as a strip, dark on the left (looked at least) to bright on the right (looked at most)."""
    return np.repeat(inferno(np.linspace(0.0, 1.0, width))[np.newaxis], height, axis=0)


def smooth_resize(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map stretched to `size` (height, width) with bicubic interpolation, kept in [0, 1].

    Bicubic blends the coarse cells into soft blobs; straight lines between cell
    centres (bilinear) leave visible diamonds when a 4x4 map covers a large picture.
    """
    picture = Image.fromarray(np.asarray(heatmap, dtype=np.float32))  # float32 -> Pillow mode "F"
    resized = np.asarray(picture.resize((int(size[1]), int(size[0])), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.clip(resized, 0.0, 1.0)


def blend(picture: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The picture with the heatmap's colours laid over it; both the same height and width."""
    mixed = (1.0 - alpha) * picture.astype(np.float32) + alpha * inferno(heatmap).astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """A (small) model input with the heatmap over it: (H, W, 3) uint8, the heatmap's size.

    A heatmap larger than the picture (a display size) enlarges the picture first,
    with nearest-neighbour pixels, so its 32x32 pixels stay sharp squares.
    """
    heatmap = np.asarray(heatmap, dtype=np.float32)
    picture = np.asarray(image, dtype=np.uint8)
    if picture.shape[:2] != heatmap.shape:
        picture = np.asarray(Image.fromarray(picture).resize((heatmap.shape[1], heatmap.shape[0]), Image.Resampling.NEAREST))
    return blend(picture, heatmap, alpha)


def overlay_on_picture(picture: np.ndarray, coarse_map: np.ndarray, *, crop: bool = False, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The picture as uploaded, any size, with the model's coarse map stretched smoothly over the part the model saw.

    The model saw the whole picture squeezed into a square (the map then covers all of it),
    or with `crop` only the centre square: the map covers that square, and the edges the
    model never saw are dimmed.
    """
    picture = np.asarray(picture, dtype=np.uint8)[..., :3]
    height, width = picture.shape[:2]
    if not crop:
        return blend(picture, smooth_resize(coarse_map, (height, width)), alpha)
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    drawn = np.rint(picture.astype(np.float32) * 0.35).astype(np.uint8)  # unseen edges: dimmed
    square = picture[top : top + side, left : left + side]
    drawn[top : top + side, left : left + side] = blend(square, smooth_resize(coarse_map, (side, side)), alpha)
    return drawn


def where_it_looked(heatmap: np.ndarray) -> str | None:
    """Where the bright part of the map is, in words ("the centre", "the top-left corner"); None for an empty map.

    The bright part is where the map reaches half its peak; its centre of mass, weighted
    by the map, falls in one of the picture's nine thirds-by-thirds parts. A bright part
    covering most of the picture has no one place.
    """
    heatmap = np.maximum(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0)
    peak = float(heatmap.max(initial=0.0))
    if peak <= 0:
        return None
    hot = np.where(heatmap >= HOT * peak, heatmap, 0.0)
    if (hot > 0).mean() > SPREAD_SHARE:
        return EVERYWHERE
    rows, columns = np.indices(heatmap.shape, dtype=np.float32)
    total = float(hot.sum())
    centre_row = float((rows * hot).sum()) / total + 0.5  # pixel centres: row i covers [i, i + 1)
    centre_column = float((columns * hot).sum()) / total + 0.5
    third = (min(2, int(3 * centre_row / heatmap.shape[0])), min(2, int(3 * centre_column / heatmap.shape[1])))
    return REGION_WORDS[third]


def where_sentence(heatmap: np.ndarray, class_name: str) -> str:
    """One sentence for the page: where the model looked for `class_name`."""
    where = where_it_looked(heatmap)
    if where is None:
        return f"No part of the picture counted for '{class_name}'."
    if where == EVERYWHERE:
        return f"Looking for '{class_name}', the model looked all over the picture, not at one place."
    return f"Looking for '{class_name}', the model looked mostly at {where} of the picture."
