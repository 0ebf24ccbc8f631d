"""The commands that train or control one run: `train` (here or on a Ray cluster), `stop` and `resume`."""

from __future__ import annotations

import signal
import sys
import threading

from lab.cli.output import TerminalProgress, print_json, print_summary, summarise
from lab.cli.parser import config_from_args
from lab.config import RunConfig
from lab.jobs.ray import cluster
from lab.jobs.ray.cluster import ray_address
from lab.store.owners import local_person
from lab.store.records import Run, Status
from lab.store.runs import Store


class CtrlCStopsEarly:
    """While active, the first Ctrl-C asks training to stop after its current batch and keep the model; a second aborts.

    Python turns Ctrl-C (the SIGINT signal) into a KeyboardInterrupt, which would end the run as failed and
    lose what it learned. This handler just raises a flag that training reads after every batch
    (`training.run`'s should_stop), so the run is evaluated and saved as it is, like the Train page's
    "Stop now and keep the model". Signal handlers can only be set from the main thread; elsewhere
    Ctrl-C keeps its usual meaning. A process started in the background (`... &`) ignores Ctrl-C, and keeps doing so.
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.requested = False
        self._previous = None

    def __enter__(self) -> CtrlCStopsEarly:
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_interrupt(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after the current batch; the model will be evaluated and saved. Ctrl-C again aborts.", file=self.stream)


def cmd_train(args) -> int:
    from lab.data.cache import source_identity
    from lab.jobs.queue import settings_key
    from lab.jobs.same_run import same_run

    config = config_from_args(args)
    store = Store()
    key = settings_key(config, source_identity(args.data_dir))
    same = None if args.force else same_run(store, key)  # the rule the app's queue follows too
    if same is not None:
        return _show_same_run(same, args.json)
    address = ray_address(getattr(args, "ray_address", None))
    if address is None and getattr(args, "ray_workers", None):
        raise ValueError("--ray-workers trains one run on several machines of a Ray cluster: give --ray-address (or LAB_RAY_ADDRESS) too")
    if address is not None:
        return _train_on_cluster(config, store, address, args, key)
    return _train_here(config, store, args, settings_key=key)


def _train_on_cluster(config: RunConfig, store: Store, address: str, args, key: str) -> int:
    """`train --ray-address`: the run trains on a node of the cluster; progress, result and storage as for a local run."""
    from lab.jobs.ray import remote_run

    print(f"training on the Ray cluster at {address}", file=sys.stderr)
    with CtrlCStopsEarly() as ctrl_c:
        run_id, status = remote_run.train_one(
            config,
            store,
            address,
            data_dir=args.data_dir,
            settings_key=key,
            workers=cluster.workers_per_run(args.ray_workers),
            on_event=TerminalProgress(),
            should_stop=lambda: ctrl_c.requested,
        )
    run = store.get_run(run_id)
    summary = summarise(run_id, config, run.metrics)
    summary.update(status=status, ran_on=run.environment.get("ran_on"))
    print_summary(summary, args.json)
    if status is Status.FAILED and not args.json:
        print(f"error: {run.message}", file=sys.stderr)
    return 0 if status is Status.COMPLETED else 1


def _show_same_run(run: Run, as_json: bool) -> int:
    """Say that this run exists already, and show its result (the same settings on the same data are not trained twice)."""
    if run.status is Status.COMPLETED:
        summary = summarise(run.run_id, run.config, run.metrics)
        summary.update(status=run.status, already_trained=True, owner=run.owner, train_seconds=run.train_seconds)
        print(f"already trained by {run.owner} as {run.run_id}; --force trains it again", file=sys.stderr)
        print_summary(summary, as_json)
        return 0
    print(
        f"the same run is already {run.status} as {run.run_id} (started by {run.owner}); "
        "`python -m lab runs` shows when it is done, and --force trains a copy now",
        file=sys.stderr,
    )
    if as_json:
        print_json({"run_id": run.run_id, "status": run.status, "already_trained": False, "owner": run.owner})
    return 0


def cmd_stop(args) -> int:
    from lab.jobs import queue  # TensorFlow is not needed to stop a job

    store = Store()
    if store.get_run(args.run_id) is None:
        raise ValueError(f"no stored run is called {args.run_id!r}; `python -m lab runs` lists them.")
    if not queue.cancel(args.run_id, store, keep_model=args.keep, by=local_person()):  # whoever has the shell is trusted
        print(f"{args.run_id} has already finished ({store.get_run(args.run_id).status}): nothing to stop.")
        return 1
    if store.get_run(args.run_id).status is Status.CANCELLED:
        print(f"{args.run_id} was still queued: cancelled.")
    elif args.keep:
        print(f"{args.run_id} stops after its current batch, then is evaluated and saved (`python -m lab runs` shows it).")
    else:
        print(f"{args.run_id} stops after its current batch and keeps nothing.")
    return 0


def cmd_resume(args) -> int:
    """Continue an interrupted run from its last finished epoch, here in the foreground like `train`, as the same run."""
    from lab.jobs import resume

    store = Store()
    # Refuses, with the reason, what cannot be resumed.
    epoch = resume.reopen_for_resume(args.run_id, store, by=local_person(), status=Status.RUNNING)
    config = store.get_run(args.run_id).config
    print(f"resuming {args.run_id} after epoch {epoch} of {config.epochs}", file=sys.stderr)
    return _train_here(config, store, args, run_id=args.run_id, resume=True)


def _train_here(config: RunConfig, store: Store, args, **run_options) -> int:
    """Train (or resume) one run in this process with terminal progress; Ctrl-C once stops it and keeps the model."""
    from lab.jobs.outcome import train_and_record

    with CtrlCStopsEarly() as ctrl_c:
        result = train_and_record(
            config,
            store,
            TerminalProgress(),
            data_dir=args.data_dir,
            should_stop=lambda: ctrl_c.requested,
            keep_when_stopped=lambda: True,
            **run_options,
        )
    summary = summarise(result.run_id, config, result.metrics)
    summary["status"] = store.get_run(result.run_id).status
    print_summary(summary, args.json)
    return 0 if result.completed else 1
