"""Looking at CIFAR-10 before training on it: samples, class balance, mean images, pixel statistics.

The Explore page shows what these functions compute. They read the uint8 arrays in
place and work through them a few thousand images at a time, so no float copy of the
whole training set (600 MB as float32) is ever made: the app must fit in 2.7 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lab.config import CLASS_NAMES, task_class_names
from lab.data.tasks import task_label_map

CHUNK_IMAGES = 2000  # images converted to float at a time: 2000 x 3072 x 8 bytes = 49 MB
CHANNELS = ("red", "green", "blue")


@dataclass(frozen=True)
class ClassStats:
    """Sums over the images of each CIFAR-10 class, from which any task's statistics follow."""

    counts: np.ndarray  # (10,) images per class
    mean_images: np.ndarray  # (10, 32, 32, 3) float64: the average image of each class, 0-255
    channel_sums: np.ndarray  # (10, 3) float64: sum of every pixel value, per class and channel
    channel_squares: np.ndarray  # (10, 3) float64: sum of squared pixel values, per class and channel


def class_stats(images: np.ndarray, labels: np.ndarray) -> ClassStats:
    """Per-class counts, mean images and channel moments of uint8 images (N, 32, 32, 3)."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(np.int64)
    image_sums = np.zeros((len(CLASS_NAMES), *images.shape[1:]), dtype=np.float64)
    squares = np.zeros((len(CLASS_NAMES), images.shape[-1]), dtype=np.float64)
    for start in range(0, len(images), CHUNK_IMAGES):
        chunk = images[start : start + CHUNK_IMAGES].astype(np.float64)
        chunk_labels = labels[start : start + CHUNK_IMAGES]
        for label in np.unique(chunk_labels):
            members = chunk[chunk_labels == label]
            image_sums[label] += members.sum(axis=0)
            squares[label] += np.square(members).sum(axis=(0, 1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_images = np.nan_to_num(image_sums / counts[:, None, None, None])
    return ClassStats(counts, mean_images, image_sums.sum(axis=(1, 2)), squares)


def task_class_counts(labels: np.ndarray, task: str) -> list[int]:
    """Images per class of `task` (in the task's label order) among CIFAR-10 `labels`."""
    task_labels = task_label_map(task)[np.asarray(labels, dtype=np.int64)]
    return np.bincount(task_labels[task_labels >= 0], minlength=len(task_class_names(task))).tolist()


def class_balance(y_train: np.ndarray, y_test: np.ndarray, task: str) -> list[dict]:
    """Rows (class, split, images) for a bar chart of the task's class balance."""
    names = task_class_names(task)
    rows = []
    for split, labels in (("train", y_train), ("test", y_test)):
        rows += [
            {"class": name, "split": split, "images": count} for name, count in zip(names, task_class_counts(labels, task), strict=True)
        ]
    return rows


def task_mean_images(stats: ClassStats, task: str) -> np.ndarray:
    """(num_task_classes, 32, 32, 3) uint8: the average image of each class of `task`.

    A task class made of several CIFAR classes (the binary task's "vehicle") averages
    their mean images weighted by their image counts.
    """
    label_map = task_label_map(task)
    means = []
    for task_label in range(len(task_class_names(task))):
        members = label_map == task_label
        weights = stats.counts[members].astype(np.float64)
        total = weights.sum()
        mean = np.tensordot(weights / total, stats.mean_images[members], axes=1) if total else np.zeros(stats.mean_images.shape[1:])
        means.append(np.clip(np.rint(mean), 0, 255).astype(np.uint8))
    return np.stack(means)


def pixel_statistics(stats: ClassStats, task: str) -> list[dict]:
    """Per-channel mean and standard deviation over the task's images, in 0-255 and in 0-1 units.

    These are the numbers a normalisation layer would subtract and divide by.
    """
    members = task_label_map(task) >= 0
    pixels = stats.counts[members].sum() * stats.mean_images.shape[1] * stats.mean_images.shape[2]
    if not pixels:
        return []
    sums = stats.channel_sums[members].sum(axis=0)
    squares = stats.channel_squares[members].sum(axis=0)
    means = sums / pixels
    stds = np.sqrt(np.maximum(squares / pixels - means**2, 0.0))
    return [
        {"channel": name, "mean (0-255)": float(m), "std (0-255)": float(s), "mean (0-1)": float(m / 255), "std (0-1)": float(s / 255)}
        for name, m, s in zip(CHANNELS, means, stds, strict=True)
    ]


def sample_indices(labels: np.ndarray, cifar_classes: Sequence[str], per_class: int, seed: int) -> dict[str, list[int]]:
    """For each named CIFAR-10 class, `per_class` random image positions in `labels` (no repeats).

    The same seed gives the same pictures; each class draws from its own seeded stream,
    so adding a class to the grid does not reshuffle the others.
    """
    labels = np.asarray(labels)
    chosen = {}
    for name in cifar_classes:
        label = CLASS_NAMES.index(name)
        positions = np.flatnonzero(labels == label)
        rng = np.random.default_rng([seed, label])
        count = min(per_class, len(positions))
        chosen[name] = sorted(rng.choice(positions, size=count, replace=False).tolist()) if count else []
    return chosen


def task_classes_of(task: str) -> dict[str, str]:
    """For each CIFAR-10 class the task uses, the task class it belongs to ("cat" -> "animal" in the binary task)."""
    names = task_class_names(task)
    return {cifar: names[task_label] for cifar, task_label in zip(CLASS_NAMES, task_label_map(task), strict=True) if task_label >= 0}
