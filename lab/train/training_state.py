"""A run's training state between two epochs: saved after each one, and put back to continue an interrupted run.

The config rebuilds the same model, optimiser, callbacks and data split; what it cannot rebuild
is what training has changed since, and that is what a checkpoint (lab/train/checkpoints.py) holds:
- the trainer's weights, batch norm's moving statistics included;
- the optimiser's variables: its step count (so a learning-rate schedule carries on from its
  place), momenta or Adam's moments, the loss scale under mixed float16, and a learning rate
  that reduce-on-plateau has lowered;
- the callbacks' own state: keep-best's best value, epoch and weights (Keras' EarlyStopping),
  reduce-on-plateau's counters, weight averaging's step and averages;
- the history and the training time so far.

Not carried over: where the shuffling and augmentation's random sequence was. A resumed run draws
its remaining epochs from the seed's sequence afresh, so it ends close to, but not bit for bit
at, the run it would have been without the interruption.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from lab.train.callbacks import EventHandler
from lab.train.checkpoints import Checkpoint, CheckpointError, write_checkpoint
from lab.train.schedules import WeightAveraging

# The callbacks whose state lasts from one epoch to the next: their counters (plain numbers) and their arrays.
STATEFUL_CALLBACKS = {
    "EarlyStopping": (keras.callbacks.EarlyStopping, ("best", "best_epoch", "wait", "stopped_epoch"), "best_weights"),
    "ReduceLROnPlateau": (keras.callbacks.ReduceLROnPlateau, ("best", "wait", "cooldown_counter"), None),
    "WeightAveraging": (WeightAveraging, ("step",), "averages"),
}


class EpochCheckpoints(keras.callbacks.Callback):
    """After every finished epoch, saves the whole training state; in a resumed `fit`, puts the callbacks' state back.

    Place it after the callbacks whose state it saves (their epoch-end updates must be in the
    checkpoint, and their `on_train_begin`, which resets them, must come before the restoring) and
    before the EventCallback: an `epoch_end` event then means that epoch's checkpoint is on disk.
    A save that fails (a full disk) is reported as a `checkpoint` event with an `error` and training
    goes on: the previous checkpoint stays, whole.
    """

    def __init__(
        self,
        folder: Path,
        config: dict,
        callbacks: list[keras.callbacks.Callback],
        on_event: EventHandler,
        *,
        data_sha256: str,
        resume_from: Checkpoint | None = None,
    ):
        super().__init__()
        self.folder, self.config = folder, config  # the run's checkpoint folder (lab/train/checkpoints.py)
        self.stateful = [callback for callback in callbacks if _kind(callback) is not None]
        self.on_event = on_event
        self.data_sha256 = data_sha256
        self.resume_from = resume_from
        self.history = {name: list(values) for name, values in (resume_from.history if resume_from else {}).items()}
        self.seconds_before = resume_from.train_seconds if resume_from else 0.0
        self._started = time.perf_counter()

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        if self.resume_from is not None:
            restore_callbacks(self.stateful, self.resume_from)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():  # what Keras' History records, this epoch
            self.history.setdefault(name, []).append(float(value))
        started = time.perf_counter()
        checkpoint = capture(
            self.model,
            self.stateful,
            epoch=epoch + 1,
            config=self.config,
            history=self.history,
            train_seconds=self.seconds_before + started - self._started,
            data_sha256=self.data_sha256,
        )
        try:
            write_checkpoint(self.folder, checkpoint)
        except OSError as error:
            self.on_event({"kind": "checkpoint", "epoch": epoch + 1, "error": f"{error.strerror or error}"})
            return
        self.on_event({"kind": "checkpoint", "epoch": epoch + 1, "seconds": time.perf_counter() - started})


def capture(
    trainee: keras.Model,
    callbacks: list[keras.callbacks.Callback],
    *,
    epoch: int,
    config: dict,
    history: dict[str, list[float]],
    train_seconds: float,
    data_sha256: str = "",
) -> Checkpoint:
    """The training state at the end of `epoch` (counted from 1), as a Checkpoint ready to write."""
    arrays = {
        "weights": trainee.get_weights(),
        "optimizer": [keras.ops.convert_to_numpy(variable) for variable in trainee.optimizer.variables],
    }
    saved_callbacks = []
    for index, callback in enumerate(callback for callback in callbacks if _kind(callback) is not None):
        kind = _kind(callback)
        _, fields, array_field = STATEFUL_CALLBACKS[kind]
        saved_callbacks.append({"type": kind, "fields": {name: _plain(getattr(callback, name)) for name in fields}})
        values = getattr(callback, array_field) if array_field else None
        if values is not None:
            arrays[f"callback-{index}-{array_field}"] = [keras.ops.convert_to_numpy(value) for value in values]
    state = {"keras": keras.__version__, "precision": keras.mixed_precision.dtype_policy().name, "callbacks": saved_callbacks}
    return Checkpoint(epoch, config, {name: list(values) for name, values in history.items()}, train_seconds, data_sha256, state, arrays)


def restore_model(trainee: keras.Model, checkpoint: Checkpoint) -> None:
    """Put a compiled trainer's weights and optimiser variables back as they were at the checkpoint.

    Build the trainer exactly as the run first did (same config, same precision policy), compile it,
    then call this before `fit(..., initial_epoch=checkpoint.epoch)`.
    """
    saved_keras, policy = checkpoint.state.get("keras"), keras.mixed_precision.dtype_policy().name
    if saved_keras != keras.__version__:
        # Weights are put back in the order the layers list them, which another Keras version may change.
        raise CheckpointError(
            f"the checkpoint was saved with Keras {saved_keras} and this is Keras {keras.__version__}: train the run again."
        )
    if checkpoint.state.get("precision") != policy:
        raise CheckpointError(
            f"the run trained in {checkpoint.state.get('precision')} and this machine would train it in {policy}: "
            "resume it on the machine it started on, or train it again."
        )
    if not trainee.optimizer.built:
        trainee.optimizer.build(trainee.trainable_variables)
    _assign(trainee.weights, checkpoint.arrays["weights"], "weights")
    _assign(trainee.optimizer.variables, checkpoint.arrays["optimizer"], "optimiser variables")


def restore_callbacks(callbacks: list[keras.callbacks.Callback], checkpoint: Checkpoint) -> None:
    """Put the saved state into the same callbacks, newly made and already through their `on_train_begin`."""
    stateful = [callback for callback in callbacks if _kind(callback) is not None]
    saved = checkpoint.state.get("callbacks", [])
    if [_kind(callback) for callback in stateful] != [entry["type"] for entry in saved]:
        raise CheckpointError("the checkpoint's callbacks are not this run's: train it again.")
    for index, (callback, entry) in enumerate(zip(stateful, saved, strict=True)):
        _, _, array_field = STATEFUL_CALLBACKS[entry["type"]]
        for name, value in entry["fields"].items():
            setattr(callback, name, value)
        values = checkpoint.arrays.get(f"callback-{index}-{array_field}")
        if values is None:
            continue
        if isinstance(callback, WeightAveraging):
            # Its compiled update reads these very variables: assign into them, never replace them.
            _assign(callback.averages, values, "weight averages")
        else:
            setattr(callback, array_field, list(values))


def _kind(callback: keras.callbacks.Callback) -> str | None:
    return next((kind for kind, (cls, _, _) in STATEFUL_CALLBACKS.items() if isinstance(callback, cls)), None)


def _plain(value):
    """A callback counter as JSON can hold it (NumPy numbers become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def _assign(variables, values: list[np.ndarray], what: str) -> None:
    if len(variables) != len(values) or any(tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values, strict=False)):
        raise CheckpointError(f"the checkpoint's {what} do not fit this run's model: train it again.")
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
