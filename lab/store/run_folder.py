"""Where a run's files live: every path of a run's folder, named in one place.

A completed run owns `runs/<run_id>/` under the store's root (LAB_HOME), and a run that is
training keeps its newest checkpoint in `checkpoints/<run_id>/` beside it:

    <store root>/runs/<run_id>/model.keras              the trained model (Keras' own format)
                               config.json              the settings it trained with
                               history.json             loss and accuracy per epoch
                               metrics.json             how well it does on the test images
                               environment.json         versions and hardware it trained on
                               fingerprint.json         which data it saw
                               test_probabilities.npy   its answer for every test image (Results reads it)
                               MODEL_CARD.md            what the model is for and not for, in words
    <store root>/checkpoints/<run_id>/                  while it trains: the last finished epoch (lab/train/checkpoints.py)

Code that needs one of these paths asks a `RunFolder` (Store.run_folder(run_id)) instead of
spelling a file name: renaming a file then changes one line, not five modules. A folder laid out
the same way elsewhere (the default model shipped in assets/default_model/) is a `ModelFolder`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from lab.store.database import validate_run_id

RUNS_FOLDER = "runs"  # completed runs' folders, under the store's root
CHECKPOINTS_FOLDER = "checkpoints"  # running runs' checkpoints, under the store's root

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
ENVIRONMENT_FILE = "environment.json"
FINGERPRINT_FILE = "fingerprint.json"
PROBABILITIES_FILE = "test_probabilities.npy"
MODEL_CARD_FILE = "MODEL_CARD.md"


class _ModelFiles:
    """The file names of a folder laid out like a completed run's; subclasses say where the folder is (`path`)."""

    path: Path

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def history(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def environment(self) -> Path:
        return self.path / ENVIRONMENT_FILE

    @property
    def fingerprint(self) -> Path:
        return self.path / FINGERPRINT_FILE

    @property
    def test_probabilities(self) -> Path:
        return self.path / PROBABILITIES_FILE

    @property
    def model_card(self) -> Path:
        return self.path / MODEL_CARD_FILE


@dataclass(frozen=True)
class ModelFolder(_ModelFiles):
    """Any folder laid out like a completed run's, such as the default model shipped in assets/default_model/."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class RunFolder(_ModelFiles):
    """The paths of one run's files under a store's root. Naming a path creates nothing on disk."""

    store_root: Path
    run_id: str

    def __post_init__(self) -> None:
        validate_run_id(self.run_id)  # a run id becomes a folder name: it must not climb out of the store
        object.__setattr__(self, "store_root", Path(self.store_root))

    @property
    def path(self) -> Path:
        """The run's own folder; it exists once the run has completed."""
        return self.store_root / RUNS_FOLDER / self.run_id

    @property
    def checkpoints(self) -> Path:
        """The folder of the run's checkpoint while it trains (outside `path`: a completed run's folder is written in one step)."""
        return self.store_root / CHECKPOINTS_FOLDER / self.run_id

    def remove_checkpoints(self) -> None:
        """Drop the run's checkpoints (the store does when the run completes, is cancelled or is deleted)."""
        shutil.rmtree(self.checkpoints, ignore_errors=True)
