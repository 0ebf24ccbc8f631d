"""Altair chart builders shared by the pages and the generated lab report, and the small tables they plot.

Each builder takes plain Python data (lists, dicts, a DataFrame) and returns an
`alt.Chart`; the page decides where to put it with `st.altair_chart(chart)`.
Nothing here imports streamlit, so every chart can be built and checked in a test.

Colours: one hue per meaning, the same on every page: "train" and "validation"
keep their colours on the Explore and Train pages, and shares (0-100%) always
use the "blues" scheme, so a projected confusion matrix reads the same as the
one on a laptop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

# Lines and bars stand out at least 3:1 from the white page (WCAG 1.4.11, non-text contrast); blue against orange
# stays apart for colour-blind eyes, and validation lines are dashed as well.
SPLIT_COLOURS = {"train": "#4c78a8", "validation": "#d95f02", "test": "#54a24b"}
CATEGORY_SCHEME = "tableau10"  # runs, models and measures: ten hues that stay apart on a projector
METRIC_LABELS = {"accuracy": "accuracy", "loss": "loss"}
# The confusion matrix's shares in five steps of one blue, light to dark: the steps differ in lightness, so they stay
# apart for colour-blind eyes too (tests/test_accessible_colours.py simulates protanopia and deuteranopia). Counts are
# printed dark on the three light steps and white on the two dark ones, each at least 4.5:1.
CONFUSION_STEPS = [0.1, 0.25, 0.5, 0.75]  # the share of the row where each next colour begins
CONFUSION_COLOURS = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]
CONFUSION_TEXT = {"dark": "#111827", "light": "#ffffff"}  # on the three light colours, on the two dark ones
CONFUSION_LIGHT_TEXT_FROM = 0.5  # the share from which the cell is dark and its count white
MAX_EPOCH_TICKS = 10  # more labels than this crowd a small chart: then every 2nd, 5th ... epoch is labelled


# ---------------------------------------------------------------- data set


def class_balance_chart(counts: pd.DataFrame) -> alt.Chart:
    """Grouped bars: images per class, one bar per split. `counts` has columns class, split, images."""
    splits = list(dict.fromkeys(counts["split"]))
    colour = alt.Color("split:N", scale=alt.Scale(domain=splits, range=[SPLIT_COLOURS.get(s, "#888888") for s in splits]), title="split")
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None, title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("split:N", sort=splits),
            y=alt.Y("images:Q", title="images"),
            color=colour,
            tooltip=["class:N", "split:N", alt.Tooltip("images:Q", format=",")],
        )
        .properties(height=260)
    )


# ---------------------------------------------------------------- predictions


def top_k_chart(top: Sequence[tuple[str, float]]) -> alt.Chart:
    """Horizontal bars of a model's top-k answers, most probable on top, labelled in percent."""
    frame = pd.DataFrame([{"class": name, "probability": float(prob)} for name, prob in top])
    base = alt.Chart(frame).encode(
        y=alt.Y("class:N", sort=list(frame["class"]), title=None, axis=alt.Axis(labelFontSize=13)),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="probability"),
        tooltip=["class:N", alt.Tooltip("probability:Q", format=".1%")],
    )
    bars = base.mark_bar(color=SPLIT_COLOURS["train"])
    labels = base.mark_text(align="left", dx=4, fontSize=13).encode(text=alt.Text("probability:Q", format=".1%"))
    return (bars + labels).properties(height=alt.Step(30))


CELL_SELECTION = "cell"  # the name under which a clicked confusion-matrix cell comes back


def confusion_matrix_chart(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, normalize: bool = True, clickable: bool = False
) -> alt.Chart:
    """Heatmap: rows are true classes, columns predicted ones; each cell shows its count.

    With `normalize`, colour is the share of the true class's images (each row sums
    to 100%), so a rare class's mistakes are as visible as a common one's.
    """
    frame = confusion_frame(matrix, class_names)
    # The shade, 0 to 1: the share of the row, or without `normalize` the count against the largest count.
    frame["shade"] = frame["share"] if normalize else frame["count"] / max(int(frame["count"].max()), 1)
    cell = max(40, min(90, 440 // max(len(class_names), 1)))  # pixels per cell: 44 for ten classes, 90 for two
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=list(class_names), title="predicted class", axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
        y=alt.Y("true:N", sort=list(class_names), title="true class"),
    )
    cells = base.mark_rect().encode(
        # No colour legend: every cell prints its count, and darker simply means "more".
        color=alt.Color("shade:Q", scale=alt.Scale(type="threshold", domain=CONFUSION_STEPS, range=CONFUSION_COLOURS), legend=None),
        tooltip=["true:N", "predicted:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
    )
    if clickable:
        # A click selects one (true, predicted) cell; st.altair_chart(on_select="rerun") hands it to the page.
        cells = cells.add_params(alt.selection_point(name=CELL_SELECTION, fields=["true", "predicted"], on="click"))
    # Dark text on light cells, light text on dark ones: readable on a projector.
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("count:Q"),
        color=alt.condition(
            alt.datum.shade >= CONFUSION_LIGHT_TEXT_FROM, alt.value(CONFUSION_TEXT["light"]), alt.value(CONFUSION_TEXT["dark"])
        ),
    )
    return (cells + text).properties(width=alt.Step(cell), height=alt.Step(cell))


def confusion_frame(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> pd.DataFrame:
    """Long table of a confusion matrix: true, predicted, count, share (of the true class's images)."""
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1)
    rows = []
    for i, true_name in enumerate(class_names):
        for j, predicted_name in enumerate(class_names):
            share = counts[i, j] / totals[i] if totals[i] else 0.0
            rows.append({"true": str(true_name), "predicted": str(predicted_name), "count": int(counts[i, j]), "share": float(share)})
    return pd.DataFrame(rows)


def per_class_chart(per_class: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Grouped bars of precision, recall and F1 for each class."""
    frame = pd.DataFrame(per_class).melt(
        id_vars=["class"], value_vars=["precision", "recall", "f1"], var_name="measure", value_name="value"
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None, title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("measure:N", sort=["precision", "recall", "f1"]),
            y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1]), title=None),
            color=alt.Color("measure:N", sort=["precision", "recall", "f1"], scale=alt.Scale(scheme=CATEGORY_SCHEME), title=None),
            tooltip=["class:N", "measure:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=260)
    )


# ---------------------------------------------------------------- training


def history_frame(history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, Any]], run: str = "") -> pd.DataFrame:
    """Long table (run, epoch, metric, split, value) of one run's learning curves.

    Accepts a Keras history dict ({"loss": [...], "val_loss": [...], ...}, as stored
    in history.json) or a list of `epoch_end` events (as the Train page polls them).
    Epochs count from 1. Missing values (None) are dropped.
    """
    if isinstance(history, Mapping):
        per_epoch = [
            {name: values[i] for name, values in history.items() if i < len(values)}
            for i in range(max((len(v) for v in history.values()), default=0))
        ]
        epochs = list(range(1, len(per_epoch) + 1))
    else:
        per_epoch = [dict(event) for event in history]
        epochs = [int(event.get("epoch", i + 1)) for i, event in enumerate(per_epoch)]
    rows = []
    for epoch, values in zip(epochs, per_epoch, strict=True):
        for name, value in values.items():
            metric = name.removeprefix("val_")
            if metric not in METRIC_LABELS or value is None:
                continue
            split = "validation" if name.startswith("val_") else "train"
            rows.append({"run": run, "epoch": epoch, "metric": metric, "split": split, "value": float(value)})
    return pd.DataFrame(rows, columns=["run", "epoch", "metric", "split", "value"])


def epoch_ticks(epochs: Sequence[int]) -> list[int]:
    """Whole epochs to label on an x axis: 1, 2, 3 for three epochs (never 1.5), about ten of them for more.

    Vega-Lite picks "nice" steps of 0.5 for a short axis, and the "d" format then prints them as "1 2 2 3 3";
    listing the ticks outright keeps one label per epoch.
    """
    last = int(max(epochs, default=1))
    step = max(1, math.ceil(last / MAX_EPOCH_TICKS))
    return [1, *range(step, last + 1, step)] if step > 1 else list(range(1, last + 1))  # 1, 5, 10, 15 ... reads better than 1, 6, 11


def learning_curves_chart(curves: pd.DataFrame, metric: str = "accuracy") -> alt.Chart:
    """Lines of `metric` per epoch: train solid, validation dashed; one colour per run when several.

    `curves` is one `history_frame` or several concatenated.
    """
    frame = curves[curves["metric"] == metric]
    several_runs = frame["run"].nunique() > 1
    colour = (
        alt.Color(
            "run:N",
            title="run",
            scale=alt.Scale(scheme=CATEGORY_SCHEME),
            legend=alt.Legend(labelLimit=360),
        )
        if several_runs
        else alt.Color("split:N", scale=alt.Scale(domain=list(SPLIT_COLOURS)[:2], range=list(SPLIT_COLOURS.values())[:2]), title=None)
    )
    y_scale = alt.Scale(domain=[0, 1]) if metric == "accuracy" else alt.Scale(zero=False)
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(values=epoch_ticks(frame["epoch"]), tickMinStep=1, format="d"), title="epoch"),
            y=alt.Y(
                "value:Q", scale=y_scale, title=METRIC_LABELS[metric], axis=alt.Axis(format="~%") if metric == "accuracy" else alt.Axis()
            ),
            color=colour,
            # No dash legend (Streamlit's theme draws it without symbols): pages say "solid: train, dashed: validation".
            strokeDash=alt.StrokeDash("split:N", sort=["train", "validation"], legend=None),
            detail="run:N",
            tooltip=["run:N", "epoch:Q", "split:N", alt.Tooltip("value:Q", format=".4f", title=metric)],
        )
        .properties(height=280)
    )


# ---------------------------------------------------------------- comparing runs


def accuracy_vs_time_chart(results: pd.DataFrame) -> alt.Chart:
    """Accuracy against training time, point size = parameter count; report rows as hollow diamonds.

    `results` needs columns model, task, options, accuracy, train_seconds, total_params, reference.
    Rows without an accuracy or a training time cannot be placed and are left out.
    """
    frame = results.dropna(subset=["accuracy", "train_seconds"]).copy()
    frame = frame[frame["train_seconds"] > 0]
    frame["total_params"] = frame["total_params"].fillna(0)
    frame["origin"] = np.where(frame["reference"].astype(bool), "lab report", "this lab")
    return (
        alt.Chart(frame)
        .mark_point(filled=True, opacity=0.8)
        .encode(
            # Padding keeps the big points of the best and fastest runs inside the plot.
            x=alt.X("train_seconds:Q", scale=alt.Scale(type="log", padding=24), title="training time (seconds, log scale)"),
            y=alt.Y("accuracy:Q", axis=alt.Axis(format="~%"), scale=alt.Scale(zero=False, padding=24), title="test accuracy"),
            size=alt.Size("total_params:Q", title="parameters", scale=alt.Scale(range=[40, 900]), legend=alt.Legend(format="~s")),
            color=alt.Color("model:N", title="model", scale=alt.Scale(scheme=CATEGORY_SCHEME)),
            shape=alt.Shape("origin:N", scale=alt.Scale(domain=["this lab", "lab report"], range=["circle", "diamond"]), title=None),
            tooltip=[
                "model:N",
                "task:N",
                alt.Tooltip("options:N", title="changed from the preset"),
                "origin:N",
                alt.Tooltip("accuracy:Q", format=".1%"),
                alt.Tooltip("train_seconds:Q", format=",.0f", title="seconds"),
                alt.Tooltip("total_params:Q", format=",", title="parameters"),
            ],
        )
        .properties(height=340)
    )
