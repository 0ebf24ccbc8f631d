"""Reliability and security of the store and the jobs: hostile run ids, planted model files,
a process killed while saving, a server restart, a full disk and an unwritable LAB_HOME.

No test here trains a model: runs are moved along through the store's own API, and the
one real process that gets killed is a small script that is saving a tiny model.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.config import RunConfig
from lab.evaluate.predict import UPLOAD_EXTENSIONS
from lab.jobs import launcher, queue, worker
from lab.report.results_table import reference_rows, results_table
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import INTERRUPTED_MESSAGE, Store, StoreError

ROOT = Path(__file__).resolve().parent.parent
FINISH = {
    "metrics": {"accuracy": 0.5, "n_test": 10},
    "history": {"loss": [1.0]},
    "environment": {"device": "CPU"},
    "fingerprint": {"source": "synthetic"},
    "train_seconds": 1.0,
}
HOSTILE_IDS = [
    "../x",
    "..",
    "a/b",
    "/etc/passwd",
    "%2e%2e",
    "%2e%2e%2fetc",
    "a\x00b",
    "x" * 200,
    "runs/../../x",
    "..\\x",
    "C:\\Windows",
    "~root",
    "abc\n",
    " abc",
    "",
    None,
    42,
]


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def tiny_model():
    import keras
    from keras import layers

    return keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(10, activation="softmax")])


def completed_run(store: Store, model=None) -> str:
    run_id = store.create_run(RunConfig(), status="running")
    store.complete_run(run_id, model=model if model is not None else tiny_model(), **FINISH)
    return run_id


def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------- models come only from the store


@pytest.mark.parametrize("bad", HOSTILE_IDS, ids=repr)
def test_hostile_run_ids_are_refused_before_any_file_is_touched(store, tmp_path, bad):
    store.list_runs()  # the store exists, so a refusal cannot be "no database yet"
    before = sorted(tmp_path.rglob("*"))
    calls = [
        store.get_run, store.run_dir, store.load_model, lambda run_id: store.delete_run(run_id, by=local_person()),
        store.load_history, store.cancel_requested, lambda run_id: store.request_cancel(run_id, by=local_person()),
        store.events, lambda run_id: store.export_run(run_id, tmp_path / "out.zip"),
        lambda run_id: store.add_event(run_id, {"kind": "epoch_end"}), lambda run_id: store.set_status(run_id, "failed"),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(ValueError, match="is not valid"):
            call(bad)
    assert sorted(tmp_path.rglob("*")) == before  # nothing created, nothing removed


def test_a_lambda_layer_planted_in_a_run_folder_is_refused_and_never_runs(store, tmp_path):
    import keras
    from keras import layers

    run_id = completed_run(store)
    marker = tmp_path / "code-ran"
    # A Lambda layer's function is stored as Python bytecode; this one leaves a marker when it runs.
    function = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # noqa: S307 - the attack under test
    evil = keras.Sequential([keras.Input((32, 32, 3)), layers.Lambda(function), layers.Flatten(), layers.Dense(10)])
    evil.save(store.run_dir(run_id) / "model.keras")  # swapped in behind the store's back
    marker.unlink()  # building the model ran it once; only loading counts from here

    with pytest.raises(StoreError) as refused:
        store.load_model(run_id)
    message = str(refused.value)
    assert "contains Python code" in message and "train this one again" in message
    assert "safe_mode" not in message  # never advise turning the protection off
    assert not marker.exists()
    # The planted file really is dangerous: without safe mode, loading it runs its code.
    keras.models.load_model(store.run_dir(run_id) / "model.keras", safe_mode=False)
    assert marker.exists()


def test_a_damaged_model_file_is_a_clear_store_error(store):
    run_id = completed_run(store)
    (store.run_dir(run_id) / "model.keras").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(StoreError, match=r"cannot be read .*train the model again"):
        store.load_model(run_id)


def test_a_model_file_linking_outside_the_store_is_not_loaded(store, tmp_path):
    run_id = completed_run(store)
    outside = tmp_path / "elsewhere.keras"
    tiny_model().save(outside)
    model_file = store.run_dir(run_id) / "model.keras"
    model_file.unlink()
    model_file.symlink_to(outside)
    with pytest.raises(StoreError, match="outside the results store"):
        store.load_model(run_id)


def _app_python_files():
    """Every Python file the app runs: the router and everything below lab/, ui/ and pages/, subpackages included."""
    below = [path for folder in ("lab", "ui", "pages") for path in sorted((ROOT / folder).rglob("*.py"))]
    return [ROOT / "streamlit_app.py", *below]


def _is_keras_model_loader(call: ast.Call) -> bool:
    """keras.models.load_model(...), keras.saving.load_model(...) or tf.keras.models.load_model(...)."""
    return isinstance(call.func, ast.Attribute) and call.func.attr == "load_model" and "keras" in ast.unparse(call.func.value)


# The one uploader that is not for pictures: (file, its `type=`), the teacher's ImageNet weights file.
TEACHER_WEIGHTS_UPLOADER = ("ui/teacher_views.py", "['h5']")


def test_no_page_accepts_a_model_file_upload():
    """Uploads are images only; a model is only ever loaded from the store or the shipped default, in safe mode."""
    model_extensions = {"keras", "h5", "hdf5", "pb", "pkl", "pickle", "pt", "onnx", "zip", "tflite", "npz", "json"}
    assert not model_extensions & {extension.lower() for extension in UPLOAD_EXTENSIONS}
    files = _app_python_files()
    relative_names = {path.relative_to(ROOT).as_posix() for path in files}
    # The scan must really read the whole app, subpackages included, or it proves nothing.
    assert len(files) > 60, f"only {len(files)} files scanned"
    assert {"lab/models/files.py", "lab/store/saved.py", "ui/common.py", "pages/predict.py"} <= relative_names
    uploaders = weights_uploaders = 0
    keras_loaders = []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        assert "safe_mode=False" not in text and "enable_unsafe_deserialization" not in text, name
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            if getattr(node.func, "attr", None) == "file_uploader":
                kinds = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
                if (name, kinds.get("type")) == TEACHER_WEIGHTS_UPLOADER:
                    weights_uploaders += 1
                    continue
                uploaders += 1
                assert "UPLOAD_EXTENSIONS" in kinds.get("type", ""), f"{name}: file_uploader without the image allow-list"
            if _is_keras_model_loader(node):
                keras_loaders.append(name)
                safe_mode = {keyword.arg: keyword.value for keyword in node.keywords}.get("safe_mode")
                assert isinstance(safe_mode, ast.Constant) and safe_mode.value is True, f"{name}: load_model without safe_mode=True"
    assert uploaders >= 1
    # The teacher's pre-flight takes an ImageNet weights file, once, on the Teacher page; its bytes go only to
    # lab's install_weights_file, which reads weight arrays into a network built here and never loads a model.
    assert weights_uploaders <= 1
    if weights_uploaders:
        assert "preflight.install_weights_file(" in (ROOT / TEACHER_WEIGHTS_UPLOADER[0]).read_text()
    # Keras loads a model file in exactly one place, lab/models/files.py; everything else goes through it.
    assert keras_loaders == ["lab/models/files.py"], keras_loaders


# ---------------------------------------------------------------- a process killed while saving


SAVER = """
import sys, time
from lab.store import files as store_files
from lab.config import RunConfig
from lab.store.runs import Store

store = Store(sys.argv[1])
run_id = store.create_run(RunConfig(), status="running")  # records this process as the run's worker
real_fsync = store_files._fsync_path

def stall(path):
    real_fsync(path)
    if path.name == "model.keras":  # the model is written; the folder is not renamed into place yet
        print("SAVING " + run_id, flush=True)
        time.sleep(600)

store_files._fsync_path = stall
import keras
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
store.complete_run(run_id, model=model, metrics={"accuracy": 0.9}, history={}, environment={}, fingerprint={}, train_seconds=1.0)
print("SAVED", flush=True)
"""


@pytest.mark.slow
def test_a_process_killed_while_saving_leaves_no_completed_run_and_is_cleaned_up(store):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(store.root)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = saver.stdout.readline()
        assert line.startswith("SAVING "), line
        run_id = line.split()[1]
        temporary = list(store.runs_folder.glob(f"{run_id}.tmp-*"))
        assert len(temporary) == 1 and (temporary[0] / "model.keras").is_file()
    finally:
        os.kill(saver.pid, signal.SIGKILL)  # what the out-of-memory killer does
        saver.wait(30)

    # Before anyone notices: still "running", never shown as a result, its model never loaded.
    assert store.get_run(run_id).status is Status.RUNNING
    assert all(row["run_id"] != run_id for row in results_table(store))
    with pytest.raises(StoreError, match="only a completed run"):
        store.load_model(run_id)

    queue.recover(store)  # what the Train page does on every visit
    run = store.get_run(run_id)
    assert run.status is Status.FAILED and run.message == INTERRUPTED_MESSAGE
    assert list(store.runs_folder.iterdir()) == []  # the half-saved folder is gone
    assert store.integrity_check() == "ok"
    # The store carries on: the next run completes normally.
    assert store.get_run(completed_run(store, model=tiny_model())).status is Status.COMPLETED


# ---------------------------------------------------------------- a server restart


def test_after_a_restart_dead_runs_are_interrupted_and_the_queue_gets_a_worker(store, monkeypatch):
    monkeypatch.setattr(launcher, "worker_command", lambda store: ["sleep", "30"])  # a stand-in worker: no training here
    monkeypatch.delenv("LAB_MAX_JOBS", raising=False)
    orphan = store.create_run(RunConfig(), status="running")
    with store._write() as connection:  # its worker died with the old server
        connection.execute("UPDATE runs SET worker_pid = ? WHERE run_id = ?", (dead_pid(), orphan))
    survivor = store.create_run(RunConfig(), status="running")  # a CLI run in a process that is still alive
    queued = [store.create_run(RunConfig(seed=seed)) for seed in range(3)]
    try:
        queue.recover(store)
        assert store.get_run(orphan).status is Status.FAILED and store.get_run(orphan).message.startswith("interrupted: ")
        assert store.get_run(survivor).status is Status.RUNNING
        assert len(launcher.live_workers(store)) == 1  # one worker (LAB_MAX_JOBS=1) for the queue
        assert [run.run_id for run in queue.active_runs(store) if run.status is Status.QUEUED] == queued  # in order
        queue.recover(store)  # every page visit calls it: nothing more happens
        assert len(launcher.live_workers(store)) == 1
    finally:
        for pid in launcher.live_workers(store):
            os.kill(pid, signal.SIGKILL)


def test_a_worker_gives_the_cpu_to_the_web_server_first(store, monkeypatch):
    import psutil

    niceness = []

    def record_nice(process, value=None):  # psutil.Process.nice: read without a value, set with one
        if value is None:
            return 0  # the server's own priority
        niceness.append(value)

    monkeypatch.setattr(psutil.Process, "nice", record_nice)
    assert worker.main(["--lab-home", str(store.root)]) == 0  # nothing queued: it exits at once
    assert niceness == [worker.WORKER_NICENESS] and worker.WORKER_NICENESS > 0
    assert launcher.live_workers(store) == []


# ---------------------------------------------------------------- a full disk


def _write_until_the_disk_is_full(root: str) -> dict:
    """In a child process: cap file sizes (RLIMIT_FSIZE, a full disk as far as SQLite can tell) and keep writing."""
    import resource
    import signal

    from lab.config import RunConfig
    from lab.store.runs import Store, StoreError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails (EFBIG) instead of killing us
    store = Store(root)
    run_id = store.create_run(RunConfig(), status="running")
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
    outcome = {"run_id": run_id, "events_written": 0}
    try:
        for _ in range(10_000):
            store.add_event(run_id, {"kind": "batch_end", "padding": "x" * 2000})
            outcome["events_written"] += 1
    except StoreError as error:
        outcome["event_error"] = str(error)
    try:
        store.complete_run(run_id, extra_files={"big.bin": b"\0" * 400_000}, **FINISH)
    except StoreError as error:
        outcome["save_error"] = str(error)
    outcome["status_while_full"] = store.get_run(run_id).status  # reading still works
    outcome["leftovers"] = sorted(path.name for path in store.runs_folder.glob("*")) if store.runs_folder.exists() else []
    return outcome


@pytest.mark.slow
def test_a_full_disk_gives_a_clear_store_error_and_loses_nothing(tmp_path):
    root = str(tmp_path / "home")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        outcome = pool.apply(_write_until_the_disk_is_full, (root,))
    assert 10 < outcome["events_written"] < 10_000
    assert "the disk is full" in outcome["event_error"] and "LAB_HOME" in outcome["event_error"]
    assert "disk" in outcome["save_error"] and "LAB_HOME" in outcome["save_error"]
    assert outcome["status_while_full"] == "running" and outcome["leftovers"] == []  # no half-written run folder
    # With room again, nothing is corrupt and every event that was acknowledged is there.
    store = Store(root)
    assert store.integrity_check() == "ok"
    assert len(store.events(outcome["run_id"])) == outcome["events_written"]
    store.complete_run(outcome["run_id"], **FINISH)
    assert store.get_run(outcome["run_id"]).status is Status.COMPLETED


# ---------------------------------------------------------------- an unwritable LAB_HOME


def test_an_unwritable_lab_home_says_why_everywhere(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("LAB_HOME cannot be created under a regular file, even by root")
    monkeypatch.setenv("LAB_HOME", str(blocker / "lab_home"))
    store = Store()
    for call in (store.list_runs, lambda: results_table(store), lambda: store.create_run(RunConfig()), lambda: queue.recover(store)):
        with pytest.raises(StoreError, match="cannot store results in .*Set LAB_HOME to a folder you can write to"):
            call()
    with pytest.raises(StoreError, match="LAB_HOME"):
        queue.submit(RunConfig(), store=store)
    assert len(reference_rows()) == 6  # the lab report's rows need no store


def test_a_model_trained_with_an_optimiser_unknown_here_still_loads_for_prediction(tmp_path):
    # A float32 run saves its optimiser too; prediction must not need it (nor its schedule or loss).
    import keras
    import numpy as np
    from keras import layers

    from lab.models.files import load_model_file

    class UnregisteredOptimizer(keras.optimizers.SGD):
        pass

    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer=UnregisteredOptimizer(0.1), loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((4, 32, 32, 3)), np.zeros(4), verbose=0)  # builds the optimiser's variables, as training does
    model.save(tmp_path / "model.keras")
    reloaded = load_model_file(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(np.ones((2, 32, 32, 3)), verbose=0), model.predict(np.ones((2, 32, 32, 3)), verbose=0))
