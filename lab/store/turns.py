"""Who has had a turn, and how much room the queue has: the store's half of the class's queue limits.

The `turns` table keeps one row per person who ever queued a run: when they first did
(`first_queued_at`) and when a run of theirs last started (`last_started_at`). The fair order
(lab/jobs/fairness.py) reads the second, so deleting your finished runs does not make you look
like someone who never had a turn. The first counts the new people who queued in the last minute.

`check_room` runs inside the write transaction that queues (or resumes) a run, so requests that
arrive at the same moment are counted one after the other and can never slip past a cap together.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from lab.store.database import StoreError

NEW_PEOPLE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class QueueCaps:
    """How much one request may add to the queue; None means no cap.

    `per_owner`: runs one person may have waiting. `total`: runs waiting in the whole class.
    `new_owners_per_minute`: people who may queue their first run within one minute.
    """

    per_owner: int | None = None
    total: int | None = None
    new_owners_per_minute: int | None = None


class QueueFullError(StoreError):
    """An owner already has as many runs waiting as the class allows; `waiting` lists them as (run_id, model)."""

    def __init__(self, waiting: list[tuple[str, str]], limit: int):
        listed = ", ".join(f"{run_id} ({model})" for run_id, model in waiting)
        super().__init__(
            f"you already have {len(waiting)} run{'s' if len(waiting) != 1 else ''} waiting ({listed}); the class allows {limit} at a time: "
            "cancel one, or wait until one starts."
        )
        self.waiting = waiting


class ClassFullError(StoreError):
    """The whole class has reached one of the teacher's caps (runs waiting, new people per minute); the message says which."""


def check_room(connection: sqlite3.Connection, owner_id: str, caps: QueueCaps | None, now: str) -> None:
    """Raise QueueFullError or ClassFullError when one more waiting run for `owner_id` would pass a cap."""
    if caps is None:
        return
    if caps.per_owner is not None:
        waiting = connection.execute(
            "SELECT run_id, model FROM runs WHERE owner_id = ? AND status = 'queued' ORDER BY created_at", (owner_id,)
        ).fetchall()
        if len(waiting) >= caps.per_owner:
            raise QueueFullError([(row["run_id"], row["model"]) for row in waiting], caps.per_owner)
    if caps.total is not None:
        total = connection.execute("SELECT COUNT(*) FROM runs WHERE status = 'queued'").fetchone()[0]
        if total >= caps.total:
            raise ClassFullError(
                f"the class's queue is full: {total} runs are waiting, the most the teacher allows at once. "
                "Press Start again when some have started."
            )
    if caps.new_owners_per_minute is not None and not _has_queued_before(connection, owner_id):
        since = (datetime.fromisoformat(now) - NEW_PEOPLE_WINDOW).isoformat(timespec="milliseconds")
        newcomers = connection.execute("SELECT COUNT(*) FROM turns WHERE first_queued_at > ?", (since,)).fetchone()[0]
        if newcomers >= caps.new_owners_per_minute:
            raise ClassFullError(
                f"{newcomers} people started their first run in the last minute, the most the teacher allows: "
                "wait a minute, then press Start again."
            )


def record_queued(connection: sqlite3.Connection, owner_id: str, now: str) -> None:
    """Remember when `owner_id` first queued a run (nothing changes after the first)."""
    connection.execute("INSERT INTO turns (owner_id, first_queued_at) VALUES (?, ?) ON CONFLICT(owner_id) DO NOTHING", (owner_id, now))


def record_started(connection: sqlite3.Connection, owner_id: str, now: str) -> None:
    """Remember that a run of `owner_id` started now: their turn, kept even when the run is deleted."""
    connection.execute(
        "INSERT INTO turns (owner_id, first_queued_at, last_started_at) VALUES (?, ?, ?)"
        " ON CONFLICT(owner_id) DO UPDATE SET last_started_at = excluded.last_started_at",
        (owner_id, now, now),
    )


def _has_queued_before(connection: sqlite3.Connection, owner_id: str) -> bool:
    return connection.execute("SELECT 1 FROM turns WHERE owner_id = ?", (owner_id,)).fetchone() is not None


# The waiting runs, each with when its owner's latest run started (None: never), oldest first. The
# turns table remembers starts of runs since deleted; the runs' own started_at covers a store made
# before the table existed. COALESCE to '' and NULLIF back, because SQLite's MAX(a, b) is NULL when
# either is.
QUEUED_WITH_OWNERS_LAST_START = """
    SELECT queued.run_id, queued.owner_id, queued.owner_name, queued.created_at,
           NULLIF(MAX(COALESCE((SELECT turns.last_started_at FROM turns WHERE turns.owner_id = queued.owner_id), ''),
                      COALESCE((SELECT MAX(started.started_at) FROM runs AS started
                                 WHERE started.owner_id = queued.owner_id AND started.started_at IS NOT NULL), '')),
                  '') AS owner_last_started
      FROM runs AS queued
     WHERE queued.status = 'queued'
     ORDER BY queued.created_at, queued.rowid
"""
