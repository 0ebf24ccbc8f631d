"""Background jobs: real worker processes running the real training.run on a tiny synthetic CIFAR-10 folder."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lab.config import config_for_preset
from lab.jobs import launcher, queue
from lab.report.results_table import results_table
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import Store
from lab.system import processes
from tests.synthetic import random_cifar10_folder

TIMEOUT = 120  # seconds a tiny job may take on a busy 2-core machine, TensorFlow's start included
FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> str:
    """200 training and 100 test images of random pixels, 10 classes, in the official layout."""
    return str(random_cifar10_folder(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", 200, 100, seed=0))


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.delenv("LAB_MAX_JOBS", raising=False)
    store = Store(tmp_path / "lab_home")
    yield store
    for pid in launcher.live_workers(store):  # never leave a worker behind, even when a test fails
        os.kill(pid, signal.SIGKILL)


def tiny_config(**overrides):
    fields = {"epochs": 1, "subset": 200, "batch_size": 16, **overrides}
    return config_for_preset("seed-cnn", **fields)


def wait_for(condition, timeout: float = TIMEOUT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_finished(store: Store, run_id: str, timeout: float = TIMEOUT) -> dict:
    run = wait_for(lambda: (r := store.get_run(run_id)) and r.status in FINISHED and r, timeout, f"run {run_id} to finish")
    return run


def worker_log(store: Store) -> str:
    return "\n".join(path.read_text() for path in sorted((store.root / "logs").glob("*.log")))


# ---------------------------------------------------------------- small pieces, no training


def test_pid_alive_tells_running_dead_and_zombie_processes_apart():
    assert processes.is_alive(os.getpid())
    assert not processes.is_alive(None) and not processes.is_alive(0)
    child = subprocess.Popen(["sleep", "0"])
    wait_for(lambda: Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z", 10, "a zombie")
    assert not processes.is_alive(child.pid)  # exited but not reaped yet: a zombie counts as dead
    child.wait()
    assert not processes.is_alive(child.pid)


def test_max_jobs_reads_the_setting(monkeypatch):
    monkeypatch.delenv("LAB_MAX_JOBS", raising=False)
    assert launcher.max_jobs() == 1
    monkeypatch.setenv("LAB_MAX_JOBS", "3")
    assert launcher.max_jobs() == 3
    monkeypatch.setenv("LAB_MAX_JOBS", "lots")
    assert launcher.max_jobs() == 1


def test_queue_position_follows_creation_order(store):
    first, second = store.create_run(tiny_config()), store.create_run(tiny_config(seed=1))
    assert [queue.queue_position(run_id, store) for run_id in (first, second)] == [1, 2]
    assert [run.run_id for run in queue.active_runs(store)] == [first, second]
    assert queue.cancel(first, store, by=local_person())  # a queued run is cancelled at once
    assert store.get_run(first).status is Status.CANCELLED
    assert queue.queue_position(first, store) is None and queue.queue_position(second, store) == 1


def test_simultaneous_clicks_start_at_most_max_jobs_workers(store, monkeypatch):
    # A stand-in worker that only sleeps: this test is about the lock, not training.
    monkeypatch.setattr(launcher, "worker_command", lambda store: ["sleep", "30"])
    for seed in range(3):
        store.create_run(tiny_config(seed=seed))
    started = []
    threads = [threading.Thread(target=lambda: started.append(launcher.ensure_workers(store))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(started) == 1
    assert len(launcher.live_workers(store)) == 1
    monkeypatch.setenv("LAB_MAX_JOBS", "2")
    assert launcher.ensure_workers(store) == 1  # room for one more, and runs are still queued
    assert len(launcher.live_workers(store)) == 2


def test_ensure_workers_starts_nothing_without_queued_runs(store):
    assert launcher.ensure_workers(store) == 0
    assert launcher.live_workers(store) == []


# ---------------------------------------------------------------- real workers, real training


@pytest.mark.slow
def test_queued_jobs_run_one_at_a_time_and_complete(store, tiny_cifar):
    first = queue.submit(tiny_config(epochs=2), store=store, data_dir=tiny_cifar)
    second = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
    wait_for(lambda: store.get_run(first).status is not Status.QUEUED, what="the first run to start")
    assert store.get_run(second).status is Status.QUEUED
    assert queue.queue_position(second, store) == 1
    assert len(launcher.live_workers(store)) == 1  # LAB_MAX_JOBS defaults to 1

    for run_id in (first, second):
        run = wait_finished(store, run_id)
        assert run.status is Status.COMPLETED, f"{run.message}\n{worker_log(store)}"
        kinds = [event["kind"] for event in store.events(run_id)]
        assert kinds[0] == "train_begin" and "batch_end" in kinds and "evaluation" in kinds
        assert kinds.count("epoch_end") == run.config.epochs
        assert kinds.index("train_end") > max(i for i, kind in enumerate(kinds) if kind == "epoch_end")
        assert run.metrics["n_test"] == 100
    assert {row["run_id"] for row in results_table(store) if not row["reference"]} == {first, second}
    # The second run started only after the first one had finished.
    assert store.get_run(second).started_at >= store.get_run(first).finished_at
    wait_for(lambda: launcher.live_workers(store) == [], 30, "the worker to exit once the queue is empty")


@pytest.mark.slow
def test_cancel_stops_a_running_job_within_seconds(store, tiny_cifar):
    """The worker looks at the cancel flag between batches, at most every CANCEL_POLL_SECONDS: it stops a few
    batches later, long before the run's 50 epochs.

    Counted in epochs, not seconds: the worker runs at a lower priority, so on a busy machine the
    same half second holds fewer batches, never more; a wall-clock bound would only measure the machine.
    """
    run_id = queue.submit(tiny_config(epochs=50, batch_size=8), store=store, data_dir=tiny_cifar)
    wait_for(lambda: store.latest_event(run_id, "batch_end"), what="the first batch")
    epochs_at_cancel = len(store.events(run_id, kinds="epoch_end"))
    assert epochs_at_cancel < 48  # it was mid-run, with many epochs to go
    assert queue.cancel(run_id, store, by=local_person())
    run = wait_finished(store, run_id, timeout=TIMEOUT)
    assert run.status is Status.CANCELLED, f"{run.message}\n{worker_log(store)}"
    epochs_trained = len(store.events(run_id, kinds="epoch_end"))
    assert epochs_trained <= epochs_at_cancel + 5, f"trained on to epoch {epochs_trained} after the cancel at epoch {epochs_at_cancel}"
    assert store.events(run_id, kinds="train_end")[-1]["status"] == "cancelled"


@pytest.mark.slow
def test_stop_and_keep_ends_a_running_job_as_a_completed_run_of_fewer_epochs(store, tiny_cifar):
    run_id = queue.submit(tiny_config(epochs=50, batch_size=8), store=store, data_dir=tiny_cifar)
    wait_for(lambda: store.latest_event(run_id, "batch_end"), what="the first batch")
    assert queue.cancel(run_id, store, keep_model=True, by=local_person())
    run = wait_finished(store, run_id, timeout=60)
    assert run.status is Status.COMPLETED, f"{run.message}\n{worker_log(store)}"
    assert run.metrics["stopped_early"] is True and run.metrics["epochs_completed"] < 50
    assert "stopped early on request" in run.message
    assert store.events(run_id, kinds="train_end")[-1]["status"] == "stopped early"
    assert store.load_model(run_id) is not None


@pytest.mark.slow
def test_an_idle_worker_stays_warm_for_the_next_run(store, tiny_cifar, monkeypatch):
    """A worker waits LAB_WORKER_IDLE_SECONDS for more work: the next run needs no new process (no TensorFlow start)."""
    monkeypatch.setenv("LAB_WORKER_IDLE_SECONDS", "60")
    first = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
    assert wait_finished(store, first).status is Status.COMPLETED
    (warm,) = wait_for(lambda: launcher.live_workers(store), 10, "the worker to stay")
    second = queue.submit(tiny_config(seed=1), store=store, data_dir=tiny_cifar)
    assert wait_finished(store, second).status is Status.COMPLETED
    assert store.get_run(first).worker_pid == store.get_run(second).worker_pid == warm
    assert launcher.live_workers(store) == [warm]  # still waiting; the fixture ends it


@pytest.mark.slow
def test_a_failing_run_is_marked_failed_and_the_queue_goes_on(store, tmp_path, tiny_cifar):
    broken = queue.submit(tiny_config(), store=store, data_dir=str(tmp_path / "no-such-folder"))
    run = wait_finished(store, broken)
    assert run.status is Status.FAILED
    assert "DataUnavailableError" in run.message and "\n" not in run.message
    # A worker keeps the data location it was started with; let this one leave before changing it.
    wait_for(lambda: launcher.live_workers(store) == [], 30, "the worker to exit")
    fine = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
    assert wait_finished(store, fine).status is Status.COMPLETED


@pytest.mark.slow
def test_recover_marks_a_killed_worker_s_run_interrupted(store, tiny_cifar):
    killed = queue.submit(tiny_config(epochs=50, batch_size=8), store=store, data_dir=tiny_cifar)
    wait_for(lambda: store.latest_event(killed, "batch_end"), what="the first batch")
    worker_pid = store.get_run(killed).worker_pid
    assert worker_pid in launcher.live_workers(store)
    os.kill(worker_pid, signal.SIGKILL)  # what the out-of-memory killer does
    wait_for(lambda: not processes.is_alive(worker_pid), 10, "the worker to die")
    assert store.get_run(killed).status is Status.RUNNING  # nobody has noticed yet

    queue.recover(store)
    run = store.get_run(killed)
    assert run.status is Status.FAILED and run.message.startswith("interrupted")
    assert store.integrity_check() == "ok"
    assert launcher.live_workers(store) == []  # the dead worker's pid file was cleared

    after = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
    assert wait_finished(store, after).status is Status.COMPLETED


@pytest.mark.slow
def test_recover_restarts_work_left_queued_by_a_server_restart(store, tiny_cifar):
    run_id = store.create_run(tiny_config())  # queued, but no worker was ever started for it
    assert launcher.live_workers(store) == []
    queue.recover(store, tiny_cifar)
    assert len(launcher.live_workers(store)) == 1
    assert wait_finished(store, run_id).status is Status.COMPLETED
