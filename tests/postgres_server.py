"""A private PostgreSQL server for the tests: its own cluster in a temporary folder, on a free loopback port.

One cluster per test session (it takes a few seconds to start); each test gets a fresh, empty database
in it. The server listens on 127.0.0.1 only, trusts local connections (nothing else can reach it) and
is stopped, its folder removed, when the session ends.

`initdb` and `pg_ctl` refuse to run as root, so when the tests run as root they run as the `postgres`
user (Debian's package creates it) and the cluster's folder is handed to that user.
Without PostgreSQL installed the tests that need it are skipped with a reason, except under CI=true:
there its absence fails the run, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_USER = "postgres"  # the user Debian's package creates; the cluster's superuser has this name too
TEST_PASSWORD = "s3cret-Pa55word"  # what the test URL carries, so tests can check it never leaks


def find_postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def skip_or_fail(reason: str) -> None:
    """Skip the test with `reason`; under CI=true, fail instead: CI must run the PostgreSQL tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests must run in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """A running cluster: make a fresh database with `new_database()`, stop it with `stop()`."""

    bin_folder: Path
    folder: Path
    port: int
    run_as: str | None  # the user pg_ctl runs as (None: the current user)

    def _command(self, *arguments: str) -> list[str]:
        command = [str(self.bin_folder / arguments[0]), *arguments[1:]]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    def url(self, database: str = "postgres", password: str = TEST_PASSWORD) -> str:
        # The server trusts loopback connections, so the password is never checked; it is in the URL so
        # that tests can check it is never shown.
        return f"postgresql://{SERVER_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"lab_{secrets.token_hex(4)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> None:
        log = self.folder / "server.log"
        subprocess.run(
            self._command("pg_ctl", "-D", str(self.folder / "data"), "-l", str(log), "-w", "-t", "60", "start",
                          "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"),
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: as if it crashed); the data stays, so `start()` brings it back."""
        subprocess.run(self._command("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop"), capture_output=True, timeout=60)


def start_server() -> PostgresServer:
    """initdb a cluster in a temporary folder and start it; the caller stops it (see `running_server`)."""
    bin_folder = find_postgres_bin()
    if bin_folder is None:
        skip_or_fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    run_as = SERVER_USER if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="lab-postgres-"))
    if run_as:
        try:
            user = pwd.getpwnam(run_as)
        except KeyError:
            shutil.rmtree(folder)
            skip_or_fail(f"running as root, and there is no {run_as!r} user to run the PostgreSQL server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_folder, folder, _free_port(), run_as)
    subprocess.run(
        server._command("initdb", "-D", str(folder / "data"), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    server.start()
    return server


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A started cluster for the duration of the `with` block; stopped and removed after."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.folder, ignore_errors=True)


def wait_until_answers(url: str, timeout: float = 30.0) -> None:
    """Wait until the server at `url` accepts a connection (after a restart)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def require_psycopg() -> None:
    """Skip (or, under CI, fail) when the PostgreSQL driver is not installed."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("the PostgreSQL driver psycopg is not installed (pip install -e .)")


def database_dump(store) -> str:
    """Everything a store's database holds, as text: SQLite's own dump, or every row of every PostgreSQL table.

    For tests that check what is (and is not) stored, such as a password or a browser token, on either backend.
    """
    import sqlite3

    from lab.store.runs import PostgresStore

    if not isinstance(store, PostgresStore):
        with contextlib.closing(sqlite3.connect(store.database)) as connection:
            return "\n".join(connection.iterdump())
    with store._read() as connection:
        tables = [row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return "\n".join(repr(tuple(row.values())) for table in tables for row in connection.execute(f"SELECT * FROM {table}").fetchall())


def empty_database(url: str) -> None:
    """Remove every row (the schema stays, ids start again at 1), so the next test finds an empty store."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'schema_version'")
        ]
        if tables:
            connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
