"""The store's SQL, written once for SQLite, run on PostgreSQL through a thin connection adapter.

The store's mixins (runs, events, classroom records, attempts, turns) speak SQLite's dialect through
a `sqlite3.Connection`. Rather than write every query twice, `PostgresConnection` offers the same
few methods (`execute`, `executemany`, rows readable by name and by position) and rewrites the few
spellings where the two dialects differ:

- placeholders: SQLite's `?` becomes psycopg's `%s`;
- `INSERT OR IGNORE INTO ...` becomes `INSERT INTO ... ON CONFLICT DO NOTHING`;
- SQLite's two-argument `MAX(a, b)` (the larger of two values) is PostgreSQL's `GREATEST(a, b)`;
- `rowid`, SQLite's hidden insertion order, is a real identity column named `rowid` in PostgreSQL;
- `CASE WHEN ? THEN` (a Python bool as the condition) compares an integer, since booleans travel as 0/1;
- an INSERT into a table with an `id` identity column returns it, so `cursor.lastrowid` works.

Errors come back as SQLite's classes too (`sqlite3.IntegrityError` for a duplicate key or a missing
run), so code that retries on a clash of random ids works unchanged on both databases.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# Tables whose INSERTs return their `id` identity column (read through cursor.lastrowid).
TABLES_WITH_ID = ("events", "sign_in_attempts")


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's spelling of a statement -> PostgreSQL's (see the module docstring for the list)."""
    if sql.strip().upper() == "PRAGMA INTEGRITY_CHECK":
        # PostgreSQL checks its own pages as it reads them; there is no whole-database check to ask for.
        return "SELECT 'ok'"
    text = sql.replace("%", "%%")  # a literal % would read as a psycopg placeholder
    text = re.sub(r"CASE WHEN \? THEN", "CASE WHEN ? <> 0 THEN", text)
    text = text.replace("?", "%s")
    text = text.replace("NULLIF(MAX(", "NULLIF(GREATEST(")
    if re.match(r"\s*INSERT OR IGNORE INTO", text, re.IGNORECASE):
        text = re.sub(r"INSERT OR IGNORE INTO", "INSERT INTO", text, count=1, flags=re.IGNORECASE) + " ON CONFLICT DO NOTHING"
    table = re.match(r"\s*INSERT INTO (\w+)", text, re.IGNORECASE)
    if table and table.group(1) in TABLES_WITH_ID and "RETURNING" not in text.upper():
        text += " RETURNING id"
    return text


def plain_parameter(value: Any) -> Any:
    """A parameter as both databases store it: booleans as 0/1, a str subclass (a Status) as its text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and type(value) is not str:
        return str(value)
    return value


class Row(dict):
    """A result row readable like `sqlite3.Row`: by column name (`row["status"]`) and by position (`row[0]`).

    The `rowid` column PostgreSQL needs for insertion order is left out, as SQLite leaves it out of `SELECT *`.
    """

    def __init__(self, names: Sequence[str], values: Sequence[Any]):
        super().__init__((name, value) for name, value in zip(names, values, strict=True) if name != "rowid")
        self._values = tuple(value for name, value in zip(names, values, strict=True) if name != "rowid")

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._values[key]
        return super().__getitem__(key)


class PostgresCursor:
    """What `PostgresConnection.execute` returns: fetchone/fetchall, iteration, rowcount and lastrowid."""

    def __init__(self, cursor, returned_id: bool):
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = None
        self._first = None
        if returned_id:
            self._first = cursor.fetchone()
            self.lastrowid = self._first[0] if self._first else None

    def _row(self, values) -> Row | None:
        if values is None:
            return None
        return Row([column.name for column in self._cursor.description], values)

    def fetchone(self) -> Row | None:
        if self._cursor.description is None:
            return None
        return self._row(self._cursor.fetchone())

    def fetchall(self) -> list[Row]:
        if self._cursor.description is None:
            return []
        return [self._row(values) for values in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class PostgresConnection:
    """A psycopg connection that accepts the store's SQLite statements (see the module docstring)."""

    def __init__(self, connection):
        self.raw = connection

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> PostgresCursor:
        import psycopg

        statement = translate(sql)
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement, [plain_parameter(value) for value in parameters] or None)
        except psycopg.IntegrityError as error:
            # The same class SQLite raises: callers retry a clashing id or report a missing run alike.
            raise sqlite3.IntegrityError(str(error).splitlines()[0]) from error
        return PostgresCursor(cursor, returned_id=statement.endswith(" RETURNING id"))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        import psycopg

        try:
            self.raw.cursor().executemany(translate(sql), [[plain_parameter(value) for value in row] for row in rows])
        except psycopg.IntegrityError as error:
            raise sqlite3.IntegrityError(str(error).splitlines()[0]) from error
