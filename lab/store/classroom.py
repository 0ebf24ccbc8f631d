"""What classroom mode keeps in the store: followers of a run, the class's settings, and people's names.

- A student who asks for a run that someone already trained (or is training) with the same
  settings on the same data follows that run instead of training a copy: a `followers` row
  makes the result count as theirs too. A shared run belongs to everyone who follows it, so
  nobody's action removes another's result: when its owner cancels or deletes it, it passes to
  the earliest follower (`hand_over`); when its owner stops it and keeps the model, the same
  settings are queued again for the followers (`queue_again_for_followers`). The store's
  request_cancel and delete_run call these inside their own write transaction.
- The class's settings (the teacher's limits and challenge) are JSON values under a key, so
  they survive a restart of the server.
- `people` holds each student's public id, the name they gave (and its key for comparing names),
  and the hash of the secret they rejoin with; `browser_tokens` the hashes of the tokens their
  browsers keep in a cookie; `sign_in_attempts` (kind "rejoin") the rejoin guesses.

`Store` gets these methods from `ClassroomRecords`, which needs the store's `_read`/`_write` (lab.store.interface.StoreConnections).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from lab.store import turns
from lab.store.database import from_json, run_from_row, to_json, utc_now, validate_run_id
from lab.store.interface import StoreConnections
from lab.store.owners import Person
from lab.store.records import Run, Status

REJOIN = "rejoin"  # the kind of the sign_in_attempts rows a rejoin writes
ACTIVE_AND_DONE = (Status.QUEUED, Status.RUNNING, Status.COMPLETED)


class ClassroomRecords(StoreConnections):
    """Followers, the class's settings, people's names and their browsers (part of `Store`)."""

    # -- the same settings on the same data -------------------------------------

    def runs_with_settings(self, settings_key: str) -> list[Run]:
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

    def follower_ids(self, run_id: str) -> set[str]:
        """The identities that follow run `run_id`."""
        return {follower["owner_id"] for follower in self.followers(run_id)}

    def runs_of(self, person_id: str, status: Status | tuple[Status, ...] | None = None) -> list[Run]:
        """The runs `person_id` started or follows, newest first (`Run.followed` says which they follow)."""
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
        return [run_from_row(row) for row in rows]  # each row's `followed` column becomes Run.followed

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
    # A person's public id (what runs.owner_id holds) is not what their browser proves it with: each
    # browser keeps a random token in a cookie, and the store keeps only that token's SHA-256, so
    # nothing read from the store lets anyone be someone. lab/classroom/identities.py makes both.

    def add_person(self, person_id: str, name: str, *, name_key: str, secret_hash: str | None) -> bool:
        """Record a new person, unless someone already has the same name key; False when the name is taken.

        The check and the insert are one write transaction, so two students joining with the same
        name at the same moment cannot both get it.
        """
        with self._write() as connection:
            added = connection.execute(
                "INSERT INTO people (person_id, name, name_key, secret_hash, created_at) SELECT ?, ?, ?, ?, ?"
                " WHERE NOT EXISTS (SELECT 1 FROM people WHERE name_key = ?)",
                (person_id, name, name_key, secret_hash, utc_now(), name_key),
            ).rowcount
        return added == 1

    def remember_person(self, person_id: str, name: str, *, name_key: str = "") -> None:
        """Record (or rename) a person known by an id made elsewhere, such as a login; no secret, no browser token."""
        with self._write() as connection:
            connection.execute(
                "INSERT INTO people (person_id, name, name_key, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(person_id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key",
                (person_id, name, name_key, utc_now()),
            )

    def person_name(self, person_id: str) -> str | None:
        with self._read() as connection:
            row = connection.execute("SELECT name FROM people WHERE person_id = ?", (person_id,)).fetchone()
        return None if row is None else row["name"]

    def people(self) -> list[dict]:
        """Everyone who joined: dicts with person_id, name, name_key and created_at (never the secret's hash), oldest first."""
        with self._read() as connection:
            rows = connection.execute("SELECT person_id, name, name_key, created_at FROM people ORDER BY created_at, person_id").fetchall()
        return [dict(row) for row in rows]

    def name_keys(self) -> set[str]:
        with self._read() as connection:
            return {row["name_key"] for row in connection.execute("SELECT DISTINCT name_key FROM people WHERE name_key != ''")}

    def people_with_name_key(self, name_key: str) -> list[dict]:
        """The people whose name reads as `name_key`, with their secret's hash (None: they cannot rejoin)."""
        with self._read() as connection:
            rows = connection.execute(
                "SELECT person_id, name, name_key, secret_hash, created_at FROM people WHERE name_key = ? ORDER BY created_at", (name_key,)
            ).fetchall()
        return [dict(row) for row in rows]

    def add_browser_token(self, token_hash: str, person_id: str) -> None:
        now = utc_now()
        with self._write() as connection:
            connection.execute(
                "INSERT INTO browser_tokens (token_hash, person_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
                (token_hash, person_id, now, now),
            )

    def person_for_token_hash(self, token_hash: str, *, seen: bool = False) -> dict | None:
        """The person (person_id, name) a browser token's hash belongs to, or None; `seen` notes the visit."""
        with self._write() if seen else self._read() as connection:
            row = connection.execute(
                "SELECT people.person_id, people.name FROM browser_tokens JOIN people ON people.person_id = browser_tokens.person_id"
                " WHERE browser_tokens.token_hash = ?",
                (token_hash,),
            ).fetchone()
            if row is not None and seen:
                connection.execute("UPDATE browser_tokens SET last_seen_at = ? WHERE token_hash = ?", (utc_now(), token_hash))
        return None if row is None else dict(row)

    def forget_browser_token(self, token_hash: str) -> bool:
        """End one browser's identity; False when there was no such token."""
        with self._write() as connection:
            return connection.execute("DELETE FROM browser_tokens WHERE token_hash = ?", (token_hash,)).rowcount == 1

    def browser_token_count(self, person_id: str) -> int:
        """How many browsers hold `person_id`'s identity now."""
        with self._read() as connection:
            return connection.execute("SELECT COUNT(*) FROM browser_tokens WHERE person_id = ?", (person_id,)).fetchone()[0]

    # Rejoin attempts share sign_in_attempts (kind "rejoin") with the teacher password's, for limits
    # that hold for the whole deployment, however many browsers or sessions guess at once.

    def record_rejoin_attempt(self, *, person_id: str | None, person_name: str, ok: bool, at: str | None = None) -> None:
        with self._write() as connection:
            connection.execute(
                "INSERT INTO sign_in_attempts (kind, at, person_id, person_name, ok) VALUES (?, ?, ?, ?, ?)",
                (REJOIN, at or utc_now(), person_id, person_name, int(ok)),
            )

    def wrong_rejoins_since(self, since: str, person_ids: list[str] | None = None) -> list[str]:
        """When the wrong rejoin secrets since `since` (ISO UTC) were typed, oldest first: for everyone, or for these people."""
        where, parameters = "", []
        if person_ids is not None:
            if not person_ids:
                return []
            where, parameters = f" AND person_id IN ({', '.join('?' * len(person_ids))})", list(person_ids)
        with self._read() as connection:
            rows = connection.execute(
                "SELECT at FROM sign_in_attempts WHERE kind = ? AND ok = 0 AND at >= ?" + where + " ORDER BY at",
                [REJOIN, since, *parameters],
            ).fetchall()
        return [row["at"] for row in rows]


# -- shared runs: what the owner's cancel, stop or delete leaves to the followers (inside the store's write transaction)


def followers_in(connection: sqlite3.Connection, run_id: str) -> list[sqlite3.Row]:
    """The followers of `run_id`, earliest first."""
    return connection.execute(
        "SELECT owner_id, owner_name FROM followers WHERE run_id = ? ORDER BY created_at, rowid", (run_id,)
    ).fetchall()


def hand_over(connection: sqlite3.Connection, run_id: str, heir: sqlite3.Row) -> None:
    """Make the earliest follower `heir` the run's owner; their follower row goes (they own it now)."""
    connection.execute(
        "UPDATE runs SET owner_id = ?, owner_name = ?, updated_at = ? WHERE run_id = ?",
        (heir["owner_id"], heir["owner_name"], utc_now(), run_id),
    )
    connection.execute("DELETE FROM followers WHERE run_id = ? AND owner_id = ?", (run_id, heir["owner_id"]))


def queue_again_for_followers(connection: sqlite3.Connection, run_id: str, followers: list[sqlite3.Row], new_run_id: str) -> None:
    """Queue run `run_id`'s settings again as `new_run_id`, owned by the earliest follower and followed by the others.

    The stopped run stays its owner's, with fewer epochs than asked: it forgets its settings key,
    so a later request with those settings finds the new run, not the one that stopped early.
    """
    run = connection.execute("SELECT model, task, config_json, settings_key FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    now = utc_now()
    heir, others = followers[0], followers[1:]
    connection.execute(
        "INSERT INTO runs (run_id, created_at, updated_at, status, model, task, config_json, owner_id, owner_name, settings_key)"
        " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
        (new_run_id, now, now, run["model"], run["task"], run["config_json"], heir["owner_id"], heir["owner_name"], run["settings_key"]),
    )
    connection.executemany(
        "INSERT INTO followers (run_id, owner_id, owner_name, created_at) VALUES (?, ?, ?, ?)",
        [(new_run_id, other["owner_id"], other["owner_name"], now) for other in others],
    )
    connection.execute("DELETE FROM followers WHERE run_id = ?", (run_id,))
    connection.execute("UPDATE runs SET settings_key = NULL WHERE run_id = ?", (run_id,))
    turns.record_queued(connection, heir["owner_id"], now)
