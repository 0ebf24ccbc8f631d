"""The real CIFAR-10 copy beside the checkout, read through the project's own loaders.

Every other test makes small synthetic arrays. This one checks the path a user's data takes:
the official "python version" folder, unpickled by lab.data.cifar10.load_cifar10 (what training
workers use) and by lab.data.cache.load_cifar10_mapped (what the app's server uses), then split by
lab.data.tasks.prepare_task, whose fingerprint every stored run keeps.

The copy is the one ../shared/README.md describes: all 50,000 training images, and a test batch of
5,000 images (every other official test image, 500 per class), its pixels once through JPEG.
.ci/run points CIFAR10_REAL_DIR at it when it lies beside the clone; without it the test skips,
except under CI=true, where a copy beside the clone that nobody pointed at is a failure.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from lab.config import CLASS_NAMES, RunConfig
from lab.data.cache import load_cifar10_mapped
from lab.data.cifar10 import BATCH_FILES, load_cifar10
from lab.data.tasks import prepare_task

ROOT = Path(__file__).resolve().parent.parent
BESIDE_THE_CLONE = ROOT.parent / "shared" / "data" / "cifar-10-batches-py"
# The default run's split of the shared copy (seed 0, a tenth for validation): stored with every run
# trained on it, so it must not change unless the data or the way the lab splits it changes.
SHARED_COPY_FINGERPRINT = "51d4e64d932d2a97"


def _real_copy() -> Path:
    configured = os.environ.get("CIFAR10_REAL_DIR")
    if configured:
        return Path(configured)
    if os.environ.get("CI") == "true" and BESIDE_THE_CLONE.is_dir():
        pytest.fail(f"CI=true and {BESIDE_THE_CLONE} exists, but CIFAR10_REAL_DIR is not set: .ci/run should export it")
    if BESIDE_THE_CLONE.is_dir():
        return BESIDE_THE_CLONE
    pytest.skip(f"no real CIFAR-10 copy: set CIFAR10_REAL_DIR or put one at {BESIDE_THE_CLONE}")


def _check_sums(folder: Path) -> None:
    """The files are the ones the copy's SHA256SUMS lists, so the figures below are about that copy."""
    sums = folder / "SHA256SUMS"
    assert sums.is_file(), f"{folder} has no SHA256SUMS: not the shared copy this test describes"
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    assert set(BATCH_FILES) <= set(listed)
    for name in BATCH_FILES:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == listed[name], f"{name} differs from SHA256SUMS"


def _check_dataset(data) -> None:
    assert data.x_train.shape == (50000, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (5000, 32, 32, 3) and data.x_test.dtype == np.uint8  # not the official 10,000
    assert data.y_train.shape == (50000,) and data.y_test.shape == (5000,)
    assert np.bincount(data.y_train, minlength=10).tolist() == [5000] * len(CLASS_NAMES)
    assert np.bincount(data.y_test, minlength=10).tolist() == [500] * len(CLASS_NAMES)
    # Labels in the official order: the first training images are a frog, two trucks, a deer, ...
    assert data.y_train[:5].tolist() == [6, 9, 9, 4, 1] and data.y_test[:5].tolist() == [3, 8, 0, 6, 1]


def _check_fingerprint(data) -> None:
    task = prepare_task(data, RunConfig())
    fingerprint = task.fingerprint
    assert (fingerprint["n_train"], fingerprint["n_val"], fingerprint["n_test"]) == (45000, 5000, 5000)
    assert fingerprint["train_class_counts"] == [4500] * len(CLASS_NAMES)
    assert fingerprint["sha256"] == SHARED_COPY_FINGERPRINT


def test_the_real_copy_loads_with_its_shapes_counts_and_fingerprint():
    folder = _real_copy()
    _check_sums(folder)
    data = load_cifar10(folder)
    assert data.source == f"folder {folder}"
    _check_dataset(data)
    # Channel-major rows become height x width x RGB: the first image (a frog) is more red than blue.
    red, green, blue = data.x_train[0].reshape(-1, 3).mean(axis=0)
    assert red > green > blue
    _check_fingerprint(data)


def test_the_app_servers_mapped_copy_holds_the_same_images(tmp_path):
    folder = _real_copy()
    first = load_cifar10_mapped(folder, root=tmp_path)  # decodes and saves the .npy copy
    again = load_cifar10_mapped(folder, root=tmp_path)  # opens that copy memory-mapped
    assert isinstance(again.x_train, np.memmap)
    for data in (first, again):
        _check_dataset(data)
    _check_fingerprint(again)
