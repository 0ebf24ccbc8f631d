"""The worker process: `python -m lab.jobs.worker` trains the queued runs of a store, one at a time, then exits.

It writes each run's progress events into the store, looks at the run's cancel flag
between batches, and gives up CPU priority to the web server. A queued run that has a
checkpoint was interrupted and resumed (lab.jobs.resume.resume): it continues from there. lab/jobs/launcher.py
starts it; lab/jobs/queue.py is what the app calls.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import traceback
from collections.abc import Callable

from lab.jobs import fairness, launcher
from lab.jobs.outcome import Failed, one_line, record_outcome, train_and_record
from lab.store.records import Status
from lab.store.runs import Store
from lab.system import process_memory, processes
from lab.train import checkpoints

CANCEL_POLL_SECONDS = 0.5  # the longest a worker goes between two looks at the cancel flag
IDLE_POLL_SECONDS = 0.5  # how often an idle worker looks for a new run
DEFAULT_IDLE_SECONDS = 60.0  # how long a worker waits for the next run before it exits (LAB_WORKER_IDLE_SECONDS)
# The order in which a worker takes waiting runs: the class's fair turns, or first come, first served.
ORDERS = {"fair": fairness.next_run, "oldest": None}  # None: the store's own, the oldest queued run
WORKER_NICENESS = 10  # scheduling priority a worker gives up (0 = the server's own, 19 = the lowest)


def cancel_checker(store: Store, run_id: str, interval: float = CANCEL_POLL_SECONDS) -> Callable[[], bool]:
    """A `should_stop` for training.run that reads the store at most once every `interval` seconds."""
    last_check = 0.0
    requested = False

    def should_stop() -> bool:
        nonlocal last_check, requested
        now = time.monotonic()
        if not requested and now - last_check >= interval:
            last_check = now
            requested = store.cancel_requested(run_id)
        return requested

    return should_stop


def idle_seconds() -> float:
    """How long a worker with nothing to do stays, warm, for the next run (the LAB_WORKER_IDLE_SECONDS setting).

    A warm worker has TensorFlow loaded and the data set in memory, so a run queued while it waits
    starts at once instead of paying for both again; a class's runs arrive in bursts. An idle worker
    still holds that memory, so it leaves after this long.
    """
    try:
        return max(0.0, float(os.environ.get("LAB_WORKER_IDLE_SECONDS", DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def work(store: Store, data_dir: str | None = None, order: str = "fair") -> int:
    """Train queued runs one after another until none is left for `idle_seconds()`; returns how many this worker took.

    `order` ("fair" or "oldest", see ORDERS) decides which waiting run comes next.
    """
    choose = ORDERS[order]
    data = None  # loaded on the first run, then shared by every run this worker trains
    taken = 0
    while True:
        run_id = _claim_or_leave(store, idle_seconds(), choose)
        if run_id is None:
            return taken
        taken += 1
        print(f"[worker {os.getpid()}] run {run_id}", flush=True)
        try:
            if store.cancel_requested(run_id):
                store.set_status(run_id, Status.CANCELLED, "cancelled before it started")
                continue
            from lab.data.cifar10 import load_cifar10  # TensorFlow loads once a run is ours: an idle worker exits fast

            if data is None:
                data = load_cifar10(data_dir)
            status = _train_claimed_run(store, run_id, data)
            print(f"[worker {os.getpid()}] run {run_id}: {status}", flush=True)
        except Exception as error:  # noqa: BLE001 - one failed run must not stop the queue
            traceback.print_exc()  # the whole story goes to the worker's log; the store gets one line
            record_outcome(store, run_id, Failed(one_line(error)))  # unless training has recorded it already
        free_memory()


def _train_claimed_run(store: Store, run_id: str, data) -> Status:
    """Train a run this worker claimed, recording its events and its outcome in the store; return how it ended."""
    # Only a run that trained before, under this very id, has a checkpoint: continue it.
    resume = checkpoints.saved_epoch(store.run_folder(run_id).checkpoints) is not None
    result = train_and_record(
        store.get_run(run_id).config,
        store,
        lambda event: store.add_event(run_id, event),
        run_id=run_id,
        resume=resume,
        data=data,
        should_stop=cancel_checker(store, run_id),
        keep_when_stopped=lambda: store.keep_requested(run_id),
    )
    return Status.CANCELLED if result.cancelled else Status.COMPLETED


def free_memory() -> None:
    """Drop the last run's model and Keras' global state before the next run (safe here: one run per process).

    The run's traced graphs are already released by `training.run` (lab/system/process_memory.py).
    """
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()
    process_memory.return_free_heap()


def _claim_or_leave(store: Store, wait_seconds: float = 0.0, choose=fairness.next_run) -> str | None:
    """The next queued run (waiting up to `wait_seconds` for one), or None after deregistering this worker.

    The last look and the deregistering happen under the workers lock, so a run queued at that
    moment is never stranded: either this worker takes it, or the app sees no worker and starts one.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        run_id = store.claim_next_queued(os.getpid(), choose=choose)
        if run_id is not None:
            return run_id
        if time.monotonic() >= deadline:
            break
        time.sleep(IDLE_POLL_SECONDS)
    with launcher.workers_lock(store):
        run_id = store.claim_next_queued(os.getpid(), choose=choose)
        if run_id is None:
            launcher.unregister_worker(store, os.getpid())
        return run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.jobs.worker", description="Train the queued runs of a results store, then exit.")
    parser.add_argument("--lab-home", help="the results store's folder (default: $LAB_HOME or ./runs)")
    parser.add_argument(
        "--order",
        choices=sorted(ORDERS),
        default="fair",
        help="fair: round robin across students (default); oldest: first come, first served",
    )
    args = parser.parse_args(argv)
    processes.lower_priority(WORKER_NICENESS)  # training yields the CPU to the web server when both want it: pages stay quick
    store = Store(args.lab_home)
    launcher.register_worker(store, os.getpid())  # again, in case it was started by hand
    try:
        taken = work(store, os.environ.get("CIFAR10_DIR") or None, args.order)
    finally:
        launcher.unregister_worker(store, os.getpid())
    print(f"[worker {os.getpid()}] queue empty after {taken} run(s); exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
