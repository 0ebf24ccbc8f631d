"""The queue of runs, seen from the app: submit, cancel, where a run stands, recovery after a crash.

Training never runs inside the Streamlit script. `submit` only adds a `queued` row to the
store and makes sure a worker process is alive (lab/jobs/launcher.py); the worker
(lab/jobs/worker.py) claims queued runs one at a time and trains them, writing progress
events into the store for the app to poll. So:

- a crash or an out-of-memory kill takes down one worker, never the web server;
- a page rerun, a browser refresh or a closed tab cannot stop a run;
- `LAB_MAX_JOBS` (default 1) caps how many runs train at once, so thirty clicks on
  a two-core machine queue up instead of fighting over the CPU.
"""

from __future__ import annotations

from typing import Any

from lab.config import RunConfig
from lab.jobs import launcher
from lab.store.runs import Store

ACTIVE_STATUSES = ("queued", "running")


def submit(config: RunConfig, *, store: Store | None = None, data_dir: str | None = None) -> str:
    """Queue a run and make sure a worker will train it; returns the run id at once.

    `data_dir` (else CIFAR10_DIR) is handed to the worker this call starts. A worker that is
    already running keeps the data location it was started with, so every run queued in one
    store should use the same one, as the app does (its CIFAR10_DIR setting).
    """
    store = store or Store()
    run_id = store.create_run(config, status="queued")
    launcher.ensure_workers(store, data_dir)
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
    launcher.ensure_workers(store, data_dir)
