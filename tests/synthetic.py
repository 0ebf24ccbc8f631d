"""Small synthetic CIFAR-10 look-alikes that a model can actually learn in one or two epochs."""

import numpy as np

from lab.data.cifar10 import Cifar10, write_cifar10_folder


def learnable_cifar10(n_train: int = 400, n_test: int = 100, seed: int = 0) -> Cifar10:
    """Each class gets its own colour, plus noise: easy enough to learn on a CPU in seconds."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(10, 3))

    def split(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % 10
        noise = rng.integers(-40, 41, size=(count, 32, 32, 3))
        images = np.clip(palette[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        return images, labels.astype(np.int64)

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return Cifar10(x_train, y_train, x_test, y_test, source="synthetic")


def random_cifar10_folder(folder, n_train: int, n_test: int, seed: int = 0):
    """Random-pixel images, labels cycling 0-9, written in the official folder layout; returns the folder.

    For tests that need a data set to exist (pages, jobs) but not one a model can learn.
    """
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8)
    return write_cifar10_folder(folder, x_train, np.arange(n_train) % 10, x_test, np.arange(n_test) % 10)
