"""Reading back what a completed run saved: its folder, its history, its model, a zip of it.

`Store` gets these methods from `SavedRuns`, which needs the store's `runs_folder`,
`root`, `runs_folder` and `_require_run` (lab.store.interface.StoreConnections). The files themselves are
written and laid out by lab/store/files.py.
"""

from __future__ import annotations

from pathlib import Path

from lab.models.files import ModelFileError, load_model_file
from lab.store import files as store_files
from lab.store.database import StoreError, from_json
from lab.store.interface import StoreConnections
from lab.store.records import Status
from lab.store.run_folder import RunFolder


class SavedRuns(StoreConnections):
    """A completed run's files (part of `Store`)."""

    def run_folder(self, run_id: str) -> RunFolder:
        """Every path of a run's files: its folder, model, history, probabilities, model card, checkpoints."""
        return RunFolder(self.root, run_id)

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run's files (it exists once the run is completed)."""
        return self.run_folder(run_id).path

    def load_history(self, run_id: str) -> dict:
        """A completed run's training history (loss and accuracy per epoch), or {} if it has none."""
        path = self.run_folder(run_id).history
        return from_json(path.read_text(encoding="utf-8")) if path.exists() else {}

    def load_model(self, run_id: str):
        """Load a completed run's model from the store's own folder, with Keras safe mode on."""
        run = self._require_run(run_id)
        if run.status is not Status.COMPLETED:
            raise StoreError(f"run {run_id} is {run.status}; only a completed run has a saved model.")
        path = self.run_folder(run_id).model
        if not path.is_file():
            raise StoreError(f"run {run_id} was saved without a model (no {path}).")
        if not path.resolve().is_relative_to(self.runs_folder.resolve()):
            # A link planted in the run folder must not lead the loader elsewhere on the machine.
            raise StoreError(f"run {run_id}'s model file points outside the results store ({path.resolve()}); it is not loaded.")
        try:
            return load_model_file(path)
        except ModelFileError as error:
            raise StoreError(str(error)) from error

    def export_run(self, run_id: str, path: str | Path) -> Path:
        """Zip a completed run's folder (config, history, metrics, model) to `path`; return the zip's path."""
        folder = self.run_dir(run_id)
        if self._require_run(run_id).status is not Status.COMPLETED or not folder.is_dir():
            raise StoreError(f"run {run_id} has no saved files to export; only completed runs do.")
        return store_files.zip_run_folder(folder, run_id, path)
