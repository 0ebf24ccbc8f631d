"""The learning-rate finder: try many learning rates in one short run and suggest one.

Leslie Smith's range test (popularised by fastai): start with a tiny learning rate
and multiply it by the same factor after every batch, up to a huge one, recording
the loss. While the rate is too small the loss barely moves; then it falls faster
and faster; once the rate is too large the steps overshoot and the loss shoots up.
A good learning rate sits where the loss falls fastest, a little before the bottom
of the curve. The sweep is short (100 batches of a 2,000-image subset by default),
so it costs seconds to a minute, not a training run.

Each batch's loss is noisy, so the curve is smoothed before the slope is read off
it. During the sweep an exponential moving average watches for the explosion; the
curve returned is smoothed forwards and then backwards, because a moving average
alone lags behind the loss and would point at too large a learning rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from lab.config import RunConfig
from lab.data.cifar10 import Cifar10
from lab.data.pipeline import make_dataset
from lab.data.tasks import TaskData, prepare_task
from lab.models.registry import build_model
from lab.system import process_memory
from lab.train import devices
from lab.train.compile import compile_model

SMOOTHING = 0.9  # weight of the past in the moving average of the loss (0 = no smoothing)
DIVERGENCE_FACTOR = 4.0  # stop once the smoothed loss is this many times its lowest value so far
# A sweep whose smoothed loss never falls by this share of its starting value has no descent worth reading.
MIN_DROP = 0.02
SKIP_START = 0.1  # share of the first batches ignored when reading the slope: the average is still settling there


class LearningRateSweep(keras.callbacks.Callback):
    """Sets the learning rate before every batch and records the loss after it; stops when the loss explodes."""

    def __init__(self, learning_rates: np.ndarray, on_event: Callable[[dict], None] | None = None):
        super().__init__()
        self.learning_rates = learning_rates
        self.on_event = on_event or (lambda event: None)
        self.raw_losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._average = 0.0
        self._previous_mean = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        # Keras 3 keeps the learning rate in a variable: assign to it, the compiled step reads it.
        self.model.optimizer.learning_rate.assign(float(self.learning_rates[batch]))

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the mean loss since the epoch began, not this batch's loss. With
        # equal-sized batches, this batch's loss is the sum of k losses minus the sum of k - 1.
        mean = float((logs or {})["loss"])
        loss = (batch + 1) * mean - batch * self._previous_mean
        self._previous_mean = mean
        self.raw_losses.append(loss)
        # Exponential moving average, divided by (1 - SMOOTHING^k) so the first values are not pulled towards 0.
        self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
        smoothed = self._average / (1 - SMOOTHING ** (batch + 1))
        self.smoothed.append(smoothed)
        self.on_event(
            {
                "kind": "lr_step",
                "step": batch + 1,
                "steps": len(self.learning_rates),
                "learning_rate": float(self.learning_rates[batch]),
                "loss": smoothed,
            }
        )
        if not math.isfinite(smoothed) or smoothed > DIVERGENCE_FACTOR * min(self.smoothed):
            self.stopped_early = True
            self.model.stop_training = True


def lr_find(
    config: RunConfig,
    data: Cifar10 | TaskData,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    steps: int = 100,
    subset: int | None = 2000,
    on_event: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Sweep the learning rate from `min_lr` to `max_lr` over `steps` batches and suggest one.

    `data` is the whole data set (a stratified `subset` of its training images is
    drawn, as config.subset would) or an already prepared task (used as it is).
    The model, optimiser, loss, batch size and augmentation are the config's.

    Returns learning_rates and losses (smoothed) as lists of the same length (shorter
    than `steps` when the loss exploded and the sweep stopped), raw_losses,
    suggestion (a learning rate inside [min_lr, max_lr]), how it was chosen, and stopped_early.
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"min_lr must be above 0 and below max_lr; got min_lr={min_lr}, max_lr={max_lr}.")
    if steps < 5:
        raise ValueError(f"steps must be at least 5 batches to draw a curve; got {steps}.")
    task = data if isinstance(data, TaskData) else prepare_task(data, dataclasses.replace(config, subset=subset))
    if len(task.x_train) < config.batch_size:
        raise ValueError(
            f"the task has {len(task.x_train)} training images, fewer than one batch of {config.batch_size}; lower batch_size."
        )

    model = _compiled_model(config, task.num_classes, min_lr, steps)
    # Every batch must have the same size (see LearningRateSweep), hence drop_remainder; repeat() lets the
    # sweep run for more batches than one pass over a small subset holds.
    batches = make_dataset(
        task.x_train, task.y_train, config.batch_size, shuffle=True, augment=config.augment, seed=config.seed, drop_remainder=True
    ).repeat()
    # The rate grows by the same factor each batch, so it is evenly spaced on a log scale.
    learning_rates = np.geomspace(min_lr, max_lr, steps)
    sweep = LearningRateSweep(learning_rates, on_event)
    with process_memory.releasing_traced_graphs():  # the sweep runs in the Streamlit server: leave no graph behind
        model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[sweep])

    return {**_read_the_sweep(sweep, learning_rates, min_lr, max_lr), "n_train": int(len(task.x_train))}


def _read_the_sweep(sweep: LearningRateSweep, learning_rates: np.ndarray, min_lr: float, max_lr: float) -> dict[str, Any]:
    """The curve up to the first loss that is not a number, smoothed, and the learning rate it suggests."""
    raw_losses = np.asarray(sweep.raw_losses)
    # Past the first batch whose loss is not even a number there is nothing to read.
    finite = int(np.argmin(np.isfinite(raw_losses))) if not np.isfinite(raw_losses).all() else len(raw_losses)
    if finite == 0:
        raise ValueError("the loss was not a finite number even at the smallest learning rate; try a smaller min_lr.")
    tried, raw_losses = learning_rates[:finite], raw_losses[:finite]
    # Beyond the explosion threshold a loss only says "exploded"; capping it there keeps one
    # wild batch from bending the backward average over the whole curve.
    ceiling = DIVERGENCE_FACTOR * np.nanmin(sweep.smoothed[:finite])
    smoothed = smooth_both_ways(np.minimum(raw_losses, ceiling))
    suggestion, method = suggest_learning_rate(tried, smoothed)
    return {
        "learning_rates": [float(rate) for rate in tried],
        "losses": [float(loss) for loss in smoothed],
        "raw_losses": [float(loss) for loss in raw_losses],
        "suggestion": float(np.clip(suggestion, min_lr, max_lr)),
        "method": method,
        "stopped_early": sweep.stopped_early,
        "note": _reliability_note(smoothed),
        "min_lr": float(min_lr),
        "max_lr": float(max_lr),
    }


def _compiled_model(config: RunConfig, num_classes: int, first_lr: float, steps: int) -> keras.Model:
    """The config's model and optimiser, with a constant learning rate the sweep can overwrite."""
    keras.utils.set_random_seed(config.seed)
    # A schedule would fight the sweep over the rate, and weight averaging only matters for a real run.
    # The sweep trains the plain model on the task's own labels: fine labels hardly move the best rate.
    sweep_config = dataclasses.replace(config, lr_schedule="constant", learning_rate=first_lr, ema=False)
    with devices.precision_policy(devices.precision_for(config)):  # as the run will train
        model = build_model(config, num_classes)
        compile_model(model, sweep_config, num_classes, steps)
    return model


def _reliability_note(smoothed: np.ndarray) -> str:
    """A warning when the loss hardly fell during the sweep, so its steepest point is only noise; else ""."""
    drop = (smoothed[0] - smoothed.min()) / max(abs(smoothed[0]), 1e-12)
    if drop >= MIN_DROP:
        return ""
    return (
        f"The loss fell by only {drop:.1%} during the sweep, so the suggestion is little more than a guess: "
        "try more steps, a larger max_lr, or another optimizer."
    )


def moving_average(values: np.ndarray, smoothing: float = SMOOTHING) -> np.ndarray:
    """Exponential moving average, divided by (1 - smoothing^k) so the first values are not pulled towards 0."""
    averaged, running = np.empty(len(values)), 0.0
    for step, value in enumerate(values):
        running = smoothing * running + (1 - smoothing) * value
        averaged[step] = running / (1 - smoothing ** (step + 1))
    return averaged


def smooth_both_ways(losses: np.ndarray, smoothing: float = SMOOTHING) -> np.ndarray:
    """A moving average forwards, then another backwards over the result: smooth, and not shifted.

    A forward average always trails the loss by about smoothing / (1 - smoothing) batches
    (9 at 0.9), which at 100 batches over six decades moves the curve half a decade to the
    right; running a second average backwards pulls it back by the same amount.
    """
    return moving_average(moving_average(losses, smoothing)[::-1], smoothing)[::-1]


def suggest_learning_rate(learning_rates: np.ndarray, smoothed_losses: np.ndarray) -> tuple[float, str]:
    """(a learning rate, how it was chosen): where the smoothed loss falls fastest, before its lowest point.

    When the curve has no falling stretch to read (too few points, or the loss was
    lowest at the very start), the fallback is a tenth of the rate with the lowest loss.
    """
    learning_rates = np.asarray(learning_rates, dtype=np.float64)
    losses = np.asarray(smoothed_losses, dtype=np.float64)
    finite = np.isfinite(losses)
    learning_rates, losses = learning_rates[finite], losses[finite]
    if len(losses) == 0:
        raise ValueError("the loss was never a finite number; try a smaller min_lr.")
    lowest = int(np.argmin(losses))
    start = int(len(losses) * SKIP_START)
    if lowest - start >= 2:
        # The slope of the loss against log(learning rate): most negative = steepest descent.
        slopes = np.gradient(losses[: lowest + 1], np.log10(learning_rates[: lowest + 1]))
        steepest = start + int(np.argmin(slopes[start:]))
        return float(learning_rates[steepest]), "steepest descent of the smoothed loss"
    return float(learning_rates[lowest] / 10), "a tenth of the learning rate with the lowest loss"
