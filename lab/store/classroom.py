"""What classroom mode keeps in the store: followers of a run, the class's settings, and people's names.

- A student who asks for a run that someone already trained (or is training) with the same
  settings on the same data follows that run instead of training a copy: a `followers` row
  makes the result count as theirs too.
- The class's settings (the teacher's limits and challenge) are JSON values under a key, so
  they survive a restart of the server.
- `people` maps the private identity in a student's address to the name they gave.

`Store` gets these methods from `ClassroomRecords`, which needs the store's `_read`/`_write`.
"""

from __future__ import annotations

from typing import Any

from lab.store.database import from_json, run_from_row, to_json, utc_now, validate_run_id
from lab.store.owners import Person

ACTIVE_AND_DONE = ("queued", "running", "completed")


class ClassroomRecords:
    """Followers, the class's settings and people's names (part of `Store`)."""

    # -- the same settings on the same data -------------------------------------

    def runs_with_settings(self, settings_key: str) -> list[dict]:
        """Queued, running and completed runs with this settings key, newest first."""
        with self._read() as connection:
            rows = connection.execute(
                "SELECT * FROM runs WHERE settings_key = ? AND status IN (?, ?, ?) ORDER BY created_at DESC, rowid DESC",
                (settings_key, *ACTIVE_AND_DONE),
            ).fetchall()
        return [run_from_row(row) for row in rows]

    def follow(self, run_id: str, person: Person) -> None:
        """Let `person` share run `run_id` as if they had started it (nothing happens if it is theirs already)."""
        with self._write() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO followers (run_id, owner_id, owner_name, created_at)"
                " SELECT run_id, ?, ?, ? FROM runs WHERE run_id = ? AND owner_id != ?",
                (person.id, person.name, utc_now(), validate_run_id(run_id), person.id),
            )

    def followers(self, run_id: str) -> list[dict]:
        """Who follows run `run_id`: dicts with owner_id, owner_name and created_at, oldest first."""
        with self._read() as connection:
            rows = connection.execute(
                "SELECT owner_id, owner_name, created_at FROM followers WHERE run_id = ? ORDER BY created_at", (validate_run_id(run_id),)
            ).fetchall()
        return [dict(row) for row in rows]

    def runs_of(self, person_id: str, status: str | tuple[str, ...] | None = None) -> list[dict]:
        """The runs `person_id` started or follows, newest first (each with `followed: bool`)."""
        statuses = (status,) if isinstance(status, str) else status
        where = f" AND runs.status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        parameters = list(statuses or ())
        with self._read() as connection:
            rows = connection.execute(
                "SELECT runs.*, 0 AS followed, runs.created_at AS joined_at FROM runs WHERE runs.owner_id = ?"
                + where
                + " UNION ALL SELECT runs.*, 1 AS followed, followers.created_at AS joined_at FROM runs"
                " JOIN followers ON followers.run_id = runs.run_id WHERE followers.owner_id = ?" + where + " ORDER BY joined_at DESC",
                [person_id, *parameters, person_id, *parameters],
            ).fetchall()
        runs = []
        for row in rows:
            run = run_from_row(row)
            run["followed"] = bool(row["followed"])
            runs.append(run)
        return runs

    # -- the class's settings -------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._read() as connection:
            row = connection.execute("SELECT value_json FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else from_json(row["value_json"])

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as connection:
            connection.execute(
                "INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at",
                (key, to_json(value), utc_now()),
            )

    # -- names behind identities ------------------------------------------------------

    def remember_person(self, person_id: str, name: str) -> None:
        with self._write() as connection:
            connection.execute(
                "INSERT INTO people (person_id, name, created_at) VALUES (?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET name = excluded.name",
                (person_id, name, utc_now()),
            )

    def person_name(self, person_id: str) -> str | None:
        with self._read() as connection:
            row = connection.execute("SELECT name FROM people WHERE person_id = ?", (person_id,)).fetchone()
        return None if row is None else row["name"]
