"""The Compare and Predict pages' view of stored runs: table columns, labels, cached test predictions.

Heavy things are cached by run id (and evaluating a model takes a heavy-work slot,
lab/classroom/heavy_work.py, raising BusyError when none comes free): the test split a run was evaluated on
(`st.cache_resource`, read-only arrays shared by every session) and its test-set
probabilities (`st.cache_data`, small). Probabilities come from the run folder's
saved test probabilities (RunFolder.test_probabilities) when training saved them, else the
model is loaded and evaluated once.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import streamlit as st

from lab.classroom import heavy_work
from lab.config import PRESETS, RunConfig, config_for_preset, task_class_names
from lab.data.tasks import prepare_task
from lab.evaluate.metrics import evaluate_model
from lab.report import charts
from lab.report.task_names import task_label
from lab.store.runs import Run
from ui import identity
from ui.common import get_dataset, get_store, load_model

# The model, its task and whether the row is the lab report's come first: at 390 px they are what shows.
TABLE_COLUMNS = [
    "model", "task", "reference", "accuracy", "baseline_accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params",
    "train_seconds", "options", "epochs", "device", "data", "created_at", "run_id",
]  # fmt: skip
# A one-vs-rest run's figures for its one class, shown after the baseline while such a run is in the table.
ONE_CLASS_COLUMNS = ["positive_recall", "positive_precision", "positive_f1"]
NUMBER_COLUMNS = (
    "accuracy",
    "baseline_accuracy",
    *ONE_CLASS_COLUMNS,
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "total_params",
    "train_seconds",
)
COLUMN_CONFIG = {
    "model": st.column_config.TextColumn("model", pinned=True),
    "owner": st.column_config.TextColumn("owner", help="Who started the run."),
    "accuracy": st.column_config.NumberColumn("accuracy", format="percent", help="Share of test images classified correctly."),
    "baseline_accuracy": st.column_config.NumberColumn(
        "baseline",
        format="percent",
        help="What always giving the commonest answer scores on the same test images: an accuracy near it means the model "
        "learned little. For the lab report's rows it follows from their test images: 1,000 of each class.",
    ),
    "positive_recall": st.column_config.NumberColumn(
        "class recall", format="percent", help="One class vs the rest: of that class's test pictures, the share the model finds."
    ),
    "positive_precision": st.column_config.NumberColumn(
        "class precision",
        format="percent",
        help="One class vs the rest: of the model's answers naming that class, the share that are right.",
    ),
    "positive_f1": st.column_config.NumberColumn(
        "class F1", format="%.3f", help="One class vs the rest: that class's recall and precision in one number."
    ),
    "precision_macro": st.column_config.NumberColumn("precision", format="%.3f", help="Macro average: every class counts the same."),
    "recall_macro": st.column_config.NumberColumn("recall", format="%.3f", help="Macro average: every class counts the same."),
    "f1_macro": st.column_config.NumberColumn("F1", format="%.3f", help="Macro average of precision and recall's harmonic mean."),
    "total_params": st.column_config.NumberColumn("parameters", format="localized"),
    "options": st.column_config.TextColumn("changed from the preset", help="The run's settings that differ from its preset's."),
    "train_seconds": st.column_config.NumberColumn("training time (s)", format="%.0f"),
    "created_at": st.column_config.DatetimeColumn("date", format="YYYY-MM-DD HH:mm"),
    "reference": st.column_config.CheckboxColumn(
        "lab report",
        help="A row published in the lab report, not run here: measured on CIFAR-10's original 10,000 test images, after "
        "10 epochs on all 50,000 training images.",
    ),
    "run_id": None,  # hidden on screen (a projector shows no ids); kept in the CSV and in "All runs"
}


def column_config(tasks) -> dict:
    """COLUMN_CONFIG with the task column in words ("truck vs the rest"); the cells keep the task's code name."""
    options = sorted({task for task in tasks if isinstance(task, str)})
    return COLUMN_CONFIG | {"task": st.column_config.SelectboxColumn("task", options=options, format_func=task_label)}


def in_words(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows with each task in words, for a chart's tooltips and a download."""
    return frame.assign(task=frame["task"].map(lambda task: task_label(task) if isinstance(task, str) else task))


def table_columns(classroom: bool, one_class: bool = False) -> list[str]:
    """The displayed columns: in classroom mode the owner too, next to the model (one user needs no names);
    with `one_class` (a one-vs-rest run is listed), its class's recall, precision and F1 after the baseline."""
    columns = list(TABLE_COLUMNS)
    if one_class:
        at = columns.index("baseline_accuracy") + 1
        columns[at:at] = ONE_CLASS_COLUMNS
    return [columns[0], "owner", *columns[1:]] if classroom else columns


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """The results table as a DataFrame with the displayed columns, in display order."""
    known = [*TABLE_COLUMNS, *ONE_CLASS_COLUMNS, "owner"]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys([*known, *(rows[0] if rows else [])])))
    frame["created_at"] = pd.to_datetime(frame["created_at"], errors="coerce", utc=True)
    frame["reference"] = frame["reference"].fillna(False).astype(bool)
    frame["options"] = frame["options"].fillna("")  # the report's rows are the presets themselves
    for column in NUMBER_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def run_label(run: Run) -> str:
    """A one-line label for select boxes, such as "seed-cnn · All 10 classes · 71.9% · 2025-01-01 09:30"."""
    accuracy = run.metrics.get("accuracy")
    parts = [
        run.model,
        task_label(run.task),
        f"{accuracy:.1%}" if accuracy is not None else run.status,
        str(run.created_at)[:16].replace("T", " "),
    ]
    return " · ".join(parts)


def unique_run_labels(runs: dict[str, Run]) -> dict[str, str]:
    """`run_label` of each run, with the end of its run id added where two labels would read the same
    (two runs of one preset finished in the same minute): a chart's legend keeps their curves apart."""
    labels = {run_id: run_label(run) for run_id, run in runs.items()}
    repeated = {text for text in labels.values() if list(labels.values()).count(text) > 1}
    return {run_id: f"{text} · {run_id.rsplit('-', 1)[-1]}" if text in repeated else text for run_id, text in labels.items()}


def class_names_of(run: Run) -> tuple[str, ...]:
    """The run's class names, in label order (stored with its metrics; else derived from its task)."""
    return tuple(run.metrics.get("class_names") or task_class_names(run.task))


def rerun_config(row: dict, run: Run | None) -> dict | None:
    """The config to train a results row again: a stored run's own, or the report row's preset."""
    if run is not None:
        return run.config.to_dict()
    if row.get("model") in PRESETS:
        return config_for_preset(row["model"], task=row.get("task") or "cifar10").to_dict()
    return None


@st.cache_resource(show_spinner="Preparing the test images ...", max_entries=2)
def test_split(source: str, task: str, config_json: str) -> tuple[np.ndarray, np.ndarray]:
    """The (x_test, y_test) a run was evaluated on, from `lab.data.cifar10.prepare_task` (the single source of truth).

    The test split never depends on the subset, so the smallest valid subset is asked
    for: prepare_task then copies a few hundred training images instead of 45,000.
    """
    config = RunConfig.from_dict(json.loads(config_json))
    smallest = max(10 * len(task_class_names(task)), 20)
    task_data = prepare_task(get_dataset(), dataclasses.replace(config, subset=smallest, batch_size=1))
    return task_data.x_test, task_data.y_test


@st.cache_data(show_spinner="Predicting the test images ...", max_entries=8)
def test_probabilities(source: str, run_id: str) -> np.ndarray:
    """(N, num_classes) test-set probabilities of a run: saved by training, else computed once."""
    saved = get_store().run_folder(run_id).test_probabilities
    if saved.is_file():
        return np.load(saved, allow_pickle=False).astype(np.float32)
    run = get_store().get_run(run_id)
    x_test, y_test = test_split(source, run.task, config_json(run))
    with heavy_work.slot(identity.current_person(), "evaluating the model on the test images"):  # BusyError is not cached
        return evaluate_model(load_model(run_id), x_test, y_test, class_names_of(run)).probabilities


def config_json(run: Run) -> str:
    """A run's config as canonical JSON text: a small, hashable cache key."""
    return json.dumps(run.config.to_dict(), sort_keys=True)


def test_predictions(source: str, run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_test, y_test, probabilities) of a run; ValueError when the local data set differs from the one it was tested on."""
    x_test, y_test = test_split(source, run.task, config_json(run))
    probabilities = test_probabilities(source, run.run_id)
    if len(probabilities) != len(y_test):
        raise ValueError(f"it was tested on {len(probabilities):,} images, but the data set here has {len(y_test):,} for its task.")
    return x_test, y_test, probabilities


def apply_clicked_cell(event, class_names) -> None:
    """Copy a clicked confusion-matrix cell into the gallery's class pickers (once per new click)."""
    selected = (event or {}).get("selection", {}).get(charts.CELL_SELECTION) or []
    if not selected:
        return
    cell = (selected[0].get("true"), selected[0].get("predicted"))
    if cell != st.session_state.get("compare_clicked_cell") and all(name in class_names for name in cell):
        st.session_state["compare_clicked_cell"] = cell
        st.session_state["compare_true"], st.session_state["compare_predicted"] = cell
