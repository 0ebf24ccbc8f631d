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

Rows key on the person's id, never their name: one row per person and task, however many windows
they used. The teacher's runs (asked for in a teacher session, `mark_teacher_run`, or owned by the
teacher's own or the command line's identity) are rows for reference (`teacher` True), never ranked:
a demonstration on the full data set is not a classmate to beat.
"""

from __future__ import annotations

from lab.classroom.limits import Challenge
from lab.config import positive_class
from lab.report.results_table import results_row
from lab.store.interface import RunStore
from lab.store.owners import LOCAL_ID, Person
from lab.store.records import Status

TEACHER_RUNS_KEY = "teacher_runs"  # the store setting listing the runs a teacher session asked for
TEACHER_IDS = ("teacher", LOCAL_ID)  # the teacher who never joined as a person, and the command line's user

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
    "teacher",  # True for the teacher's runs: shown for reference, never ranked
    "person_id",  # whose row it is (rows key on it; never shown)
)


def mark_teacher_run(store: RunStore, run_id: str, *, by: Person) -> None:
    """Remember that the teacher asked for `run_id`, so the leaderboard shows it for reference; anyone else's request is not marked."""
    if not by.is_teacher:
        return
    marked = list(store.get_setting(TEACHER_RUNS_KEY) or [])
    if run_id not in marked:
        store.set_setting(TEACHER_RUNS_KEY, [*marked, run_id])


def teacher_run_ids(store: RunStore) -> set[str]:
    return set(store.get_setting(TEACHER_RUNS_KEY) or [])


def leaderboard(store: RunStore, challenge: Challenge | None = None) -> list[dict]:
    """One row per person and task: their best run by `score`, best first within each task; the teacher's rows last.

    `rank` counts within a task (1 = best) over the rows that are no copy; rows that do not meet
    the challenge have no rank, `qualifies` False and `why_not` saying why, and come after the
    ranked ones. A copy (`copy_of` set) has no rank and comes after the ranked rows of its task.
    The teacher's rows (`teacher` True) have no rank and come after everyone's.
    """
    completed = sorted(store.list_runs(status=Status.COMPLETED), key=lambda run: (run.created_at, run.run_id))
    teachers_runs = teacher_run_ids(store)
    first_of: dict[str, tuple[str, str]] = {}  # settings key -> (id, name) of who trained it first
    best: dict[tuple[bool, str, str], dict] = {}
    for run in completed:
        row = results_row(run)
        row["score"] = ranking_score(row)
        if row["score"] is None:
            continue
        owner = (run.owner_id, run.owner_name or run.owner_id)
        key = run.settings_key
        first = first_of.setdefault(key, owner) if key else owner
        owner_copy = None if first[0] == owner[0] else first[1]
        by_teacher = run.run_id in teachers_runs or run.owner_id in TEACHER_IDS
        people = [(*owner, owner_copy, by_teacher)]
        people += [(follower["owner_id"], follower["owner_name"], first[1], False) for follower in store.followers(run.run_id)]
        why_not = challenge.why_not(row) if challenge is not None else None
        for person_id, name, copy_of, teacher in people:
            entry = {**row, "student": name, "person_id": person_id, "copy_of": copy_of, "teacher": teacher}
            entry |= {"qualifies": why_not is None, "why_not": why_not or ""}
            place = (teacher, person_id, row["task"])  # a teacher's demonstration never stands in for their rows as a person
            if place not in best or _better(entry, best[place]):
                best[place] = entry
    rows = sorted(
        best.values(),
        key=lambda row: (
            row["teacher"],
            not row["qualifies"],
            row["task"],
            row["copy_of"] is not None,
            -row["score"],
            row["train_seconds"] or 0.0,
        ),
    )
    ranks: dict[str, int] = {}
    for row in rows:
        if row["qualifies"] and row["copy_of"] is None and not row["teacher"]:
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
