"""The PostgreSQL store: chosen by LAB_DATABASE_URL, files kept in the database, schema versions, the password never shown.

The behaviour both backends share is tested on both in tests/test_store.py; this file holds what only the
PostgreSQL store has. The server is a private cluster started once per session (tests/postgres_server.py).
"""

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lab.config import RunConfig
from lab.store import postgres_schema
from lab.store.database import MIGRATIONS as SQLITE_MIGRATIONS
from lab.store.database import to_json
from lab.store.postgres import configured_url, redact, safe_address
from lab.store.records import Status
from lab.store.runs import DatabaseUnavailableError, PostgresStore, Store, StoreError
from tests.postgres_server import TEST_PASSWORD
from tests.test_store import _finish_kwargs, _tiny_model

# -- the password never shown ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://lab:s3cret@db.example.org:5432/lab",
        "could not connect to postgres://lab:s3cret@10.0.0.1/lab: timeout",
        "host=db user=lab password=s3cret dbname=lab",
        "host=db password = 's3cret' dbname=lab",
    ],
)
def test_redact_removes_the_password_wherever_it_is_written(text):
    assert "s3cret" in text  # the precondition: there is a password to hide
    assert "s3cret" not in redact(text)
    assert "***" in redact(text)


def test_redact_also_hides_the_configured_password_on_its_own():
    url = "postgresql://lab:Tr1cky%pass@db/lab"
    assert "Tr1cky%pass" not in redact("the server said: Tr1cky%pass is wrong", url)


def test_safe_address_keeps_user_host_and_database_but_not_the_password():
    assert safe_address("postgresql://lab:s3cret@db.example.org:5432/lab") == "postgresql://lab@db.example.org:5432/lab"


def test_a_database_that_does_not_answer_is_explained_without_its_password(tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://lab:{TEST_PASSWORD}@127.0.0.1:{port}/lab"
    monkeypatch.setenv("LAB_DATABASE_URL", url)
    store = Store(tmp_path / "cache")
    assert isinstance(store, PostgresStore)
    with pytest.raises(DatabaseUnavailableError) as caught:
        store.list_runs()
    assert TEST_PASSWORD not in str(caught.value) and TEST_PASSWORD not in repr(store)
    assert f"127.0.0.1:{port}" in str(caught.value)  # it does say which database
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # psycopg's own text is not chained on


# -- which store Store() is ----------------------------------------------------------------


def test_without_a_database_address_the_store_is_sqlite(tmp_path):
    store = Store(tmp_path / "store")
    assert type(store) is Store and store.database.name == "lab.sqlite3"


def test_lab_database_url_makes_store_a_postgres_store(postgres_url, tmp_path):
    from lab.store.interface import RunStore

    store = Store(tmp_path / "cache")
    assert isinstance(store, PostgresStore) and isinstance(store, RunStore)
    run_id = store.create_run(RunConfig())
    assert Store(tmp_path / "elsewhere").get_run(run_id) is not None  # the rows are in the database, not the folder
    assert not (tmp_path / "cache" / "lab.sqlite3").exists()
    assert TEST_PASSWORD in postgres_url and TEST_PASSWORD not in repr(store) and TEST_PASSWORD not in store.where


def test_the_address_can_come_from_the_secrets_file(postgres_url, tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_DATABASE_URL")
    app_folder = tmp_path / "app"
    (app_folder / ".streamlit").mkdir(parents=True)
    (app_folder / ".streamlit" / "secrets.toml").write_text(f'teacher_password = "x"\ndatabase_url = "{postgres_url}"\n')
    monkeypatch.chdir(app_folder)
    assert configured_url() == postgres_url
    assert isinstance(Store(tmp_path / "cache"), PostgresStore)


def test_a_broken_secrets_file_fails_closed_without_quoting_it(tmp_path, monkeypatch):
    app_folder = tmp_path / "app"
    (app_folder / ".streamlit").mkdir(parents=True)
    (app_folder / ".streamlit" / "secrets.toml").write_text('database_url = "postgresql://lab:s3cret@db/lab\n')  # quote never closed
    monkeypatch.chdir(app_folder)
    with pytest.raises(StoreError) as caught:
        Store(tmp_path / "cache")
    assert "not valid TOML" in str(caught.value) and "s3cret" not in str(caught.value)


# -- files: in the database, the local folder only a cache -------------------------------


def test_a_completed_runs_files_come_back_after_the_local_disk_is_wiped(postgres_url, tmp_path):
    store = Store(tmp_path / "cache")
    model = _tiny_model()
    run_id = store.create_run(RunConfig(epochs=2), status="running")
    store.complete_run(run_id, model=model, extra_files={"model_card.md": b"# card"}, **_finish_kwargs())
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    before = model.predict(images, verbose=0)
    assert (tmp_path / "cache" / "runs" / run_id / "model.keras").is_file()  # the precondition: it was cached

    shutil.rmtree(tmp_path / "cache")  # a reboot of Streamlit Community Cloud: the app's disk is gone
    fresh = Store(tmp_path / "cache")
    np.testing.assert_array_equal(fresh.load_model(run_id).predict(images, verbose=0), before)
    assert fresh.load_history(run_id)["loss"] == [2.0, 1.5]
    assert (fresh.run_dir(run_id) / "model_card.md").read_bytes() == b"# card"


def test_deleting_a_run_deletes_its_stored_files(postgres_url, tmp_path):
    from lab.store.owners import local_person

    store = Store(tmp_path / "cache")
    run_id = store.create_run(RunConfig(), status="running")
    store.complete_run(run_id, **_finish_kwargs())
    assert store.run_files(run_id)  # the precondition: files were stored
    assert store.delete_run(run_id, by=local_person())
    assert store.run_files(run_id) == {}


# -- the schema: versions like SQLite's, upgraded on start -----------------------------------


def test_both_backends_have_the_same_schema_versions():
    assert len(postgres_schema.MIGRATIONS) == len(SQLITE_MIGRATIONS)


def test_an_older_postgres_store_is_upgraded_in_place(postgres_server, tmp_path, monkeypatch):
    import psycopg

    postgres_url = postgres_server.new_database()  # its own: this one starts at an old version
    monkeypatch.setenv("LAB_DATABASE_URL", postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for statement in postgres_schema.MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("INSERT INTO schema_version VALUES (1, 'then')")
        connection.execute(
            "INSERT INTO runs (run_id, created_at, updated_at, status, model, task, config_json)"
            " VALUES ('old-run', '2026-01-01', '2026-01-01', 'queued', 'seed-cnn', 'full', %s)",
            (to_json(RunConfig().to_dict()),),
        )
    store = Store(tmp_path / "cache")
    run = store.get_run("old-run")
    assert run is not None and run.owner_id == "local"  # kept, and given the column version 2 added
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == len(SQLITE_MIGRATIONS)


def test_a_database_newer_than_the_lab_is_refused(postgres_server, tmp_path, monkeypatch):
    import psycopg

    postgres_url = postgres_server.new_database()  # its own: this one ends at a version the lab does not know
    monkeypatch.setenv("LAB_DATABASE_URL", postgres_url)
    Store(tmp_path / "cache").list_runs()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("INSERT INTO schema_version VALUES (%s, 'later')", (len(SQLITE_MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="update the lab"):
        Store(tmp_path / "cache").list_runs()


def test_the_adapter_reports_a_duplicate_key_as_sqlites_integrity_error(postgres_url, tmp_path):
    store = Store(tmp_path / "cache")
    store.list_runs()
    with pytest.raises(sqlite3.IntegrityError), store._write() as connection:
        connection.execute("INSERT INTO people (person_id, name, created_at) VALUES (?, ?, ?)", ("p1", "Ana", "now"))
        connection.execute("INSERT INTO people (person_id, name, created_at) VALUES (?, ?, ?)", ("p1", "Ana", "now"))
    assert store.person_name("p1") is None  # the whole transaction was rolled back


def test_child_processes_get_the_stores_address_but_not_streamlits_copy_of_the_secret(monkeypatch):
    from lab.system.processes import child_environment

    base = {"LAB_DATABASE_URL": "postgresql://lab:s3cret@db/lab", "database_url": "postgresql://lab:s3cret@db/lab", "PATH": "/bin"}
    child = child_environment(base)
    assert "database_url" not in child  # Streamlit copied the secret into the environment: no child needs that copy
    assert child["LAB_DATABASE_URL"] == base["LAB_DATABASE_URL"]  # a worker writes its run into this database


# -- python -m lab store copy: SQLite to PostgreSQL and back -----------------------------------


def _class_in_a_folder(root):
    """A small class in a SQLite store: a completed run with files, one Ana follows, a queued one, events, people, settings."""
    from lab.store.owners import Person
    from lab.store.runs import SQLiteStore

    store = SQLiteStore(root)
    ana, ben = Person("ana-id", "Ana"), Person("ben-id", "Ben")
    store.add_person(ana.id, ana.name, name_key="ana", secret_hash=None)
    store.add_person(ben.id, ben.name, name_key="ben", secret_hash=None)
    store.set_setting("challenge", {"task": "cifar10"})
    model = _tiny_model()
    done = store.create_run(RunConfig(epochs=2), status="running", owner=ben)
    store.add_event(done, {"kind": "epoch_end", "epoch": 1})
    store.complete_run(done, model=model, **_finish_kwargs())
    store.follow(done, ana)
    waiting = store.create_run(RunConfig(), owner=ana)
    return store, model, done, waiting


@pytest.mark.slow
def test_store_copy_moves_a_sqlite_store_into_postgres_and_back(postgres_url, tmp_path, capsys, monkeypatch):
    from lab.cli.main import main
    from lab.store.runs import SQLiteStore

    monkeypatch.delenv("LAB_DATABASE_URL")
    source, model, done, waiting = _class_in_a_folder(tmp_path / "laptop")
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "laptop"))
    assert main(["store", "copy", "--to", postgres_url]) == 0
    printed = capsys.readouterr().out
    assert "Copied 2 runs" in printed and "files of 1 completed runs" in printed and TEST_PASSWORD not in printed

    server = PostgresStore(tmp_path / "cache", database_url=postgres_url)
    assert [run.run_id for run in server.list_runs()] == [run.run_id for run in source.list_runs()]
    assert server.follower_ids(done) == {"ana-id"} and server.get_setting("challenge") == {"task": "cifar10"}
    assert [event["epoch"] for event in server.events(done)] == [1]
    assert server.add_event(done, {"kind": "note"}) > server.events(done)[0]["id"]  # new ids come after the copied ones
    images = np.random.default_rng(1).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(server.load_model(done).predict(images, verbose=0), model.predict(images, verbose=0))
    assert server.claim_next_queued(1) == waiting

    # Into a store that already holds the class: refused, so nothing is stored twice.
    assert main(["store", "copy", "--to", postgres_url]) == 1
    assert "empty store only" in capsys.readouterr().out and len(server.list_runs()) == 2

    # And back, from the database into an empty folder.
    assert main(["store", "copy", "--from", postgres_url, "--to", str(tmp_path / "back")]) == 0
    back = SQLiteStore(tmp_path / "back")
    assert {run.run_id for run in back.list_runs()} == {done, waiting} and back.people() == server.people()
    np.testing.assert_array_equal(back.load_model(done).predict(images, verbose=0), model.predict(images, verbose=0))


# -- the database stops answering mid-run ------------------------------------------------------


@pytest.mark.slow
def test_a_run_that_finishes_while_the_database_is_down_is_stored_once_when_it_is_back(postgres_server, postgres_url, tmp_path):
    from lab.store import outbox
    from lab.store.postgres import unavailable_sentence

    store = Store(tmp_path / "cache")
    run_id = store.create_run(RunConfig(epochs=2), status="running")
    store.add_event(run_id, {"kind": "epoch_end", "epoch": 1})
    model = _tiny_model()
    postgres_server.stop("immediate")  # the server dies mid-run
    try:
        with pytest.raises(DatabaseUnavailableError):
            store.list_runs()  # the precondition: the database really is gone
        assert "not answering" in unavailable_sentence(store) and TEST_PASSWORD not in unavailable_sentence(store)
        # Training goes on: events wait, nobody asked to stop, and the finished run waits on the local disk.
        assert store.add_event(run_id, {"kind": "epoch_end", "epoch": 2}) == 0
        assert store.cancel_requested(run_id) is False
        store.complete_run(run_id, model=model, extra_files={"MODEL_CARD.md": b"# card"}, **_finish_kwargs())
        assert outbox.pending(store.root) == [run_id]
    finally:
        postgres_server.start()

    store.add_event(run_id, {"kind": "note"})  # the first call that gets through delivers what waited
    assert outbox.pending(store.root) == []
    run = store.get_run(run_id)
    assert run.status == "completed" and run.metrics["accuracy"] == 0.5
    assert [event["kind"] for event in store.events(run_id)] == ["epoch_end", "epoch_end", "note"]
    assert unavailable_sentence(store) is None

    # Delivered again (a second process found the same entry, a crash before it was removed): still stored once.
    outbox.put(store.root, run_id, model=None, extra_files=None, message="", **_finish_kwargs())
    store.list_runs()
    assert outbox.pending(store.root) == [] and len(store.list_runs()) == 1

    shutil.rmtree(tmp_path / "cache")  # and it is in the database, not only on this disk
    images = np.random.default_rng(2).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    fresh = Store(tmp_path / "cache")
    np.testing.assert_array_equal(fresh.load_model(run_id).predict(images, verbose=0), model.predict(images, verbose=0))
    assert (fresh.run_dir(run_id) / "MODEL_CARD.md").read_bytes() == b"# card"


@pytest.mark.slow
def test_the_sidebar_says_when_the_database_does_not_answer_without_its_password(tmp_path, monkeypatch):
    import socket

    from streamlit.testing.v1 import AppTest

    from tests.synthetic import random_cifar10_folder

    with socket.socket() as probe:  # a loopback port nothing listens on: the database is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LAB_DATABASE_URL", f"postgresql://lab:{TEST_PASSWORD}@127.0.0.1:{port}/lab")
    monkeypatch.setenv("CIFAR10_DIR", str(random_cifar10_folder(tmp_path / "data", n_train=20, n_test=10)))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    sidebar = "\n".join(str(m.value) for m in at.sidebar.markdown) + "\n".join(str(c.value) for c in at.sidebar.caption)
    assert "the database is not answering" in sidebar and "training goes on" in sidebar
    assert f"127.0.0.1:{port}" in sidebar  # the precondition of the next line: the address itself is shown
    everything = sidebar + "\n".join(str(element.value) for element in at.main if hasattr(element, "value"))
    assert TEST_PASSWORD not in everything


def test_a_training_runs_newest_checkpoint_comes_back_after_the_local_disk_is_wiped(postgres_url, tmp_path):
    from lab.train import checkpoints

    store = Store(tmp_path / "cache")
    run_id = store.create_run(RunConfig(epochs=3), status="running")
    for epoch in (1, 2):  # training saves the epoch's checkpoint, then reports the epoch
        weights = [np.full((2, 2), float(epoch), dtype=np.float32)]
        saved = checkpoints.Checkpoint(
            epoch=epoch, config={}, history={"loss": [1.0] * epoch}, train_seconds=epoch, arrays={"weights": weights}
        )
        checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, saved)
        store.add_event(run_id, {"kind": "epoch_end", "epoch": epoch})

    shutil.rmtree(tmp_path / "cache")  # the server is rebuilt mid-run
    fresh = Store(tmp_path / "cache")
    folder = fresh.run_folder(run_id).checkpoints
    assert checkpoints.saved_epoch(folder) == 2  # the newest one, not the first
    np.testing.assert_array_equal(checkpoints.read_checkpoint(folder).arrays["weights"][0], np.full((2, 2), 2.0))

    fresh.complete_run(run_id, **_finish_kwargs())
    assert not any(name.startswith("checkpoint/") for name in fresh._stored_files(run_id))  # dropped once the run is complete


def test_a_cancelled_runs_checkpoint_leaves_the_database_too(postgres_url, tmp_path):
    from lab.train import checkpoints

    store = Store(tmp_path / "cache")
    run_id = store.create_run(RunConfig(epochs=3), status="running")
    saved = checkpoints.Checkpoint(epoch=1, config={}, history={"loss": [1.0]}, train_seconds=1, arrays={"weights": [np.ones((2, 2))]})
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, saved)
    store.add_event(run_id, {"kind": "epoch_end", "epoch": 1})
    assert any(name.startswith("checkpoint/") for name in store._stored_files(run_id))  # precondition: it was kept there

    store.set_status(run_id, Status.CANCELLED)  # what the worker does when the owner cancels
    assert not any(name.startswith("checkpoint/") for name in store._stored_files(run_id))
    assert not store.run_folder(run_id).checkpoints.exists()
