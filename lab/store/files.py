"""The file half of the results store: run folders and their atomic writes, and zip exports.

A completed run owns one folder, `runs/<run_id>/`, holding everything needed to
explain or reuse it: its config, history, metrics, environment, data fingerprint and
model (lab/store/run_folder.py names each file). The folder is written under a temporary name
and renamed into place in one step, so a reader sees either no folder or a
complete one, never half a model.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from lab.store.database import StoreError, to_json
from lab.store.run_folder import CONFIG_FILE, ENVIRONMENT_FILE, FINGERPRINT_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE

__all__ = ["HISTORY_FILE", "MODEL_FILE", "run_files", "write_run_folder"]  # the names themselves live in lab/store/run_folder.py
_FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def run_files(
    config: dict, history: dict, metrics: dict, environment: dict, fingerprint: dict, extra_files: dict[str, bytes] | None
) -> dict[str, bytes]:
    """The files of a completed run's folder (all but the model), as name -> bytes."""
    files = {
        CONFIG_FILE: config,
        HISTORY_FILE: history,
        METRICS_FILE: metrics,
        ENVIRONMENT_FILE: environment,
        FINGERPRINT_FILE: fingerprint,
    }
    files = {name: to_json(value).encode("utf-8") for name, value in files.items()}
    clashes = set(extra_files or {}) & (set(files) | {MODEL_FILE})
    if clashes:
        raise ValueError(f"extra_files may not replace the run's own files: {', '.join(sorted(clashes))}.")
    return {**files, **(extra_files or {})}


def write_run_folder(runs_folder: Path, run_id: str, files: dict[str, bytes], model=None) -> Path:
    """Write `files` (and `model`, a Keras model or a `.keras` file's bytes) into `runs_folder/run_id` atomically; return it.

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
        if isinstance(model, bytes):  # a .keras file saved elsewhere (a run trained on a Ray node)
            _write_synced(temporary / MODEL_FILE, model)
        elif model is not None:
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
