"""The results store: status rules, events, atomic completion, files, reference rows, concurrency."""

import json
import multiprocessing
import os
import zipfile
from pathlib import Path

import pytest

from lab.config import REPORT_BINARY_TASK, RunConfig, config_for_preset
from lab.report.results_table import reference_rows, results_row, results_table
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import INTERRUPTED_MESSAGE, RunNotFoundError, Store, StoreError, validate_run_id

RESULT_KEYS = {
    "run_id",
    "reference",
    "owner",
    "model",
    "task",
    "options",
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "baseline_accuracy",
    "positive_precision",
    "positive_recall",
    "positive_f1",
    "total_params",
    "trainable_params",
    "train_seconds",
    "epochs",
    "train_images",
    "test_images",
    "device",
    "data",
    "created_at",
    "status",
    "source",
}


@pytest.fixture
def store(tmp_path, store_backend):
    """A store on each backend in turn: SQLite, then PostgreSQL (tests/conftest.py)."""
    return Store(tmp_path / "store")


@pytest.fixture
def sqlite_store(tmp_path):
    """A SQLite store, for what only SQLite has (its file, WAL mode)."""
    return Store(tmp_path / "store")


def _finish_kwargs(**overrides):
    """Keyword arguments of a small, valid complete_run call."""
    values = {
        "metrics": {"accuracy": 0.5, "precision_macro": 0.4, "recall_macro": 0.45, "f1_macro": 0.42, "n_test": 100, "total_params": 123},
        "history": {"loss": [2.0, 1.5], "val_accuracy": [0.3, 0.5]},
        "environment": {"device": "CPU", "keras": "3"},
        "fingerprint": {"source": "synthetic"},
        "train_seconds": 12.5,
    }
    return {**values, **overrides}


def _tiny_model():
    import keras
    from keras import layers

    return keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(3, activation="softmax")])


# -- where the store lives ---------------------------------------------------------


def test_root_comes_from_lab_home_and_is_created_lazily(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    store = Store()
    assert store.root == tmp_path / "home"
    assert not store.root.exists()  # creating a Store touches nothing
    store.list_runs()
    assert (tmp_path / "home" / "lab.sqlite3").is_file()


def test_root_defaults_to_runs_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_HOME")
    monkeypatch.chdir(tmp_path)
    assert Store().root == tmp_path / "runs"


def test_unwritable_root_raises_a_helpful_store_error(tmp_path, monkeypatch):
    # A folder inside a regular file cannot be created, even by root (chmod would not stop root).
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LAB_HOME", str(blocker / "lab"))
    with pytest.raises(StoreError, match="LAB_HOME") as caught:
        Store().list_runs()
    assert str(blocker / "lab") in str(caught.value)


def test_database_uses_wal_and_has_a_schema_version(sqlite_store):
    store = sqlite_store
    import sqlite3

    store.list_runs()
    with sqlite3.connect(store.database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 3  # 3: classroom trust
    assert store.integrity_check() == "ok"


def test_a_store_from_before_classroom_mode_is_upgraded_in_place(tmp_path):
    """A version-1 database keeps its runs; they belong to the local user, and the new tables exist."""
    import sqlite3

    from lab.store import database

    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / database.DATABASE_NAME) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for statement in database.MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00Z')")
        connection.execute(
            "INSERT INTO runs (run_id, created_at, updated_at, status, model, task, config_json)"
            " VALUES ('20260101-000000-seed-cnn-abcd', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'queued', 'seed-cnn', 'cifar10', ?)",
            (json.dumps(RunConfig().to_dict()),),
        )
    store = Store(old)
    (run,) = store.list_runs()
    assert (run.owner_id, run.settings_key) == ("local", None)
    assert store.get_setting("class_limits") is None and store.followers(run.run_id) == []


# -- run ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a\\b", "..", "x..y", ".hidden", "-x", "a b", "x" * 82, None])
def test_validate_run_id_rejects_unsafe_ids(bad):
    with pytest.raises(ValueError, match="not valid"):
        validate_run_id(bad)


def test_created_run_ids_are_readable_and_valid(store):
    run_id = store.create_run(config_for_preset("seed-cnn"))
    assert validate_run_id(run_id) == run_id
    date, time_of_day, *model, suffix = run_id.split("-")
    assert len(date) == 8 and len(time_of_day) == 6 and "-".join(model) == "seed-cnn" and len(suffix) == 4


def test_store_methods_refuse_unsafe_ids(store):
    delete = lambda run_id: store.delete_run(run_id, by=local_person())  # noqa: E731
    for call in (store.get_run, store.run_dir, store.load_model, delete):
        with pytest.raises(ValueError):
            call("../escape")


# -- statuses ---------------------------------------------------------------------------


def test_create_and_read_back_a_run(store):
    config = RunConfig(epochs=3, subset=1000)
    run_id = store.create_run(config)
    run = store.get_run(run_id)
    assert run.status is Status.QUEUED and results_row(run)["reference"] is False
    assert run.config == config
    assert run.model == "seed-cnn" and run.task == "cifar10"
    assert run.metrics == {} and run.cancel_requested is False
    assert store.get_run("20000101-000000-nothing-0000") is None


def test_claim_takes_the_oldest_queued_run_atomically(store):
    first, second = store.create_run(RunConfig()), store.create_run(RunConfig())
    assert store.claim_next_queued(worker_pid=4242) == first
    claimed = store.get_run(first)
    assert claimed.status is Status.RUNNING and claimed.worker_pid == 4242 and claimed.started_at
    assert store.claim_next_queued(worker_pid=4242) == second
    assert store.claim_next_queued(worker_pid=4242) is None


@pytest.mark.parametrize(
    "path",
    [["running", "completed"], ["running", "failed"], ["running", "cancelled"], ["cancelled"], ["failed"]],
)
def test_allowed_transitions(store, path):
    run_id = store.create_run(RunConfig())
    for status in path:
        store.set_status(run_id, status, message=f"now {status}")
    run = store.get_run(run_id)
    assert run.status == path[-1] and run.message == f"now {path[-1]}" and run.finished_at


@pytest.mark.parametrize(
    "path, refused",
    [
        ([], "completed"),
        (["running", "completed"], "running"),
        (["running", "completed"], "failed"),
        (["cancelled"], "running"),
        (["running"], "queued"),
    ],
)
def test_invalid_transitions_raise(store, path, refused):
    run_id = store.create_run(RunConfig())
    for status in path:
        store.set_status(run_id, status)
    with pytest.raises(ValueError, match="cannot become"):
        store.set_status(run_id, refused)
    assert store.get_run(run_id).status == (path[-1] if path else "queued")


def test_unknown_status_and_unknown_run_raise(store):
    run_id = store.create_run(RunConfig())
    with pytest.raises(ValueError, match="unknown"):
        store.set_status(run_id, "interrupted")
    with pytest.raises(RunNotFoundError):
        store.set_status("20000101-000000-ghost-0000", "running")


def test_cancel_a_queued_run_at_once(store):
    run_id = store.create_run(RunConfig())
    assert store.request_cancel(run_id, by=local_person()) is True
    assert store.get_run(run_id).status is Status.CANCELLED
    assert store.cancel_requested(run_id) is True
    assert store.claim_next_queued(worker_pid=1) is None  # a cancelled run is never started


def test_cancel_a_running_run_sets_a_flag_the_job_polls(store):
    run_id = store.create_run(RunConfig())
    store.claim_next_queued(worker_pid=os.getpid())
    assert store.cancel_requested(run_id) is False
    assert store.request_cancel(run_id, by=local_person()) is True
    run = store.get_run(run_id)
    assert run.status is Status.RUNNING and run.cancel_requested is True
    assert store.cancel_requested(run_id) is True
    store.set_status(run_id, "cancelled", "stopped after epoch 1")
    assert store.request_cancel(run_id, by=local_person()) is False  # nothing left to cancel


def test_a_running_run_can_be_asked_to_stop_and_keep_its_model(store):
    run_id = store.create_run(RunConfig())
    store.claim_next_queued(worker_pid=os.getpid())
    assert store.keep_requested(run_id) is False and store.get_run(run_id).keep_when_stopped is False
    assert store.request_cancel(run_id, keep_model=True, by=local_person()) is True
    run = store.get_run(run_id)
    assert run.status is Status.RUNNING and run.cancel_requested is True and run.keep_when_stopped is True
    assert store.cancel_requested(run_id) is True and store.keep_requested(run_id) is True
    assert store.request_cancel(run_id, by=local_person()) is True  # a later plain cancel wins: nothing is kept
    assert store.keep_requested(run_id) is False and store.cancel_requested(run_id) is True


def test_a_queued_run_asked_to_keep_its_model_is_cancelled_at_once(store):
    run_id = store.create_run(RunConfig())
    assert store.request_cancel(run_id, keep_model=True, by=local_person()) is True
    assert store.get_run(run_id).status is Status.CANCELLED  # nothing learned yet, nothing to keep
    assert store.keep_requested(run_id) is False


def test_mark_interrupted_runs_fails_runs_whose_process_is_gone(store):
    alive_run, dead_run, queued_run = (store.create_run(RunConfig()) for _ in range(3))
    store.claim_next_queued(worker_pid=111)
    store.claim_next_queued(worker_pid=222)

    interrupted = store.mark_interrupted_runs(still_working=lambda pid, started_at: pid == 111)

    assert interrupted == [dead_run]
    assert store.get_run(alive_run).status is Status.RUNNING
    assert store.get_run(dead_run).status is Status.FAILED
    assert store.get_run(dead_run).message == INTERRUPTED_MESSAGE
    assert store.get_run(queued_run).status is Status.QUEUED


def test_a_run_created_running_records_this_process(store):
    run_id = store.create_run(RunConfig(), status="running")
    assert store.get_run(run_id).worker_pid == os.getpid()
    assert store.mark_interrupted_runs() == []  # this process is alive


# -- events -------------------------------------------------------------------------------


def test_events_come_back_in_order_and_filter_by_after_id(store):
    run_id = store.create_run(RunConfig())
    ids = [store.add_event(run_id, {"kind": "epoch_end", "epoch": epoch, "val_accuracy": 0.1 * epoch}) for epoch in range(1, 4)]
    store.add_event(run_id, {"kind": "train_end", "status": "completed"})

    events = store.events(run_id)
    assert [event["kind"] for event in events] == ["epoch_end"] * 3 + ["train_end"]
    assert [event["epoch"] for event in events[:3]] == [1, 2, 3]
    assert [event["id"] for event in events[:3]] == ids
    assert [event["epoch"] for event in store.events(run_id, after_id=ids[0])[:2]] == [2, 3]
    assert store.events(run_id, after_id=events[-1]["id"]) == []
    assert [event["kind"] for event in store.events(run_id, kinds=["train_end"])] == ["train_end"]
    assert store.latest_event(run_id, "epoch_end")["epoch"] == 3
    assert store.latest_event(run_id, "batch_end") is None


def test_events_need_a_kind_and_an_existing_run(store):
    run_id = store.create_run(RunConfig())
    with pytest.raises(ValueError, match="kind"):
        store.add_event(run_id, {"epoch": 1})
    with pytest.raises(RunNotFoundError):
        store.add_event("20000101-000000-ghost-0000", {"kind": "epoch_end"})


def test_numpy_values_in_events_are_stored_as_plain_numbers(store):
    import numpy as np

    run_id = store.create_run(RunConfig())
    store.add_event(run_id, {"kind": "epoch_end", "loss": np.float32(0.5), "shape": np.array([1, 2])})
    event = store.events(run_id)[0]
    assert event["loss"] == 0.5 and event["shape"] == [1, 2]


# -- completing, loading, exporting, deleting ------------------------------------------------


class _ExplodingModel:
    """Stands in for a model whose save fails halfway (disk full, say) after writing a partial file."""

    def save(self, path):
        Path(path).write_bytes(b"half a model")
        raise OSError("No space left on device")


def test_complete_run_failure_leaves_no_folder_and_no_completed_row(store):
    run_id = store.create_run(RunConfig(), status="running")
    with pytest.raises(StoreError, match="No space left on device.*Free some space"):
        store.complete_run(run_id, model=_ExplodingModel(), **_finish_kwargs())
    assert store.get_run(run_id).status is Status.RUNNING
    assert store.get_run(run_id).metrics == {}
    assert not store.run_dir(run_id).exists()
    assert list(store.runs_folder.iterdir()) == []  # no temporary leftovers either


def test_complete_run_refuses_a_run_that_is_not_running(store):
    run_id = store.create_run(RunConfig())
    with pytest.raises(ValueError, match="cannot become completed"):
        store.complete_run(run_id, **_finish_kwargs())
    assert not store.run_dir(run_id).exists()


def test_completed_run_has_all_files_and_its_model_round_trips(store):
    import numpy as np

    model = _tiny_model()
    run_id = store.create_run(RunConfig(epochs=2), status="running")
    folder = store.complete_run(run_id, model=model, extra_files={"notes.txt": b"hello"}, **_finish_kwargs())

    assert folder == store.run_dir(run_id)
    names = {path.name for path in folder.iterdir()}
    assert names == {"config.json", "history.json", "metrics.json", "environment.json", "fingerprint.json", "model.keras", "notes.txt"}
    assert json.loads((folder / "config.json").read_text())["epochs"] == 2
    assert store.load_history(run_id)["loss"] == [2.0, 1.5]
    run = store.get_run(run_id)
    assert run.status is Status.COMPLETED and run.metrics["accuracy"] == 0.5 and run.train_seconds == 12.5
    assert run.environment["device"] == "CPU" and run.fingerprint["source"] == "synthetic"

    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    loaded = store.load_model(run_id)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)


def test_load_model_refuses_runs_that_are_not_completed(store):
    run_id = store.create_run(RunConfig())
    with pytest.raises(StoreError, match="only a completed run"):
        store.load_model(run_id)
    with pytest.raises(RunNotFoundError):
        store.load_model("20000101-000000-ghost-0000")


def test_export_zips_the_run_folder(store, tmp_path):
    run_id = store.create_run(RunConfig(), status="running")
    store.complete_run(run_id, **_finish_kwargs())
    exports = tmp_path / "exports"
    exports.mkdir()

    into_folder = store.export_run(run_id, exports)
    to_file = store.export_run(run_id, tmp_path / "mine.zip")

    assert into_folder == exports / f"{run_id}.zip" and to_file == tmp_path / "mine.zip"
    with zipfile.ZipFile(into_folder) as archive:
        names = set(archive.namelist())
        assert {f"{run_id}/{name}" for name in ("config.json", "history.json", "metrics.json")} <= names
        assert json.loads(archive.read(f"{run_id}/metrics.json"))["accuracy"] == 0.5
    queued = store.create_run(RunConfig())
    with pytest.raises(StoreError, match="only completed runs"):
        store.export_run(queued, exports)


def test_delete_removes_row_events_and_folder(store):
    run_id = store.create_run(RunConfig(), status="running")
    store.add_event(run_id, {"kind": "epoch_end", "epoch": 1})
    with pytest.raises(ValueError, match="still running"):
        store.delete_run(run_id, by=local_person())
    store.complete_run(run_id, **_finish_kwargs())

    assert store.delete_run(run_id, by=local_person()) is True
    assert store.get_run(run_id) is None
    assert store.events(run_id) == []
    assert not store.run_dir(run_id).exists()
    assert store.delete_run(run_id, by=local_person()) is False


# -- listing and the results table ----------------------------------------------------------


def test_list_runs_is_newest_first_and_filters_by_status(store):
    first, second, third = (store.create_run(RunConfig()) for _ in range(3))
    store.set_status(second, "failed", "boom")
    assert [run.run_id for run in store.list_runs()] == [third, second, first]
    assert [run.run_id for run in store.list_runs(status=Status.FAILED)] == [second]
    assert [run.run_id for run in store.list_runs(status=[Status.QUEUED])] == [third, first]


def test_reference_rows_parse_the_lab_report_table(store):
    rows = reference_rows()
    assert len(rows) == 6
    assert all(set(row) == RESULT_KEYS for row in rows)
    assert all(row["reference"] is True and row["status"] == "reference" for row in rows)
    by_key = {(row["model"], row["task"]): row for row in rows}
    # The report's results table (Task 3), every figure: accuracy, macro precision / recall / F1, parameters, seconds.
    published = {
        "seed-cnn": (0.7191, 0.72, 0.71, 0.71, 356_810, 48.46),
        "vgg16-frozen": (0.5768, 0.58, 0.57, 0.57, 14_719_818, 164.39),
        "resnet50-frozen": (0.3837, 0.39, 0.38, 0.38, 23_608_202, 148.93),
        "mobilenetv2-frozen": (0.3154, 0.32, 0.31, 0.31, 2_270_794, 95.73),
        "vgg16-finetune": (0.8286, 0.83, 0.82, 0.82, 14_848_586, 383.15),
    }
    figures = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params", "train_seconds")
    for model, values in published.items():
        row = by_key[(model, "cifar10")]
        assert tuple(row[key] for key in figures) == pytest.approx(values), model
        assert row["baseline_accuracy"] == pytest.approx(0.1)  # 1,000 test pictures of each class
        assert (row["epochs"], row["train_images"], row["test_images"]) == (10, 50_000, 10_000), model
        assert "10,000 test images" in row["source"] and row["data"] == "CIFAR-10 (original) · 50000 train images · 10000 test images"
    seed = by_key[("seed-cnn", "cifar10")]
    assert seed["trainable_params"] == 356810
    binary = by_key[("seed-cnn", REPORT_BINARY_TASK)]  # one class vs the rest
    assert binary["accuracy"] == pytest.approx(0.9598) and binary["baseline_accuracy"] == pytest.approx(0.9)
    assert binary["f1_macro"] is None and binary["train_seconds"] is None  # not given by the report: None, never 0
    assert by_key[("vgg16-frozen", "cifar10")]["trainable_params"] == 5130
    assert by_key[("vgg16-finetune", "cifar10")]["trainable_params"] == 13113098
    # A reference row's id is safe to look up: it simply is not a stored run.
    assert store.get_run(seed["run_id"]) is None


def test_results_table_mixes_completed_runs_and_reference_rows(store):
    done = store.create_run(RunConfig(subset=1000), status="running")
    store.complete_run(done, **_finish_kwargs())
    store.create_run(RunConfig())  # queued: listed by list_runs, not in the results table

    table = results_table(store)

    assert len(table) == 1 + 6
    assert all(set(row) == RESULT_KEYS for row in table)
    mine = table[0]
    assert mine["run_id"] == done and mine["reference"] is False and mine["status"] == "completed"
    assert mine["accuracy"] == 0.5 and mine["total_params"] == 123 and mine["trainable_params"] is None
    assert mine["epochs"] == 10 and mine["device"] == "CPU" and mine["train_seconds"] == 12.5
    assert mine["test_images"] == 100
    assert mine["data"] == "synthetic · subset 1000 · 100 test images"
    assert mine["options"] == ""  # the preset as it is (the subset shows under data)
    # The epochs a run actually completed (training.run records them) win over the configured number.
    early = store.create_run(RunConfig(epochs=10, augment=True, batch_size=32), status="running")
    fingerprint = {"source": "folder /data", "n_train": 900, "n_test": 100}
    store.complete_run(early, **_finish_kwargs(metrics={"accuracy": 0.3, "epochs_completed": 4}, fingerprint=fingerprint))
    row = results_table(store)[0]
    assert row["run_id"] == early and row["epochs"] == 4 and row["train_images"] == 900
    assert row["options"] == "batch 32, augment"  # what differs from the seed-cnn preset
    assert row["data"] == "folder /data · 900 train images · 100 test images"
    assert sum(row["reference"] for row in table) == 6


# -- several processes at once ---------------------------------------------------------------


def _write_runs_from_another_process(root: str, count: int) -> int:
    """Run in a child process: create `count` runs, each with a few events. Returns how many it made."""
    store = Store(root)
    for _ in range(count):
        run_id = store.create_run(RunConfig())
        for epoch in range(3):
            store.add_event(run_id, {"kind": "epoch_end", "epoch": epoch})
        store.list_runs()  # readers and writers interleave, as the app and the jobs do
    return count


@pytest.mark.slow
def test_concurrent_writer_processes_do_not_lose_or_lock(tmp_path):
    root = str(tmp_path / "shared")
    Store(root).list_runs()  # the schema exists before the writers start, as in the app
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        made = pool.starmap(_write_runs_from_another_process, [(root, 20)] * 4)

    store = Store(root)
    runs = store.list_runs()
    assert sum(made) == 80 and len(runs) == 80
    assert len({run.run_id for run in runs}) == 80
    assert all(len(store.events(run.run_id)) == 3 for run in runs)
    assert store.integrity_check() == "ok"


@pytest.mark.slow
def test_concurrent_first_use_creates_the_schema_once(tmp_path):
    root = str(tmp_path / "fresh")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        made = pool.starmap(_write_runs_from_another_process, [(root, 2)] * 4)
    assert sum(made) == 8 and len(Store(root).list_runs()) == 8


def test_results_rows_carry_the_baseline_and_a_one_vs_rest_runs_figures_for_its_class(store):
    """`python -m lab runs --json`, the CSV and Compare read these rows: a 90% accuracy comes with its 90% baseline."""
    truck = store.create_run(RunConfig(task="one-vs-rest:truck"), status="running")
    metrics = {"accuracy": 0.95, "baseline_accuracy": 0.9, "positive_precision": 0.8, "positive_recall": 0.7, "positive_f1": 0.75}
    store.complete_run(truck, **_finish_kwargs(metrics={**_finish_kwargs()["metrics"], **metrics}))
    older = store.create_run(RunConfig(task="one-vs-rest:cat"), status="running")  # stored before metrics had these keys
    per_class = [
        {"class": "rest", "precision": 0.9, "recall": 0.99, "f1": 0.94},
        {"class": "cat", "precision": 0.6, "recall": 0.2, "f1": 0.3},
    ]
    store.complete_run(
        older, **_finish_kwargs(metrics={"accuracy": 0.9, "confusion_matrix": [[890, 10], [80, 20]], "per_class": per_class})
    )
    ten = store.create_run(RunConfig(), status="running")
    store.complete_run(ten, **_finish_kwargs(metrics={"accuracy": 0.7, "confusion_matrix": [[50, 50], [25, 75]]}))

    rows = {row["run_id"]: row for row in results_table(store)}
    assert {key: rows[truck][key] for key in metrics} == metrics
    assert rows[older]["baseline_accuracy"] == 0.9  # from the confusion matrix: 900 of 1000 test pictures are "rest"
    assert (rows[older]["positive_precision"], rows[older]["positive_recall"], rows[older]["positive_f1"]) == (0.6, 0.2, 0.3)
    assert rows[ten]["baseline_accuracy"] == 0.5 and rows[ten]["positive_f1"] is None  # no one class on a ten-class task
