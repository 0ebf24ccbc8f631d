"""Starting and tracking the worker processes that train queued runs.

Live workers are tracked by pid files in `<store root>/workers/`, each holding its
process's start time, so a pid the system reused for another program is never
counted. Starting a worker and a worker deciding to exit both happen under one file
lock (`<store root>/workers.lock`), so two sessions clicking at the same moment never
start more than `LAB_MAX_JOBS` workers, and a run queued while the last worker is
leaving is never stranded.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from lab.jobs.ray import cluster
from lab.store.records import Status
from lab.store.runs import Store
from lab.system import processes

# The folder that holds the `lab` package (a checkout, or site-packages): on the worker's import path, so the
# worker runs the same code as the app that started it, installed or not.
CODE_ROOT = Path(__file__).resolve().parents[2]
KEEP_LOGS = 20  # worker log files kept in <store root>/logs; older ones are deleted

# Workers this process started: polling them reaps the ones that exited (no zombies).
_children: list[subprocess.Popen] = []


def max_jobs() -> int:
    """How many runs may train at once (the LAB_MAX_JOBS setting, default 1)."""
    try:
        return max(1, int(os.environ.get("LAB_MAX_JOBS", "1")))
    except ValueError:
        return 1


def ensure_workers(store: Store, data_dir: str | None = None) -> int:
    """Start workers while runs are queued and fewer than `max_jobs()` are alive; returns how many started."""
    for child in list(_children):
        if child.poll() is not None:  # reaps it, so it does not linger as a zombie
            _children.remove(child)
    if not _queued_count(store):  # the common case, answered without taking the lock
        return 0
    with workers_lock(store):
        # On a Ray cluster one dispatcher sends every run out (lab/jobs/ray/dispatch.py); the cluster sets how many train at once.
        most = 1 if cluster.ray_address() else max_jobs()
        wanted = min(most - len(live_workers(store)), _queued_count(store))
        for _ in range(wanted):
            start_worker(store, data_dir)
    return max(0, wanted)


def _queued_count(store: Store) -> int:
    return len(store.list_runs(status=Status.QUEUED))


def live_workers(store: Store) -> list[int]:
    """Pids of this store's live workers; pid files of dead ones are removed."""
    alive = []
    for pid_file in workers_dir(store).glob("*.pid"):
        pid = int(pid_file.stem) if pid_file.stem.isdigit() else 0
        recorded_start = pid_file.read_text().strip() if pid_file.exists() else ""
        # Comparing start times tells a live worker from an unrelated process that reused its pid.
        if processes.is_alive(pid) and recorded_start == processes.start_stamp(pid):
            alive.append(pid)
        else:
            pid_file.unlink(missing_ok=True)
    return sorted(alive)


def register_worker(store: Store, pid: int) -> None:
    (workers_dir(store) / f"{pid}.pid").write_text(processes.start_stamp(pid))


def start_worker(store: Store, data_dir: str | None) -> int:
    """Launch one detached worker process (the caller holds the workers lock)."""
    logs = Path(store.root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _prune_logs(logs)
    env = processes.child_environment()  # never the teacher password: a worker has no use for it
    if data_dir:
        env["CIFAR10_DIR"] = str(Path(data_dir).expanduser().resolve())
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
    log_path = logs / f"worker-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            worker_command(store),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            **_detached(),
        )
    # Registered by the launcher (under the lock), so the next ensure_workers counts it at once.
    register_worker(store, child.pid)
    _children.append(child)
    return child.pid


def _detached() -> dict:
    """Popen options that put the worker in a process group of its own: a Ctrl-C on the server does not reach it."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def worker_command(store: Store) -> list[str]:
    """The command line of a worker for this store: this same Python, so the same packages.

    With LAB_RAY_ADDRESS set, the "worker" is the Ray dispatcher: it trains nothing itself.
    """
    module = "lab.jobs.ray.dispatch" if cluster.ray_address() else "lab.jobs.worker"
    return [sys.executable, "-m", module, "--lab-home", str(Path(store.root).resolve())]


def _prune_logs(logs: Path) -> None:
    old = sorted(logs.glob("worker-*.log"))[:-KEEP_LOGS]
    for path in old:
        path.unlink(missing_ok=True)


def workers_dir(store: Store) -> Path:
    folder = Path(store.root) / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def workers_lock(store: Store) -> Iterator[None]:
    """An exclusive lock shared by every process that uses this store (the system releases it if the holder dies)."""
    Path(store.root).mkdir(parents=True, exist_ok=True)
    with FileLock(Path(store.root) / "workers.lock"):
        yield


def unregister_worker(store: Store, pid: int) -> None:
    """Forget a worker that is leaving (its pid file goes)."""
    (workers_dir(store) / f"{pid}.pid").unlink(missing_ok=True)
