"""What runs on a Ray cluster's nodes: one run's training, and the channel it reports through.

The results store stays on the app's machine. A run on another machine reaches it only through
Ray: a small `RunChannel` actor, kept on the app's node, collects the run's progress events and
carries the app's cancel and stop-and-keep requests back; the task's return value brings the
finished run home (a `RunResult`, lab/train/result.py, with the model to save as the bytes of its
`.keras` file), where lab/jobs/ray/remote_run.py records it exactly as a local worker would
(lab/jobs/outcome.py).

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
from dataclasses import replace
from pathlib import Path

from lab.train.result import RunResult

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
        self.finished: RunResult | None = None
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

    def finish(self, result: RunResult) -> None:
        self.finished = result

    def outcome(self) -> tuple[RunResult, list[dict]] | None:
        """The finished run, and its workers' places with the steps each one trained (asked once every worker has left)."""
        if self.finished is None:
            return None
        workers = [{**worker, "steps_done": self.last_step_by_rank.get(worker.get("rank"))} for worker in self.workers]
        return self.finished, workers

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
) -> RunResult:
    """Train one run here, reporting through `channel`; return its result for the app to record.

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
        return train_here_for_the_app(config, run_id, ran_on, data, data_dir, resume, on_event, should_stop, lambda: keep, send_checkpoint)
    finally:
        exchange(force=True)


def use_cpus(cpus: float) -> None:
    """One run gets the CPUs Ray gave it, not the whole node: other runs share the machine."""
    threads = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def train_here_for_the_app(
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
) -> RunResult:
    """Train the run in this process, sending each epoch's checkpoint home; return its result, ready to travel.

    Checkpoints go to a temporary folder on this node, and each one is also sent home through the
    channel, so a run whose node dies can be resumed anywhere; the finished model travels once, as
    the bytes of a `.keras` file.
    """
    os.environ["LAB_RAN_ON"] = json.dumps(ran_on)  # lab.train.devices.describe_environment stores it with the run
    from lab.config import RunConfig
    from lab.train import checkpoints
    from lab.train import run as training

    remove_leftovers()
    scratch = Path(tempfile.mkdtemp(prefix=f"{LEFTOVER_PREFIX}{os.getpid()}-"))
    folder = scratch / run_id  # a checkpoint folder is named after its run

    def on_event_sending_checkpoints(event: dict) -> None:
        if event["kind"] == "checkpoint" and "error" not in event and send_checkpoint is not None:
            found = checkpoints.checkpoint_files(folder)
            if found is not None:
                send_checkpoint(*found)  # before the epoch's end is announced
        on_event(event)

    try:
        if resume is not None:
            checkpoints.install_checkpoint_files(folder, *resume)
        if data is None:
            from lab.data.cifar10 import load_cifar10

            data = load_cifar10(data_dir or os.environ.get("CIFAR10_DIR") or None)
        result = training.run(
            RunConfig.from_dict(config),
            on_event=on_event_sending_checkpoints,
            data=data,
            checkpoint_folder=folder,
            should_stop=should_stop,
            keep_when_stopped=keep_when_stopped,
            resume=resume is not None,
        )
        return ready_to_travel(result, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def ready_to_travel(result: RunResult, scratch: Path) -> RunResult:
    """The result without its live Keras models: the model to save becomes the bytes of its `.keras` file."""
    if result.saved_model is None:
        return replace(result, model=None)
    path = scratch / "model.keras"
    result.saved_model.save(path)
    return replace(result, model=None, saved_model=path.read_bytes())
