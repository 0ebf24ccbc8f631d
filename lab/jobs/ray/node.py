"""What runs on a Ray cluster's nodes: one run's training, and the channel it reports through.

The results store stays on the app's machine. A run on another machine reaches it only through
Ray: a small `RunChannel` actor, kept on the app's node, collects the run's progress events and
carries the app's cancel and stop-and-keep requests back; the task's return value brings the
finished run (metrics, history, the saved model's bytes, its environment) home, where
lab/jobs/ray/dispatch.py stores it exactly as a local worker would.

A run may also be trained by several workers at once, on several machines: lab/jobs/ray/across_nodes.py.

Plain functions and classes: lab/jobs/ray/dispatch.py turns them into Ray tasks and actors, so
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
        # A run of several workers: the furthest step any of them reported, the step they all stop
        # after once a stop is asked (with the keep decision as it was then), the workers' places,
        # and the finished run rank 0 hands over.
        self.furthest_step = 0
        self.stop_after_step: int | None = None
        self.keep_at_stop = False
        self.workers: list[dict] = []
        self.last_step_by_rank: dict[int, int] = {}
        self.finished: dict | None = None
        self.checkpoint: tuple[int, dict[str, bytes]] | None = None

    def report(self, events: list[dict]) -> tuple[bool, bool]:
        """The run hands over its newest events; it hears back whether to stop, and whether to keep its model then."""
        self.events.extend(events)
        return self.stop, self.keep

    def report_step(self, events: list[dict], step: int) -> tuple[int | None, bool]:
        """A worker of a multi-worker run says which step it has finished; it hears the step to stop after (or None).

        The workers exchange gradients at every step, so none is ever more than one step ahead of
        another: two steps past the furthest one reported is a step none of them has reached yet.
        """
        self.events.extend(events)
        self.furthest_step = max(self.furthest_step, step)
        if self.stop and self.stop_after_step is None:
            self.stop_after_step, self.keep_at_stop = self.furthest_step + 2, self.keep
        return self.stop_after_step, self.keep_at_stop

    def join(self, ran_on: dict) -> None:
        self.workers.append(ran_on)

    def report_last_step(self, rank: int, step: int) -> None:
        """A worker of a multi-worker run says how many steps it trained in all, as it leaves."""
        self.last_step_by_rank[rank] = step

    def finish(self, outcome: dict) -> None:
        self.finished = dict(outcome)

    def outcome(self) -> dict | None:
        """The finished run with its workers' places and the steps each one trained (asked once every worker has left)."""
        if self.finished is None:
            return None
        workers = [{**worker, "steps_done": self.last_step_by_rank.get(worker.get("rank"))} for worker in self.workers]
        return {**self.finished, "workers": workers}

    def save_checkpoint(self, epoch: int, files: dict[str, bytes]) -> None:
        """The run's newest checkpoint, kept here (on the app's node) until the app takes it home."""
        self.checkpoint = (epoch, files)

    def collect(self) -> tuple[list[dict], tuple[int, dict[str, bytes]] | None]:
        """The events that arrived since the last call, oldest first, and the newest checkpoint not yet taken.

        One call for both: a checkpoint arrives before its epoch's `epoch_end` event, so the app that
        stores what it collects never has an epoch's end on record without that epoch's checkpoint.
        """
        events, self.events = self.events, []
        checkpoint, self.checkpoint = self.checkpoint, None
        return events, checkpoint

    def request_stop(self, keep_model: bool) -> None:
        self.stop = True
        self.keep = self.keep or keep_model


class NodeStore:
    """What `lab.train.run.run` needs of a store, on a node far from the real one: it records the outcome to send home.

    Checkpoints go to a temporary folder on the node, and each one is also sent home through the
    channel, so a run whose node dies can be resumed anywhere; the finished model is saved once,
    as the bytes of a `.keras` file.
    """

    def __init__(self):
        remove_leftovers()
        self.root = Path(tempfile.mkdtemp(prefix=f"{LEFTOVER_PREFIX}{os.getpid()}-"))
        self.outcome: dict = {"status": "failed", "message": "the run ended without saying how"}

    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        self.outcome = {"status": status, "message": message}

    def complete_run(self, run_id: str, *, model, message: str = "", **saved) -> None:
        path = self.root / "model.keras"
        model.save(path)
        self.outcome = {"status": "completed", "message": message, "model_bytes": path.read_bytes(), **saved}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


LEFTOVER_PREFIX = "lab-ray-run-"  # then the worker's process id: lab-ray-run-<pid>-<random>


def remove_leftovers(folder: Path | None = None) -> None:
    """Remove the temporary folders of runs whose worker process is gone (killed with its node, say).

    Their checkpoints went home through the channel already; only this node's disk still held them.
    """
    for leftover in (folder or Path(tempfile.gettempdir())).glob(f"{LEFTOVER_PREFIX}*-*"):
        pid = leftover.name.removeprefix(LEFTOVER_PREFIX).split("-")[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, the call only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def where_this_runs(cluster_address: str | None = None) -> dict:
    """This Ray worker's node, as a stored run's environment records it (`ran_on`)."""
    import ray

    return {
        "kind": "ray",
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_address": ray.util.get_node_ip_address(),
        "cluster": cluster_address,
    }


def train_on_node(
    config: dict,
    run_id: str,
    channel,
    data,
    data_dir: str | None,
    cpus: float,
    cluster_address: str | None,
    resume: tuple[int, dict[str, bytes]] | None = None,
) -> dict:
    """Train one run here, reporting through `channel`; return its outcome (see NodeStore) for the app to store.

    `data`: the data set from Ray's object store (put once by the app, shared by the runs on a
    node), or None to load it from `data_dir` / this node's CIFAR10_DIR. `resume`: the checkpoint
    (epoch, files) to continue an interrupted run from, as lab.train.checkpoints.checkpoint_files reads it.
    """
    import ray

    ran_on = where_this_runs(cluster_address)
    use_cpus(cpus)
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

    def send_checkpoint(epoch: int, files: dict[str, bytes]) -> None:
        ray.get(channel.save_checkpoint.remote(epoch, files))

    exchange(force=True)
    try:
        outcome = train_into_node_store(
            config, run_id, ran_on, data, data_dir, resume, on_event, should_stop, lambda: keep, send_checkpoint
        )
    finally:
        exchange(force=True)
    return {**outcome, "ran_on": ran_on}


def use_cpus(cpus: float) -> None:
    """One run gets the CPUs Ray gave it, not the whole node: other runs share the machine."""
    threads = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def train_into_node_store(
    config: dict,
    run_id: str,
    ran_on: dict,
    data,
    data_dir: str | None,
    resume: tuple[int, dict[str, bytes]] | None,
    on_event,
    should_stop,
    keep_when_stopped,
    send_checkpoint,
) -> dict:
    """Train the run in this process into a NodeStore, sending each epoch's checkpoint home; return what it recorded."""
    os.environ["LAB_RAN_ON"] = json.dumps(ran_on)  # lab.train.devices.describe_environment stores it with the run
    from lab.config import RunConfig
    from lab.train import checkpoints
    from lab.train import run as training

    store = NodeStore()

    def on_event_sending_checkpoints(event: dict) -> None:
        if event["kind"] == "checkpoint" and "error" not in event and send_checkpoint is not None:
            found = checkpoints.checkpoint_files(store.root, run_id)
            if found is not None:
                send_checkpoint(*found)  # before the epoch's end is announced
        on_event(event)

    try:
        if resume is not None:
            checkpoints.install_checkpoint_files(store.root, run_id, *resume)
        if data is None:
            from lab.data.cifar10 import load_cifar10

            data = load_cifar10(data_dir or os.environ.get("CIFAR10_DIR") or None)
        training.run(
            RunConfig.from_dict(config),
            on_event=on_event_sending_checkpoints,
            data=data,
            store=store,
            run_id=run_id,
            should_stop=should_stop,
            keep_when_stopped=keep_when_stopped,
            resume=resume is not None,
        )
    finally:
        store.close()
    return store.outcome
