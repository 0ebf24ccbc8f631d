"""How long will a run take? An estimate before it starts, from past runs or from one timed step.

Two sources, best first:

1. past runs in the store that trained the same network the same way (backbone,
   head, input size, freeze depth, batch size, augmentation) on the same kind of
   device: their measured seconds per training image per epoch, times this run's
   images and epochs. This includes everything `model.fit` does (validation too);
2. a measurement: build the model with random weights, compile it as training
   does, time a few training steps on one random batch, and multiply by this run's
   steps (plus validation, which costs about a third of a training step per batch).
   A frozen backbone whose outputs training caches (lab/train/feature_cache.py) runs once
   over the images and never again, so there the forward pass is timed instead, and
   the head's epochs on cached features (milliseconds) are left out.

Neither counts the 5-15 s a job spends starting: importing TensorFlow, loading the
data and building the model; `STARTUP_SECONDS` is shown beside the estimate.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lab.config import CLASS_NAMES, DEFAULT_FAST_CNN_WIDTH, RunConfig, groups_every_class
from lab.data.pipeline import training_steps_per_epoch

STARTUP_SECONDS = 10  # a worker's start: TensorFlow import, data loading, model build and tracing (2-core CPU)
IMAGES_PER_CLASS = 5000  # CIFAR-10 training images per class
VALIDATION_COST = 1 / 3  # a validation batch (forward pass only) against a training batch (forward + backward)
FEATURE_BATCH = 256  # images per batch when a frozen backbone's features are computed (lab/train/feature_cache.py)
# What must match for a past run's speed to predict this one's, besides the device, the
# network's width and the number format (compared as the runs really used them: _speed_key).
SPEED_FIELDS = ("backbone", "head", "input_size", "freeze_depth", "batch_size", "augment", "tta")


@dataclass(frozen=True)
class Estimate:
    seconds: float  # training and validation, from the first step to the last
    source: str  # how it was obtained, in a sentence


def split_sizes(config: RunConfig) -> tuple[int, int]:
    """Training and validation images a run will see, assuming the full CIFAR-10 training set."""
    classes_in_task = len(CLASS_NAMES) if groups_every_class(config.task) else len(config.class_names)
    pool = IMAGES_PER_CLASS * classes_in_task
    if config.subset is not None:
        pool = min(pool, config.subset)
    n_val = max(1, round(pool * config.val_fraction))
    return pool - n_val, n_val


def _speed_key(config: dict[str, Any], precision: str | None) -> tuple:
    """What decides a run's time per image: SPEED_FIELDS, the width it trained at, its number format.

    fast-cnn's width None means the default (0.5), so runs from before width existed match too.
    `precision` is the number format the run really used ("auto" resolved on its machine): an "auto"
    run is bfloat16 on one CPU and float32 on another, ~1.6x apart.
    """
    width = (config.get("width") or DEFAULT_FAST_CNN_WIDTH) if config.get("backbone") == "fast-cnn" else None
    return (*(config.get(name) for name in SPEED_FIELDS), width, precision)


def from_past_runs(runs: Sequence[Any], config: RunConfig, device: str | None = None, precision: str | None = None) -> Estimate | None:
    """Scale the pace of completed runs of the same network (the newest five) to this config.

    `runs`: completed runs as the store returns them (lab.store.Run; `Store.list_runs(status=COMPLETED)`,
    newest first), read for their config, metrics, fingerprint, environment and training time.

    `device` and `precision` (the number format this run will use, lab/devices.precision_for) are
    compared with what each past run recorded; None compares the configured precision instead.
    """
    wanted = _speed_key(config.to_dict(), precision or config.precision)
    paces = []
    for run in runs:
        past, metrics, environment = run.config.to_dict(), run.metrics, run.environment
        past_precision = environment.get("precision") if precision else past.get("precision")
        # A run stopped early may have spent its last seconds in an epoch it did not finish: its pace is off.
        if metrics.get("stopped_early") or _speed_key(past, past_precision) != wanted:
            continue
        if device is not None and environment.get("device") != device:
            continue
        epochs_done, n_train = metrics.get("epochs_completed"), run.fingerprint.get("n_train")
        if run.train_seconds and epochs_done and n_train:
            paces.append(run.train_seconds / (epochs_done * n_train))
        if len(paces) == 5:
            break
    if not paces:
        return None
    n_train, _ = split_sizes(config)
    count = f"{len(paces)} past run{'s' if len(paces) > 1 else ''}"
    return Estimate(statistics.median(paces) * n_train * config.epochs, f"from {count} of this network on this device")


def uses_feature_cache(config: RunConfig) -> bool:
    """Whether training computes the frozen backbone's outputs once and trains only the head on them."""
    from lab.train.feature_cache import cache_decision

    return cache_decision(config)[0]


def from_step_time(step_seconds: float, config: RunConfig) -> Estimate:
    """The run's time at a measured time per batch: a training step, or a forward pass when features are cached."""
    n_train, n_val = split_sizes(config)
    if uses_feature_cache(config):
        # One forward pass over the training and validation images, then only the head trains.
        seconds = step_seconds * math.ceil((n_train + n_val) / FEATURE_BATCH)
        source = f"from one forward pass timed on this server ({step_seconds * 1000:.0f} ms per batch of {FEATURE_BATCH})"
        return Estimate(seconds, source + ": the frozen backbone runs once, then only the head trains")
    per_batch = f"{step_seconds * 1000:.0f} ms per batch of {config.batch_size}"
    # Training counts full batches only (lab/data/pipeline.py); validation keeps its last, smaller batch.
    per_epoch = training_steps_per_epoch(n_train, config.batch_size) + VALIDATION_COST * math.ceil(n_val / config.batch_size)
    return Estimate(step_seconds * per_epoch * config.epochs, f"from one training step timed on this server ({per_batch})")


def measure_step_seconds(config: RunConfig, steps: int = 3) -> float:
    """Median seconds of one batch of `config`'s network on random images (random weights).

    A training step, or just the forward pass when the run will use cached features.
    """
    import dataclasses

    from lab.models.registry import build_model
    from lab.system import process_memory
    from lab.train import devices
    from lab.train.compile import compile_model

    num_classes = len(config.class_names)
    with devices.precision_policy(devices.precision_for(config)):  # the run's number format
        model = build_model(dataclasses.replace(config, weights="none"), num_classes)  # weights do not change the speed
        compile_model(model, config, num_classes, steps_per_epoch=100)  # fine labels' extra 10-unit output: too small to time
    forward_only = uses_feature_cache(config)
    batch_size = FEATURE_BATCH if forward_only else config.batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(batch_size, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, num_classes, size=(batch_size,))

    def one_batch():
        return model.predict_on_batch(images) if forward_only else model.train_on_batch(images, labels)

    # The Streamlit server times a step for each new setting: its traced graph must not stay behind.
    with process_memory.releasing_traced_graphs():
        one_batch()  # the first call traces the graph: not timed
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            one_batch()
            times.append(time.perf_counter() - started)
    return statistics.median(times)
