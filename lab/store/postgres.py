"""The results store in PostgreSQL: for a deployment whose own disk does not last (Streamlit Community Cloud, a rebuilt server).

Set LAB_DATABASE_URL (or `database_url` in .streamlit/secrets.toml), for example
`postgresql://lab:password@db.example.org:5432/lab`, and `Store()` keeps everything in that
database: runs, events, followers, people, class settings, sign-in attempts, and each completed
run's files. The folder under LAB_HOME is then only a cache of those files: when it is gone (a
reboot, a redeploy), a run's files are fetched from the database again the first time they are read.
Unset, nothing changes: SQLite and folders under LAB_HOME (lab/store/runs.py).

`PostgresMixin` is what turns `Store` into the PostgreSQL store: other connections, the files kept in
the database, the outbox. lab/store/runs.py combines the two as `PostgresStore` (this module never
imports runs.py, so the dependency points one way), and `Store()` itself returns one when an address
is configured. The same methods run the same SQL, which lab/store/postgres_sql.py adapts; callers
cannot tell which of the two stores they hold. Writes take one
advisory lock for their transaction, so they happen one at a time, as with SQLite's BEGIN IMMEDIATE:
"claim the oldest queued run" can never hand one run to two workers.

The URL carries a password: `redact` removes it from anything the store says (errors, repr), and
pages, logs and the lab report only ever see `PostgresStore.where`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lab.store import files as store_files
from lab.store import outbox
from lab.store.database import INTERRUPTED_MESSAGE, NOT_ANSWERING, DatabaseUnavailableError, StoreError, to_json, utc_now, validate_run_id
from lab.store.postgres_schema import WRITE_LOCK_KEY, upgrade
from lab.store.postgres_sql import PostgresConnection
from lab.store.records import Status, WaitingRun
from lab.store.run_folder import RunFolder

URL_VARIABLE = "LAB_DATABASE_URL"
SECRETS_KEY = "database_url"
URL_SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_SECONDS = 5  # how long to wait for a database that does not answer before saying so
IDLE_CONNECTIONS = 4  # connections kept open per process, so each call does not pay for a new one
CHECKPOINT_PREFIX = "checkpoint/epoch-"  # run_files names of a training run's newest checkpoint
HELD_EVENTS = 1000  # progress events a run keeps in memory while the database does not answer (the newest)

# user:password@ in any postgres URL, and password=... in a key/value connection string.
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*(@)", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, url: str | None = None) -> str:
    """`text` with every database password replaced by ***: in postgres URLs, `password=...`, and `url`'s own password anywhere."""
    text = _URL_PASSWORD.sub(r"\1***\2", str(text))
    text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    password = urlsplit(url).password if url else None
    if password:
        text = text.replace(password, "***")
    return text


def safe_address(url: str) -> str:
    """The URL as it may be shown: scheme, user, host, port and database, never the password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


def secrets_files(working_folder: Path | None = None) -> list[Path]:
    """Where Streamlit reads secrets from, later files winning: ~/.streamlit/secrets.toml, then the app folder's."""
    return [Path.home() / ".streamlit" / "secrets.toml", (working_folder or Path.cwd()) / ".streamlit" / "secrets.toml"]


def configured_url(working_folder: Path | None = None) -> str | None:
    """The database URL to use: LAB_DATABASE_URL, else `database_url` in .streamlit/secrets.toml; None means SQLite.

    lab/ never imports Streamlit, so the secrets file is read here as the TOML it is. A secrets file that
    exists but cannot be read is an error, not "no database": the app must not quietly start an empty
    SQLite store on a disk that will vanish.
    """
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        for path in secrets_files(working_folder):
            value = _secret_from(path)
            url = value or url
    if not url:
        return None
    if urlsplit(url).scheme not in URL_SCHEMES:
        raise StoreError(f"the database address must start with postgresql:// (got {redact(url.split(':', 1)[0])}://...).")
    return url


def _secret_from(path: Path) -> str | None:
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise StoreError(f"the secrets file {path} cannot be read ({type(error).__name__}); fix it or remove it.") from error
    try:
        value = tomllib.loads(text).get(SECRETS_KEY)
    except tomllib.TOMLDecodeError as error:
        # The decoder's message says where the file is broken, never its text.
        raise StoreError(f"the secrets file {path} is not valid TOML ({error}).") from error
    return str(value).strip() if value else None


class _ConnectionPool:
    """A few open connections to one database, reused by this process's threads; none survive a fork."""

    def __init__(self, url: str):
        self.url = url
        self._idle: list = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def take(self):
        import psycopg

        with self._lock:
            if self._pid != os.getpid():  # a child process: the parent's sockets are not ours to use
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed and not _server_has_hung_up(connection):
                    return connection
                with contextlib.suppress(Exception):
                    connection.close()
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="cifar10-lab")

    def forget_idle(self) -> None:
        """Close every idle connection: after a connection failed, the others to the same server are likely dead too."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                connection.close()

    def give_back(self, connection, healthy: bool) -> None:
        import psycopg

        idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._lock:
            if healthy and idle and not connection.closed and len(self._idle) < IDLE_CONNECTIONS and self._pid == os.getpid():
                self._idle.append(connection)
                return
        with contextlib.suppress(Exception):
            connection.close()


def _server_has_hung_up(connection) -> bool:
    """True when an idle connection's socket has something to read: the server closed it (a restart) or said goodbye.

    An idle connection in autocommit mode is owed nothing, so anything waiting on its socket means it is dead. Checking
    costs no round trip, and keeps the first call after a database restart from failing on a connection from before it.
    """
    import select

    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_pools: dict[str, _ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool_for(url: str) -> _ConnectionPool:
    with _pools_lock:
        return _pools.setdefault(url, _ConnectionPool(url))


class PostgresMixin:
    """What makes a `Store` keep its rows and files in PostgreSQL; `root` (LAB_HOME) then holds only a cache.

    Used only as lab.store.runs.PostgresStore (PostgresMixin, Store): each `super()` here is Store's own method.
    """

    def __init__(self, root: str | Path | None = None, *, database_url: str | None = None):
        super().__init__(root)
        self._held_events: dict[str, list[dict]] = {}
        self._delivering = threading.local()
        self._undeliverable: set[str] = set()  # outbox entries that failed for another reason than the database
        url = database_url or configured_url()
        if not url:
            raise StoreError(f"a PostgreSQL store needs a database address: set {URL_VARIABLE}.")
        self._url = url
        self.where = safe_address(url)  # what may be shown: no password
        self.database = self.where

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, cache={str(self.root)!r})"

    # -- connections ---------------------------------------------------------

    def _prepare(self) -> str:
        with self._ready_lock:
            if not self._ready:
                with self._errors_explained(), self._connection() as connection:
                    upgrade(connection, self.where)
                self._ready = True
        return self.where

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        pool = _pool_for(self._url)
        connection = pool.take()
        healthy = False
        try:
            yield connection
            healthy = True
        except Exception as error:
            if getattr(connection, "broken", False) or _is_unavailable(error):
                pool.forget_idle()
            raise
        finally:
            pool.give_back(connection, healthy)

    @contextlib.contextmanager
    def _read(self):
        self._prepare()
        self._deliver_waiting_runs()
        with self._errors_explained(), self._connection() as connection:
            yield PostgresConnection(connection)

    @contextlib.contextmanager
    def _write(self):
        self._prepare()
        self._deliver_waiting_runs()
        with self._errors_explained(), self._connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            yield PostgresConnection(connection)

    @contextlib.contextmanager
    def _errors_explained(self):
        """Turn psycopg's errors into a StoreError that says what to do, and never carries the password."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as error:
            raise DatabaseUnavailableError(
                f"{NOT_ANSWERING}: training goes on, and finished runs are saved as soon as it answers again "
                f"(the PostgreSQL server {self.where}: {redact(_first_line(error), self._url)}). "
                "Check that the server is running and reachable."
            ) from None
        except psycopg.Error as error:
            raise StoreError(f"the database {self.where} refused a request: {redact(_first_line(error), self._url)}") from None

    # -- files: kept in the database, cached on disk ---------------------------

    def _keep_run_files(self, connection, run_id: str, folder: Path) -> None:
        """Copy a completed run's folder into `run_files`, in the transaction that marks it completed."""
        connection.execute("DELETE FROM run_files WHERE run_id = ?", (run_id,))
        now = utc_now()
        rows = [(run_id, path.name, path.read_bytes(), now) for path in sorted(folder.iterdir()) if path.is_file()]
        connection.executemany("INSERT INTO run_files (run_id, name, content, stored_at) VALUES (?, ?, ?, ?)", rows)

    def run_folder(self, run_id: str) -> RunFolder:
        """A run's paths, fetched from the database first when missing here (a wiped disk, another machine).

        A completed run's folder comes back whole; a run that has not completed gets its newest checkpoint
        back, so it resumes from there (lab/jobs/resume.py) as it would have on the disk that was lost.
        """
        paths = super().run_folder(run_id)
        if not paths.path.is_dir():
            # While the database does not answer, the paths are still named: training asks for its checkpoint folder.
            with contextlib.suppress(DatabaseUnavailableError):
                files = self.run_files(run_id)
                if files:
                    store_files.write_run_folder(self.runs_folder, run_id, files)
                elif not paths.checkpoints.is_dir():
                    self._restore_checkpoint(run_id, paths)
        return paths

    def run_files(self, run_id: str) -> dict[str, bytes]:
        """A completed run's stored files as name -> bytes ({} when it has none)."""
        return {name: content for name, content in self._stored_files(run_id).items() if not name.startswith(CHECKPOINT_PREFIX)}

    def _stored_files(self, run_id: str, prefix: str = "") -> dict[str, bytes]:
        with self._read() as connection:
            rows = connection.execute(
                "SELECT name, content FROM run_files WHERE run_id = ? AND name LIKE ?", (validate_run_id(run_id), prefix + "%")
            ).fetchall()
        return {row["name"]: bytes(row["content"]) for row in rows}

    # -- checkpoints: each epoch's newest one in the database too, so a wiped disk loses no training ------

    def _keep_checkpoint(self, run_id: str) -> None:
        """Copy the run's newest checkpoint (lab/train/checkpoints.py) into the database, replacing the one before."""
        from lab.train import checkpoints

        newest = checkpoints.checkpoint_files(super().run_folder(run_id).checkpoints)
        if newest is None:
            return
        epoch, files = newest
        now = utc_now()
        with self._write() as connection:
            if connection.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                return
            connection.execute("DELETE FROM run_files WHERE run_id = ? AND name LIKE ?", (run_id, CHECKPOINT_PREFIX + "%"))
            rows = [(run_id, f"{CHECKPOINT_PREFIX}{epoch:04d}/{name}", content, now) for name, content in files.items()]
            connection.executemany("INSERT INTO run_files (run_id, name, content, stored_at) VALUES (?, ?, ?, ?)", rows)

    def _drop_checkpoints(self, run_id: str) -> None:
        """The checkpoint on disk, and its copy in the database (while it answers; a later end or delete retries)."""
        super()._drop_checkpoints(run_id)
        with contextlib.suppress(DatabaseUnavailableError), self._write() as connection:
            connection.execute("DELETE FROM run_files WHERE run_id = ? AND name LIKE ?", (run_id, CHECKPOINT_PREFIX + "%"))

    def _restore_checkpoint(self, run_id: str, paths: RunFolder) -> None:
        from lab.train import checkpoints

        stored = self._stored_files(run_id, CHECKPOINT_PREFIX)
        if not stored:
            return
        epoch = int(next(iter(stored)).removeprefix(CHECKPOINT_PREFIX).split("/", 1)[0])
        files = {name.rsplit("/", 1)[1]: content for name, content in stored.items()}
        checkpoints.install_checkpoint_files(paths.checkpoints, epoch, files)

    # -- a database that stops answering: training goes on, a finished run waits on local disk ----------

    def add_event(self, run_id: str, event: dict) -> int:
        """Append a progress event; while the database does not answer, events wait here (in order) and go with the next one.

        Returns the stored event's id, or 0 while it waits: a run's progress is never a reason to stop training.
        """
        held = self._held_events.setdefault(validate_run_id(run_id), [])
        held.append(event)
        event_id, epoch_ended = 0, False
        try:
            while held:
                event_id = super().add_event(run_id, held[0])
                epoch_ended = epoch_ended or held.pop(0).get("kind") == "epoch_end"
        except DatabaseUnavailableError:
            del held[:-HELD_EVENTS]
            return 0
        except BaseException:
            held.clear()  # a refused event (no kind, no such run) is not kept for later
            raise
        if epoch_ended:  # an epoch_end is sent after its checkpoint is on disk (lab/train/training_state.py)
            with contextlib.suppress(DatabaseUnavailableError):
                self._keep_checkpoint(run_id)
        return event_id

    def claim_next_queued(self, worker_pid: int, choose: Callable[[Sequence[WaitingRun]], str | None] | None = None) -> str | None:
        """Take the next queued run, as Store does; while the database does not answer nothing can be taken: None, as for an empty queue."""
        try:
            return super().claim_next_queued(worker_pid, choose)
        except DatabaseUnavailableError:
            return None

    def cancel_requested(self, run_id: str) -> bool:
        """Should this run stop? While the database does not answer, nobody can have asked: training goes on."""
        try:
            return super().cancel_requested(run_id)
        except DatabaseUnavailableError:
            return False

    def keep_requested(self, run_id: str) -> bool:
        try:
            return super().keep_requested(run_id)
        except DatabaseUnavailableError:
            return False

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
        """Store a finished run as Store.complete_run does; while the database does not answer, keep it in the outbox.

        The outbox entry (lab/store/outbox.py) is delivered the next time this store, in any process, reaches
        the database. Returns the run's folder, or its outbox entry.
        """
        values = {"metrics": metrics, "history": history, "environment": environment, "fingerprint": fingerprint}
        values.update(train_seconds=float(train_seconds), message=message)
        try:
            return super().complete_run(run_id, model=model, extra_files=extra_files, **values)
        except DatabaseUnavailableError:
            # The progress events still waiting go with it: the process may end before the database is back.
            events = self._held_events.pop(run_id, [])
            return outbox.put(self.root, run_id, model=model, extra_files=extra_files, events=events, **values)

    def _deliver_waiting_runs(self) -> None:
        """Store every finished run the outbox holds (cheap when it is empty: one folder listing)."""
        if getattr(self._delivering, "active", False):
            return  # delivering uses the store itself
        waiting = outbox.pending(self.root)
        if not waiting:
            return
        self._delivering.active = True
        try:
            for run_id in waiting:
                if run_id not in self._undeliverable:
                    self._deliver(run_id)
        except DatabaseUnavailableError:
            pass  # still down: they wait for the next call
        except Exception:  # noqa: BLE001 - a damaged entry must not stop every read; it stays on disk for a person to look at
            self._undeliverable.add(run_id)
        finally:
            self._delivering.active = False

    def _deliver(self, run_id: str) -> None:
        """One outbox entry into the database: files and the completed status in one transaction, then the entry goes."""
        done = outbox.read(self.root, run_id)
        run = self.get_run(run_id)
        if run is None or not _may_complete_late(run.status, run.message):
            outbox.remove(self.root, run_id)  # deleted meanwhile, or already stored (a second delivery): nothing twice
            return
        files = store_files.run_files(
            run.config.to_dict(), done.history, done.metrics, done.environment, done.fingerprint, done.extra_files
        )
        folder = store_files.write_run_folder(self.runs_folder, run_id, files, done.model)
        with self._write() as connection:
            row = connection.execute("SELECT status, message FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and _may_complete_late(Status(row["status"]), row["message"]):
                now = utc_now()
                # The progress it reported while the database was away, in order, in the transaction that completes it.
                connection.executemany(
                    "INSERT INTO events (run_id, created_at, kind, payload_json) VALUES (?, ?, ?, ?)",
                    [(run_id, now, event["kind"], to_json(event)) for event in done.events],
                )
                connection.execute(
                    "UPDATE runs SET status = 'completed', message = ?, metrics_json = ?, environment_json = ?, fingerprint_json = ?,"
                    " train_seconds = ?, finished_at = ?, updated_at = ? WHERE run_id = ?",
                    (done.message, to_json(done.metrics), to_json(done.environment), to_json(done.fingerprint),
                     done.train_seconds, now, now, run_id),
                )  # fmt: skip
                self._keep_run_files(connection, run_id, folder)
        outbox.remove(self.root, run_id)
        self._drop_checkpoints(run_id)


def _may_complete_late(status: Status, message: str) -> bool:
    """A run from the outbox is stored while it is still running, or failed only because its worker stopped waiting."""
    return status is Status.RUNNING or (status is Status.FAILED and message == INTERRUPTED_MESSAGE)


def _is_unavailable(error: BaseException) -> bool:
    import psycopg

    return isinstance(error, psycopg.OperationalError)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def unavailable_sentence(store) -> str | None:
    """What the sidebar says when the store's database does not answer (None when it does, or the store is SQLite)."""
    if not isinstance(store, PostgresMixin):
        return None
    try:
        store.list_runs(status=Status.RUNNING)
    except DatabaseUnavailableError:
        waiting = len(outbox.pending(store.root))
        kept = f" {waiting} finished run(s) are kept on this computer until then." if waiting else ""
        return (
            f"{NOT_ANSWERING}, so runs and results cannot be shown. Training goes on, "
            f"and finished runs are saved as soon as it answers again.{kept} (PostgreSQL server {store.where} unreachable.)"
        )
    return None
