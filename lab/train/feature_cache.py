"""Frozen-feature cache: compute a frozen backbone's outputs once, then train only the head.

When every backbone layer is frozen and the images never change (no augmentation),
the backbone maps each image to the same feature vector in every epoch. The lab
report's notebook recomputed those vectors every epoch; here they are computed once
per (backbone, weights, input size, images), kept on disk under LAB_HOME, and the
head alone trains on them, which takes seconds instead of minutes.

The head trained this way is made of the very same layer objects as the full
model's head, so the saved model is still the whole model (backbone + head) and
prediction works unchanged.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from lab.config import RunConfig
from lab.data.pipeline import in_order

# The layer whose output is cached: every pretrained head starts with global average pooling.
FEATURE_LAYER = "global_average_pool"


def cache_decision(config: RunConfig) -> tuple[bool, str]:
    """Whether a run can train on cached features, and why (a sentence for the UI)."""
    if not config.is_pretrained:
        return False, "The model is trained from scratch, so every layer learns and nothing can be cached."
    if config.freeze_depth is not None:
        return False, "Part of the backbone learns, so its outputs change every step and cannot be cached."
    if config.augment:
        return False, (
            "Augmentation shows the backbone a differently flipped and shifted image every epoch, "
            "so its outputs change and cannot be computed once. Turn augmentation off to use the cache."
        )
    if config.tta:
        return False, "Test-time augmentation needs the backbone on mirrored test images, so the cache is off."
    if config.fine_labels:
        return False, "Fine labels train a second output beside the model's own, so the whole model trains and the cache is off."
    return (
        True,
        "The backbone is frozen and the images never change: its outputs are computed once, cached on disk, and only the head trains.",
    )


def split_at_features(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(extractor, head): images -> pooled features, and pooled features -> predictions.

    The head reuses the full model's own layers, so training it trains the full model.
    """
    pooled = model.get_layer(FEATURE_LAYER).output
    extractor = keras.Model(model.input, pooled, name="feature_extractor")
    features = keras.Input(shape=pooled.shape[1:], name="features")
    x = features
    after_pooling = False
    for layer in model.layers:
        if after_pooling:
            x = layer(x)
        after_pooling = after_pooling or layer.name == FEATURE_LAYER
    return extractor, keras.Model(features, x, name="head")


def weights_identity(config: RunConfig) -> str:
    """What decides the backbone's numbers: a named weights set, a file's content, or the seed."""
    if config.weights == "none":
        return f"random-seed-{config.seed}"  # random initialisation depends on the seed
    if config.weights == "imagenet":
        return "imagenet"
    path = Path(config.weights)
    stat = path.stat()
    return f"file-{path.resolve()}-{stat.st_size}-{stat.st_mtime_ns}"


def cache_key(config: RunConfig, images: np.ndarray) -> str:
    digest = hashlib.sha256()
    for part in (config.backbone, weights_identity(config), str(config.input_size), keras.__version__, str(images.shape)):
        digest.update(part.encode() + b"\0")
    digest.update(memoryview(np.ascontiguousarray(images)).cast("B"))
    return digest.hexdigest()[:24]


def cache_folder() -> Path:
    return Path(os.environ.get("LAB_HOME") or "runs") / "feature_cache"


def cached_features(extractor: keras.Model, config: RunConfig, images: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, bool]:
    """The extractor's outputs for `images` (float16), and whether they came from the cache."""
    path = cache_folder() / f"{config.backbone}-{config.input_size}-{cache_key(config, images)}.npy"
    if path.exists():
        try:
            return np.load(path), True
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged file is recomputed, never trusted
    features = extractor.predict(in_order(images, batch_size), verbose=0).astype(np.float16)
    _save_atomically(path, features)
    return features, False


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file and rename, so a killed job never leaves half a cache file."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            temporary = handle.name
            np.save(handle, array)
        os.replace(temporary, path)
    except OSError:
        # A full or read-only disk only costs the speed-up next time.
        if temporary:
            Path(temporary).unlink(missing_ok=True)
