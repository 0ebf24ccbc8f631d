"""The class leaderboard: each student's best completed run per task, ranked.

A run counts for its owner and for every student who followed it (asked for the same settings
on the same data and got its result instead of training a copy). With a challenge set, only the
runs that meet it are ranked; the others are listed after them, each with the reason.
"""

from __future__ import annotations

from lab.classroom.limits import Challenge
from lab.report.results_table import results_row
from lab.store.runs import Store

COLUMNS = ("rank", "student", "task", "accuracy", "train_seconds", "total_params", "options", "model", "run_id", "qualifies", "why_not")


def leaderboard(store: Store, challenge: Challenge | None = None) -> list[dict]:
    """One row per student and task: their best run by test accuracy, best first within each task.

    `rank` counts within a task (1 = best); rows that do not meet the challenge have no rank,
    `qualifies` False and `why_not` saying why, and come after the ranked ones.
    """
    best: dict[tuple[str, str], dict] = {}
    for run in store.list_runs(status="completed"):
        row = results_row(run)
        if row.get("accuracy") is None:
            continue
        students = [(run["owner_id"], run.get("owner_name") or run["owner_id"])]
        students += [(follower["owner_id"], follower["owner_name"]) for follower in store.followers(run["run_id"])]
        why_not = challenge.why_not(row) if challenge is not None else None
        for student_id, name in students:
            entry = {**row, "student": name, "qualifies": why_not is None, "why_not": why_not or ""}
            key = (student_id, row["task"])
            if key not in best or _better(entry, best[key]):
                best[key] = entry
    rows = sorted(best.values(), key=lambda row: (not row["qualifies"], row["task"], -row["accuracy"], row["train_seconds"] or 0.0))
    ranks: dict[str, int] = {}
    for row in rows:
        if row["qualifies"]:
            ranks[row["task"]] = ranks.get(row["task"], 0) + 1
            row["rank"] = ranks[row["task"]]
        else:
            row["rank"] = None
    return [{column: row.get(column) for column in COLUMNS} for row in rows]


def _better(candidate: dict, current: dict) -> bool:
    """A run that meets the challenge beats one that does not; then the higher accuracy; then the faster run."""
    return (candidate["qualifies"], candidate["accuracy"], -(candidate["train_seconds"] or 0.0)) > (
        current["qualifies"],
        current["accuracy"],
        -(current["train_seconds"] or 0.0),
    )
