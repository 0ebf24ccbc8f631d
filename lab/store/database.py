"""The database half of the results store: errors, run ids and statuses, JSON columns, the schema.

Why SQLite: one file, no server, and safe when several processes use it at
once, which is exactly the lab's situation: a training job writes progress
events from its own process while the Streamlit app (many threads) reads them.

Three settings make that work:
- WAL journal mode: readers never wait for the writer, nor the writer for readers.
- busy_timeout: a writer that finds another writer busy waits (up to 30 s)
  instead of failing at once with "database is locked".
- a fresh connection per operation and short transactions, so no connection is
  shared between threads and no lock is held while Python does slow work.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.store.records import Run, Status, stored_config

DATABASE_NAME = "lab.sqlite3"
BUSY_TIMEOUT_SECONDS = 30.0

# A run id becomes a folder name, so it must never be able to climb out of the
# store: letters, digits, dot, dash and underscore only, starting with a letter or digit.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


class StoreError(RuntimeError):
    """The results store cannot do what was asked (unwritable folder, missing model, ...)."""


# How every message about a database server that does not answer begins (the sidebar looks for it).
NOT_ANSWERING = "The class's database is not answering right now"


class DatabaseUnavailableError(StoreError):
    """The store's database server does not answer (down, unreachable, refusing the login): lab/store/postgres.py."""


class RunNotFoundError(StoreError, LookupError):
    """No run with this id exists in the store."""


def validate_run_id(run_id: str) -> str:
    """Return `run_id` unchanged if it is safe to use as a folder name, else raise ValueError."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise ValueError(
            f"run id {run_id!r} is not valid: use 1-81 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit, without '..' or path separators."
        )
    return run_id


def explain_sqlite_error(root: Path, error: sqlite3.OperationalError) -> str:
    """One sentence for an SQLite operational error: what went wrong with the store, and what to do."""
    text = str(error).lower()
    if "disk is full" in text or "disk i/o" in text or "no space" in text:
        return f"cannot write to the results store in {root}: the disk is full or failing ({error}). Free some space, or set LAB_HOME to a folder on another disk."
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"cannot write to the results store in {root} ({error}). Set LAB_HOME to a folder you can write to, for example LAB_HOME=~/cifar10-lab."
    if "locked" in text or "busy" in text:
        return f"the results store in {root} stayed busy for {BUSY_TIMEOUT_SECONDS:.0f} s (another process held it); try again."
    return f"the results store in {root} failed: {error}."


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string; fixed width, so text order is time order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# Where a run may go from each status (the arrows drawn in lab/store/runs.py).
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.QUEUED: (Status.RUNNING, Status.CANCELLED, Status.FAILED),
    Status.RUNNING: (Status.COMPLETED, Status.FAILED, Status.CANCELLED),
    Status.COMPLETED: (),
    Status.FAILED: (),
    Status.CANCELLED: (),
}
# The one way back from an end, and only through Store.reopen_to_resume: a failed run that saved a
# checkpoint continues as the same run, queued for a worker or running in the command line's process.
RESUME_TRANSITIONS: dict[Status, tuple[Status, ...]] = {Status.FAILED: (Status.QUEUED, Status.RUNNING)}
# What runs.cancel_requested holds: 0 while a run may go on; otherwise it stops after its current
# batch and is either dropped (cancelled) or evaluated and saved as it is (completed, stopped early).
STOP_AND_DISCARD = 1
STOP_AND_KEEP = 2
INTERRUPTED_MESSAGE = "interrupted: the training process stopped unexpectedly (killed or out of memory)"


def check_transition(run_id: str, current: Status | str, new: Status | str) -> None:
    """Raise ValueError unless a run may move from status `current` to `new`."""
    if new not in set(Status):
        raise ValueError(f"status {new!r} is unknown; use one of: {', '.join(Status)}.")
    current = Status(current)
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(TRANSITIONS[current]) or "nothing (it is final)"
        raise ValueError(f"run {run_id} is {current} and cannot become {new}; from {current} it can become: {allowed}.")


def to_json(value: Any) -> str:
    """JSON text for metrics, configs and events; numpy numbers and arrays become plain Python."""

    def plain(item: Any) -> Any:
        if hasattr(item, "tolist"):  # numpy arrays and numpy scalars
            return item.tolist()
        if isinstance(item, Path):
            return str(item)
        raise TypeError(f"a {type(item).__name__} cannot be stored as JSON")

    return json.dumps(value, default=plain)


def from_json(text: str | None) -> Any:
    """Parse stored JSON text; a missing value reads as an empty dict."""
    return json.loads(text) if text else {}


def new_run_id(model: str) -> str:
    """A readable, unique-enough id: local date and time, the model, 4 random hex digits."""
    safe_model = "".join(character if character.isalnum() or character in "-_" else "-" for character in model)[:40]
    return f"{datetime.now():%Y%m%d-%H%M%S}-{safe_model}-{secrets.token_hex(2)}"


def run_from_row(row: sqlite3.Row | Mapping[str, Any]) -> Run:
    """A `runs` row as a `Run`, its JSON columns parsed (config_json -> config, ...).

    `followed` is read when the query selected it (Store.runs_of), else False.
    """
    # A sqlite3.Row iterates over its values, so the column names come from .keys().
    columns = set(row.keys())
    return Run(
        run_id=row["run_id"],
        status=Status(row["status"]),
        config=stored_config(from_json(row["config_json"])),
        model=row["model"],
        task=row["task"],
        owner_id=row["owner_id"],
        owner_name=row["owner_name"] or "",
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        message=row["message"] or "",
        metrics=from_json(row["metrics_json"]),
        environment=from_json(row["environment_json"]),
        fingerprint=from_json(row["fingerprint_json"]),
        train_seconds=row["train_seconds"],
        worker_pid=row["worker_pid"],
        cancel_requested=bool(row["cancel_requested"]),
        keep_when_stopped=row["cancel_requested"] == STOP_AND_KEEP,
        settings_key=row["settings_key"],
        followed=bool(row["followed"]) if "followed" in columns else False,
    )


# Each migration is a list of statements that moves the schema up one version.
# A database records the versions it has, so an old store is upgraded in place:
# to change the schema, append a migration; never edit one that has shipped.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            task TEXT NOT NULL,
            config_json TEXT NOT NULL,
            metrics_json TEXT,
            environment_json TEXT,
            fingerprint_json TEXT,
            message TEXT NOT NULL DEFAULT '',
            worker_pid INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            train_seconds REAL,
            started_at TEXT,
            finished_at TEXT
        )""",
        "CREATE INDEX runs_by_status ON runs(status, created_at)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload_json TEXT NOT NULL
        )""",
        "CREATE INDEX events_by_run ON events(run_id, id)",
    ],
    # Classroom mode: who owns a run, the key that finds a run with the same settings on the same
    # data, the students who follow a run someone else started with their settings, the class's
    # settings (limits, the challenge), and the names behind the private identities of the address.
    [
        "ALTER TABLE runs ADD COLUMN owner_id TEXT NOT NULL DEFAULT 'local'",
        "ALTER TABLE runs ADD COLUMN owner_name TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN settings_key TEXT",
        "CREATE INDEX runs_by_settings ON runs(settings_key, status)",
        "CREATE INDEX runs_by_owner ON runs(owner_id, status)",
        """CREATE TABLE followers (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            owner_id TEXT NOT NULL,
            owner_name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, owner_id)
        )""",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value_json TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE people (person_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL)",
    ],
    # Classroom trust: a name compared the way people read it (`name_key`: NFKC, case, spacing and
    # look-alike letters folded), the hash of the short secret a student rejoins with from another
    # computer, the hashes of the tokens browsers keep in a cookie (one person, several browsers), every sign-in attempt (the teacher password, a rejoin) for deployment-wide limits,
    # and each person's turns in the fair queue, kept even after their runs are deleted.
    [
        "ALTER TABLE people ADD COLUMN name_key TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE people ADD COLUMN secret_hash TEXT",
        "CREATE INDEX people_by_name_key ON people(name_key)",
        """CREATE TABLE sign_in_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            at TEXT NOT NULL,
            person_id TEXT,
            person_name TEXT,
            ok INTEGER NOT NULL
        )""",
        "CREATE INDEX sign_in_attempts_by_kind ON sign_in_attempts(kind, at)",
        """CREATE TABLE browser_tokens (
            token_hash TEXT PRIMARY KEY,
            person_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_seen_at TEXT
        )""",
        "CREATE INDEX browser_tokens_by_person ON browser_tokens(person_id)",
        """CREATE TABLE turns (
            owner_id TEXT PRIMARY KEY,
            first_queued_at TEXT NOT NULL,
            last_started_at TEXT
        )""",
    ],
]


def connect(database: Path) -> sqlite3.Connection:
    """Open a connection in autocommit mode; transactions are begun explicitly."""
    connection = sqlite3.connect(database, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    connection.execute("PRAGMA foreign_keys = ON")
    # In WAL mode, NORMAL skips the disk flush on every commit (a job writes many
    # small progress events) yet can never corrupt the database: at worst, a power
    # cut forgets the last few commits. An application crash loses nothing.
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


@contextmanager
def reading(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection for reads; in WAL mode each statement sees a consistent snapshot."""
    with closing(connect(database)) as connection:
        yield connection


@contextmanager
def writing(database: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction, committed on success and rolled back on any error.

    BEGIN IMMEDIATE takes the write lock up front, so a read-then-update (such as
    "claim the oldest queued run") cannot interleave with another process doing
    the same; the second one waits for the busy timeout instead.
    """
    with closing(connect(database)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            with contextlib.suppress(sqlite3.OperationalError):  # SQLite may have rolled back already (disk full)
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def initialise(database: Path) -> None:
    """Switch the database to WAL mode and bring its schema up to the newest version."""
    if _is_current(database):
        return  # the usual case: a quick read, so opening a Store never waits for a writer
    _enable_wal(database)
    with writing(database) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        current = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{database} has schema version {current}, but this version of the lab knows only up to "
                f"{len(MIGRATIONS)}: update the lab, or set LAB_HOME to another folder."
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[version - 1]:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, utc_now()))


def _is_current(database: Path) -> bool:
    """True when the database already exists in WAL mode with the newest schema."""
    if not database.exists():
        return False
    with reading(database) as connection:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            return False
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is None:
            return False
        return connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def _enable_wal(database: Path) -> None:
    """Turn on WAL mode (stored in the file, so this is a no-op after the first time).

    Changing the journal mode needs the database to itself, and SQLite may
    answer "locked" at once rather than wait when another process is starting
    up at the same moment, so this retries for up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            with reading(database) as connection:
                connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
