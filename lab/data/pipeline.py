"""Feeding CIFAR-10 to Keras: a lean tf.data pipeline, and the augmentation training uses.

Images stay uint8 (0-255) until they reach the model, which normalises them itself:
the pipeline shuffles and batches image *indices* and copies each batch's pixels out
of the NumPy array, so no float32 copy of the data set is ever made.
"""

from __future__ import annotations

import math

import numpy as np

from lab.config import IMAGE_SHAPE

# Augmentation moves an image by up to this many pixels in each direction. The CIFAR-10 speed
# record shifts by 2: larger shifts push too much of a 32-pixel object out of view in short runs.
SHIFT_PIXELS = 2


def _mirror(positions, size: int):
    """Fold positions that fall outside 0..size-1 back inside, as a mirror at each edge would (-1 -> 1, 32 -> 30)."""
    import tensorflow as tf

    positions = tf.abs(positions)
    return tf.where(positions >= size, 2 * (size - 1) - positions, positions)


def augment_images(images, seed):
    """Randomly mirror and shift a uint8 batch (N, 32, 32, 3); training and Explore's preview both call this.

    Each image gets its own coin flip (mirror left-right or not) and its own shift of up to SHIFT_PIXELS
    (2) pixels each way. Both are just a choice of which source pixel each output pixel reads, so the batch is
    built by one tf.gather, in uint8; pixels shifted in from outside the image are read from its
    mirror image, as reflect-padding by 2 and cropping 32x32 would give, without padding anything.
    `seed` is an int or a shape-(2,) integer tensor: stateless random ops give the same draws for the
    same seed, whichever thread runs them. Returns a uint8 tf.Tensor of the input's shape.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images, dtype=tf.uint8)
    seed = tf.constant([seed, 0], tf.int64) if isinstance(seed, int) else tf.cast(seed, tf.int64)
    flip_seed, shift_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    n, (height, width, channels) = tf.shape(images)[0], IMAGE_SHAPE
    flips = tf.random.stateless_uniform([n, 1], seed=flip_seed, maxval=2, dtype=tf.int32) == 1
    shifts = tf.random.stateless_uniform([n, 2], seed=shift_seed, minval=-SHIFT_PIXELS, maxval=SHIFT_PIXELS + 1, dtype=tf.int32)
    rows = _mirror(shifts[:, :1] + tf.range(height), height)  # (N, 32): the source row of each output row
    columns = tf.where(flips, tf.range(width - 1, -1, -1), tf.range(width))  # a mirrored image reads right to left
    columns = _mirror(shifts[:, 1:] + columns, width)
    # Number every source pixel 0..N*32*32-1 and read them all at once.
    pixels = (tf.range(n)[:, None, None] * height + rows[:, :, None]) * width + columns[:, None, :]
    return tf.gather(tf.reshape(images, [-1, channels]), pixels)


def augmentation_preview(image: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n different random draws (n, 32, 32, 3) uint8 of the training augmentation of one uint8 image.

    There are only 2 x 5 x 5 = 50 possible draws, so a few of n can repeat; drawing 4n and showing
    distinct ones first makes a better picture (a blank image, which looks the same every way, repeats).
    """
    draws = augment_images(np.repeat(np.asarray(image, dtype=np.uint8)[np.newaxis], 4 * n, axis=0), seed).numpy()
    _, first_seen = np.unique(draws.reshape(len(draws), -1), axis=0, return_index=True)
    order = np.concatenate([np.sort(first_seen), np.setdiff1d(np.arange(len(draws)), first_seen)])
    return draws[order[:n]]


def full_batches_only(n_images: int, batch_size: int) -> bool:
    """Whether training leaves out each epoch's last, smaller batch (`make_dataset(drop_remainder=...)`).

    Yes, unless there is not even one full batch. The left-out images are not lost: every epoch is
    shuffled afresh, so they land in full batches next time. A batch of a new size would make XLA
    compile each fused batch norm and GELU kernel again (lab/models/fused_layers.py: 2.3 s once per run on
    a 2-core CPU, for a batch that then takes 0.3 s), and a small batch gives batch norm noisy statistics.
    """
    return n_images >= batch_size


def training_steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Training steps in one epoch over `n_images`: what the schedules, the progress bar and the estimate count on."""
    return n_images // batch_size if full_batches_only(n_images, batch_size) else math.ceil(n_images / batch_size)


def steady(dataset):
    """`dataset` without tf.data's autotuning thread: a fixed parallelism (one thread per core) instead.

    Autotuning runs a background thread per iterator that wakes after 10 ms, 20 ms, 40 ms, ...
    (doubling each time) to re-tune the pipeline. When Keras drops an iterator (at the end of
    every epoch, validation pass and prediction), the next step often waited for that thread's current
    sleep to run out, seconds at a time (docs/DECISIONS.md, "tf.data autotuning: off").
    On this project's small pipelines (copy a batch out of an array, maybe augment it) the tuning
    has nothing to find: with it off, `num_parallel_calls=AUTOTUNE` means one thread per CPU core
    (at most 16), and `prefetch(AUTOTUNE)` still sizes its buffer by itself.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def make_dataset(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
):
    """A tf.data.Dataset of (x, y) batches (just x batches when y is None): shuffle -> batch -> augment -> prefetch.

    It shuffles and batches row *indices*, then copies each batch's rows out of the NumPy array.
    Handing the arrays to TensorFlow instead (from_tensor_slices) would copy the whole set into
    TensorFlow's memory first, taking about twice the array's size, and a
    shuffle buffer of images would hold another copy; 45,000 indices take 360 kB. Images stay uint8:
    the model converts and normalises them itself. `x` may also be a frozen backbone's cached
    features (lab/train/feature_cache.py): rows of any shape and dtype travel the same way, unchanged.
    Augmentation needs uint8 images (N, 32, 32, 3) and labels.
    """
    import tensorflow as tf

    rows = np.asarray(x)  # no copy: uint8 images stay uint8, float16 features stay float16
    labels = None if y is None else np.asarray(y, dtype=np.int32)
    row_shape, row_dtype = rows.shape[1:], tf.as_dtype(rows.dtype)

    def gather(indices):
        if labels is None:
            batch = tf.numpy_function(lambda i: rows[i], [indices], row_dtype, stateful=False)
            return tf.ensure_shape(batch, (None, *row_shape))
        batch, batch_labels = tf.numpy_function(lambda i: (rows[i], labels[i]), [indices], (row_dtype, tf.int32), stateful=False)
        return tf.ensure_shape(batch, (None, *row_shape)), tf.ensure_shape(batch_labels, (None,))

    indices = tf.data.Dataset.range(len(rows))
    if shuffle:
        indices = indices.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size, drop_remainder=drop_remainder).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        if labels is None or row_shape != IMAGE_SHAPE or rows.dtype != np.uint8:
            raise ValueError(
                f"augmentation needs uint8 images of shape {IMAGE_SHAPE} with labels; got {rows.dtype} rows of shape {row_shape}"
            )
        # One fresh (seeded) random pair per batch, new each epoch; augmentation then runs in parallel
        # threads, and because each batch carries its own seed the result does not depend on timing.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        batches = tf.data.Dataset.zip(batches, seeds).map(
            lambda batch, pair: (augment_images(batch[0], pair), batch[1]), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
        )
    return steady(batches.prefetch(tf.data.AUTOTUNE))


def in_order(x: np.ndarray, batch_size: int = 256):
    """Batches of `x` alone, in order: what `model.predict` is given instead of the bare array.

    Keras would build its own tf.data pipeline around a NumPy array, autotuned, and so pay the
    wait `steady` describes at the end of every prediction.
    """
    return make_dataset(x, None, batch_size, shuffle=False)
