"""The class's work outlives the machine: with the store in PostgreSQL, wiping LAB_HOME mid-class loses nothing.

A class of five: two completed runs, one training in a real worker, one waiting. Then the machine goes away
as Streamlit Community Cloud's does on a reboot: the worker is killed, the database server stops, LAB_HOME is
deleted. Started again on an empty disk, everything is back from the database: the runs, their models
(predicting exactly as before), the identities, the class's limits and the leaderboard; the run that was
training resumes from its last checkpoint, and the waiting one starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest

from lab.classroom import identities
from lab.classroom.leaderboard import leaderboard
from lab.classroom.limits import ClassLimits, load_limits, save_limits
from lab.jobs import launcher, queue, resume
from lab.store.owners import Person
from lab.store.records import Status
from lab.store.runs import PostgresStore, Store
from lab.system import processes
from lab.train import checkpoints
from tests.synthetic import random_cifar10_folder
from tests.test_jobs import tiny_config, wait_finished, wait_for
from tests.test_store import _finish_kwargs, _tiny_model

pytestmark = pytest.mark.slow  # a real worker trains, twice

TEACHER = Person("teacher", "Teacher", is_teacher=True)


def test_a_class_on_postgres_comes_back_whole_after_lab_home_is_deleted(postgres_server, postgres_url, tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_MAX_JOBS", raising=False)
    home = tmp_path / "lab_home"
    monkeypatch.setenv("LAB_HOME", str(home))
    data = str(random_cifar10_folder(tmp_path / "cifar" / "cifar-10-batches-py", 200, 100, seed=3))
    store = Store()
    assert isinstance(store, PostgresStore)

    joined = {name: identities.join(store, name) for name in ("Ana", "Ben", "Cleo", "Dev", "Eli")}
    ana, ben, cleo, dev = (joined[name].person for name in ("Ana", "Ben", "Cleo", "Dev"))
    save_limits(store, ClassLimits(max_epochs=4, max_queued_per_student=1), by=TEACHER)
    models, completed = {}, []
    for seed, person in ((1, ana), (2, ben)):
        run_id = store.create_run(tiny_config(seed=seed), status=Status.RUNNING, owner=person)
        models[run_id] = _tiny_model()
        store.complete_run(
            run_id, model=models[run_id], **_finish_kwargs(metrics={**_finish_kwargs()["metrics"], "accuracy": 0.3 + seed / 10})
        )
        completed.append(run_id)
    training = queue.ask_for_run(tiny_config(epochs=3, batch_size=8, seed=3), owner=cleo, store=store, data_dir=data, classroom=True).run_id
    wait_for(lambda: store.latest_event(training, "epoch_end"), what="the first epoch's checkpoint")
    waiting = store.create_run(tiny_config(seed=4), owner=dev)  # queued behind it
    board = leaderboard(store)
    assert {row["run_id"] for row in board} >= set(completed)  # the precondition: the leaderboard has rows to lose
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    predictions = {run_id: model.predict(images, verbose=0) for run_id, model in models.items()}

    # The machine goes away: the worker is killed, the database server stops, the disk is wiped.
    worker_pid = store.get_run(training).worker_pid
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: not processes.is_alive(worker_pid), 10, "the worker to die")
    postgres_server.stop("immediate")
    shutil.rmtree(home)
    postgres_server.start()

    store = Store()  # started again, on an empty LAB_HOME
    assert not home.exists() or not any(home.iterdir())
    queue.recover(store, data_dir=data)  # what the app does on start: the killed worker's run is marked interrupted
    assert {run.run_id for run in store.list_runs()} == {*completed, training, waiting}
    for run_id in completed:
        np.testing.assert_array_equal(store.load_model(run_id).predict(images, verbose=0), predictions[run_id])
    assert identities.person_for_browser(store, joined["Ana"].browser_token) == ana
    assert load_limits(store) == ClassLimits(max_epochs=4, max_queued_per_student=1)
    assert leaderboard(store) == board

    interrupted = store.get_run(training)
    assert interrupted.status is Status.FAILED and interrupted.message.startswith("interrupted")
    saved = checkpoints.saved_epoch(store.run_folder(training).checkpoints)  # fetched back from the database
    assert saved is not None and saved >= 1
    resume.resume(training, store, by=cleo, data_dir=data, classroom=True)
    try:
        for run_id in (training, waiting):
            run = wait_finished(store, run_id, timeout=300)
            assert run.status is Status.COMPLETED, run.message
    finally:
        for pid in launcher.live_workers(store):  # never leave a worker behind, even when the test fails
            os.kill(pid, signal.SIGKILL)
    assert store.latest_event(training, "train_begin")["resumed_from_epoch"] == saved
    assert len(store.load_history(training)["val_accuracy"]) == 3  # the saved epochs, then the rest, as one run
    assert len(store.list_runs()) == 4  # nothing stored twice


def test_a_run_goes_on_while_the_database_restarts_and_is_stored_once(postgres_server, postgres_url, tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_MAX_JOBS", raising=False)
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab_home"))
    data = str(random_cifar10_folder(tmp_path / "cifar" / "cifar-10-batches-py", 200, 100, seed=4))
    store = Store()
    run_id = queue.submit(tiny_config(epochs=2, batch_size=8), store=store, data_dir=data)
    try:
        wait_for(lambda: store.latest_event(run_id, "batch_end"), what="training to start")
        postgres_server.stop("immediate")  # the database goes away mid-run ...
        time.sleep(3)
        postgres_server.start()  # ... and comes back
        run = wait_finished(store, run_id, timeout=300)
    finally:
        for pid in launcher.live_workers(store):
            os.kill(pid, signal.SIGKILL)
    assert run.status is Status.COMPLETED, run.message
    assert [run.run_id for run in store.list_runs()] == [run_id]  # stored once
    assert [event["epoch"] for event in store.events(run_id, kinds="epoch_end")] == [1, 2]  # no epoch lost or doubled
    assert store.load_model(run_id) is not None
