"""What happens while `model.fit` runs: plain-dict progress events, stopping on request, keeping the best epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras

# Where events go: the command line prints them, a job writes them to the store, a test keeps a list.
EventHandler = Callable[[dict[str, Any]], None]


class EventCallback(keras.callbacks.Callback):
    """Turns Keras' training hooks into plain-dict events, and stops when asked to.

    `batch_end` events are throttled to one every `batch_interval` seconds (plus the
    last batch of each epoch) so a fast model does not flood the store with writes.
    """

    def __init__(self, on_event: EventHandler, should_stop: Callable[[], bool] | None, steps_per_epoch: int, batch_interval: float = 0.5):
        super().__init__()
        self.on_event = on_event
        self.should_stop = should_stop or (lambda: False)
        self.steps_per_epoch = steps_per_epoch
        self.batch_interval = batch_interval
        self.cancelled = False
        self._epoch = 0
        self._epoch_started = 0.0
        self._last_batch_event = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1  # events count epochs from 1, as people do
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # Running several steps per call (steps_per_execution), Keras numbers the epoch's last, shorter
        # call as if it were full: 11 steps in calls of 8 end at "batch" 15. Count no further than the epoch.
        step = min(batch + 1, self.steps_per_epoch)
        now = time.perf_counter()
        if now - self._last_batch_event >= self.batch_interval or step == self.steps_per_epoch:
            self._last_batch_event = now
            logs = logs or {}
            self.on_event(
                {
                    "kind": "batch_end",
                    "epoch": self._epoch,
                    "step": step,
                    "steps": self.steps_per_epoch,
                    "loss": _float(logs.get("loss")),
                    "accuracy": _float(logs.get("accuracy")),
                    "epoch_seconds": now - self._epoch_started,
                }
            )
        if self.should_stop():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        event = {"kind": "epoch_end", "epoch": epoch + 1, "seconds": time.perf_counter() - self._epoch_started}
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            event[name] = _float(logs.get(name))
        event["learning_rate"] = _current_learning_rate(self.model.optimizer)
        self.on_event(event)


def keep_best_epoch(epochs: int) -> keras.callbacks.EarlyStopping:
    """At the end of training, go back to the weights of the epoch with the best validation accuracy.

    A small network's validation accuracy wobbles from epoch to epoch once it starts to
    overfit; keeping the best epoch (chosen on the validation split, never on the test
    split) makes a run's result depend less on where training happened to stop. Keras'
    EarlyStopping does exactly this when its patience outlasts the run: it never stops
    training, and restores the first epoch with the highest `val_accuracy` when training ends.
    Its `best_epoch` counts from 0.
    """
    return keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=epochs + 1, restore_best_weights=True)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _current_learning_rate(optimizer) -> float:
    # In Keras 3 `optimizer.learning_rate` already evaluates a schedule at the current step.
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
