"""Training queued runs on a Ray cluster: `python -m lab.jobs.ray.dispatch` stands in for the local workers.

The app keeps deciding which run goes next (fair turns, class limits, no duplicates: the same
store and queue as local workers); Ray decides where it runs. The dispatcher, one process on the
app's machine, loops:

1. while the cluster has room for another run, it takes the next queued run (fair order) and
   starts it as one Ray task (lab/jobs/ray/node.py), asking for one GPU when the cluster has GPUs
   and for `LAB_RAY_CPUS_PER_RUN` CPUs otherwise; Ray's scheduler picks the node;
2. it relays each running run's progress events from its channel into the store, and the
   store's cancel and stop-and-keep requests back to the run;
3. when a task ends, it stores the outcome it returned (model, history, metrics, environment)
   exactly as a local worker would: completed, cancelled or failed, once.

A node that dies mid-run leaves its run interrupted (failed, with a message naming the node);
nothing completed is lost, because a run is stored only by this process, once, from the task's
result. A run of several workers whose worker failed goes back in the queue once by itself, to
continue from its last checkpoint; a second failure stays, since the run itself may be the cause.
A cluster that does not answer leaves queued runs waiting (the app says so, from `cluster.json`),
or lets local workers take them when LAB_RAY_FALLBACK=local.
Each run on the cluster is a RemoteRun (lab/jobs/ray/remote_run.py); `python -m lab train
--ray-address` follows one in the foreground with `remote_run.train_one`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from lab.jobs import fairness, launcher, resume
from lab.jobs.outcome import Failed, one_line, record_outcome
from lab.jobs.progress import RESUMED_BY_ITSELF
from lab.jobs.ray import cluster
from lab.jobs.ray.remote_run import (
    INTERRUPTED_ON_NODE,
    POLL_SECONDS,
    RemoteRun,
    connect,
    describe_cluster,
    disconnect,
    room_for_runs,
    shared_data,
    why_it_does_not_fit,
)
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import Store
from lab.train.result import RunResult

RETRY_SECONDS = 5.0  # how often it tries again to reach a cluster that did not answer
ORDERS = {"fair": fairness.next_run, "oldest": None}


def dispatch(store: Store, address: str, data_dir: str | None = None, order: str = "fair", idle_seconds: float = 0.0) -> int:
    """Send queued runs to the cluster until none is queued or running for `idle_seconds`; returns how many it sent."""
    choose = ORDERS[order]
    running: dict[str, RemoteRun] = {}
    sent = 0
    connected = False
    idle_since = last_check = time.monotonic()
    while True:
        if not connected:
            connected = _reach(store, address)
            if not connected:
                if cluster.fall_back_to_local():
                    from lab.jobs import worker

                    return sent + worker.work(store, data_dir, order)
                if not store.list_runs(status=Status.QUEUED) and _leave(store, running):
                    return sent
                time.sleep(RETRY_SECONDS)
                continue
        # Is the head still there? Asked every RETRY_SECONDS, not on every poll: a TCP connection each time.
        if time.monotonic() - last_check >= RETRY_SECONDS:
            last_check = time.monotonic()
            if not _still_reachable(address):  # the head went away: every run on the cluster is interrupted
                print(f"[dispatcher {os.getpid()}] lost the cluster at {address}", flush=True)
                _fail_all(store, running, "the cluster stopped answering")
                connected = False
                disconnect()
                continue
        sent += _start_runs(store, running, choose, data_dir, address)
        for run_id, remote in list(running.items()):
            status = remote.poll()
            if status is not None:
                print(f"[dispatcher {os.getpid()}] run {run_id}: {status}", flush=True)
                del running[run_id]
                if status is Status.FAILED:
                    _resume_once_by_itself(store, run_id, remote.outcome)
        if running or store.list_runs(status=Status.QUEUED):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= idle_seconds and _leave(store, running):
            return sent
        time.sleep(POLL_SECONDS)


def _start_runs(store: Store, running: dict, choose, data_dir: str | None, address: str) -> int:
    """Send queued runs to the cluster while it has room; returns how many were sent."""
    workers = cluster.workers_per_run()
    try:
        too_big = why_it_does_not_fit(workers)
        room = room_for_runs(workers) - len(running)
    except Exception:  # noqa: BLE001 - a node joining or leaving mid-call: no new run this round
        traceback.print_exc()
        return 0
    _record_fit(store, address, too_big)
    if too_big is not None:  # no node can hold any run with these settings: each queued run fails, saying why
        _fail_queued(store, choose, too_big)
        return 0
    sent = 0
    while room > 0 and (run_id := store.claim_next_queued(os.getpid(), choose=choose)) is not None:
        print(f"[dispatcher {os.getpid()}] run {run_id} -> Ray", flush=True)
        try:
            running[run_id] = RemoteRun(store, run_id, shared_data(data_dir), data_dir, address, workers)
        except Exception as error:  # noqa: BLE001 - this run could not start; the queue goes on
            traceback.print_exc()
            record_outcome(store, run_id, Failed(f"could not start on the cluster: {one_line(error)}"))
            continue
        sent, room = sent + 1, room - 1
    return sent


def _resume_once_by_itself(store: Store, run_id: str, outcome: RunResult | Failed | None) -> None:
    """A worker of a multi-worker run failed: put the run back in the queue once, to continue from its last checkpoint.

    Nobody has to click Resume for a machine that ran out of memory or restarted mid-run. Only once:
    a run that fails again stays failed, with its own message, since the cause may be the run itself.
    """
    if not (isinstance(outcome, Failed) and outcome.retry_once):
        return
    if store.latest_event(run_id, RESUMED_BY_ITSELF) is not None or store.cancel_requested(run_id):  # once; a stop stays a stop
        return
    try:
        epoch = resume.reopen_for_resume(run_id, store, by=local_person(), status=Status.QUEUED)
    except (resume.CannotResumeError, ValueError) as error:  # no checkpoint yet, say: it stays failed, saying why
        print(f"[dispatcher {os.getpid()}] run {run_id}: not resumed ({error})", flush=True)
        return
    store.add_event(run_id, {"kind": RESUMED_BY_ITSELF, "after_epoch": epoch, "because": outcome.message})
    print(f"[dispatcher {os.getpid()}] run {run_id}: resumed after epoch {epoch}, once, by itself", flush=True)


def _record_fit(store: Store, address: str, too_big: str | None) -> None:
    """Tell the app's pages (cluster.json) when the settings ask more of a node than any node has, and when that is over."""
    status = cluster.read_status(store.root) or {}
    if status.get("address") == address and status.get("ok") and status.get("too_small") != too_big:
        cluster.write_status(store.root, **{**status, "too_small": too_big})


def _fail_queued(store: Store, choose, reason: str) -> None:
    while (run_id := store.claim_next_queued(os.getpid(), choose=choose)) is not None:
        print(f"[dispatcher {os.getpid()}] run {run_id}: does not fit on any node", flush=True)
        record_outcome(store, run_id, Failed(reason))


def _still_reachable(address: str) -> bool:
    import ray

    return ray.is_initialized() and cluster.answers(address) is None


def _fail_all(store: Store, running: dict, reason: str) -> None:
    for run_id, remote in running.items():
        record_outcome(store, run_id, Failed(INTERRUPTED_ON_NODE.format(node=remote.node or "?", error=reason)))
    running.clear()


def _reach(store: Store, address: str) -> bool:
    """Connect to the cluster and record what it has; record why not, when it does not answer."""
    problem = cluster.answers(address)
    if problem is None:
        try:
            connect(address)
            cluster.write_status(store.root, ok=True, address=address, message="", **describe_cluster())
            return True
        except Exception as error:  # noqa: BLE001 - Ray's own connection errors vary by version
            problem = f"the Ray cluster at {address} refused this app: {one_line(error)}"
            disconnect()
    print(f"[dispatcher {os.getpid()}] {problem}", flush=True)
    cluster.write_status(store.root, ok=False, address=address, message=problem)
    return False


def _leave(store: Store, running: dict) -> bool:
    """Deregister, unless a run was queued meanwhile (checked under the workers lock, as a local worker does)."""
    with launcher.workers_lock(store):
        if running or store.list_runs(status=Status.QUEUED):
            return False
        launcher.unregister_worker(store, os.getpid())
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.jobs.ray.dispatch", description="Train the queued runs of a store on a Ray cluster."
    )
    parser.add_argument("--lab-home", help="the results store's folder (default: $LAB_HOME or ./runs)")
    parser.add_argument("--ray-address", help="the cluster (default: $LAB_RAY_ADDRESS)")
    parser.add_argument("--order", choices=sorted(ORDERS), default="fair")
    args = parser.parse_args(argv)
    address = cluster.ray_address(args.ray_address)
    if address is None:
        parser.error("no cluster: pass --ray-address or set LAB_RAY_ADDRESS")
    store = Store(args.lab_home)
    launcher.register_worker(store, os.getpid())
    from lab.jobs.worker import idle_seconds

    try:
        sent = dispatch(store, address, os.environ.get("CIFAR10_DIR") or None, args.order, idle_seconds())
    finally:
        launcher.unregister_worker(store, os.getpid())
    print(f"[dispatcher {os.getpid()}] queue empty after {sent} run(s); exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
