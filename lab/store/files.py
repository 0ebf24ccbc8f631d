"""The file half of the results store: run folders, zip exports and the results table rows.

A completed run owns one folder, `runs/<run_id>/`, holding everything needed to
explain or reuse it: config.json, history.json, metrics.json, environment.json,
fingerprint.json and model.keras. The folder is written under a temporary name
and renamed into place in one step, so a reader sees either no folder or a
complete one, never half a model.
"""

from __future__ import annotations

import csv
import importlib
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from lab.report.changes import changes_summary
from lab.store.database import StoreError, to_json

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
REFERENCE_CSV = Path(__file__).resolve().parents[2] / "assets" / "report_results.csv"

# The columns of the results table, the same for stored runs and the report's rows.
RESULT_COLUMNS = (
    "run_id",
    "reference",
    "model",
    "task",
    "options",  # settings changed from the preset (lab/report/changes.py)
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "total_params",
    "trainable_params",
    "train_seconds",
    "epochs",
    "device",
    "data",
    "created_at",
    "status",
    "source",
)
_FLOAT_COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "train_seconds")
_INT_COLUMNS = ("total_params", "trainable_params", "epochs")
_FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def run_files(
    config: dict, history: dict, metrics: dict, environment: dict, fingerprint: dict, extra_files: dict[str, bytes] | None
) -> dict[str, bytes]:
    """The files of a completed run's folder (all but the model), as name -> bytes."""
    files = {
        "config.json": config,
        HISTORY_FILE: history,
        "metrics.json": metrics,
        "environment.json": environment,
        "fingerprint.json": fingerprint,
    }
    files = {name: to_json(value).encode("utf-8") for name, value in files.items()}
    clashes = set(extra_files or {}) & (set(files) | {MODEL_FILE})
    if clashes:
        raise ValueError(f"extra_files may not replace the run's own files: {', '.join(sorted(clashes))}.")
    return {**files, **(extra_files or {})}


def write_run_folder(runs_folder: Path, run_id: str, files: dict[str, bytes], model=None) -> Path:
    """Write `files` (and `model`, if given) into `runs_folder/run_id` atomically; return that folder.

    Everything goes into `<run_id>.tmp-<random>` first and is flushed to disk,
    then one `os.replace` gives the folder its real name. If anything fails the
    temporary folder is removed and the error propagates; a file-system error (the
    disk is full, the folder read-only) becomes a StoreError that says what to do.
    """
    try:
        return _write_run_folder(runs_folder, run_id, files, model)
    except OSError as error:
        raise StoreError(
            f"cannot save run {run_id}'s files in {runs_folder}: {error.strerror or error}. "
            "Free some space on the disk (or make the folder writable), or set LAB_HOME to a folder elsewhere."
        ) from error


def _write_run_folder(runs_folder: Path, run_id: str, files: dict[str, bytes], model) -> Path:
    runs_folder.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f"{run_id}.tmp-", dir=runs_folder))
    try:
        for name, content in files.items():
            _write_synced(temporary / _checked_file_name(name), content)
        if model is not None:
            model.save(temporary / MODEL_FILE)
            _fsync_path(temporary / MODEL_FILE)
        _fsync_path(temporary)
        final = runs_folder / run_id
        if final.exists():
            # A leftover from an earlier attempt whose status never became completed.
            shutil.rmtree(final)
        os.replace(temporary, final)
        _fsync_path(runs_folder)
        return final
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def remove_run_folder(runs_folder: Path, run_id: str) -> None:
    """Delete a run's folder and any temporary folders an interrupted save left behind."""
    shutil.rmtree(runs_folder / run_id, ignore_errors=True)
    for leftover in runs_folder.glob(f"{run_id}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def zip_run_folder(folder: Path, run_id: str, destination: str | Path) -> Path:
    """Zip a run folder to `destination` (a file, or a folder that receives `<run_id>.zip`).

    Entries sit under `<run_id>/`, so unzipping gives one tidy folder. The zip is
    written under a temporary name first, so a failed export leaves nothing behind.
    """
    destination = Path(destination).expanduser()
    if destination.is_dir():
        destination = destination / f"{run_id}.zip"
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, arcname=f"{run_id}/{path.relative_to(folder).as_posix()}")
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return destination


def load_reference_rows(path: Path = REFERENCE_CSV) -> list[dict]:
    """The lab report's results, as results-table rows marked `reference: True`.

    Empty cells are values the report does not give: they read as None, never 0.
    """
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [_reference_row(cells) for cells in csv.DictReader(handle)]


def _reference_row(cells: dict[str, str]) -> dict:
    values = {key: _parse_cell(key, text) for key, text in cells.items() if key}
    row = dict.fromkeys(RESULT_COLUMNS)
    row.update({key: value for key, value in values.items() if key in row})
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{row['model']}-{row['task']}")
    row.update(run_id=f"report-{slug}", reference=True, status="reference", options="", data="CIFAR-10, as in the lab report")
    return row


def _parse_cell(column: str, text: str | None) -> Any:
    text = (text or "").strip()
    if not text:
        return None
    if column in _INT_COLUMNS:
        return int(float(text))
    if column in _FLOAT_COLUMNS:
        return float(text)
    return text


def load_keras_model(path: Path):
    """Load a saved model for prediction, with Keras safe mode on (no arbitrary code runs while loading).

    lab.models.registry is imported first because it registers the lab's own layers, which Keras must
    know by name to rebuild a model in a fresh process. The model comes back uncompiled: the
    lab only predicts with a loaded model, so the optimiser, schedule and loss it was trained
    with (a run in float32 saves them) are neither rebuilt nor need to be known here.
    A file safe mode refuses (it holds Python code, such as a Lambda layer) or
    that is damaged raises StoreError with one sentence saying so; Keras's own
    message would suggest turning safe mode off, which the lab never does.
    """
    try:
        importlib.import_module("lab.models.registry")
    except ModuleNotFoundError as error:
        if error.name != "lab.models.registry":
            raise
    import keras  # imported here so that reading the store never pays for TensorFlow

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except ValueError as error:
        if "safe_mode" in str(error) or "arbitrary code" in str(error):
            raise StoreError(
                f"the model file {path} contains Python code (for example a Lambda layer), which the lab refuses to run; "
                "models trained by the lab never do, so train this one again with the lab."
            ) from error
        raise StoreError(_damaged_model_message(path, error)) from error
    except (OSError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as error:
        raise StoreError(_damaged_model_message(path, error)) from error


def _damaged_model_message(path: Path, error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return f"the model file {path} cannot be read ({type(error).__name__}: {first_line}); it may be damaged, so train the model again."


def results_row(run: dict) -> dict:
    """Flatten a stored run (as `Store.get_run` returns it) into one results-table row."""
    metrics, config, environment = run["metrics"], run["config"], run["environment"]

    def first(key: str) -> Any:
        # Parameter counts may sit at the top of the metrics or in a "params" block.
        for source in (metrics, metrics.get("params") or {}, environment):
            if isinstance(source, dict) and source.get(key) is not None:
                return source[key]
        return None

    device = environment.get("device")
    return {
        "run_id": run["run_id"],
        "reference": False,
        "model": run["model"],
        "task": run["task"],
        "options": _options(config, metrics),
        **{key: first(key) for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params", "trainable_params")},
        "train_seconds": run["train_seconds"],
        "epochs": metrics.get("epochs_completed", config.get("epochs")),
        "device": device if device is None or isinstance(device, str) else str(device),
        "data": describe_data(config, run["fingerprint"], metrics),
        "created_at": run["created_at"],
        "status": run["status"],
        "source": "stored run",
    }


def _options(config: dict, metrics: dict) -> str:
    """The settings changed from the preset, and whether the run was stopped before its planned epochs."""
    changes = changes_summary(config)
    if metrics.get("stopped_early"):
        stopped = f"stopped early in epoch {metrics.get('epochs_completed')} of {config.get('epochs')}"
        changes = f"{changes}, {stopped}" if changes else stopped
    return changes


def describe_data(config: dict, fingerprint: dict, metrics: dict) -> str:
    """A short description of the data a run saw, e.g. "folder /data · 4500 train images · 1000 test images"."""
    parts = []
    if fingerprint.get("source"):
        parts.append(str(fingerprint["source"]))
    if fingerprint.get("n_train"):
        parts.append(f"{fingerprint['n_train']} train images")
    elif config.get("subset"):
        parts.append(f"subset {config['subset']}")
    n_test = metrics.get("n_test") or fingerprint.get("n_test")
    if n_test:
        parts.append(f"{n_test} test images")
    return " · ".join(parts) or "CIFAR-10"


def _checked_file_name(name: str) -> str:
    if not _FILE_NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ValueError(f"file name {name!r} is not allowed in a run folder: use a plain name such as 'notes.txt'.")
    return name


def _write_synced(path: Path, content: bytes) -> None:
    """Write a file and flush it to disk, so the rename that follows never exposes an empty file."""
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_path(path: Path) -> None:
    """Flush a file or a folder's entries to disk (folders only on POSIX, where that is possible)."""
    if path.is_dir() and os.name != "posix":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def ensure_writable_folder(folder: Path) -> None:
    """Create `folder` if needed, raising StoreError with the fix when that is impossible."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(unwritable_message(folder, error)) from error


def unwritable_message(folder: Path, error: BaseException) -> str:
    return f"cannot store results in {folder} ({error}). Set LAB_HOME to a folder you can write to, for example LAB_HOME=~/cifar10-lab."
