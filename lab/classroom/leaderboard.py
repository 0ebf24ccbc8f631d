"""The class leaderboard: each student's best completed run per task, ranked.

Runs are ranked by test accuracy, except on a one-vs-rest task: there a model that always says
"no" already scores 90%, so the board ranks by the F1 of the one class (how well the model both
finds its pictures and avoids false alarms), with accuracy shown beside it.

A run counts for its owner and for every student who followed it (asked for the same settings
on the same data and got its result instead of training a copy), but the board credits the first
to train a configuration: a follower's row, and a run with the same settings trained again later,
is a copy (`copy_of` names whose it is the same as). A copy is listed, never ranked, so training a
row again (or following it) never hands its score to anyone at once; each student's own runs come
before their copies. With a challenge set, only the runs that meet it are ranked; the others are
listed after them, each with the reason.
"""

from __future__ import annotations

from lab.classroom.limits import Challenge
from lab.config import positive_class
from lab.report.results_table import results_row
from lab.store.runs import Store

COLUMNS = (
    "rank",
    "student",
    "task",
    "score",  # what the board ranks by: the accuracy, or on a one-vs-rest task its class's F1
    "accuracy",
    "positive_f1",
    "train_seconds",
    "total_params",
    "options",
    "model",
    "run_id",
    "copy_of",  # None for the student who trained it first; else that student's name ("same as NAME's")
    "qualifies",
    "why_not",
)


def leaderboard(store: Store, challenge: Challenge | None = None) -> list[dict]:
    """One row per student and task: their best run by `score`, best first within each task.

    `rank` counts within a task (1 = best) over the rows that are no copy; rows that do not meet
    the challenge have no rank, `qualifies` False and `why_not` saying why, and come after the
    ranked ones. A copy (`copy_of` set) has no rank and comes after the ranked rows of its task.
    """
    completed = sorted(store.list_runs(status="completed"), key=lambda run: (run["created_at"], run["run_id"]))
    first_of: dict[str, str] = {}  # settings key -> the name of who trained it first
    best: dict[tuple[str, str], dict] = {}
    for run in completed:
        row = results_row(run)
        row["score"] = ranking_score(row)
        if row["score"] is None:
            continue
        owner_name = run.get("owner_name") or run["owner_id"]
        key = run.get("settings_key")
        first = first_of.setdefault(key, owner_name) if key else owner_name
        owner_copy = None if first == owner_name else first
        students = [(run["owner_id"], owner_name, owner_copy)]
        students += [(follower["owner_id"], follower["owner_name"], first) for follower in store.followers(run["run_id"])]
        why_not = challenge.why_not(row) if challenge is not None else None
        for student_id, name, copy_of in students:
            entry = {**row, "student": name, "copy_of": copy_of, "qualifies": why_not is None, "why_not": why_not or ""}
            place = (student_id, row["task"])
            if place not in best or _better(entry, best[place]):
                best[place] = entry
    rows = sorted(
        best.values(),
        key=lambda row: (not row["qualifies"], row["task"], row["copy_of"] is not None, -row["score"], row["train_seconds"] or 0.0),
    )
    ranks: dict[str, int] = {}
    for row in rows:
        if row["qualifies"] and row["copy_of"] is None:
            ranks[row["task"]] = ranks.get(row["task"], 0) + 1
            row["rank"] = ranks[row["task"]]
        else:
            row["rank"] = None
    return [{column: row.get(column) for column in COLUMNS} for row in rows]


def ranking_score(row: dict) -> float | None:
    """What a results row is ranked by: its one class's F1 on a one-vs-rest task, else its accuracy (None: not ranked)."""
    if positive_class(row["task"]) is not None:
        return row.get("positive_f1")
    return row.get("accuracy")


def _better(candidate: dict, current: dict) -> bool:
    """A student's own run beats a copy; then one that meets the challenge beats one that does not; then the higher score; then the faster run."""

    def merit(row: dict) -> tuple:
        return (row["copy_of"] is None, row["qualifies"], row["score"], -(row["train_seconds"] or 0.0))

    return merit(candidate) > merit(current)
