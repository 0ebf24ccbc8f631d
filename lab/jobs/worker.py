"""Background training jobs: a queue in the results store, worked by separate processes.

Training never runs inside the Streamlit script. `submit` only adds a `queued` row
to the store and makes sure a worker process is alive; the worker (`python -m
lab.jobs.worker`) claims queued runs one at a time and trains them with `training.run`,
writing progress events into the store for the app to poll. So:

- a crash or an out-of-memory kill takes down one worker, never the web server;
- a page rerun, a browser refresh or a closed tab cannot stop a run;
- `LAB_MAX_JOBS` (default 1) caps how many runs train at once, so thirty clicks on
  a two-core machine queue up instead of fighting over the CPU.

Live workers are tracked by pid files in `<store root>/workers/`. Starting a worker
and a worker deciding to exit both happen under one file lock
(`<store root>/workers.lock`), so two sessions clicking at the same moment never
start more than `LAB_MAX_JOBS` workers, and a run queued while the last worker is
leaving is never stranded.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lab.config import RunConfig
from lab.store.runs import Store
from lab.system import process_memory, processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACTIVE_STATUSES = ("queued", "running")
CANCEL_POLL_SECONDS = 0.5  # the longest a worker goes between two looks at the cancel flag
KEEP_LOGS = 20  # worker log files kept in <store root>/logs; older ones are deleted
WORKER_NICENESS = 10  # scheduling priority a worker gives up (0 = the server's own, 19 = the lowest)

# Workers this process started: polling them reaps the ones that exited (no zombies).
_children: list[subprocess.Popen] = []


def max_jobs() -> int:
    """How many runs may train at once (the LAB_MAX_JOBS setting, default 1)."""
    try:
        return max(1, int(os.environ.get("LAB_MAX_JOBS", "1")))
    except ValueError:
        return 1


# ---------------------------------------------------------------- the queue, seen from the app


def submit(config: RunConfig, *, store: Store | None = None, data_dir: str | None = None) -> str:
    """Queue a run and make sure a worker will train it; returns the run id at once.

    `data_dir` (else CIFAR10_DIR) is handed to the worker this call starts. A worker that is
    already running keeps the data location it was started with, so every run queued in one
    store should use the same one, as the app does (its CIFAR10_DIR setting).
    """
    store = store or Store()
    run_id = store.create_run(config, status="queued")
    ensure_workers(store, data_dir)
    return run_id


def cancel(run_id: str, store: Store, *, keep_model: bool = False) -> bool:
    """Stop a run: a queued one is cancelled at once, a running one after its current batch (within a second).

    `keep_model`: a running run is then evaluated and saved as it is, instead of dropped.
    Returns False when the run had already finished.
    """
    return store.request_cancel(run_id, keep_model=keep_model)


def active_runs(store: Store) -> list[dict[str, Any]]:
    """Queued and running runs, oldest first (the order workers take them in)."""
    return list(reversed(store.list_runs(status=ACTIVE_STATUSES)))  # list_runs is newest first


def queue_position(run_id: str, store: Store) -> int | None:
    """1 when `run_id` is the next queued run to start, 2 after that, ...; None when it is not queued."""
    queued = [run["run_id"] for run in reversed(store.list_runs(status="queued"))]
    return queued.index(run_id) + 1 if run_id in queued else None


def recover(store: Store, data_dir: str | None = None) -> None:
    """Mark runs whose worker died as failed ("interrupted"), then restart work on what is still queued.

    Cheap enough to call on every render: one query, plus a process start only when needed.
    """
    store.mark_interrupted_runs()
    ensure_workers(store, data_dir)


def ensure_workers(store: Store, data_dir: str | None = None) -> int:
    """Start workers while runs are queued and fewer than `max_jobs()` are alive; returns how many started."""
    for child in list(_children):
        if child.poll() is not None:  # reaps it, so it does not linger as a zombie
            _children.remove(child)
    if not _queued_count(store):  # the common case, answered without taking the lock
        return 0
    with _workers_lock(store):
        wanted = min(max_jobs() - len(live_workers(store)), _queued_count(store))
        for _ in range(wanted):
            _start_worker(store, data_dir)
    return max(0, wanted)


def _queued_count(store: Store) -> int:
    return len(store.list_runs(status="queued"))


def live_workers(store: Store) -> list[int]:
    """Pids of this store's live workers; pid files of dead ones are removed."""
    alive = []
    for pid_file in _workers_dir(store).glob("*.pid"):
        pid = int(pid_file.stem) if pid_file.stem.isdigit() else 0
        recorded_start = pid_file.read_text().strip() if pid_file.exists() else ""
        # Comparing start times tells a live worker from an unrelated process that reused its pid.
        if processes.is_alive(pid) and recorded_start == processes.start_ticks(pid):
            alive.append(pid)
        else:
            pid_file.unlink(missing_ok=True)
    return sorted(alive)


def _register_worker(store: Store, pid: int) -> None:
    (_workers_dir(store) / f"{pid}.pid").write_text(processes.start_ticks(pid))


def _start_worker(store: Store, data_dir: str | None) -> int:
    """Launch one detached worker process (the caller holds the workers lock)."""
    logs = Path(store.root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _prune_logs(logs)
    env = dict(os.environ)
    if data_dir:
        env["CIFAR10_DIR"] = str(data_dir)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    log_path = logs / f"worker-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            worker_command(store),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: a Ctrl-C on the server does not reach it
        )
    # Registered by the launcher (under the lock), so the next ensure_workers counts it at once.
    _register_worker(store, child.pid)
    _children.append(child)
    return child.pid


def worker_command(store: Store) -> list[str]:
    """The command line of a worker for this store: this same Python, so the same packages."""
    return [sys.executable, "-m", "lab.jobs.worker", "--lab-home", str(Path(store.root).resolve())]


def _prune_logs(logs: Path) -> None:
    old = sorted(logs.glob("worker-*.log"))[:-KEEP_LOGS]
    for path in old:
        path.unlink(missing_ok=True)


def _workers_dir(store: Store) -> Path:
    folder = Path(store.root) / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _workers_lock(store: Store) -> Iterator[None]:
    """An exclusive lock shared by every process that uses this store (released if the holder dies)."""
    Path(store.root).mkdir(parents=True, exist_ok=True)
    with open(Path(store.root) / "workers.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------- the worker process


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


def work(store: Store, data_dir: str | None = None) -> int:
    """Train queued runs one after another until none is left; returns how many this worker took."""
    data = None  # loaded on the first run, then shared by every run this worker trains
    taken = 0
    while True:
        run_id = _claim_or_leave(store)
        if run_id is None:
            return taken
        taken += 1
        print(f"[worker {os.getpid()}] run {run_id}", flush=True)
        try:
            if store.cancel_requested(run_id):
                store.set_status(run_id, "cancelled", "cancelled before it started")
                continue
            from lab.data.cifar10 import load_cifar10
            from lab.train import run as training  # TensorFlow loads here, once a run is ours: an idle worker exits fast

            config = RunConfig.from_dict(store.get_run(run_id)["config"])
            if data is None:
                data = load_cifar10(data_dir)
            result = training.run(
                config,
                on_event=lambda event, run_id=run_id: store.add_event(run_id, event),
                data=data,
                store=store,
                run_id=run_id,
                should_stop=cancel_checker(store, run_id),
                keep_when_stopped=lambda run_id=run_id: store.keep_requested(run_id),
            )
            print(f"[worker {os.getpid()}] run {run_id}: {result.status}", flush=True)
            del result
        except Exception as error:  # noqa: BLE001 - one failed run must not stop the queue
            traceback.print_exc()  # the whole story goes to the worker's log; the store gets one line
            run = store.get_run(run_id)
            if run is not None and run["status"] == "running":  # training.run may have marked it already
                store.set_status(run_id, "failed", one_line(error))
        free_memory()


def free_memory() -> None:
    """Drop the last run's model and Keras' global state before the next run (safe here: one run per process).

    The run's traced graphs are already released by `training.run` (lab/system/process_memory.py).
    """
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()
    process_memory.return_free_heap()


def _claim_or_leave(store: Store) -> str | None:
    """The next queued run, or None after deregistering this worker (under the lock, so none is stranded)."""
    run_id = store.claim_next_queued(os.getpid())
    if run_id is not None:
        return run_id
    with _workers_lock(store):
        run_id = store.claim_next_queued(os.getpid())
        if run_id is None:
            (_workers_dir(store) / f"{os.getpid()}.pid").unlink(missing_ok=True)
        return run_id


def one_line(error: BaseException) -> str:
    """An exception as one readable line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.jobs.worker", description="Train the queued runs of a results store, then exit.")
    parser.add_argument("--lab-home", help="the results store's folder (default: $LAB_HOME or ./runs)")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):  # training yields the CPU to the web server when both want it: pages stay quick
        os.nice(WORKER_NICENESS)
    store = Store(args.lab_home)
    _register_worker(store, os.getpid())  # again, in case it was started by hand
    try:
        taken = work(store, os.environ.get("CIFAR10_DIR") or None)
    finally:
        (_workers_dir(store) / f"{os.getpid()}.pid").unlink(missing_ok=True)
    print(f"[worker {os.getpid()}] queue empty after {taken} run(s); exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
