"""One run trained by several Ray Train workers at once, on several machines.

Ray Train's TensorflowTrainer starts the workers and sets each one's TF_CONFIG; they train one
model together under MultiWorkerMirroredStrategy (lab/train/multi_worker.py). The first worker
(rank 0) reports the events and hands the finished run to the run's channel (lab/jobs/ray/node.py);
a stop request takes effect on every worker after the same step, since a worker that stopped
alone would leave the others waiting for its gradients forever.

Plain functions: lab/jobs/ray/dispatch.py turns `train_across_nodes` into a Ray task, so this
module imports neither Ray nor TensorFlow until a node calls it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from lab.jobs.outcome import Failed, one_line
from lab.jobs.ray.node import train_here_for_the_app, use_cpus, where_this_runs
from lab.train.result import RunResult


def train_across_nodes(
    config: dict,
    run_id: str,
    channel,
    data,
    data_dir: str | None,
    workers: int,
    cpus: float,
    use_gpu: bool,
    cluster_address: str | None,
    resume: tuple[int, dict[str, bytes]] | None = None,
) -> RunResult | Failed:
    """Train one run with `workers` Ray Train workers at once, spread over the cluster's nodes; return its result.

    This task only waits: the workers do the training, and rank 0 leaves the finished run in the channel.
    """
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    per_worker = {"CPU": cpus, **({"GPU": 1} if use_gpu else {})}
    trainer = TensorflowTrainer(
        _train_as_one_of_several,
        train_loop_config={
            "config": config,
            "run_id": run_id,
            "channel": channel,
            "data": data,
            "data_dir": data_dir,
            "cpus": cpus,
            "cluster_address": cluster_address,
            "resume": resume,
        },
        # SPREAD: one worker per machine where it can, which is the point of training across machines.
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=per_worker, placement_strategy="SPREAD"),
        run_config=RunConfig(name=f"lab-{run_id}", storage_path=tempfile.gettempdir()),
    )
    try:
        trainer.fit()  # raises when a worker failed or died
    except Exception as error:  # noqa: BLE001 - a worker's own error is what the student needs to read
        failures = getattr(error, "worker_failures", None)  # Ray Train's WorkerGroupError: each failed worker's exception
        if not failures:
            raise
        return Failed(worker_failures_in_words(failures, workers), retry_once=True)  # the dispatcher resumes it once
    finally:
        shutil.rmtree(Path(tempfile.gettempdir()) / f"lab-{run_id}", ignore_errors=True)  # Ray Train's own records of the run
    finished = ray.get(channel.outcome.remote())
    if finished is None:
        return Failed("the workers ended without handing over the run")
    result, workers_ran_on = finished
    if not result.environment:  # a cancelled run has no environment to tell
        return result
    environment = result.environment
    return replace(result, environment={**environment, "ran_on": {**environment["ran_on"], "workers": workers_ran_on}})


def worker_failures_in_words(failures: dict[int, BaseException], workers: int) -> str:
    """Which workers of a run failed and why, in one line: the first one's own error, not Ray Train's wrapper."""
    rank, first = min(failures.items())
    first = getattr(first, "cause", None) or first  # a Ray task error carries the worker's exception as its cause
    others = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"worker {rank} of {workers} failed{others}: {one_line(first)}"


def _train_as_one_of_several(settings: dict) -> None:
    """One Ray Train worker's part of a multi-worker run (TF_CONFIG is already set by Ray Train)."""
    from lab.train import devices

    use_cpus(settings["cpus"])  # thread counts, then the strategy: both only before TensorFlow's runtime starts
    devices.start_multi_worker()
    import ray
    import ray.train

    channel = settings["channel"]
    rank = ray.train.get_context().get_world_rank()
    ran_on = where_this_runs(settings["cluster_address"])
    ray.get(channel.join.remote({**ran_on, "rank": rank}))
    world_size = ray.train.get_context().get_world_size()
    voice = _WorkerVoice(channel, rank)
    voice.send([{"kind": "placed", "ran_on": {**ran_on, "worker_count": world_size}}] if rank == 0 else [])
    data = settings["data"]
    if isinstance(data, ray.ObjectRef):  # inside a dict, Ray hands over the reference, not the data
        data = ray.get(data)

    def send_checkpoint(epoch: int, files: dict[str, bytes]) -> None:
        ray.get(channel.save_checkpoint.remote(epoch, files))

    result = train_here_for_the_app(
        settings["config"],
        settings["run_id"],
        ran_on,
        data,
        settings["data_dir"],
        settings["resume"],
        voice.on_event,
        voice.should_stop,
        lambda: voice.keep,
        send_checkpoint if rank == 0 else None,  # every worker holds the same weights: rank 0's checkpoint is the run's
    )
    if rank == 0:
        channel.report_step.remote(voice.pending, voice.steps_done)
        ray.get(channel.finish.remote(result))
    # Every worker says how many steps it trained: the run records that they all stopped after the same one.
    ray.get(channel.report_last_step.remote(rank, voice.steps_done))


class _WorkerVoice:
    """One worker's side of the run's channel: rank 0 speaks for the run, and every worker hears when to stop."""

    def __init__(self, channel, rank: int):
        self.channel, self.rank = channel, rank
        self.pending: list[dict] = []
        self.steps_done = 0
        self.stop_after: int | None = None
        self.keep = False

    def send(self, events: list[dict]) -> None:
        import ray

        self.stop_after, self.keep = ray.get(self.channel.report_step.remote(events, self.steps_done))

    def on_event(self, event: dict) -> None:
        if self.rank == 0:  # one voice for the run: the others train the same steps
            self.pending.append(event)

    def should_stop(self) -> bool:
        # Every worker asks after every step, so that all of them learn the same step to stop after.
        self.steps_done += 1
        events, self.pending = self.pending, []
        self.send(events)
        return self.stop_after is not None and self.steps_done >= self.stop_after
