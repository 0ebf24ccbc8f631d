"""Resuming an interrupted run: its checkpoint on disk, the training state put back, a killed worker's run continued.

A run trained with a store saves its whole training state after every finished epoch
(lab/train/checkpoints.py, lab/train/training_state.py). These tests kill a real worker in the
middle of a run and continue it, as the same run, to completion; and check who may resume what.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from lab.classroom.limits import ClassLimits, LimitError, save_limits
from lab.jobs import launcher, queue, resume
from lab.store.owners import NotYourRunError, Person, local_person
from lab.store.records import Status
from lab.store.run_folder import RunFolder
from lab.store.runs import Store
from lab.system import processes
from lab.train import checkpoints
from lab.train.callbacks import keep_best_epoch
from lab.train.schedules import WeightAveraging
from lab.train.training_state import capture, restore_callbacks, restore_model
from tests.synthetic import random_cifar10_folder
from tests.test_jobs import tiny_config, wait_finished, wait_for

ROOT = Path(__file__).resolve().parent.parent
ANA = Person("ana-token", "Ana")
BEN = Person("ben-token", "Ben")
TEACHER = Person("teacher", "Teacher", is_teacher=True)


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> str:
    return str(random_cifar10_folder(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", 200, 100, seed=3))


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.delenv("LAB_MAX_JOBS", raising=False)
    store = Store(tmp_path / "lab_home")
    yield store
    for pid in launcher.live_workers(store):  # never leave a worker behind, even when a test fails
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the checkpoint on disk


def _checkpoint(epoch: int) -> checkpoints.Checkpoint:
    arrays = {"weights": [np.full((2, 3), float(epoch), np.float32), np.arange(4)]}
    return checkpoints.Checkpoint(epoch, {"epochs": 5}, {"loss": [1.0] * epoch}, 1.5 * epoch, "abc", {"callbacks": []}, arrays)


def test_a_checkpoint_reads_back_as_written_and_only_the_newest_epoch_is_kept(tmp_path):
    folder = RunFolder(tmp_path, "run1").checkpoints  # where the store keeps a running run's checkpoint
    assert checkpoints.saved_epoch(folder) is None and checkpoints.read_checkpoint(folder) is None
    checkpoints.write_checkpoint(folder, _checkpoint(1))
    checkpoints.write_checkpoint(folder, _checkpoint(2))
    assert [p.name for p in folder.iterdir()] == ["epoch-0002"]
    back = checkpoints.read_checkpoint(folder)
    assert back.epoch == 2 and back.history == {"loss": [1.0, 1.0]} and back.train_seconds == 3.0
    np.testing.assert_array_equal(back.arrays["weights"][0], np.full((2, 3), 2.0, np.float32))
    np.testing.assert_array_equal(back.arrays["weights"][1], np.arange(4))
    RunFolder(tmp_path, "run1").remove_checkpoints()
    assert checkpoints.saved_epoch(folder) is None


def test_a_checkpoint_travels_as_files_and_installs_whole_elsewhere(tmp_path):
    """How a Ray node's checkpoint reaches the app's store (and goes back to a node for a resume)."""
    node, home = tmp_path / "node", tmp_path / "home"
    assert checkpoints.checkpoint_files(node / "run1") is None
    checkpoints.write_checkpoint(node / "run1", _checkpoint(3))
    epoch, files = checkpoints.checkpoint_files(node / "run1")
    assert epoch == 3 and sorted(files) == [checkpoints.STATE_FILE, "weights.npz"]
    checkpoints.write_checkpoint(home / "run1", _checkpoint(2))  # an older one already home is replaced
    checkpoints.install_checkpoint_files(home / "run1", epoch, files)
    assert [p.name for p in (home / "run1").iterdir()] == ["epoch-0003"]
    back = checkpoints.read_checkpoint(home / "run1")
    assert back.epoch == 3 and back.history == {"loss": [1.0] * 3}
    np.testing.assert_array_equal(back.arrays["weights"][0], np.full((2, 3), 3.0, np.float32))
    for bad in ({"../escape.npz": b"", checkpoints.STATE_FILE: b"{}"}, {"weights.npz": b""}):  # a path out, no state file
        with pytest.raises(ValueError):
            checkpoints.install_checkpoint_files(home / "run1", 4, bad)
    assert checkpoints.saved_epoch(home / "run1") == 3 and not (tmp_path / "home" / "escape.npz").exists()


def test_a_half_written_checkpoint_never_counts_and_a_damaged_one_says_so(tmp_path):
    checkpoints.write_checkpoint(tmp_path / "run1", _checkpoint(1))
    folder = tmp_path / "run1"
    (folder / "epoch-0002.tmp-xyz").mkdir()  # a process killed while saving epoch 2
    assert checkpoints.saved_epoch(tmp_path / "run1") == 1
    (folder / "epoch-0001" / "weights.npz").write_bytes(b"not a numpy file")
    with pytest.raises(checkpoints.CheckpointError, match="cannot be read"):
        checkpoints.read_checkpoint(tmp_path / "run1")


def test_a_checkpoint_for_other_settings_or_data_is_refused(tmp_path):
    checkpoints.write_checkpoint(tmp_path / "run1", _checkpoint(1))
    with pytest.raises(checkpoints.CheckpointError, match="other settings"):
        checkpoints.checkpoint_to_resume(tmp_path / "run1", {"epochs": 6}, "abc")
    with pytest.raises(checkpoints.CheckpointError, match="other data"):
        checkpoints.checkpoint_to_resume(tmp_path / "run1", {"epochs": 5}, "def")
    assert checkpoints.checkpoint_to_resume(tmp_path / "run1", {"epochs": 5}, "abc").epoch == 1


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", ""])
def test_a_run_id_cannot_point_a_checkpoint_outside_its_folder(tmp_path, bad):
    with pytest.raises(ValueError):
        RunFolder(tmp_path, bad)  # its checkpoint folder would be named after it


# ---------------------------------------------------------------- the training state put back


def _trainee(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_weights_optimiser_and_callbacks_come_back_exactly(tmp_path):
    """The optimiser's step count (the schedule's place), Adam's moments, keep-best and weight averaging."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    first = _trainee(seed=1)
    keep_best, averaging = keep_best_epoch(5), WeightAveraging(total_steps=40, every=2)
    first.fit(x, y, validation_data=(x, y), epochs=2, batch_size=16, verbose=0, callbacks=[keep_best, averaging])
    saved = capture(first, [keep_best, averaging], epoch=2, config={}, history={}, train_seconds=1.0)
    checkpoints.write_checkpoint(tmp_path / "run1", saved)
    back = checkpoints.read_checkpoint(tmp_path / "run1")

    second = _trainee(seed=2)  # other starting weights, a fresh optimiser
    restore_model(second, back)
    for mine, theirs in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert int(second.optimizer.iterations.numpy()) == int(first.optimizer.iterations.numpy()) == 8
    for mine, theirs in zip(first.optimizer.variables, second.optimizer.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))

    new_keep_best, new_averaging = keep_best_epoch(5), WeightAveraging(total_steps=40, every=2)
    for callback in (new_keep_best, new_averaging):
        callback.set_model(second)
        callback.on_train_begin()  # fit resets them first; then the checkpoint's state goes in
    restore_callbacks([new_keep_best, new_averaging], back)
    assert new_keep_best.best == keep_best.best and new_keep_best.best_epoch == keep_best.best_epoch
    for mine, theirs in zip(keep_best.best_weights, new_keep_best.best_weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert new_averaging.step == averaging.step == 8
    for mine, theirs in zip(averaging.averages, new_averaging.averages, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


# ---------------------------------------------------------------- a killed worker's run, continued


def _kill_after_first_checkpoint(store: Store, run_id: str) -> int:
    """Wait until the run has saved an epoch and is training the next one, then kill its worker as the OOM killer would."""
    wait_for(lambda: store.latest_event(run_id, "epoch_end"), what="the first epoch's checkpoint")
    wait_for(lambda: (event := store.latest_event(run_id, "batch_end")) and event["epoch"] >= 2, what="the second epoch")
    worker_pid = store.get_run(run_id).worker_pid
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: not processes.is_alive(worker_pid), 10, "the worker to die")
    queue.recover(store)
    run = store.get_run(run_id)
    assert run.status is Status.FAILED and run.message.startswith("interrupted")
    return checkpoints.saved_epoch(store.run_folder(run_id).checkpoints)


@pytest.mark.slow
def test_a_killed_worker_s_run_resumes_to_completion_as_the_same_run(store, tiny_cifar):
    config = tiny_config(epochs=4, batch_size=8, keep_best=True)
    run_id = queue.submit(config, store=store, data_dir=tiny_cifar)
    saved = _kill_after_first_checkpoint(store, run_id)
    assert 1 <= saved < 4
    assert resume.can_resume(run_id, store)
    epochs_before = [event["epoch"] for event in store.events(run_id) if event["kind"] == "epoch_end"]

    line = resume.resume(run_id, store, data_dir=tiny_cifar, by=local_person())
    assert f"after epoch {saved} of 4" in line
    run = wait_finished(store, run_id)
    assert run.status is Status.COMPLETED, run.message
    assert [row.run_id for row in store.list_runs()] == [run_id]  # stored as that run, never as a second one
    assert len(store.load_history(run_id)["val_accuracy"]) == 4  # the saved epochs, then the rest
    assert run.metrics["accuracy"] is not None
    begin = store.latest_event(run_id, "train_begin")
    assert begin["resumed_from_epoch"] == saved
    resumed_epochs = [event["epoch"] for event in store.events(run_id) if event["kind"] == "epoch_end"][len(epochs_before) :]
    assert resumed_epochs == list(range(saved + 1, 5))  # Keras counts on from the saved epoch
    assert checkpoints.saved_epoch(store.run_folder(run_id).checkpoints) is None  # completed: nothing left to resume
    assert (store.root / "runs" / run_id / "MODEL_CARD.md").is_file()


@pytest.mark.slow
def test_the_command_line_resumes_a_killed_run(store, tiny_cifar):
    run_id = queue.submit(tiny_config(epochs=3, batch_size=8), store=store, data_dir=tiny_cifar)
    saved = _kill_after_first_checkpoint(store, run_id)
    command = [sys.executable, "-m", "lab", "resume", run_id, "--data-dir", tiny_cifar, "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "LAB_HOME": str(store.root)})
    assert done.returncode == 0, done.stderr
    assert f"resuming {run_id} after epoch {saved} of 3" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["run_id"] == run_id and summary["status"] == "completed"
    assert store.get_run(run_id).status is Status.COMPLETED and len(store.list_runs()) == 1

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "LAB_HOME": str(store.root)})
    assert again.returncode == 2 and "is completed: there is nothing to resume" in again.stderr


# ---------------------------------------------------------------- what cannot be resumed, and by whom


def _failed_run(store: Store, owner: Person | None = None, **overrides) -> str:
    run_id = store.create_run(tiny_config(**overrides), owner=owner)
    store.claim_next_queued(os.getpid())
    store.set_status(run_id, Status.FAILED, "interrupted: the training process stopped unexpectedly (killed or out of memory)")
    return run_id


def test_a_run_with_nothing_saved_says_so(store):
    run_id = _failed_run(store)
    assert not resume.can_resume(run_id, store)
    with pytest.raises(resume.CannotResumeError, match="nothing saved to resume from: it stopped before its first epoch ended"):
        resume.resume(run_id, store, by=local_person())
    assert store.get_run(run_id).status is Status.FAILED  # refused: nothing changed


def test_completed_cancelled_and_active_runs_are_not_resumed(store):
    queued = store.create_run(tiny_config())
    with pytest.raises(resume.CannotResumeError, match="is queued already"):
        resume.resume(queued, store, by=local_person())
    queue.cancel(queued, store, by=local_person())
    with pytest.raises(resume.CannotResumeError, match="cancelled"):
        resume.resume(queued, store, by=local_person())
    with pytest.raises(LookupError, match="no run with id"):
        resume.resume("20260101-000000-seed-cnn-dead", store, by=local_person())


def test_only_the_owner_or_the_teacher_may_resume(store, monkeypatch):
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args: None)  # no worker: this test only moves rows
    run_id = _failed_run(store, owner=ANA)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    assert resume.can_resume(run_id, store, by=ANA) and resume.can_resume(run_id, store, by=TEACHER)
    assert not resume.can_resume(run_id, store, by=BEN)
    with pytest.raises(NotYourRunError, match="only its owner or the teacher can resume it"):
        resume.resume(run_id, store, by=BEN)
    assert store.get_run(run_id).status is Status.FAILED
    resume.resume(run_id, store, by=ANA)
    assert store.get_run(run_id).status is Status.QUEUED
    with pytest.raises(resume.CannotResumeError, match="is queued already"):  # a second click resumes nothing more
        resume.resume(run_id, store, by=ANA)


def test_in_classroom_mode_a_resumed_run_counts_toward_the_students_waiting_runs(store, monkeypatch):
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args: None)  # no worker: this test only moves rows
    save_limits(store, ClassLimits(max_queued_per_student=1), by=TEACHER)
    run_id = _failed_run(store, owner=ANA)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    waiting = queue.ask_for_run(tiny_config(seed=9), owner=ANA, store=store, classroom=True).run_id
    with pytest.raises(LimitError, match=f"you already have 1 run waiting \\({waiting}"):
        resume.resume(run_id, store, by=ANA, classroom=True)
    assert store.get_run(run_id).status is Status.FAILED  # refused: nothing moved
    queue.cancel(waiting, store, by=ANA)
    resume.resume(run_id, store, by=ANA, classroom=True)
    assert store.get_run(run_id).status is Status.QUEUED


def test_deleting_a_run_removes_its_checkpoint(store):
    run_id = _failed_run(store)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    queue.delete(run_id, store, by=local_person())
    assert checkpoints.saved_epoch(store.run_folder(run_id).checkpoints) is None


# ---------------------------------------------------------------- the Train page's Resume button


@pytest.fixture
def _offline(monkeypatch):
    """AppTest runs the app in this process: no page may reach for the Keras download."""
    from lab.data import cifar10 as lab_data

    def refuse():
        raise lab_data.DataUnavailableError("offline in tests: " + lab_data.HOW_TO_GET_IT)

    monkeypatch.setattr(lab_data, "_download_with_keras", refuse)


def _train_page_showing(run_id: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state["train_run_id"] = run_id  # the run this session started last (ui/run_view.py)
    at.session_state["train_tab"] = "Current run"
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_the_train_page_resumes_a_failed_run_that_saved_a_checkpoint(monkeypatch, _offline):
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args: None)  # no worker: the page only queues it
    store = Store()
    run_id = _failed_run(store)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    at = _train_page_showing(run_id)
    assert "interrupted" in "\n".join(e.value for e in at.error)
    at.button(key="trainbtn_resume").click().run()
    assert not at.exception, at.exception
    assert store.get_run(run_id).status is Status.QUEUED
    assert at.button(key="trainbtn_cancel")  # live again: it can be cancelled while it waits
    assert not at.get("progress")  # waiting, not "Saving the model ..."


def test_the_train_page_says_when_a_failed_run_saved_nothing(_offline):
    store = Store()
    run_id = _failed_run(store)
    at = _train_page_showing(run_id)
    assert not [button for button in at.button if button.key == "trainbtn_resume"]
    assert any("nothing saved to resume from" in caption.value for caption in at.caption)
