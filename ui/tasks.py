"""Tasks as the app shows them: their names, the one-vs-rest class, and what a task's accuracy has to beat.

A one-vs-rest task (one CIFAR-10 class against the nine others) is lopsided: 1 picture in 10 shows the
class, so a model that always answers "not truck" is right 90% of the time without learning anything.
So wherever a result appears, the app puts the majority-class baseline (what always giving the
commonest answer scores) beside the accuracy, and for a one-vs-rest task how well the model finds
its one class (its precision, recall and F1), with a short note saying why, in a student's words.
Runs stored before the metrics carried a baseline get it from their confusion matrix.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from lab.config import ONE_VS_REST, REPORT_BINARY_TASK, positive_class, task_class_names
from lab.report.results_table import balanced_baseline, baseline_accuracy, positive_metrics
from lab.report.task_names import TASK_KINDS, task_label  # the names live in lab, so the lab report says them too

__all__ = ["TASK_KINDS", "balanced_baseline", "task_label"]  # re-exported: pages name tasks through ui.tasks
DEFAULT_ONE_CLASS = REPORT_BINARY_TASK.removeprefix(ONE_VS_REST)  # the lab report's binary task, unless the student picks another
# A majority class holding at least this share of the test images makes accuracy misleading enough for the note.
LOPSIDED_SHARE = 0.75
POSITIVE_LABELS = {"positive_recall": "recall", "positive_precision": "precision", "positive_f1": "F1"}


# ---------------------------------------------------------------- names


def task_kind(task: str) -> str:
    """The picker's kind of a task: "cifar10", "binary", "one-vs-rest" or "pair"."""
    if task.startswith(ONE_VS_REST):
        return "one-vs-rest"
    return "pair" if task.startswith("pair:") else task


def one_class_of(task: str) -> str | None:
    """The class a one-vs-rest task looks for ("truck" in "one-vs-rest:truck"), else None."""
    return task_class_names(task)[1] if positive_class(task) is not None else None


def with_article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


# ---------------------------------------------------------------- what an accuracy has to beat


def majority_answer(metrics: dict, class_names) -> str | None:
    """The class that always answering scores the baseline with, or None when every class has as many test pictures."""
    rows = [sum(row) for row in metrics.get("confusion_matrix") or []]
    if not rows or len(set(rows)) == 1 or len(rows) != len(class_names):
        return None
    return class_names[int(np.argmax(rows))]


def baseline_words(metrics: dict, class_names) -> str:
    """The baseline in a phrase, e.g. 'always answering "not truck" scores 90.0%'."""
    baseline = baseline_accuracy(metrics)
    if baseline is None:
        return "the baseline (always giving the commonest answer) is unknown for this run"
    majority = majority_answer(metrics, class_names)
    answer = f"always answering “{majority}”" if majority else "always giving the same answer"
    return f"{answer} scores {baseline:.1%}"


def answers_naming(metrics: dict, label: int) -> int | None:
    """How many test answers named class `label` (its column of the confusion matrix), or None without a matrix."""
    matrix = metrics.get("confusion_matrix")
    return int(sum(row[label] for row in matrix)) if matrix else None


def imbalance_note(task: str, baseline: float | None) -> str | None:
    """Why a high accuracy can mean nothing here, in a student's words; None for a task whose classes are about even."""
    if baseline is not None and math.isnan(baseline):  # a table cell without a value
        baseline = None
    one_class = one_class_of(task)
    if one_class is not None:
        baseline = baseline if baseline is not None else balanced_baseline(task)
        one_in = round(1 / (1 - baseline)) if baseline < 1 else None
        rare = f"Only 1 picture in {one_in}" if one_in else "Hardly any picture"
        return (
            f"{rare} shows {with_article(one_class)}, so a model that always says “not {one_class}” is right "
            f"{baseline:.0%} of the time without learning anything. Look at how many of the {one_class} pictures it "
            f"finds (recall) and how often its “{one_class}” is right (precision)."
        )
    if baseline is not None and baseline >= LOPSIDED_SHARE:
        return (
            f"One answer covers {baseline:.0%} of the test pictures, so a model that always gives it is right {baseline:.0%} "
            "of the time without learning anything. Compare the accuracy with that baseline, and look at macro F1, which "
            "counts every class the same."
        )
    return None


# ---------------------------------------------------------------- drawn


def baseline_metric(container, metrics: dict, class_names) -> None:
    """The baseline as a metric, to sit beside a run's test accuracy."""
    baseline = baseline_accuracy(metrics)
    container.metric(
        "Baseline",
        "-" if baseline is None else f"{baseline:.1%}",
        help=f"What a model that learned nothing can score: {baseline_words(metrics, class_names)} on the same test images. "
        "An accuracy near it means the model learned little.",
    )


def one_class_metrics(metrics: dict, task: str) -> None:
    """For a one-vs-rest run, how well it finds its class (recall, precision, F1); then the note, for any lopsided task."""
    found = positive_metrics(metrics, task)
    if found is not None:
        one_class = one_class_of(task)
        st.markdown(f"**Finding the {one_class} pictures**")
        helps = {
            "positive_recall": f"Of the {one_class} pictures, the share the model finds.",
            "positive_precision": f"Of the model's “{one_class}” answers, the share that are right.",
            "positive_f1": "Recall and precision in one number (their harmonic mean): high only when both are.",
        }
        never_says_it = answers_naming(metrics, 1) == 0
        if never_says_it:
            helps["positive_precision"] = f"The model never answered “{one_class}”, so there is no answer of it to check."
        for column, (key, label) in zip(st.columns(len(POSITIVE_LABELS)), POSITIVE_LABELS.items(), strict=True):
            shown = "–" if key == "positive_precision" and never_says_it else f"{found[key]:.1%}"
            column.metric(f"{one_class}: {label}", shown, help=helps[key])
        if never_says_it:
            st.warning(
                f"This model never answers “{one_class}”: it says “not {one_class}” to every picture, so its accuracy is "
                "the baseline's and it has learned nothing about finding them yet.",
                icon=":material/visibility_off:",
            )
    show_imbalance_note(task, baseline_accuracy(metrics))


def show_imbalance_note(task: str, baseline: float | None) -> None:
    note = imbalance_note(task, baseline)
    if note:
        st.info(note, icon=":material/balance:")
