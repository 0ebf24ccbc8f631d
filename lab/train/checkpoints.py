"""A run's checkpoint on disk: where it lives, what it holds, writing it atomically and reading it back.

After every finished epoch a run given a checkpoint folder saves everything it needs to carry on
(lab/train/training_state.py decides what that is) in that folder. The folder is named after the
run (its id); lab/store/run_folder.py says where it lives (`LAB_HOME/checkpoints/<run_id>/`), and
on a Ray node it is a temporary folder that travels home as files (`checkpoint_files`):

    epoch-0003/checkpoint.json   the epoch, the config, the history so far, versions, callbacks' small state
    epoch-0003/weights.npz       one .npz per list of arrays: the weights, the optimiser's variables,
    epoch-0003/optimizer.npz     the best epoch's weights, the weight averages...

Each epoch's folder is written under a temporary name and renamed into place in one step, then
the older ones are removed: a reader finds the newest complete `epoch-NNNN`, never half of one,
even when the process is killed while saving. Only the newest epoch's checkpoint is kept, and the
store drops it when the run completes, is cancelled or is deleted.

Plain JSON and NumPy's own format (pickles refused), not a `.keras` file: the trainer model is
rebuilt by the very code that built it the first time (the fine-label loss and metric are
closures no saved file can hold), and only its numbers come from here.

Light on purpose (no Keras): the app asks `saved_epoch` on every render of a run's page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STATE_FILE = "checkpoint.json"
FORMAT_VERSION = 1
_EPOCH_FOLDER = re.compile(r"^epoch-(\d{4,})$")
_ARRAYS_NAME = re.compile(r"^[a-z0-9_.-]{1,60}$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: damaged, or saved by another version of the lab or Keras."""


@dataclass
class Checkpoint:
    """What a run saved after its `epoch`-th finished epoch (counted from 1).

    `state`: small JSON-able facts (versions, each callback's counters); `arrays`: named lists
    of arrays ("weights", "optimizer", "callback-1-best_weights", ...).
    """

    epoch: int
    config: dict
    history: dict[str, list[float]]
    train_seconds: float
    data_sha256: str = ""
    state: dict = field(default_factory=dict)
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)


def saved_epoch(folder: Path) -> int | None:
    """The last epoch a run saved a checkpoint for (counted from 1), or None when it saved none. Reads one folder listing."""
    epochs = _complete_epochs(Path(folder))
    return max(epochs) if epochs else None


def write_checkpoint(folder: Path, checkpoint: Checkpoint) -> Path:
    """Save `checkpoint` as this run's newest one, atomically; older epochs' folders are removed afterwards.

    Raises OSError when the disk is full or the folder read-only; nothing half-written is left behind.
    """
    state = {
        "format": FORMAT_VERSION,
        "epoch": checkpoint.epoch,
        "config": checkpoint.config,
        "history": checkpoint.history,
        "train_seconds": checkpoint.train_seconds,
        "data_sha256": checkpoint.data_sha256,
        "state": checkpoint.state,
        "arrays": {name: len(arrays) for name, arrays in checkpoint.arrays.items()},
    }

    def fill(temporary: Path) -> None:
        for name, arrays in checkpoint.arrays.items():
            if not _ARRAYS_NAME.fullmatch(name):
                raise ValueError(f"{name!r} cannot name a checkpoint file.")
            with (temporary / f"{name}.npz").open("wb") as handle:
                np.savez(handle, *arrays)
                _flush_to_disk(handle)
        with (temporary / STATE_FILE).open("w", encoding="utf-8") as handle:
            json.dump(state, handle)
            _flush_to_disk(handle)

    return _install(folder, checkpoint.epoch, fill)


def checkpoint_files(folder: Path) -> tuple[int, dict[str, bytes]] | None:
    """The newest checkpoint as (epoch, {file name: bytes}), or None: how a checkpoint travels between machines.

    A run on a Ray node sends each epoch's checkpoint home this way, and a resumed one gets it back.
    """
    epoch = saved_epoch(folder)
    if epoch is None:
        return None
    newest = Path(folder) / f"epoch-{epoch:04d}"
    return epoch, {path.name: path.read_bytes() for path in newest.iterdir() if path.is_file()}


def install_checkpoint_files(folder: Path, epoch: int, files: dict[str, bytes]) -> Path:
    """Put a checkpoint that `checkpoint_files` read elsewhere in place as this run's newest, atomically."""
    if STATE_FILE not in files:
        raise ValueError(f"a checkpoint needs its {STATE_FILE}; got {sorted(files)}")

    def fill(temporary: Path) -> None:
        for name, content in files.items():
            if name != STATE_FILE and not (name.endswith(".npz") and _ARRAYS_NAME.fullmatch(name.removesuffix(".npz"))):
                raise ValueError(f"{name!r} cannot name a checkpoint file.")
            with (temporary / name).open("wb") as handle:
                handle.write(content)
                _flush_to_disk(handle)

    return _install(folder, epoch, fill)


def _install(folder: Path, epoch: int, fill) -> Path:
    """Write an epoch's folder under a temporary name (`fill` writes its files), rename it into place, drop the older ones."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f"epoch-{epoch:04d}.tmp-", dir=folder))
    try:
        fill(temporary)
        final = folder / f"epoch-{epoch:04d}"
        if final.exists():  # the same epoch saved before by an earlier attempt
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    # Only now, with the new one in place, do the older epochs (and any half-written leftovers) go.
    for other in folder.iterdir():
        if other != final:
            shutil.rmtree(other, ignore_errors=True)
    return final


def _flush_to_disk(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def read_checkpoint(folder: Path) -> Checkpoint | None:
    """This run's newest checkpoint with all its arrays, or None when it saved none; CheckpointError when it is damaged."""
    epoch = saved_epoch(folder)
    if epoch is None:
        return None
    run_id, folder = Path(folder).name, Path(folder) / f"epoch-{epoch:04d}"
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        if state.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"run {run_id}'s checkpoint has format {state.get('format')!r}; this lab reads {FORMAT_VERSION}.")
        arrays = {}
        for name, count in state["arrays"].items():
            with np.load(folder / f"{name}.npz", allow_pickle=False) as stored:
                arrays[name] = [stored[f"arr_{index}"] for index in range(count)]
    except (OSError, KeyError, ValueError) as error:
        raise CheckpointError(f"run {run_id}'s checkpoint in {folder} cannot be read ({error}); train it again.") from error
    return Checkpoint(
        epoch=state["epoch"],
        config=state["config"],
        history=state["history"],
        train_seconds=state["train_seconds"],
        data_sha256=state.get("data_sha256", ""),
        state=state["state"],
        arrays=arrays,
    )


def checkpoint_to_resume(folder: Path, config: dict, data_sha256: str) -> Checkpoint:
    """The run's newest checkpoint, if it was saved by this config on this data; else CheckpointError saying why."""
    run_id = Path(folder).name  # the folder is named after its run
    checkpoint = read_checkpoint(folder)
    if checkpoint is None:
        raise CheckpointError(f"run {run_id} has nothing saved to resume from: it stopped before its first epoch ended; train it again.")
    if checkpoint.config != config:
        raise CheckpointError(f"run {run_id}'s checkpoint was saved with other settings than the run's: train it again.")
    if checkpoint.data_sha256 != data_sha256:
        raise CheckpointError(
            f"run {run_id} started on other data than this: point CIFAR10_DIR (or --data-dir) at the copy it started on, or train it again."
        )
    return checkpoint


def _complete_epochs(folder: Path) -> list[int]:
    """Epochs whose folder was renamed into place: temporary `*.tmp-*` folders are half-written and never count."""
    if not folder.is_dir():
        return []
    found = (_EPOCH_FOLDER.fullmatch(entry.name) for entry in folder.iterdir())
    return [int(match.group(1)) for match in found if match and (folder / match.group(0) / STATE_FILE).is_file()]
