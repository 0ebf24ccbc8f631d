"""The class leaderboard on Compare: each student's best completed run per task, ranked, for a wall projector.

The board redraws itself (an `st.fragment` with a timer) while the class works, so a projected
Compare page needs no clicks. Its rows come from `lab.classroom.leaderboard` and are cached for
a few seconds across sessions, so thirty open boards cost one computation per refresh, not thirty.
Type is large: the top three per task as big numbers, then the ranking as a table, one row per
person. The teacher's runs stand apart, for reference, never ranked. Nothing on the board is a path
or an id: the run ids wait behind a "details" expander.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import streamlit as st

from lab.classroom.leaderboard import leaderboard
from lab.classroom.limits import Challenge, load_challenge
from lab.jobs.progress import format_seconds
from lab.store.runs import RunStore, Store
from ui.live_region import live_panel
from ui.tasks import balanced_baseline, one_class_of, task_label

REFRESH_SECONDS = 10
PODIUM = 3
BIG_TYPE = {"font-size": "1.35rem", "padding": "0.45rem 0.8rem"}  # readable from the back of a classroom
BIG_HEADER = [{"selector": "th", "props": [("font-size", "1.05rem"), ("font-weight", "600")]}]


def show_leaderboard(store: RunStore) -> None:
    st.title("Class leaderboard")
    st.caption(
        "Each student's best finished run per task, by test accuracy (on a one-vs-rest task, by its class's F1). "
        "The first to train a configuration gets the credit: a classmate who asked for the same run is listed as "
        f"“same as NAME's”, not ranked. Refreshes by itself every {REFRESH_SECONDS} s."
    )
    live_panel(_board, every=REFRESH_SECONDS, name="leaderboard")(str(store.root))


def _board(root: str) -> None:
    store = Store(root)
    challenge = load_challenge(store)
    if challenge is not None:
        st.info(
            f"**Challenge:** {task_label(challenge.task)}, {_budget(challenge)}. Only runs that meet it are ranked.", icon=":material/flag:"
        )
    every_row = class_rows(root, json.dumps(dataclasses.asdict(challenge) if challenge else None))
    rows = [row for row in every_row if not row.get("teacher")]
    teachers = [row for row in every_row if row.get("teacher")]
    ranked = [row for row in rows if row["qualifies"]]
    if not every_row:
        st.info("No finished runs yet: the board fills as the class's runs finish.", icon=":material/hourglass_empty:")
        return
    for task in dict.fromkeys(row["task"] for row in ranked):
        rows_of_task = [row for row in ranked if row["task"] == task]
        st.subheader(task_label(task))
        one_class = one_class_of(task)
        if one_class:  # 90% is what saying "no" every time scores: the class's F1 ranks instead
            st.caption(
                f"Always answering “not {one_class}” scores {balanced_baseline(task):.0%} accuracy here, and an F1 of 0 for "
                f"{one_class}: ranked by that F1, which is high only when the model finds the {one_class} pictures "
                "and rarely cries wolf."
            )
        _podium([row for row in rows_of_task if row["rank"] is not None][:PODIUM], one_class)
        st.table(_big(ranking_frame(rows_of_task, one_class)), hide_index=True)
    if not ranked:  # with the teacher's runs alone, no student has finished one yet
        st.warning("No run meets the challenge yet." if rows else "No student's run has finished yet.", icon=":material/flag:")
    others = [row for row in rows if not row["qualifies"]]
    if others:
        st.subheader("Not ranked for the challenge")
        st.table(_big(not_ranked_frame(others)), hide_index=True)
    if teachers:
        st.subheader("The teacher's runs, for reference")
        st.caption("Not ranked: the teacher may train what the class's limits do not allow students, to show where the class could go.")
        st.table(_big(teacher_frame(teachers)), hide_index=True)
    with st.expander("Details: which run is whose", icon=":material/info:"):
        st.caption("The run ids, for finding a run under Compare's “Every run”.")
        st.dataframe(details_frame(every_row), hide_index=True)


def _budget(challenge: Challenge) -> str:
    limits = []
    if challenge.max_train_seconds is not None:
        limits.append(f"at most {format_seconds(challenge.max_train_seconds)} of training")
    if challenge.max_params is not None:
        limits.append(f"at most {challenge.max_params:,} parameters")
    return " and ".join(limits) or "best accuracy"


@st.cache_data(ttl=REFRESH_SECONDS / 2, show_spinner=False, max_entries=16)
def class_rows(root: str, challenge_json: str) -> list[dict]:
    """The leaderboard's rows for the store at `root` under a challenge (JSON, or "null"), cached briefly for every session."""
    values = json.loads(challenge_json)
    return leaderboard(Store(root), Challenge(**values) if values else None)


def _podium(rows: list[dict], one_class: str | None = None) -> None:
    if not rows:
        return
    for column, row in zip(st.columns(PODIUM), rows, strict=False):
        shown = f"{one_class} F1 {row['score']:.2f}" if one_class else f"{row['accuracy']:.1%}"
        column.metric(f"{row['rank']}. {row['student']}", shown, help=_details(row), border=True)


def _details(row: dict) -> str:
    return f"{row['model']} · {format_seconds(row['train_seconds'])} of training · {row['total_params'] or 0:,} parameters"


def ranking_frame(rows: list[dict], one_class: str | None = None) -> pd.DataFrame:
    """The ranked rows as text, formatted once here, so the projected table shows exactly this."""
    ranked_by = {f"{one_class} F1": [f"{row['score']:.2f}" for row in rows]} if one_class else {}
    return pd.DataFrame(
        {
            "rank": [str(row["rank"]) if row["rank"] is not None else "–" for row in rows],
            "student": [student_label(row) for row in rows],
            **ranked_by,
            "accuracy": [f"{row['accuracy']:.1%}" for row in rows],
            "training time": [format_seconds(row["train_seconds"]) for row in rows],
            "parameters": [f"{row['total_params'] or 0:,}" for row in rows],
            "changed from the preset": [row["options"] or "nothing" for row in rows],
            "model": [row["model"] for row in rows],
        }
    )


def not_ranked_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "student": [student_label(row) for row in rows],
            "task": [task_label(row["task"]) for row in rows],
            "accuracy": [f"{row['accuracy']:.1%}" for row in rows],
            "why not ranked": [row["why_not"] for row in rows],
        }
    )


def teacher_frame(rows: list[dict]) -> pd.DataFrame:
    """The teacher's rows: what they trained and scored, beside the class's, without a rank."""
    return pd.DataFrame(
        {
            "task": [task_label(row["task"]) for row in rows],
            "model": [row["model"] for row in rows],
            "accuracy": [f"{row['accuracy']:.1%}" for row in rows],
            "training time": [format_seconds(row["train_seconds"]) for row in rows],
            "note": ["teacher's, for reference" for _ in rows],
        }
    )


def details_frame(rows: list[dict]) -> pd.DataFrame:
    """Every row's run id, behind the board's "details" expander (ids are no use on a projector)."""
    return pd.DataFrame(
        {
            "who": [f"{row['student']} (teacher's run)" if row.get("teacher") else student_label(row) for row in rows],
            "task": [task_label(row["task"]) for row in rows],
            "run id": [row["run_id"] for row in rows],
        }
    )


def student_label(row: dict) -> str:
    """The student's name; for a copy of a classmate's run, "Ben (same as Ana's)": the credit stays with who trained it first."""
    return f"{row['student']} (same as {row['copy_of']}'s)" if row.get("copy_of") else row["student"]


def _big(frame: pd.DataFrame):
    return frame.style.set_properties(**BIG_TYPE).set_table_styles(BIG_HEADER)


def refresh_now() -> None:
    """Drop the cached rows (after the teacher clears runs or changes the challenge), so every board redraws at once."""
    class_rows.clear()
