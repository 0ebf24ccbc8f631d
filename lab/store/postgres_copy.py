"""Copy a whole results store to another one: SQLite to PostgreSQL when a class moves to a server, and back.

`python -m lab store copy --to postgresql://...` (lab/cli/store_commands.py) calls `copy_store`. Every
table is copied row by row in the order the rows were added (so "oldest first" stays true), and every
completed run's files with it. The destination must be empty: a copy never merges two classes' work,
so nothing can end up stored twice. Both ends are ordinary stores, so one function copies either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.store import files as store_files
from lab.store.database import StoreError
from lab.store.records import Status

# Parents before children (followers and events point at runs), so foreign keys hold at every step.
TABLES = ("runs", "followers", "events", "settings", "people", "sign_in_attempts", "browser_tokens", "turns")
# The order rows are copied in: the order they were added where queries rely on it (runs and followers have a
# rowid in both databases, events and attempts an id), else their own columns.
ORDER = {
    "runs": "rowid",
    "followers": "rowid",
    "events": "id",
    "sign_in_attempts": "id",
    "settings": "key",
    "people": "created_at, person_id",
    "browser_tokens": "created_at, token_hash",
    "turns": "first_queued_at, owner_id",
}
IDENTITY_COLUMNS = {"events": "id", "sign_in_attempts": "id"}


@dataclass
class CopySummary:
    """What was copied: rows per table, and how many runs' files."""

    rows: dict[str, int] = field(default_factory=dict)
    run_folders: int = 0

    def sentence(self) -> str:
        tables = ", ".join(f"{count} {table}" for table, count in self.rows.items() if count)
        return f"Copied {tables or 'nothing (the store was empty)'}; files of {self.run_folders} completed runs."


def copy_store(source, destination) -> CopySummary:
    """Copy every row and every completed run's files from store `source` into store `destination`, which must be empty."""
    _check_empty(destination)
    summary = CopySummary()
    with source._read() as reading, destination._write() as writing:
        for table in TABLES:
            rows = reading.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}").fetchall()
            summary.rows[table] = len(rows)
            if rows:
                columns = list(rows[0].keys())
                statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                writing.executemany(statement, [[row[name] for name in columns] for row in rows])
        if _is_postgres(destination):
            for table, column in IDENTITY_COLUMNS.items():
                # Rows came with their ids: the next id handed out must come after them.
                writing.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
                )
    for run in source.list_runs(status=Status.COMPLETED):
        summary.run_folders += _copy_run_files(source, destination, run.run_id)
    return summary


def _copy_run_files(source, destination, run_id: str) -> int:
    folder = source.run_dir(run_id)  # a PostgreSQL source fetches it from the database if it is not cached
    if not folder.is_dir():
        return 0
    files = {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}
    copied = store_files.write_run_folder(destination.runs_folder, run_id, files)
    with destination._write() as connection:
        destination._keep_run_files(connection, run_id, copied)  # into the database when the destination is PostgreSQL
    return 1


def _check_empty(destination) -> None:
    with destination._read() as connection:
        count = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        people = connection.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    if count or people:
        raise StoreError(
            f"the destination already holds {count} runs and {people} people: a copy goes into an empty store only, "
            "so that nothing is stored twice. Use a new database (or folder), or empty it first."
        )


def _is_postgres(store) -> bool:
    from lab.store.postgres import PostgresMixin

    return isinstance(store, PostgresMixin)
