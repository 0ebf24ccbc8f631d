"""What runs on a Ray cluster's nodes: one run's training, and the channel it reports through.

The results store stays on the app's machine. A run on another machine reaches it only through
Ray: a small `RunChannel` actor, kept on the app's node, collects the run's progress events and
carries the app's cancel and stop-and-keep requests back; the task's return value brings the
finished run (metrics, history, the saved model's bytes, its environment) home, where
lab/jobs/ray_dispatch.py stores it exactly as a local worker would.

Plain functions and classes: lab/jobs/ray_dispatch.py turns them into Ray tasks and actors, so
this module imports neither Ray nor TensorFlow until a node calls it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

REPORT_SECONDS = 0.5  # how often a run sends its events and hears about a stop request


class RunChannel:
    """The meeting point of a run on a node and the app: events one way, stop requests the other (a Ray actor)."""

    def __init__(self):
        self.events: list[dict] = []
        self.stop = False
        self.keep = False

    def report(self, events: list[dict]) -> tuple[bool, bool]:
        """The run hands over its newest events; it hears back whether to stop, and whether to keep its model then."""
        self.events.extend(events)
        return self.stop, self.keep

    def drain(self) -> list[dict]:
        """The events that arrived since the last call, oldest first (the app writes them into its store)."""
        events, self.events = self.events, []
        return events

    def request_stop(self, keep_model: bool) -> None:
        self.stop = True
        self.keep = self.keep or keep_model


class NodeStore:
    """What `lab.train.run.run` needs of a store, on a node far from the real one: it records the outcome to send home.

    Checkpoints go to a temporary folder on the node (they serve a resume on the same node only,
    and go with the run); the finished model is saved once, as the bytes of a `.keras` file.
    """

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="lab-ray-run-"))
        self.outcome: dict = {"status": "failed", "message": "the run ended without saying how"}

    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        self.outcome = {"status": status, "message": message}

    def complete_run(self, run_id: str, *, model, message: str = "", **saved) -> None:
        path = self.root / "model.keras"
        model.save(path)
        self.outcome = {"status": "completed", "message": message, "model_bytes": path.read_bytes(), **saved}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def where_this_runs(cluster_address: str | None = None) -> dict:
    """This Ray worker's node, as a stored run's environment records it (`ran_on`)."""
    import ray

    return {
        "kind": "ray",
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_address": ray.util.get_node_ip_address(),
        "cluster": cluster_address,
    }


def train_on_node(config: dict, run_id: str, channel, data, data_dir: str | None, cpus: float, cluster_address: str | None) -> dict:
    """Train one run here, reporting through `channel`; return its outcome (see NodeStore) for the app to store.

    `data`: the data set from Ray's object store (put once by the app, shared by the runs on a
    node), or None to load it from `data_dir` / this node's CIFAR10_DIR.
    """
    import ray

    ran_on = where_this_runs(cluster_address)
    os.environ["LAB_RAN_ON"] = json.dumps(ran_on)  # lab.train.devices.describe_environment stores it with the run
    threads = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    # One run gets the CPUs Ray gave it, not the whole node: other runs share the machine.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))

    from lab.config import RunConfig
    from lab.train import run as training

    pending: list[dict] = [{"kind": "placed", "ran_on": ran_on}]
    last_report = 0.0
    stop = keep = False

    def exchange(force: bool = False) -> None:
        nonlocal last_report, stop, keep, pending
        if force or time.monotonic() - last_report >= REPORT_SECONDS:
            events, pending = pending, []
            stop, keep = ray.get(channel.report.remote(events))
            last_report = time.monotonic()

    def on_event(event: dict) -> None:
        pending.append(event)
        exchange(force=event["kind"] != "batch_end")  # milestones at once; batches at most every REPORT_SECONDS

    def should_stop() -> bool:
        exchange()
        return stop

    store = NodeStore()
    try:
        exchange(force=True)
        if data is None:
            from lab.data.cifar10 import load_cifar10

            data = load_cifar10(data_dir or os.environ.get("CIFAR10_DIR") or None)
        training.run(
            RunConfig.from_dict(config),
            on_event=on_event,
            data=data,
            store=store,
            run_id=run_id,
            should_stop=should_stop,
            keep_when_stopped=lambda: keep,
        )
    finally:
        exchange(force=True)
        store.close()
    return {**store.outcome, "ran_on": ran_on}
