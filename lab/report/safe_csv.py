"""CSV that a spreadsheet opens as text: no cell of a download is ever run as a formula.

Spreadsheets (Excel, LibreOffice, Google Sheets) treat a cell that starts with `=`, `+`, `-` or `@`
as a formula, and a tab or carriage return at the start can hide one. A student's name such as
`=HYPERLINK("http://...")` or `-2+3` in the class's results would then be evaluated on the
teacher's computer. Every CSV the app or lab writes goes through `safe_csv`, which puts a `'`
before such a cell: the spreadsheet shows the text as typed, and runs nothing. Numbers are left
as they are (a negative number is a number, not a formula).
"""

from __future__ import annotations

import csv

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """`value` with a leading `'` when it is text a spreadsheet would read as a formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame, **to_csv_options) -> str:
    """`frame.to_csv(index=False, ...)` with every text cell (and column name) that could run as a formula neutralised.

    Text is quoted too, so that a line break inside a cell (a carriage return) stays inside it.
    """
    cleaned = frame.map(neutralise)
    cleaned.columns = [neutralise(column) if isinstance(column, str) else column for column in cleaned.columns]
    return cleaned.to_csv(**{"index": False, "quoting": csv.QUOTE_NONNUMERIC, **to_csv_options})
