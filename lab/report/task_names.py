"""Tasks in words: what a page, a table or the lab report says instead of a task's code name.

A task's code name ("cifar10", "binary", "one-vs-rest:truck", "pair:cat,dog") is what RunConfig and the
store keep; people read "All 10 classes", "Vehicles vs animals", "truck vs the rest", "cat vs dog".
"""

from __future__ import annotations

from lab.config import ONE_VS_REST

# The kinds of task a picker offers, in the order shown; "one-vs-rest" and "pair" then ask for their classes.
TASK_KINDS = {"cifar10": "All 10 classes", "binary": "Vehicles vs animals", "one-vs-rest": "One class vs the rest", "pair": "Two classes"}


def task_label(task: str) -> str:
    """A task as people say it: "All 10 classes", "Vehicles vs animals", "cat vs dog", "truck vs the rest"."""
    if task.startswith(ONE_VS_REST):
        return f"{task.removeprefix(ONE_VS_REST)} vs the rest"
    if task.startswith("pair:"):
        return " vs ".join(task.removeprefix("pair:").split(","))
    return TASK_KINDS.get(task, task)
