"""The queue of runs, seen from the app: submit, cancel, where a run stands, recovery after a crash.

Training never runs inside the Streamlit script. `submit` only adds a `queued` row to the
store and makes sure a worker process is alive (lab/jobs/launcher.py); the worker
(lab/jobs/worker.py) claims queued runs one at a time and trains them, writing progress
events into the store for the app to poll. So:

- a crash or an out-of-memory kill takes down one worker, never the web server;
- a page rerun, a browser refresh or a closed tab cannot stop a run;
- `LAB_MAX_JOBS` (default 1) caps how many runs train at once, so thirty clicks on
  a two-core machine queue up instead of fighting over the CPU.

A run whose worker died (killed, out of memory, a server restart, a full disk) keeps the
checkpoint of its last finished epoch (lab/train/checkpoints.py); lab/jobs/resume.py puts it back in
the queue, and a worker continues it from there as the same run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from lab.classroom.leaderboard import mark_teacher_run
from lab.classroom.limits import LimitError, load_limits
from lab.classroom.preflight import NotReadyError, prepare_for_class, weights_refusal
from lab.config import RunConfig
from lab.data.cache import source_identity
from lab.jobs import fairness, launcher
from lab.store.owners import Person, local_person, require_person
from lab.store.records import Run, Status
from lab.store.runs import ClassFullError, QueueFullError, Store
from lab.train import estimate

ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)


@dataclass(frozen=True)
class Request:
    """What became of a request to train: a new run in the queue, or a run with the same settings.

    `outcome`: "queued" (a new run), "trained before" (a completed run with the same settings on the
    same data: its result is the student's at once) or "following" (the same run is already queued
    or running: the student follows it). `message` says so in a sentence.
    """

    run_id: str
    outcome: str
    message: str


def student_seed(person_id: str) -> int:
    """A seed of a person's own, the same every time (derived from their id): in classroom mode each student's
    settings start from it, so two students' runs differ and each Start trains that student's own network."""
    return int(hashlib.sha256(person_id.encode()).hexdigest()[:8], 16) % 1_000_000


def settings_key(config: RunConfig, data_identity: str) -> str:
    """Names a run's settings (every RunConfig field, the seed included) on one copy of the data."""
    text = json.dumps({"config": config.to_dict(), "data": data_identity}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def ask_for_run(
    config: RunConfig,
    *,
    owner: Person,
    store: Store | None = None,
    data_dir: str | None = None,
    classroom: bool = False,
    force: bool = False,
    reuse: bool = False,
) -> Request:
    """Queue `config` for `owner`; in classroom mode, within the class's limits and only when it can start.

    In classroom mode everyone's Start trains their own run (each student watches their network
    learn): a classmate's run with the same settings on the same data is used instead only when
    `reuse` is asked for (the Train page's "use a classmate's run" choice), and then it counts as a
    copy (the leaderboard's `copy_of`); a completed one is the owner's result at once, a queued or
    running one is followed. The owner's own run with the same settings is found rather than trained
    twice (Start pressed again, a second window), unless `force`.

    The class's switch of a backbone to weights "none" applies (lab/classroom/preflight.py), and a
    run that would fail for a reason known now (its ImageNet weights are not on the server) is
    refused with NotReadyError, saying what the teacher can do. The teacher's limits refuse a
    student's run with a LimitError naming every limit it breaks, and so does a student's queue once
    it is full (the teacher's own runs, a demonstration say, are not limited). Outside classroom mode
    (a laptop) every request is queued, as before; the settings key is stored either way, so the
    command line can find the run later. A run the teacher asks for in classroom mode is marked as
    theirs: the leaderboard shows it for reference, never ranked.
    """
    store = store or Store()
    owner = require_person(owner)
    limits = None
    if classroom:
        class_limits = load_limits(store)
        config = prepare_for_class(config, class_limits)
        limits = class_limits if not owner.is_teacher else None  # the teacher sets them, for the students
    if limits is not None:
        limits.check(config)
    if classroom and (refusal := weights_refusal(config)) is not None:
        raise NotReadyError(refusal)
    key = settings_key(config, source_identity(data_dir))
    try:
        run_id, same = store.queue_run(
            config,
            owner=owner,
            settings_key=key,
            reuse=classroom and not force,
            own_only=not reuse,
            caps=limits.caps() if limits is not None else None,
        )
    except (QueueFullError, ClassFullError) as error:
        raise LimitError(str(error)) from error
    if same is not None:
        return _reused(same, owner)
    if classroom and owner.is_teacher:
        mark_teacher_run(store, run_id, by=owner)  # the leaderboard shows it for reference, not ranked
    launcher.ensure_workers(store, data_dir)
    if reuse and classroom:
        return Request(run_id, "queued", f"nobody had trained these settings yet, so your own run is queued as {run_id}.")
    return Request(run_id, "queued", f"queued as {run_id}.")


def _reused(run: Run, owner: Person) -> Request:
    """The same run (lab/jobs/same_run.py) found instead of a new one: whose it is, and what it has to show."""
    mine = run.owner_id == owner.id
    who = "you" if mine else run.owner_name or "someone"
    if run.status is Status.COMPLETED:
        accuracy = run.metrics.get("accuracy")
        result = f": {accuracy:.1%}" if accuracy is not None else ""
        again = ". Change the seed (or any setting) to train a new one" if mine else " (it counts as a copy)"
        return Request(run.run_id, "trained before", f"already trained {_ago(run.finished_at)} by {who}{result}{again}")
    if mine:
        return Request(run.run_id, "following", f"you asked for the same run already: it is {run.status}")
    return Request(run.run_id, "following", f"the same run is already {run.status} (started by {who}): you follow it (it counts as a copy)")


def _ago(timestamp: str | None) -> str:
    """'3 minutes ago' for an ISO 8601 UTC time."""
    if not timestamp:
        return "earlier"
    seconds = max(0.0, (datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def submit(config: RunConfig, *, store: Store | None = None, data_dir: str | None = None) -> str:
    """Queue a run for the local user (outside classroom mode) and make sure a worker will train it; returns the run id at once.

    The shortcut of the command line, the benchmarks and the tests: whoever has the shell is trusted, so
    the run is the local user's, said here explicitly (`ask_for_run` itself has no default owner).

    `data_dir` (else CIFAR10_DIR) is handed to the worker this call starts. A worker that is
    already running keeps the data location it was started with, so every run queued in one
    store should use the same one, as the app does (its CIFAR10_DIR setting).
    """
    return ask_for_run(config, owner=local_person(), store=store, data_dir=data_dir).run_id


@dataclass(frozen=True)
class Done:
    """What came of a cancel, stop or delete: whether anything was done (its truth value) and a sentence saying what."""

    done: bool
    message: str

    def __bool__(self) -> bool:
        return self.done


def cancel(run_id: str, store: Store, *, by: Person, keep_model: bool = False) -> Done:
    """Stop a run: a queued one is cancelled at once, a running one after its current batch (within a second).

    `keep_model`: a running run is then evaluated and saved as it is, instead of dropped.
    `by`: who asks (required); only the run's owner or the teacher may (lab.store.owners). False when
    the run had already finished. A run classmates follow goes on for them (Store.request_cancel):
    the message says so.
    """
    sharing = len(store.followers(run_id)) if not require_person(by).is_teacher else 0
    asked = store.request_cancel(run_id, keep_model=keep_model, by=by)
    run = store.get_run(run_id)
    if not asked:
        return Done(False, f"run {run_id} has already finished ({run.status}): nothing to stop.")
    if run.status is Status.CANCELLED:
        return Done(True, f"run {run_id} was still queued: cancelled.")
    if run.owner_id != by.id and sharing:
        count = len(store.followers(run_id)) + 1
        return Done(True, f"it goes on for {_classmates(count)} who asked for the same run; it is no longer in your list.")
    if keep_model and sharing and not store.followers(run_id):
        return Done(
            True,
            f"run {run_id} stops and is kept as yours; the same settings are queued again for {_classmates(sharing)} who asked for them too.",
        )
    kept = "then is evaluated and saved" if keep_model else "and keeps nothing"
    return Done(True, f"run {run_id} stops after its current batch, {kept}.")


def delete(run_id: str, store: Store, *, by: Person) -> Done:
    """Delete a finished run (its row, events, files and any checkpoint); only its owner or the teacher may.

    False, touching nothing, for an id with no row: a folder of that name is nobody's to remove.
    A run classmates follow stays theirs: only the owner's listing goes (Store.delete_run).
    """
    if not store.delete_run(run_id, by=by):
        return Done(False, f"no run with id {run_id!r} to delete.")
    if store.get_run(run_id) is not None:  # passed to a classmate who follows it: files and checkpoint stay theirs
        count = len(store.followers(run_id)) + 1
        return Done(True, f"removed {run_id} from your list; {_classmates(count)} who asked for the same run keep it.")
    return Done(True, f"deleted {run_id}.")  # the store dropped its files and any checkpoint


def _classmates(count: int) -> str:
    return f"{count} classmate{'s' if count != 1 else ''}"


def active_runs(store: Store) -> list[Run]:
    """Queued and running runs, oldest first (the order workers take them in)."""
    return list(reversed(store.list_runs(status=ACTIVE_STATUSES)))  # list_runs is newest first


def queue_position(run_id: str, store: Store) -> int | None:
    """1 when `run_id` is the next queued run to start, 2 after that, ...; None when it is not queued.

    The order is the class's fair order (lab/jobs/fairness.py): round robin across students.
    """
    return fairness.place_in_queue(run_id, store.waiting_runs())


def seconds_until_start(run_id: str, store: Store, device: str | None = None) -> float | None:
    """Roughly how long until a queued run starts: what the runs ahead of it still need, shared among the workers.

    Each run's duration comes from past runs of the same network (lab.train.estimate); a run with
    no past to go by counts as the median of those that have one. None when nothing is known.
    """
    order = fairness.fair_order(store.waiting_runs())
    if run_id not in order:
        return None
    past = store.list_runs(status=Status.COMPLETED)
    ahead = [store.get_run(other) for other in order[: order.index(run_id)]]
    running = store.list_runs(status=Status.RUNNING)

    def duration(run: Run) -> float | None:
        guess = estimate.from_past_runs(past, run.config, device=device)
        return None if guess is None else guess.seconds + estimate.STARTUP_SECONDS

    known = [seconds for seconds in (duration(run) for run in [*ahead, *running] if run) if seconds is not None]
    if not known and (ahead or running):
        return None
    typical = sorted(known)[len(known) // 2] if known else 0.0
    remaining = 0.0
    for run in running:
        elapsed = (datetime.now(UTC) - datetime.fromisoformat(run.started_at)).total_seconds() if run.started_at else 0.0
        remaining += max(0.0, (duration(run) or typical) - elapsed)
    remaining += sum(duration(run) or typical for run in ahead if run)
    return remaining / launcher.max_jobs()


def recover(store: Store, data_dir: str | None = None) -> None:
    """Mark runs whose worker died as failed ("interrupted"), then restart work on what is still queued.

    Cheap enough to call on every render: one query, plus a process start only when needed.
    """
    store.mark_interrupted_runs()
    launcher.ensure_workers(store, data_dir)
