"""How far along is a run? Turns a job's stored events into a progress summary with an ETA.

A training job writes plain events into the store (see lab/train/run.py):
`train_begin`, throttled `batch_end`, one `epoch_end` per epoch, `train_end` and
`evaluation`. `read_progress` fetches just what a progress display needs (cheap
enough to call every second or two), and `summarize` does the arithmetic.

The time left is the pace so far times the steps still to go. The very first step
also builds the model's graph, so it is slow; while the first epoch runs, the pace
is measured from the first batch event on, and until a few steps are done there is
no pace to speak of: `time_left_words` then says it is still working it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.store.records import Run, Status

# A run put back in the queue without anyone asking, after one of its Ray workers failed (lab/jobs/ray/dispatch.py):
# once per run, and the run's page says why it started again (lab.jobs.resume.resumed_by_itself_sentence).
RESUMED_BY_ITSELF = "resumed_by_itself"
# Events a progress display needs in full; batch_end events are many, so only the first and the latest are read.
MILESTONES = ("train_begin", "epoch_end", "train_end", "evaluation", RESUMED_BY_ITSELF)
MIN_STEPS_FOR_ETA = 3  # steps done before a pace is worth a guess (the first one includes building the graph)
WORKING_IT_OUT = "working out how long ..."


@dataclass
class Progress:
    """Where a run stands. `phase` is what the job is doing now, in words a student understands."""

    status: str  # the store's status: queued, running, completed, failed, cancelled
    phase: str  # "waiting" | "starting" | "features" | "training" | "evaluating" | "saving" | "finished"
    epochs: int
    steps_per_epoch: int | None = None
    epoch: int = 0  # the epoch in progress (or the last one finished), counted from 1
    step: int = 0  # the step within that epoch
    fraction: float = 0.0  # share of all training steps done, 0..1
    elapsed_seconds: float = 0.0  # training time so far (validation included for finished epochs)
    eta_seconds: float | None = None  # training time left, extrapolated from the pace so far
    epoch_events: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    resumed_by_itself: dict[str, Any] | None = None  # the RESUMED_BY_ITSELF event, when the run had one


def read_progress(store, run: Run) -> Progress:
    """A run's progress from the store: its milestones plus its first and latest batch."""
    events = store.events(run.run_id, kinds=MILESTONES)
    latest_batch = store.latest_event(run.run_id, "batch_end")
    first_batch = next(iter(store.events(run.run_id, kinds="batch_end", limit=1)), None) if latest_batch else None
    return summarize(run.status, run.config.epochs, events, latest_batch, first_batch)


def summarize(
    status: Status,
    epochs: int,
    events: list[dict[str, Any]],
    latest_batch: dict[str, Any] | None = None,
    first_batch: dict[str, Any] | None = None,
) -> Progress:
    """Progress from milestone events (in order), the latest batch_end event and the run's first one, if any."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], []).append(event)
    begin = (by_kind.get("train_begin") or [None])[-1]
    epoch_events = by_kind.get("epoch_end", [])
    evaluation = (by_kind.get("evaluation") or [None])[-1]
    progress = Progress(status, _phase(status, begin, by_kind, evaluation, latest_batch), int(begin["epochs"]) if begin else epochs)
    progress.epoch_events, progress.evaluation = epoch_events, evaluation
    progress.resumed_by_itself = (by_kind.get(RESUMED_BY_ITSELF) or [None])[-1]
    if begin is None:
        return progress
    steps = progress.steps_per_epoch = int(begin["steps_per_epoch"])
    finished_epochs = len(epoch_events)
    progress.elapsed_seconds = sum(float(event.get("seconds") or 0.0) for event in epoch_events)
    progress.epoch, progress.step = finished_epochs, steps if finished_epochs else 0
    done_steps = finished_epochs * steps
    if latest_batch is not None and int(latest_batch["epoch"]) > finished_epochs:  # an epoch in progress
        progress.epoch, progress.step = int(latest_batch["epoch"]), int(latest_batch["step"])
        done_steps = (progress.epoch - 1) * steps + progress.step
        progress.elapsed_seconds += float(latest_batch.get("epoch_seconds") or 0.0)
    total_steps = max(1, progress.epochs * steps)
    progress.fraction = min(1.0, done_steps / total_steps)
    if progress.phase == "training" and MIN_STEPS_FOR_ETA <= done_steps < total_steps and progress.elapsed_seconds > 0:
        progress.eta_seconds = _seconds_per_step(progress, done_steps, latest_batch, first_batch) * (total_steps - done_steps)
    return progress


def _seconds_per_step(progress: Progress, done_steps: int, latest_batch, first_batch) -> float:
    """The pace so far; in the first epoch, from the first batch event on, so the slow first step does not count."""
    if progress.epoch == 1 and latest_batch is not None and first_batch is not None and int(first_batch["epoch"]) == 1:
        steps = int(latest_batch["step"]) - int(first_batch["step"])
        seconds = float(latest_batch.get("epoch_seconds") or 0.0) - float(first_batch.get("epoch_seconds") or 0.0)
        if steps >= MIN_STEPS_FOR_ETA - 1 and seconds > 0:
            return seconds / steps
    return progress.elapsed_seconds / done_steps


def time_left_words(progress: Progress) -> str:
    """The time left as people say it: "about 4 min left", or that it is still being worked out; "" when not training."""
    if progress.phase != "training":
        return ""
    seconds = progress.eta_seconds
    if seconds is None:
        return WORKING_IT_OUT
    if seconds < 60:
        return "less than a minute left"
    if seconds < 3600:
        return f"about {max(1, round(seconds / 60))} min left"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes:02d} min left"


def _phase(status: Status, begin, by_kind, evaluation, latest_batch) -> str:
    status = Status(status)
    if status is Status.QUEUED:
        return "waiting"
    if status is not Status.RUNNING:
        return "finished"
    if begin is None:
        return "starting"  # loading the data and building the model
    if not by_kind.get("train_end"):
        # A frozen backbone's outputs are computed once before the first step (lab/train/feature_cache.py).
        return "features" if begin.get("feature_cache") and latest_batch is None and not by_kind.get("epoch_end") else "training"
    return "evaluating" if evaluation is None else "saving"


def format_seconds(seconds: float | None) -> str:
    """A duration the way people say it: "45 s", "3 min 20 s", "1 h 05 min"."""
    if seconds is None:
        return "?"
    if seconds < 0.5:
        return "under 1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
