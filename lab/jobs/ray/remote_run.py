"""One run on a Ray cluster, seen from the app's machine: joining the cluster, starting the run, relaying it, storing it.

`RemoteRun` starts one run's Ray task (lab/jobs/ray/node.py, or lab/jobs/ray/across_nodes.py for a run
of several workers) with a `RunChannel` actor pinned to the app's node; polled, it writes the
run's events and checkpoints into the store and passes on stop requests; when the task ends it
records the result the task returned exactly as a local worker does (lab/jobs/outcome.py):
completed, cancelled or failed, once. The dispatcher (lab/jobs/ray/dispatch.py) keeps several of them going;
`train_one` (`python -m lab train --ray-address`) follows one in the foreground.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import lab
from lab.jobs.outcome import Failed, one_line, record_outcome
from lab.jobs.ray import across_nodes, cluster
from lab.jobs.ray import node as ray_node
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import Store
from lab.train import checkpoints
from lab.train.result import RunResult

POLL_SECONDS = 0.5  # how often the dispatcher relays events and looks for room on the cluster
GIVE_UP_AFTER_ERRORS = 20  # polls in a row whose Ray calls failed before a run counts as interrupted
INTERRUPTED_ON_NODE = "interrupted: the Ray node {node} stopped during the run ({error})"


def connect(address: str) -> None:
    """Join the Ray cluster at `address` as a driver, shipping this `lab` package to its nodes (once per process).

    The nodes need the lab's dependencies (TensorFlow, NumPy...) but not a copy of its code:
    Ray's `py_modules` sends this very `lab` folder with every task, so app and nodes never differ.
    """
    import ray

    if ray.is_initialized():
        return
    ray.init(
        address=address,
        namespace="cifar10-lab",
        runtime_env={"py_modules": [str(Path(lab.__file__).parent)], "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}},
        logging_level="ERROR",
        log_to_driver=False,
    )


def describe_cluster() -> dict:
    """The cluster's live nodes and their CPUs and GPUs, as `cluster.json` records them."""
    import ray

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    total = ray.cluster_resources()
    return {"nodes": len(nodes), "cpus": total.get("CPU", 0.0), "gpus": total.get("GPU", 0.0)}


def room_for_runs(workers: int = 1) -> int:
    """How many runs the cluster can train at once: a worker per GPU, else per `cpus_per_run` CPUs of a node; `workers` per run."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    gpus = sum(int(resources.get("GPU", 0)) for resources in nodes)
    slots = gpus or sum(int(resources.get("CPU", 0) // cluster.cpus_per_run()) for resources in nodes)
    return slots // workers


def live_nodes_resources() -> list[dict[str, float]]:
    """Each live node's resources, as Ray's scheduler counts them ({"CPU": 8.0, "GPU": 1.0, "memory": ...})."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def per_worker_request(workers: int = 1) -> dict[str, float]:
    """What one worker of a run asks of a single node: the same numbers `task_options` and across_nodes.py give Ray."""
    import ray

    if ray.cluster_resources().get("GPU", 0) >= 1:
        return {"CPU": cluster.cpus_per_run() if workers > 1 else 1.0, "GPU": 1.0}
    return {"CPU": cluster.cpus_per_run()}


def why_it_does_not_fit(workers: int = 1) -> str | None:
    """None when the cluster can hold a run of `workers` workers with today's settings; otherwise why not, in a sentence."""
    return cluster.why_no_node_fits(live_nodes_resources(), per_worker_request(workers), workers)


def task_options(workers: int = 1) -> dict:
    """What one run's Ray task asks for: the training's resources, or nothing when Ray Train workers train it."""
    import ray

    wants_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    if workers > 1:  # this task only starts the workers and waits for them; they ask for the CPUs or GPUs
        return {"num_cpus": 0, "max_retries": 0, "use_gpu": wants_gpu}
    resources = {"num_gpus": 1, "num_cpus": 1} if wants_gpu else {"num_cpus": cluster.cpus_per_run()}
    return {**resources, "max_retries": 0}  # no retry: a run whose node dies is marked interrupted


class RemoteRun:
    """One run training on the cluster: its task, its channel, and the store it is recorded in."""

    def __init__(self, store: Store, run_id: str, data_ref=None, data_dir: str | None = None, address: str | None = None, workers: int = 1):
        import ray

        self.store, self.run_id = store, run_id
        self.stop_sent = False
        self.node: str | None = None
        self.errors_in_a_row = 0
        self.outcome: RunResult | Failed | None = None  # what the run's task returned, once it has ended
        config = store.get_run(run_id).config.to_dict()  # plain data travels to the nodes
        here = ray.get_runtime_context().get_node_id()
        # The channel must stay on the app's node, so that it outlives a training node that dies. A hard
        # affinity: a soft one lets Ray put it on another node whenever this one looks busy.
        channel_class = ray.remote(num_cpus=0)(ray_node.RunChannel)
        self.channel = channel_class.options(
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id=here, soft=False)
        ).remote()
        # A resumed run (lab.jobs.resume.resume) continues from the checkpoint its node sent home.
        resume = checkpoints.checkpoint_files(store.run_folder(run_id).checkpoints)
        options = task_options(workers)
        if workers > 1:
            use_gpu = options.pop("use_gpu")
            task = ray.remote(across_nodes.train_across_nodes).options(**options)
            self.task = task.remote(
                config, run_id, self.channel, data_ref, data_dir, workers, cluster.cpus_per_run(), use_gpu, address, resume
            )
            return
        # A fresh worker process per run (max_calls=1): TensorFlow's threads and memory start clean.
        task = ray.remote(max_calls=1)(ray_node.train_on_node).options(**options)
        self.task = task.remote(config, run_id, self.channel, data_ref, data_dir, options["num_cpus"], address, resume)

    def relay(self, on_event: Callable[[dict], None] | None = None) -> None:
        """Write the run's new events into the store (and show them), and pass on a stop request once."""
        import ray

        events, checkpoint = ray.get(self.channel.collect.remote())
        if checkpoint is not None:  # kept here, so the run can be resumed even if its node dies
            try:
                checkpoints.install_checkpoint_files(self.store.run_folder(self.run_id).checkpoints, *checkpoint)
            except OSError as error:  # a full disk: the previous checkpoint stays, and the run goes on
                print(f"[dispatcher {os.getpid()}] run {self.run_id}: checkpoint not saved ({error})", flush=True)
        for event in events:
            if event.get("kind") == "placed":
                self.node = event["ran_on"].get("node_address")
            self.store.add_event(self.run_id, event)
            if on_event is not None:
                on_event(event)
        if not self.stop_sent and self.store.cancel_requested(self.run_id):
            self.channel.request_stop.remote(self.store.keep_requested(self.run_id))
            self.stop_sent = True

    def ended(self) -> bool:
        import ray

        ready, _ = ray.wait([self.task], timeout=0)
        return bool(ready)

    def poll(self) -> str | None:
        """Relay the run's news; once its task has ended, store the outcome and return its status (else None).

        A Ray call that fails while a node joins or leaves is tried again at the next poll; only a
        run that keeps failing them is given up as interrupted. Either way the other runs go on.
        """
        import ray

        try:
            self.relay()
            ended = self.ended()
            self.errors_in_a_row = 0
        except ray.exceptions.RayError as error:
            self.errors_in_a_row += 1
            if self.errors_in_a_row < GIVE_UP_AFTER_ERRORS:
                return None
            record_outcome(self.store, self.run_id, Failed(INTERRUPTED_ON_NODE.format(node=self.node or "?", error=one_line(error))))
            with contextlib.suppress(ray.exceptions.RayError):
                ray.kill(self.channel)
            return Status.FAILED
        return self.finish() if ended else None

    def finish(self, on_event: Callable[[dict], None] | None = None) -> Status:
        """Record the run's outcome (completed, cancelled or failed) in the store and return its status."""
        import ray

        try:
            outcome = ray.get(self.task)
        except ray.exceptions.RayTaskError as error:  # the training itself raised: the run's own error
            outcome = Failed(one_line(error.cause if error.cause is not None else error))
        except ray.exceptions.RayError as error:  # the node, its worker or the object store went away
            outcome = Failed(INTERRUPTED_ON_NODE.format(node=self.node or "?", error=type(error).__name__))
        with contextlib.suppress(ray.exceptions.RayError):  # a dead channel has no last events to give
            self.relay(on_event)  # the last events, sent just before the task ended
        self.outcome = outcome
        status = record_outcome(self.store, self.run_id, outcome)
        with contextlib.suppress(ray.exceptions.RayError):
            ray.kill(self.channel)
        return status


def train_one(
    config,
    store: Store,
    address: str,
    *,
    data_dir: str | None = None,
    settings_key: str | None = None,
    workers: int = 1,
    on_event: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[str, Status]:
    """Train one run on the cluster from this process (`python -m lab train --ray-address`); returns (run id, status).

    The run is stored in the local store like any other; `should_stop()` (Ctrl-C) stops it after
    its current batch and keeps its model, as a local run does.
    """
    problem = cluster.answers(address)
    if problem is not None:
        raise ConnectionError(problem)
    connect(address)
    too_big = why_it_does_not_fit(workers)
    if too_big is not None:  # told now, rather than waiting for ever on a node that cannot exist
        raise cluster.RunDoesNotFit(too_big)
    run_id = store.create_run(config, status=Status.RUNNING, settings_key=settings_key)
    try:
        remote = RemoteRun(store, run_id, shared_data(data_dir), data_dir, address, workers)
        while not remote.ended():
            remote.relay(on_event)
            if should_stop() and not remote.stop_sent:
                store.request_cancel(run_id, keep_model=True, by=local_person())  # the shell's own run; the next relay passes it on
            time.sleep(POLL_SECONDS / 2)
        return run_id, remote.finish(on_event)
    except BaseException as error:
        record_outcome(store, run_id, Failed(one_line(error)))
        raise


_data_refs: dict[str | None, object] = {}


def shared_data(data_dir: str | None):
    """The data set in Ray's object store, put there once per dispatcher (None when the nodes load their own)."""
    if os.environ.get("LAB_RAY_DATA", "object-store") == "node":
        return None
    if data_dir not in _data_refs:
        _data_refs[data_dir] = _put_data(data_dir)
    return _data_refs[data_dir]


def _put_data(data_dir: str | None):
    """The data set, loaded once here and put in Ray's object store: every node fetches it once, its runs share it."""
    import ray

    from lab.data.cifar10 import load_cifar10

    return ray.put(load_cifar10(data_dir))


def disconnect() -> None:
    import ray

    _data_refs.clear()  # objects belong to the connection: a new one puts the data again
    if ray.is_initialized():
        ray.shutdown()
