"""Finished runs waiting on the local disk while the database does not answer.

A run can finish training while its PostgreSQL server is down (restarting, unreachable for a minute).
Its result must not be lost, so the PostgreSQL store (lab/store/postgres.py) leaves it here instead:

    <store root>/outbox/<run_id>/completion.json   metrics, history, environment, fingerprint, time, message,
                                                   and the progress events that could not be sent
                                 model.keras       the trained model
                                 <extra files>     the model card, the test probabilities

and delivers it (files and the completed status, in one transaction) as soon as the database answers
again. An entry is keyed by its run id and written in one rename, so delivering it twice, from two
processes or after a crash halfway, still stores the run once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab.store.database import to_json, validate_run_id

OUTBOX_FOLDER = "outbox"
COMPLETION_FILE = "completion.json"
MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class Completion:
    """What `Store.complete_run` was given, read back from an outbox entry."""

    run_id: str
    metrics: dict
    history: dict
    environment: dict
    fingerprint: dict
    train_seconds: float
    message: str
    model: bytes | None
    extra_files: dict[str, bytes]
    events: list[dict] = field(default_factory=list)


def folder(root: Path) -> Path:
    return Path(root) / OUTBOX_FOLDER


def pending(root: Path) -> list[str]:
    """The run ids waiting in the outbox, oldest first (cheap when it is empty or absent: one listing)."""
    try:
        entries = [entry for entry in os.scandir(folder(root)) if entry.is_dir() and ".tmp-" not in entry.name]
    except FileNotFoundError:
        return []
    return [entry.name for entry in sorted(entries, key=lambda entry: entry.stat().st_mtime)]


def put(root: Path, run_id: str, *, model, extra_files: dict[str, bytes] | None, **completion) -> Path:
    """Keep a finished run's result in the outbox, atomically; `model` is a Keras model, a .keras file's bytes or None."""
    validate_run_id(run_id)
    outbox = folder(root)
    outbox.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f"{run_id}.tmp-", dir=outbox))
    try:
        (temporary / COMPLETION_FILE).write_text(to_json(completion), encoding="utf-8")
        if isinstance(model, bytes):
            (temporary / MODEL_FILE).write_bytes(model)
        elif model is not None:
            model.save(temporary / MODEL_FILE)
        extras = temporary / "extra"
        extras.mkdir()
        for name, content in (extra_files or {}).items():
            (extras / name).write_bytes(content)
        final = outbox / run_id
        shutil.rmtree(final, ignore_errors=True)  # a newer result for the same run replaces an older one
        os.replace(temporary, final)
        return final
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def read(root: Path, run_id: str) -> Completion:
    entry = folder(root) / validate_run_id(run_id)
    values = json.loads((entry / COMPLETION_FILE).read_text(encoding="utf-8"))
    model = entry / MODEL_FILE
    extras = {path.name: path.read_bytes() for path in sorted((entry / "extra").iterdir()) if path.is_file()}
    return Completion(run_id=run_id, model=model.read_bytes() if model.is_file() else None, extra_files=extras, **values)


def remove(root: Path, run_id: str) -> None:
    shutil.rmtree(folder(root) / validate_run_id(run_id), ignore_errors=True)
