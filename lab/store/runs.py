"""The results store: every run's status, progress events, metrics and saved model.

`Store(root)` keeps two things under one folder (LAB_HOME, else ./runs):
- `lab.sqlite3`: a `runs` table (one row per run: status, config, metrics) and an
  `events` table (the progress a training job reports: epoch_end, batch_end, ...);
- `runs/<run_id>/`: a completed run's files (lab/store/run_folder.py names them; lab/store/files.py writes them).

A run moves through these statuses, and only along these arrows:

    queued -> running -> completed   (also a run stopped early on request that kept its model)
       |         |----> failed ----> queued | running   (resumed from its checkpoint: reopen_to_resume only)
       |         '----> cancelled
       '-> cancelled | failed

`completed` is set last, after the run's folder is safely on disk, so a
completed row always has its files. The store is safe to share between threads
and processes: every call opens its own short-lived SQLite connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from lab.config import RunConfig
from lab.store import files as store_files
from lab.store import turns
from lab.store.attempts import SignInAttempts
from lab.store.classroom import ClassroomRecords, followers_in, hand_over, queue_again_for_followers
from lab.store.database import (
    DATABASE_NAME,
    INTERRUPTED_MESSAGE,
    NOT_ANSWERING,
    RESUME_TRANSITIONS,
    STOP_AND_DISCARD,
    STOP_AND_KEEP,
    TRANSITIONS,
    DatabaseUnavailableError,
    RunNotFoundError,
    StoreError,
    check_transition,
    explain_sqlite_error,
    initialise,
    new_run_id,
    reading,
    run_from_row,
    to_json,
    utc_now,
    validate_run_id,
    writing,
)
from lab.store.events import ProgressEvents
from lab.store.interface import RunStore
from lab.store.owners import Person, check_may_manage, local_person, require_person
from lab.store.postgres import PostgresMixin, configured_url
from lab.store.records import Run, Status, WaitingRun
from lab.store.run_folder import RUNS_FOLDER, ModelFolder, RunFolder
from lab.store.saved import SavedRuns
from lab.store.turns import QUEUED_WITH_OWNERS_LAST_START, ClassFullError, QueueCaps, QueueFullError
from lab.system import processes

__all__ = [
    "INTERRUPTED_MESSAGE",
    "ClassFullError",
    "QueueCaps",
    "QueueFullError",
    "ModelFolder",
    "Run",
    "RunFolder",
    "RunStore",
    "Status",
    "WaitingRun",
    "TRANSITIONS",
    "RunNotFoundError",
    "Store",
    "SQLiteStore",
    "PostgresStore",
    "StoreError",
    "DatabaseUnavailableError",
    "NOT_ANSWERING",
    "check_transition",
    "validate_run_id",
]


class Store(ProgressEvents, SavedRuns, ClassroomRecords, SignInAttempts):
    """Runs, their progress events and their files, under one root folder.

    This file holds what a run goes through (created, claimed, moved along, completed,
    read back, deleted); the events a run reports are in lab/store/events.py, reading
    a completed run's files in lab/store/saved.py, and what classroom mode keeps (followers,
    the class's settings, names) in lab/store/classroom.py.
    """

    def __new__(cls, *arguments, **keywords):
        # With a database address configured (LAB_DATABASE_URL), `Store()` is the PostgreSQL store
        # (lab/store/postgres.py), as `pathlib.Path()` is a PosixPath or a WindowsPath: callers never choose.
        if cls is Store and configured_url():
            return super().__new__(PostgresStore)
        return super().__new__(cls)

    def __init__(self, root: str | Path | None = None):
        chosen = root if root is not None else os.environ.get("LAB_HOME") or Path.cwd() / "runs"
        # Absolute, so a later change of working directory cannot move the store.
        self.root = Path(chosen).expanduser().absolute()
        self.database = self.root / DATABASE_NAME
        self.runs_folder = self.root / RUNS_FOLDER
        self.where = str(self.root)  # where the store is, as pages may show it (PostgresStore: its address, no password)
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- connections ---------------------------------------------------------

    def _prepare(self) -> Path:
        """Create the folder and the schema on first use, so `Store()` itself is free."""
        with self._ready_lock:
            if not self._ready:
                store_files.ensure_writable_folder(self.root)
                try:
                    initialise(self.database)
                except sqlite3.OperationalError as error:
                    raise StoreError(store_files.unwritable_message(self.root, error)) from error
                self._ready = True
        return self.database

    @contextlib.contextmanager
    def _read(self):
        with self._errors_explained(), reading(self._prepare()) as connection:
            yield connection

    @contextlib.contextmanager
    def _write(self):
        with self._errors_explained(), writing(self._prepare()) as connection:
            yield connection

    @contextlib.contextmanager
    def _errors_explained(self):
        """Turn SQLite's operational errors (disk full, read-only, still locked) into a StoreError that says what to do."""
        try:
            yield
        except sqlite3.OperationalError as error:
            raise StoreError(explain_sqlite_error(self.root, error)) from error

    def _drop_checkpoints(self, run_id: str) -> None:
        """A run that ended (completed, cancelled, deleted) has nothing left to resume: its checkpoints go.

        PostgresStore drops the copy it keeps in the database too.
        """
        self.run_folder(run_id).remove_checkpoints()

    def _keep_run_files(self, connection, run_id: str, folder: Path) -> None:
        """Where a completed run's files are kept besides its folder: nowhere for SQLite (the folder is the store).

        PostgresStore copies them into the database here, in the transaction that marks the run completed.
        """

    @staticmethod
    def _status_of(connection: sqlite3.Connection, run_id: str) -> Status:
        row = connection.execute("SELECT status FROM runs WHERE run_id = ?", (validate_run_id(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r} in the store.")
        return Status(row["status"])

    # -- creating runs and moving them along ---------------------------------

    def create_run(
        self, config: RunConfig, *, status: Status = Status.QUEUED, owner: Person | None = None, settings_key: str | None = None
    ) -> str:
        """Record a new run and return its id, e.g. "20250101-093000-seed-cnn-1a2b".

        `owner` defaults to the local user. `settings_key` identifies the run's settings on its data
        (lab.jobs.queue.settings_key), so that the same run is found instead of trained twice.
        """
        owner = owner or local_person()
        if isinstance(config, dict):
            config = RunConfig.from_dict(config)  # validates a stored or hand-written dict
        if status not in (Status.QUEUED, Status.RUNNING):
            raise ValueError(f"a new run starts as 'queued' or 'running', not {status!r}.")
        status = Status(status)
        now = utc_now()
        running = status is Status.RUNNING
        for _ in range(20):  # a clash of the random suffix is rare; just draw again
            run_id = new_run_id(config.model)
            try:
                with self._write() as connection:
                    _insert_run(connection, run_id, config, status, owner, settings_key, now, os.getpid() if running else None)
                    (turns.record_started if running else turns.record_queued)(connection, owner.id, now)
                return run_id
            except sqlite3.IntegrityError:
                continue
        raise StoreError("could not find an unused run id; is the system clock working?")

    def queue_run(
        self,
        config: RunConfig,
        *,
        owner: Person,
        settings_key: str,
        reuse: bool = False,
        own_only: bool = False,
        caps: QueueCaps | None = None,
    ) -> tuple[str, Run | None]:
        """Queue a run for `owner`, or find the same one; in one write transaction, so two clicks never race.

        With `reuse`, a run with this settings key (the newest completed one, else one queued or
        running) is returned instead, as `(its id, the run)`, and `owner` follows it; with `own_only`
        too, only a run `owner` owns is returned (Start pressed twice), never a classmate's. With `caps`
        (lab.store.turns.QueueCaps), a run that would pass one is refused: QueueFullError when the
        owner has too many waiting, ClassFullError when the whole class has. Otherwise `(new id, None)`,
        and the turns table remembers when `owner` first queued.
        """
        for _ in range(20):
            run_id = new_run_id(config.model)
            try:
                with self._write() as connection:
                    if reuse:
                        if own_only:
                            same = connection.execute(SAME_SETTINGS_OWNED, (settings_key, owner.id)).fetchone()
                        else:
                            same = connection.execute(SAME_SETTINGS, (settings_key,)).fetchone()
                        if same is not None:
                            if same["owner_id"] != owner.id:
                                connection.execute(
                                    "INSERT OR IGNORE INTO followers (run_id, owner_id, owner_name, created_at) VALUES (?, ?, ?, ?)",
                                    (same["run_id"], owner.id, owner.name, utc_now()),
                                )
                            return same["run_id"], run_from_row(same)
                    now = utc_now()
                    turns.check_room(connection, owner.id, caps, now)
                    _insert_run(connection, run_id, config, Status.QUEUED, owner, settings_key, now, None)
                    turns.record_queued(connection, owner.id, now)
                return run_id, None
            except sqlite3.IntegrityError:
                continue
        raise StoreError("could not find an unused run id; is the system clock working?")

    def claim_next_queued(self, worker_pid: int, choose: Callable[[Sequence[WaitingRun]], str | None] | None = None) -> str | None:
        """Atomically take the next queued run for a worker: it becomes running. None if none waits.

        `choose` picks it from the waiting runs (`WaitingRun`s: run_id, owner_id, created_at and
        owner_last_started, when that owner's latest run started, or None), oldest first; the
        default takes the oldest. lab.jobs.fairness passes the class's fair order. Reading and
        updating happen in one write transaction, so two workers never take the same run. The
        owner's turn is recorded (lab/store/turns.py), so it counts even after the run is deleted.
        """
        with self._write() as connection:
            waiting = [WaitingRun(**dict(row)) for row in connection.execute(QUEUED_WITH_OWNERS_LAST_START).fetchall()]
            run_id = (choose or _oldest)(waiting) if waiting else None
            if run_id is None:
                return None
            now = utc_now()
            connection.execute(
                "UPDATE runs SET status = 'running', worker_pid = ?, started_at = ?, updated_at = ? WHERE run_id = ? AND status = 'queued'",
                (worker_pid, now, now, run_id),
            )
            owner_id = next(run.owner_id for run in waiting if run.run_id == run_id)
            turns.record_started(connection, owner_id, now)
            return run_id

    def waiting_runs(self) -> list[WaitingRun]:
        """The queued runs as `claim_next_queued`'s chooser sees them, oldest first."""
        with self._read() as connection:
            return [WaitingRun(**dict(row)) for row in connection.execute(QUEUED_WITH_OWNERS_LAST_START).fetchall()]

    def set_status(self, run_id: str, status: Status, message: str = "") -> None:
        """Move a run to `status` (ValueError if the move is not allowed), with an optional message."""
        with self._write() as connection:
            check_transition(run_id, self._status_of(connection, run_id), status)
            status = Status(status)
            now = utc_now()
            connection.execute(
                "UPDATE runs SET status = ?, message = ?, updated_at = ?,"
                " started_at = CASE WHEN ? = 'running' THEN ? ELSE started_at END,"
                " worker_pid = CASE WHEN ? = 'running' THEN COALESCE(worker_pid, ?) ELSE worker_pid END,"
                " finished_at = CASE WHEN ? IN ('completed', 'failed', 'cancelled') THEN ? ELSE finished_at END"
                " WHERE run_id = ?",
                (status, message, now, status, now, status, os.getpid(), status, now, run_id),
            )
        if status in CHECKPOINTS_DROPPED:
            self._drop_checkpoints(run_id)

    def reopen_to_resume(
        self, run_id: str, *, by: Person, status: Status = Status.QUEUED, message: str = "", caps: QueueCaps | None = None
    ) -> None:
        """Move a failed run back to `queued` (a worker continues it) or `running` (this process does), to resume it.

        The caller has checked that the run saved a checkpoint (lab.jobs.queue); the store checks who
        asks (only the owner or the teacher) and, in the transaction that moves it, that the run is
        still failed, so two clicks resume it once. A leftover cancel request is cleared, and a run
        reopened as running records this process as its worker, started now. With `caps`, a run
        reopened as queued is refused as a new one would be (QueueFullError, ClassFullError).
        """
        self._check_may_manage(run_id, by, "resume")
        with self._write() as connection:
            current = self._status_of(connection, run_id)
            if status not in RESUME_TRANSITIONS.get(current, ()):
                raise ValueError(f"run {run_id} is {current}: only a failed run can be resumed, as queued or running.")
            owner_id = connection.execute("SELECT owner_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()["owner_id"]
            status = Status(status)
            now, running = utc_now(), status is Status.RUNNING
            if not running:
                turns.check_room(connection, owner_id, caps, now)
            connection.execute(
                "UPDATE runs SET status = ?, message = ?, cancel_requested = 0, finished_at = NULL, updated_at = ?, worker_pid = ?,"
                " started_at = CASE WHEN ? THEN ? ELSE started_at END WHERE run_id = ?",
                (status, message, now, os.getpid() if running else None, running, now, run_id),
            )
            (turns.record_started if running else turns.record_queued)(connection, owner_id, now)

    def request_cancel(self, run_id: str, *, by: Person, keep_model: bool = False) -> bool:
        """Cancel a queued run at once, or ask a running one to stop after its current batch.

        `keep_model=True` asks a running run to stop early but keep what it learned: it is then
        evaluated and saved as a completed run, trained for fewer epochs than planned. A queued run
        has learned nothing yet, so it is cancelled either way.
        Returns False when the run had already finished, so there was nothing to cancel.
        `by`: who asks (required: lab.store.owners.local_person() for the command line); anyone but
        the run's owner or the teacher is refused with NotYourRunError.

        A shared run goes on for its followers (lab/store/classroom.py): when its owner (not the
        teacher, who keeps full rights) cancels it, it passes to the earliest follower and keeps
        going; when its owner stops it and keeps the model, the owner's run stops as asked and the
        same settings are queued again for the followers.
        """
        by = require_person(by)
        self._check_may_manage(run_id, by, "stop" if keep_model else "cancel")
        for _ in range(20):
            try:
                with self._write() as connection:
                    answered = self._cancel_in(connection, run_id, by, keep_model)
                if self._status_of_run(run_id) in CHECKPOINTS_DROPPED:  # cancelled while waiting: nothing to resume
                    self._drop_checkpoints(run_id)
                return answered
            except sqlite3.IntegrityError:  # the re-queued run's random id clashed: draw again
                continue
        raise StoreError("could not find an unused run id; is the system clock working?")

    def _cancel_in(self, connection: sqlite3.Connection, run_id: str, by: Person, keep_model: bool) -> bool:
        status = self._status_of(connection, run_id)
        now = utc_now()
        shared = followers_in(connection, run_id) if status.is_active and not by.is_teacher else []
        if shared and not (keep_model and status is Status.RUNNING):
            hand_over(connection, run_id, shared[0])  # it goes on, for the classmates who asked for it too
            return True
        if status is Status.QUEUED:
            connection.execute(
                "UPDATE runs SET status = 'cancelled', message = 'cancelled before it started', finished_at = ?, updated_at = ? WHERE run_id = ?",
                (now, now, run_id),
            )
            return True
        if status is Status.RUNNING:
            request = STOP_AND_KEEP if keep_model else STOP_AND_DISCARD
            connection.execute("UPDATE runs SET cancel_requested = ?, updated_at = ? WHERE run_id = ?", (request, now, run_id))
            if shared:  # stopped and kept as the owner's: the followers get the whole run, queued again
                model = connection.execute("SELECT model FROM runs WHERE run_id = ?", (run_id,)).fetchone()["model"]
                queue_again_for_followers(connection, run_id, shared, new_run_id(model))
            return True
        return False

    def cancel_requested(self, run_id: str) -> bool:
        """Should this run stop? A cancelled or deleted run also answers True."""
        with self._read() as connection:
            row = connection.execute("SELECT status, cancel_requested FROM runs WHERE run_id = ?", (validate_run_id(run_id),)).fetchone()
        return row is None or bool(row["cancel_requested"]) or row["status"] == "cancelled"

    def keep_requested(self, run_id: str) -> bool:
        """Was this run asked to stop early and keep its model (request_cancel(keep_model=True))?"""
        with self._read() as connection:
            row = connection.execute("SELECT cancel_requested FROM runs WHERE run_id = ?", (validate_run_id(run_id),)).fetchone()
        return row is not None and row["cancel_requested"] == STOP_AND_KEEP

    def mark_interrupted_runs(self, still_working: Callable[[int | None, str | None], bool] = processes.could_be_worker) -> list[str]:
        """Fail every running run whose worker process is gone; return their ids.

        Call this when the app or the job worker starts: a run whose process was
        killed (for example for running out of memory) would otherwise show as
        running forever. A run with no recorded process counts as gone, and so does
        one whose pid now belongs to a process that started after the run did
        (after a reboot, pids are handed out again). `still_working(pid, started_at)`
        makes that decision; tests pass their own.
        """
        with self._write() as connection:
            rows = connection.execute("SELECT run_id, worker_pid, started_at FROM runs WHERE status = 'running'").fetchall()
            gone = [row["run_id"] for row in rows if row["worker_pid"] is None or not still_working(row["worker_pid"], row["started_at"])]
            now = utc_now()
            for run_id in gone:
                connection.execute(
                    "UPDATE runs SET status = 'failed', message = ?, finished_at = ?, updated_at = ? WHERE run_id = ?",
                    (INTERRUPTED_MESSAGE, now, now, run_id),
                )
        for run_id in gone:
            # A process killed while saving leaves a temporary folder (or, killed between the
            # rename and the status update, a whole one): neither belongs to a completed run.
            store_files.remove_run_folder(self.runs_folder, run_id)
        return gone

    # -- finishing a run ------------------------------------------------------

    def complete_run(
        self,
        run_id: str,
        *,
        metrics: dict,
        history: dict,
        model=None,
        environment: dict,
        fingerprint: dict,
        train_seconds: float,
        extra_files: dict[str, bytes] | None = None,
        message: str = "",
    ) -> Path:
        """Save a finished run's files, then mark it completed (with `message`, if any); return its folder.

        The folder appears in one atomic rename and the status changes only after
        that, in one transaction. If anything fails, the run stays as it was and
        no folder (temporary or final) is left behind.
        """
        run = self._require_run(run_id)
        check_transition(run_id, run.status, Status.COMPLETED)  # refuse before the slow model save
        files = store_files.run_files(run.config.to_dict(), history, metrics, environment, fingerprint, extra_files)
        folder = store_files.write_run_folder(self.runs_folder, run_id, files, model)
        try:
            with self._write() as connection:
                check_transition(run_id, self._status_of(connection, run_id), Status.COMPLETED)
                now = utc_now()
                connection.execute(
                    "UPDATE runs SET status = 'completed', message = ?, metrics_json = ?, environment_json = ?, fingerprint_json = ?,"
                    " train_seconds = ?, finished_at = ?, updated_at = ? WHERE run_id = ?",
                    (message, to_json(metrics), to_json(environment), to_json(fingerprint),
                     float(train_seconds), now, now, run_id),
                )  # fmt: skip
                self._keep_run_files(connection, run_id, folder)
        except BaseException:
            store_files.remove_run_folder(self.runs_folder, run_id)
            raise
        self._drop_checkpoints(run_id)  # the model is saved: nothing left to resume
        return folder

    # -- reading runs ----------------------------------------------------------

    def get_run(self, run_id: str) -> Run | None:
        """One run (lab.store.records.Run), or None when there is no run with this id."""
        with self._read() as connection:
            row = connection.execute("SELECT * FROM runs WHERE run_id = ?", (validate_run_id(run_id),)).fetchone()
        return None if row is None else run_from_row(row)

    def list_runs(self, status: Status | Iterable[Status] | None = None) -> list[Run]:
        """All runs (or those with the given status or statuses), newest first."""
        query, parameters = "SELECT * FROM runs", []
        if status is not None:
            parameters = [status] if isinstance(status, str) else list(status)
            query += f" WHERE status IN ({', '.join('?' * len(parameters))})"
        with self._read() as connection:
            rows = connection.execute(query + " ORDER BY created_at DESC, rowid DESC", parameters).fetchall()
        return [run_from_row(row) for row in rows]

    def _status_of_run(self, run_id: str) -> Status | None:
        with self._read() as connection:
            row = connection.execute("SELECT status FROM runs WHERE run_id = ?", (validate_run_id(run_id),)).fetchone()
        return None if row is None else Status(row["status"])

    def _check_may_manage(self, run_id: str, by: Person, action: str) -> None:
        """NotYourRunError unless `by` owns the run or teaches; for "resume", a student who follows it may too."""
        followers = self.follower_ids(run_id) if action == "resume" else ()
        check_may_manage(require_person(by), self._require_run(run_id), action, followers=followers)

    def _require_run(self, run_id: str) -> Run:
        run = self.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run with id {run_id!r} in the store.")
        return run

    # -- removing and exporting -------------------------------------------------

    def delete_run(self, run_id: str, *, by: Person) -> bool:
        """Delete a run's row, events, followers and folder; False if there was no such run.

        A running run must be cancelled first, so its job never writes to a run that is gone.
        `by`: who asks (required); only the run's owner or the teacher may. An id with no row
        touches nothing, not even a folder of that name: nobody can be checked as its owner.
        A run others follow is not removed by its owner (the teacher keeps full rights): only the
        owner's listing goes, as the run passes to the earliest follower, files and all.
        """
        by = require_person(by)
        if self.get_run(run_id) is None:
            return False
        self._check_may_manage(run_id, by, "delete")
        with self._write() as connection:
            row = connection.execute("SELECT status FROM runs WHERE run_id = ?", (validate_run_id(run_id),)).fetchone()
            if row is None:
                return False  # deleted meanwhile by someone else
            if row["status"] == Status.RUNNING:
                raise ValueError(f"run {run_id} is still running: cancel it, and delete it once it has stopped.")
            shared = [] if by.is_teacher else followers_in(connection, run_id)
            if shared:
                hand_over(connection, run_id, shared[0])
                return True
            connection.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            connection.execute("DELETE FROM followers WHERE run_id = ?", (run_id,))
            connection.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        store_files.remove_run_folder(self.runs_folder, run_id)
        self._drop_checkpoints(run_id)
        return True

    def integrity_check(self) -> str:
        """SQLite's own check of the database file: "ok" when it is healthy."""
        with self._read() as connection:
            return "\n".join(row[0] for row in connection.execute("PRAGMA integrity_check"))


class PostgresStore(PostgresMixin, Store):
    """The store with its rows and files in PostgreSQL (lab/store/postgres.py); what `Store()` is when LAB_DATABASE_URL is set."""


class SQLiteStore(Store):
    """The SQLite store under `root`, even when a database address is configured (a copy into or out of a folder)."""


def _insert_run(connection, run_id: str, config: RunConfig, status: Status, owner: Person, settings_key, now: str, pid) -> None:
    connection.execute(
        "INSERT INTO runs (run_id, created_at, updated_at, status, model, task, config_json, worker_pid, started_at,"
        " owner_id, owner_name, settings_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, now, now, status, config.model, config.task, to_json(config.to_dict()),
         pid, now if status == Status.RUNNING else None, owner.id, owner.name, settings_key),
    )  # fmt: skip


# A run that ends these ways loses its checkpoint: it has nothing left to resume. A failed run keeps
# its checkpoint, since resuming it (Store.reopen_to_resume) continues from there.
CHECKPOINTS_DROPPED = (Status.COMPLETED, Status.CANCELLED)


# The run to reuse for a settings key: the newest completed one, else the newest queued or running one.
SAME_SETTINGS = """
    SELECT * FROM runs WHERE settings_key = ? AND status IN ('completed', 'queued', 'running')
     ORDER BY status = 'completed' DESC, created_at DESC, rowid DESC LIMIT 1
"""
SAME_SETTINGS_OWNED = """
    SELECT * FROM runs WHERE settings_key = ? AND owner_id = ? AND status IN ('completed', 'queued', 'running')
     ORDER BY status = 'completed' DESC, created_at DESC, rowid DESC LIMIT 1
"""


def _oldest(waiting: Sequence[WaitingRun]) -> str:
    return waiting[0].run_id
