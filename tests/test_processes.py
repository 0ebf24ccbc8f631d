"""Worker liveness: a pid that exists is not enough, it must still be the same process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from lab.config import RunConfig
from lab.store.records import Status
from lab.store.runs import INTERRUPTED_MESSAGE, Store
from lab.system import processes


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def test_this_process_started_before_now_and_after_the_machine_booted():
    started = processes.started_at(os.getpid())
    assert started is not None
    assert started <= datetime.now(UTC) + processes.START_TIME_TOLERANCE
    assert started > datetime.now(UTC) - timedelta(days=3650)


def test_a_process_that_started_after_the_run_cannot_be_its_worker():
    """The pid-reuse case: the pid is alive, but its process is younger than the run."""
    a_day_ago = iso(datetime.now(UTC) - timedelta(days=1))
    assert processes.could_be_worker(os.getpid(), iso(datetime.now(UTC)))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert processes.is_alive(child.pid)
        assert not processes.could_be_worker(child.pid, a_day_ago)
    finally:
        child.kill()
        child.wait()
    assert not processes.could_be_worker(child.pid, iso(datetime.now(UTC)))


def test_pid_reuse_is_seen_from_psutil_alone_without_proc(monkeypatch):
    """On macOS and Windows there is no /proc: the start time psutil reports is all the check needs."""
    import psutil

    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)

    class ProcessStartedNow:  # the pid is alive, but its process started after the run
        def __init__(self, pid):
            self.pid = pid

        def status(self):
            return psutil.STATUS_RUNNING

        def create_time(self):
            return datetime.now(UTC).timestamp()

    monkeypatch.setattr(psutil, "Process", ProcessStartedNow)
    assert processes.is_alive(4242)
    assert not processes.could_be_worker(4242, iso(an_hour_ago))
    assert processes.could_be_worker(4242, iso(datetime.now(UTC) + timedelta(minutes=1)))
    assert processes.start_stamp(4242) != ""


def test_unknown_start_times_trust_the_pid(monkeypatch):
    monkeypatch.setattr(processes, "started_at", lambda pid: None)
    assert processes.could_be_worker(os.getpid(), iso(datetime.now(UTC) - timedelta(days=1)))
    assert processes.could_be_worker(os.getpid(), None)
    assert not processes.could_be_worker(None, None)


def test_the_store_fails_a_running_run_whose_pid_was_handed_to_a_newer_process(tmp_path):
    store = Store(tmp_path)
    reused = store.create_run(RunConfig())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        store.claim_next_queued(worker_pid=child.pid)
        with store._write() as connection:  # the run started yesterday; the child only now
            connection.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (iso(datetime.now(UTC) - timedelta(days=1)), reused))
        mine = store.create_run(RunConfig(), status="running")  # this process, started before the run

        assert store.mark_interrupted_runs() == [reused]
    finally:
        child.kill()
        child.wait()
    assert store.get_run(reused).message == INTERRUPTED_MESSAGE
    assert store.get_run(mine).status is Status.RUNNING
