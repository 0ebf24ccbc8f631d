"""The class leaderboard: each student's best completed run per task, ranked.

Runs are ranked by test accuracy, except on a one-vs-rest task: there a model that always says
"no" already scores 90%, so the board ranks by the F1 of the one class (how well the model both
finds its pictures and avoids false alarms), with accuracy shown beside it.

A run counts for its owner and for every student who followed it (asked for the same settings
on the same data and got its result instead of training a copy). With a challenge set, only the
runs that meet it are ranked; the others are listed after them, each with the reason.
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
    "qualifies",
    "why_not",
)


def leaderboard(store: Store, challenge: Challenge | None = None) -> list[dict]:
    """One row per student and task: their best run by `score`, best first within each task.

    `rank` counts within a task (1 = best); rows that do not meet the challenge have no rank,
    `qualifies` False and `why_not` saying why, and come after the ranked ones.
    """
    best: dict[tuple[str, str], dict] = {}
    for run in store.list_runs(status="completed"):
        row = results_row(run)
        row["score"] = ranking_score(row)
        if row["score"] is None:
            continue
        students = [(run["owner_id"], run.get("owner_name") or run["owner_id"])]
        students += [(follower["owner_id"], follower["owner_name"]) for follower in store.followers(run["run_id"])]
        why_not = challenge.why_not(row) if challenge is not None else None
        for student_id, name in students:
            entry = {**row, "student": name, "qualifies": why_not is None, "why_not": why_not or ""}
            key = (student_id, row["task"])
            if key not in best or _better(entry, best[key]):
                best[key] = entry
    rows = sorted(best.values(), key=lambda row: (not row["qualifies"], row["task"], -row["score"], row["train_seconds"] or 0.0))
    ranks: dict[str, int] = {}
    for row in rows:
        if row["qualifies"]:
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
    """A run that meets the challenge beats one that does not; then the higher score; then the faster run."""
    return (candidate["qualifies"], candidate["score"], -(candidate["train_seconds"] or 0.0)) > (
        current["qualifies"],
        current["score"],
        -(current["train_seconds"] or 0.0),
    )
