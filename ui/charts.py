"""Charts that everyone can read: a title, a sentence saying what the chart shows, and its numbers as a table.

A chart is a picture drawn in a <canvas>: a screen reader cannot read its bars or lines, and a
student who cannot tell two colours apart may not find a line by its colour. So every chart the
pages draw goes through `show_chart`, which puts a visible title above it, a short summary in words
below it (the sentence a screen reader reaches), and a "Show as table" section with the very
numbers the chart plots (WCAG 1.1.1, a text alternative for non-text content). The chart also carries
its summary as its `description`, which Vega gives the drawing as its accessible name.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

# A chart wider than the screen (a confusion matrix on a phone) scrolls sideways inside its own box, rather than
# being cut off at the screen's edge or widening the page.
SCROLL_WIDE_CHARTS = '<style>[data-testid="stElementContainer"]:has(> * [data-testid="stVegaLiteChart"]) { overflow-x: auto; }</style>'


def show_chart(
    chart: alt.TopLevelMixin, table: pd.DataFrame, *, title: str, summary: str, where=None, title_shown: bool = True, **altair_options
):
    """Draw `chart` with its title, its summary in words and its numbers (`table`) under "Show as table".

    With `title_shown=False` the page's own heading just above already says the title: it still names the chart
    and its table. `where` is the container to draw in (a column, a tab), the page by default; `altair_options` go to
    `st.altair_chart` (width, on_select, key ...), whose return value (a selection, for a clickable chart) comes back.
    """
    place = where or st
    place.html(SCROLL_WIDE_CHARTS)
    if title_shown:
        place.markdown(f"**{title}**")
    # The drawing is named by its summary; its marks (bars, points) are hidden from screen readers, which
    # reach the same numbers in the table below instead of one unlabelled shape after another.
    described = chart.properties(description=f"{title}. {summary}").configure_mark(aria=False)
    drawn = place.altair_chart(described, **altair_options)
    place.caption(summary)
    with place.expander(f"Show as table: {title}"):
        st.dataframe(table, hide_index=isinstance(table.index, pd.RangeIndex))  # a meaningful index (a class) stays
    return drawn


# ---------------------------------------------------------------- summaries: what a chart shows, in one or two sentences


def curves_summary(curves: pd.DataFrame, metric: str) -> str:
    """Learning curves (history_frame's long table) in words: each run's and split's first and last value of `metric`."""
    rows = curves[curves["metric"] == metric].sort_values("epoch")
    if rows.empty:
        return f"No {metric} recorded yet."
    said = "{:.0%}" if metric == "accuracy" else "{:.3f}"
    parts = []
    for (run, split), line in rows.groupby(["run", "split"], sort=False):
        who = f"{run}, {split}" if run else split
        first, last = line.iloc[0], line.iloc[-1]
        parts.append(
            f"{who}: {said.format(first['value'])} at epoch {first['epoch']}, {said.format(last['value'])} at epoch {last['epoch']}"
        )
    return f"{metric.capitalize()} per epoch. " + "; ".join(parts) + "."


def curves_table(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per epoch, one column per run and split: the numbers behind learning curves."""
    rows = curves[curves["metric"] == metric]
    columns = rows["split"] if rows["run"].eq("").all() else rows["run"] + ", " + rows["split"]
    return rows.assign(line=columns).pivot_table(index="epoch", columns="line", values="value").round(4).reset_index()


def confusion_summary(matrix, class_names) -> str:
    """A confusion matrix in words: how many answers were right, and the commonest mistake."""
    counts = pd.DataFrame(matrix, index=list(class_names), columns=list(class_names))
    total, right = int(counts.values.sum()), int(sum(counts.iat[i, i] for i in range(len(counts))))
    mistakes = counts.stack()
    mistakes = mistakes[[true != predicted for true, predicted in mistakes.index]]
    words = f"{right:,} of {total:,} test images on the diagonal (right answers)."
    if len(mistakes) and mistakes.max() > 0:
        (true, predicted), count = mistakes.idxmax(), int(mistakes.max())
        words += f" The commonest mistake: {count:,} {true} images called {predicted}."
    return words


def confusion_table(matrix, class_names) -> pd.DataFrame:
    """The confusion matrix as a table: one row per true class, one column per predicted class, counts in the cells."""
    table = pd.DataFrame(matrix, index=list(class_names), columns=list(class_names))
    return table.rename_axis("true class ↓, predicted →").reset_index()
