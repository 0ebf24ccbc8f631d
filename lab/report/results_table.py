"""The results table: one row per completed run, beside the lab report's published rows.

Rows are flat dicts with the same columns for a stored run and for a row of the report, so the
Compare page, `python -m lab runs` and the CSV download all show one table.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from lab.config import RunConfig, positive_class, task_class_names
from lab.data.tasks import task_label_map
from lab.report.changes import changes_summary
from lab.store.interface import RunStore
from lab.store.records import Run, Status
from lab.system.paths import REFERENCE_RESULTS_CSV

POSITIVE_COLUMNS = ("positive_precision", "positive_recall", "positive_f1")

# The columns of the results table, the same for stored runs and the report's rows.
RESULT_COLUMNS = (
    "run_id",
    "reference",
    "owner",  # who started the run (a student's name in classroom mode, else the local user)
    "model",
    "task",
    "options",  # settings changed from the preset (lab/report/changes.py)
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    # What always answering the commonest class scores, and a one-vs-rest run's figures for its one
    # class: what shows whether an accuracy means anything on a task with a majority class.
    "baseline_accuracy",
    "positive_precision",
    "positive_recall",
    "positive_f1",
    "total_params",
    "trainable_params",
    "train_seconds",
    "epochs",
    "train_images",  # the images a run trained on (its validation images apart)
    "test_images",  # the images its accuracy was measured on
    "device",
    "data",
    "created_at",
    "status",
    "source",
)
_FLOAT_COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", *POSITIVE_COLUMNS, "baseline_accuracy", "train_seconds")
_INT_COLUMNS = ("total_params", "trainable_params", "epochs", "train_images", "test_images")


def results_table(store: RunStore) -> list[dict]:
    """One flat row per completed run, newest first, then the lab report's reference rows."""
    return [results_row(run) for run in store.list_runs(status=Status.COMPLETED)] + reference_rows()


def reference_rows(path: Path = REFERENCE_RESULTS_CSV) -> list[dict]:
    """The lab report's results, as results-table rows marked `reference: True`.

    Empty cells are values the report does not give: they read as None, never 0. The baseline is not in
    the report, but its test set (CIFAR-10's original one) holds 1,000 pictures of every class, which fixes it.
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
    row.update(
        run_id=f"report-{slug}",
        reference=True,
        owner="the lab report",
        status="reference",
        options="",
        baseline_accuracy=balanced_baseline(row["task"]),
        data=describe_reference_data(row),
    )
    return row


def describe_reference_data(row: dict) -> str:
    """What a report row was measured on, e.g. "CIFAR-10 (original) · 50000 train images · 10000 test images"."""
    parts = ["CIFAR-10 (original)"]
    if row.get("train_images"):
        parts.append(f"{row['train_images']} train images")
    if row.get("test_images"):
        parts.append(f"{row['test_images']} test images")
    return " · ".join(parts)


def balanced_baseline(task: str) -> float:
    """The baseline of `task` on a test split with as many pictures of every CIFAR-10 class (the official one, the shared copy)."""
    labels = task_label_map(task)
    counts = np.bincount(labels[labels >= 0])
    return float(counts.max() / counts.sum())


def _parse_cell(column: str, text: str | None) -> Any:
    text = (text or "").strip()
    if not text:
        return None
    if column in _INT_COLUMNS:
        return int(float(text))
    if column in _FLOAT_COLUMNS:
        return float(text)
    return text


def results_row(run: Run) -> dict:
    """Flatten a stored run into one results-table row (a plain dict, as the lab report's rows are)."""
    metrics, config, environment = run.metrics, run.config, run.environment

    def first(key: str) -> Any:
        # Parameter counts may sit at the top of the metrics or in a "params" block.
        for source in (metrics, metrics.get("params") or {}, environment):
            if isinstance(source, dict) and source.get(key) is not None:
                return source[key]
        return None

    device = environment.get("device")
    return {
        "run_id": run.run_id,
        "reference": False,
        "owner": run.owner_name or run.owner_id,
        "model": run.model,
        "task": run.task,
        "options": _options(config, metrics),
        **{key: first(key) for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params", "trainable_params")},
        "baseline_accuracy": baseline_accuracy(metrics),
        **(positive_metrics(metrics, run.task) or dict.fromkeys(POSITIVE_COLUMNS)),
        "train_seconds": run.train_seconds,
        "epochs": metrics.get("epochs_completed", config.epochs),
        "train_images": run.fingerprint.get("n_train"),
        "test_images": metrics.get("n_test") or run.fingerprint.get("n_test"),
        "device": device if device is None or isinstance(device, str) else str(device),
        "data": describe_data(config, run.fingerprint, metrics),
        "created_at": run.created_at,
        "status": run.status.value,  # plain text in a table row
        "source": "stored run",
    }


def baseline_accuracy(metrics: dict) -> float | None:
    """What always answering the commonest test class scores: stored with newer runs, else from the confusion matrix."""
    if metrics.get("baseline_accuracy") is not None:
        return float(metrics["baseline_accuracy"])
    rows = [sum(row) for row in metrics.get("confusion_matrix") or []]
    return max(rows) / sum(rows) if rows and sum(rows) else None


def positive_metrics(metrics: dict, task: str) -> dict[str, float] | None:
    """A one-vs-rest run's precision, recall and F1 for its one class (from its per-class table for older runs), else None."""
    if positive_class(task) is None:
        return None
    if all(metrics.get(key) is not None for key in POSITIVE_COLUMNS):
        return {key: float(metrics[key]) for key in POSITIVE_COLUMNS}
    one_class = task_class_names(task)[1]
    row = next((row for row in metrics.get("per_class") or [] if row.get("class") == one_class), None)
    if row is None:
        return None
    return {"positive_precision": row["precision"], "positive_recall": row["recall"], "positive_f1": row["f1"]}


def _options(config: RunConfig, metrics: dict) -> str:
    """The settings changed from the preset, and whether the run was stopped before its planned epochs."""
    changes = changes_summary(config)
    if metrics.get("stopped_early"):
        stopped = f"stopped early in epoch {metrics.get('epochs_completed')} of {config.epochs}"
        changes = f"{changes}, {stopped}" if changes else stopped
    return changes


def describe_data(config: RunConfig, fingerprint: dict, metrics: dict) -> str:
    """A short description of the data a run saw, e.g. "folder /data · 4500 train images · 1000 test images"."""
    parts = []
    if fingerprint.get("source"):
        parts.append(str(fingerprint["source"]))
    if fingerprint.get("n_train"):
        parts.append(f"{fingerprint['n_train']} train images")
    elif config.subset:
        parts.append(f"subset {config.subset}")
    n_test = metrics.get("n_test") or fingerprint.get("n_test")
    if n_test:
        parts.append(f"{n_test} test images")
    return " · ".join(parts) or "CIFAR-10"
