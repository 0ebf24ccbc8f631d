"""Shared test settings: quiet TensorFlow, and a private results folder per test session."""

import os
from pathlib import Path

# Quieten TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

# Imported before any test module imports TensorFlow: lab/__init__.py picks TensorFlow's CPU kernels,
# which TensorFlow reads only once, when it starts.
import lab  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _private_lab_home(tmp_path, monkeypatch):
    """Every test writes runs into its own temporary LAB_HOME, never into ./runs, and workers do not linger."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab_home"))
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)  # SQLite unless a test asks for PostgreSQL (store_backend)
    # Workers leave as soon as the queue is empty, so a test never waits for an idle one to go;
    # tests of the warm worker set their own value.
    monkeypatch.setenv("LAB_WORKER_IDLE_SECONDS", "0")


# Two tiers: `pytest -m "not slow"` is the everyday run (unit and page tests), plain `pytest` runs everything (CI).
# Every browser test belongs to the slow tier: it starts a real server and Chromium. The rule lives here, once,
# rather than as a second mark beside each `browser` one, because `browser` marks whole modules and single tests
# in other modules alike, and a new browser test must not land in the everyday run because a second mark was forgotten.
# tryfirst: the mark is added before pytest's own hook selects tests by `-m`.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
    longest_first(items)


# The modules that take longest, longest first (measured with `--junitxml`: the time per module). scripts/test.sh
# hands whole modules to its parallel processes in collection order (`--dist loadfile --no-loadscope-reorder`); a
# long module started last would leave one process working alone at the end, so these go first and the many short
# ones fill in around them. Any module not named keeps its place after them.
LONGEST_MODULES = (
    "test_ray_cluster",
    "test_browser_lesson",
    "test_browser_login",
    "test_cli",
    "test_browser_a11y",
    "test_browser_keyboard",
    "test_export",
    "test_training",
    "test_store_concurrency",
    "test_app_classroom",
    "test_jobs",
    "test_browser",
)


def longest_first(items: list) -> None:
    """Reorder `items` in place: the modules in LONGEST_MODULES first, in that order; within a module, tests keep theirs."""
    rank = {name: place for place, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(Path(item.nodeid.partition("::")[0]).stem, len(rank)))


# The results store has two backends (lab/store/runs.py: SQLite, the default; lab/store/postgres.py: PostgreSQL when
# LAB_DATABASE_URL is set). Store-level tests take `store_backend` to run once on each. The PostgreSQL cluster is
# started once per test session (tests/postgres_server.py) and each test gets a fresh database in it.
@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server on a free loopback port for the whole session; skipped without PostgreSQL (failed under CI)."""
    from tests.postgres_server import require_psycopg, running_server

    require_psycopg()
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_session_database(postgres_server):
    """One database for the session's store tests: creating and migrating one per test would cost more than the test."""
    return postgres_server.new_database()


@pytest.fixture
def postgres_url(postgres_session_database, monkeypatch):
    """The session's database with every row removed, set as LAB_DATABASE_URL: every `Store()` in this test is a PostgreSQL store.

    A test that needs a database of its own (an old schema, a newer one) asks postgres_server.new_database().
    """
    from tests.postgres_server import empty_database

    empty_database(postgres_session_database)
    monkeypatch.setenv("LAB_DATABASE_URL", postgres_session_database)
    return postgres_session_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request, monkeypatch):
    """Run the test once with SQLite and once with PostgreSQL; returns the backend's name."""
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)
    if request.param == "postgresql":
        request.getfixturevalue("postgres_url")
    return request.param
