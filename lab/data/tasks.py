"""From CIFAR-10 to a task: relabel the classes, draw a stratified subset, carve the validation split.

The same seed always gives the same splits, and every split's fingerprint (counts and a short
hash of the arrays) is stored with the run, so a result can always be traced to its data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from lab.config import CLASS_NAMES, ONE_VS_REST, VEHICLE_CLASSES, RunConfig, task_class_names
from lab.data.cifar10 import Cifar10


@dataclass(frozen=True)
class TaskData:
    """One task's splits: uint8 images and int64 labels 0..num_classes-1, plus a fingerprint of them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    fingerprint: dict
    # The CIFAR-10 class (0-9) of each training and validation image, whatever the task's labels are:
    # what RunConfig.fine_labels trains on.
    y_train_fine: np.ndarray | None = None
    y_val_fine: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def task_label_map(task: str) -> np.ndarray:
    """For each CIFAR-10 label 0-9, the task's label, or -1 where the task leaves that class out."""
    if task == "binary":
        return np.array([int(name in VEHICLE_CLASSES) for name in CLASS_NAMES], dtype=np.int64)
    if task.startswith(ONE_VS_REST):
        positive = task_class_names(task)[1]
        return np.array([int(name == positive) for name in CLASS_NAMES], dtype=np.int64)
    label_map = np.full(len(CLASS_NAMES), -1, dtype=np.int64)
    for task_label, name in enumerate(task_class_names(task)):  # "cifar10" keeps all ten, "pair:a,b" two
        label_map[CLASS_NAMES.index(name)] = task_label
    return label_map


def stratified_split(labels: np.ndarray, n_first: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split positions 0..len(labels)-1 into n_first and the rest, each class keeping its share in both.

    Returns two sorted index arrays. Every class gets floor(its share of n_first); the few images
    that rounding down leaves over go to the classes with the largest remainders.
    """
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (n_first / len(labels))
    take = np.floor(quota).astype(np.int64)
    take[np.argsort(take - quota, kind="stable")[: n_first - take.sum()]] += 1
    chosen = np.zeros(len(labels), dtype=bool)
    for cls, n in zip(classes, take, strict=True):
        chosen[rng.choice(np.flatnonzero(labels == cls), size=n, replace=False)] = True
    return np.flatnonzero(chosen), np.flatnonzero(~chosen)


def prepare_task(data: Cifar10, config: RunConfig) -> TaskData:
    """Relabel for config.task, draw the stratified subset, carve the validation split; same seed, same splits."""
    label_map = task_label_map(config.task)
    rng = np.random.default_rng(config.seed)
    task_labels = label_map[data.y_train]
    pool = np.flatnonzero(task_labels >= 0)  # training images of the task's classes
    if config.subset is not None and config.subset < len(pool):
        chosen, _ = stratified_split(task_labels[pool], config.subset, rng)
        pool = pool[chosen]
    n_val = max(1, round(len(pool) * config.val_fraction))
    val, train = stratified_split(task_labels[pool], n_val, rng)
    train_idx, val_idx = pool[train], pool[val]
    # Fancy indexing copies; each training image is copied once, into train or val. The test split is
    # never subsetted, and a task that keeps every class shares the loaded test arrays without a copy.
    test_labels = label_map[data.y_test]
    keep = test_labels >= 0
    x_test, y_test = (data.x_test, test_labels) if keep.all() else (data.x_test[keep], test_labels[keep])
    splits = (data.x_train[train_idx], task_labels[train_idx], data.x_train[val_idx], task_labels[val_idx], x_test, y_test)
    class_names = task_class_names(config.task)
    return TaskData(
        *splits,
        class_names,
        fingerprint(*splits, source=data.source, num_classes=len(class_names)),
        y_train_fine=data.y_train[train_idx],
        y_val_fine=data.y_train[val_idx],
    )


def fingerprint(x_train, y_train, x_val, y_val, x_test, y_test, *, source: str = "", num_classes: int | None = None) -> dict:
    """Counts per split, training images per class, and a short sha256 of every array: stored with each run.

    Hashing reads each array's memory in place (no copy); shapes and dtypes go into the hash too, so
    the same bytes arranged differently do not collide.
    """
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_val, y_val, x_test, y_test):
        array = np.ascontiguousarray(array)  # a no-op for the arrays prepare_task builds
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return {
        "source": source,
        "n_train": len(y_train),
        "n_val": len(y_val),
        "n_test": len(y_test),
        "train_class_counts": np.bincount(np.asarray(y_train, dtype=np.int64), minlength=num_classes or 0).tolist(),
        "sha256": digest.hexdigest()[:16],
    }
