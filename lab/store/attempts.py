"""Sign-in attempts: every time someone tried a password, when, from which identity, and whether it was accepted.

The rule that reads them (how many wrong guesses lock the teacher's sign-in, and for how long)
lives in lab/classroom/teacher.py; this file only keeps the record. The record is shared by
every session and every process that uses the store, so a limit read from it holds for the
whole deployment, however many browsers guess at once.

A check that reads the record and then adds to it must see no other attempt in between:
`sign_in_ledger()` is one write transaction (BEGIN IMMEDIATE), so a second guess waits until
the first is read, judged and recorded.

`Store` gets these methods from `SignInAttempts`, which needs the store's `_read`/`_write` (lab.store.interface.StoreConnections).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from lab.store.database import utc_now
from lab.store.interface import SignInLedger, StoreConnections


def stamp(moment: datetime | None) -> str:
    """A moment as the store writes it (ISO 8601, UTC, fixed width): text order is time order."""
    return utc_now() if moment is None else moment.isoformat(timespec="milliseconds")


class AttemptLedger:
    """The attempts table inside one open write transaction: read and record with no other writer in between."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    def record(
        self, kind: str, *, ok: bool, person_id: str | None = None, person_name: str | None = None, at: datetime | None = None
    ) -> None:
        self._connection.execute(
            "INSERT INTO sign_in_attempts (kind, at, person_id, person_name, ok) VALUES (?, ?, ?, ?, ?)",
            (kind, stamp(at), person_id, person_name, int(bool(ok))),
        )

    def since(self, kinds: Iterable[str], after_id: int | None = None) -> list[dict]:
        """Attempts of these kinds recorded after the attempt numbered `after_id` (all of them when None), oldest first.

        Numbers, not times, say what came after: they follow the order the attempts were recorded in.
        """
        kinds = tuple(kinds)
        query = f"SELECT * FROM sign_in_attempts WHERE kind IN ({', '.join('?' * len(kinds))})"
        parameters: list = list(kinds)
        if after_id is not None:
            query += " AND id > ?"
            parameters.append(int(after_id))
        rows = self._connection.execute(query + " ORDER BY id", parameters).fetchall()
        return [attempt_from_row(row) for row in rows]

    def last(self, kinds: Iterable[str], *, ok: bool | None = None) -> dict | None:
        """The newest attempt of these kinds (only accepted or only refused ones when `ok` is given), or None."""
        kinds = tuple(kinds)
        query = f"SELECT * FROM sign_in_attempts WHERE kind IN ({', '.join('?' * len(kinds))})"
        parameters: list = list(kinds)
        if ok is not None:
            query += " AND ok = ?"
            parameters.append(int(ok))
        row = self._connection.execute(query + " ORDER BY id DESC LIMIT 1", parameters).fetchone()
        return None if row is None else attempt_from_row(row)

    def forget(self, kinds: Iterable[str], *, before: datetime, below_id: int | None = None) -> int:
        """Delete the attempts of these kinds recorded before `before` (and numbered below `below_id`, when given).

        Returns how many went. Which attempts may go is the caller's rule (lab/classroom/teacher.py).
        """
        kinds = tuple(kinds)
        query = f"DELETE FROM sign_in_attempts WHERE kind IN ({', '.join('?' * len(kinds))}) AND at < ?"
        parameters: list = [*kinds, stamp(before)]
        if below_id is not None:
            query += " AND id < ?"
            parameters.append(int(below_id))
        return self._connection.execute(query, parameters).rowcount


def attempt_from_row(row: sqlite3.Row) -> dict:
    attempt = dict(row)
    attempt["ok"] = bool(attempt["ok"])
    attempt["at"] = datetime.fromisoformat(attempt["at"])
    return attempt


class SignInAttempts(StoreConnections):
    """The record of sign-in attempts (part of `Store`)."""

    def sign_in_ledger(self) -> AbstractContextManager[SignInLedger]:
        """One write transaction over the attempts: whatever is read and recorded inside it happens as one step."""
        return self._ledger()

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[AttemptLedger]:
        with self._write() as connection:
            yield AttemptLedger(connection)

    def record_sign_in_attempt(
        self, kind: str, *, ok: bool, person_id: str | None = None, person_name: str | None = None, at: datetime | None = None
    ) -> None:
        with self.sign_in_ledger() as ledger:
            ledger.record(kind, ok=ok, person_id=person_id, person_name=person_name, at=at)

    def recent_sign_in_attempts(self, kinds: Iterable[str], limit: int = 100) -> list[dict]:
        """The newest `limit` attempts of these kinds, newest first: dicts with id, kind, at (a datetime), person_id, person_name, ok."""
        kinds = tuple(kinds)
        with self._read() as connection:
            rows = connection.execute(
                f"SELECT * FROM sign_in_attempts WHERE kind IN ({', '.join('?' * len(kinds))}) ORDER BY at DESC, id DESC LIMIT ?",
                (*kinds, int(limit)),
            ).fetchall()
        return [attempt_from_row(row) for row in rows]

    def sign_in_failures_since(self, kind: str, since: datetime) -> int:
        """How many attempts of `kind` were refused after `since`."""
        with self._read() as connection:
            row = connection.execute(
                "SELECT COUNT(*) FROM sign_in_attempts WHERE kind = ? AND ok = 0 AND at > ?", (kind, stamp(since))
            ).fetchone()
        return int(row[0])
