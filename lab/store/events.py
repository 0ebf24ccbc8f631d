"""The progress events a run reports while it trains, kept in the store's `events` table.

A training job appends events (`train_begin`, `batch_end`, `epoch_end`, ...: plain
dicts with a "kind"); the app polls them by id to draw live progress. `Store` gets
these methods from `ProgressEvents`, which needs only the store's `_read()` and
`_write()` connections (lab.store.interface.StoreConnections).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from lab.store.database import RunNotFoundError, from_json, to_json, utc_now, validate_run_id
from lab.store.interface import StoreConnections


class ProgressEvents(StoreConnections):
    """Append a run's progress events and read them back in order (part of `Store`)."""

    def add_event(self, run_id: str, event: dict) -> int:
        """Append a progress event (a dict with a "kind") to a run; return the event's id."""
        kind = event.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"an event needs a 'kind' such as 'epoch_end'; got {event!r}.")
        try:
            with self._write() as connection:
                cursor = connection.execute(
                    "INSERT INTO events (run_id, created_at, kind, payload_json) VALUES (?, ?, ?, ?)",
                    (validate_run_id(run_id), utc_now(), kind, to_json(event)),
                )
                return cursor.lastrowid
        except sqlite3.IntegrityError as error:  # the foreign key: no such run
            raise RunNotFoundError(f"no run with id {run_id!r} in the store.") from error

    def events(self, run_id: str, after_id: int = 0, kinds: Iterable[str] | None = None, limit: int | None = None) -> list[dict]:
        """A run's events in the order they were added, only those after `after_id` (for polling)."""
        query = "SELECT id, created_at, payload_json FROM events WHERE run_id = ? AND id > ?"
        parameters: list = [validate_run_id(run_id), int(after_id)]
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            query += f" AND kind IN ({', '.join('?' * len(kinds))})"
            parameters += kinds
        query += " ORDER BY id"
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(int(limit))
        with self._read() as connection:
            rows = connection.execute(query, parameters).fetchall()
        return [{**from_json(row["payload_json"]), "id": row["id"], "created_at": row["created_at"]} for row in rows]

    def latest_event(self, run_id: str, kind: str) -> dict | None:
        """The most recent event of one kind, or None."""
        with self._read() as connection:
            row = connection.execute(
                "SELECT id, created_at, payload_json FROM events WHERE run_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                (validate_run_id(run_id), kind),
            ).fetchone()
        return None if row is None else {**from_json(row["payload_json"]), "id": row["id"], "created_at": row["created_at"]}
