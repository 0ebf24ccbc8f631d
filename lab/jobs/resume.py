"""Resuming a run that stopped early: who may, whether it can, and putting it back in the queue as the same run.

A run whose worker died (killed, out of memory, a server restart, a full disk) keeps the
checkpoint of its last finished epoch (lab/train/checkpoints.py). `resume` moves it back to
`queued`, and a worker continues it from there; `python -m lab resume` trains it in the
foreground instead (`reopen_for_resume` with the status RUNNING).
"""

from __future__ import annotations

from lab.classroom.limits import LimitError, load_limits
from lab.classroom.preflight import NotReadyError, weights_refusal
from lab.jobs import launcher
from lab.store.owners import NotYourRunError, Person, check_may_manage, require_person
from lab.store.records import Run, Status
from lab.store.runs import ClassFullError, QueueCaps, QueueFullError, RunNotFoundError, Store
from lab.train import checkpoints


class CannotResumeError(ValueError):
    """A run that cannot continue where it stopped; the message says why, and what to do instead."""


def resume(run_id: str, store: Store, *, by: Person, data_dir: str | None = None, classroom: bool = False) -> str:
    """Continue an interrupted run from its last finished epoch, as the same run; returns a sentence saying so.

    The run goes back to the queue and a worker picks it up like any other (`data_dir` as in
    `submit`: the same copy of the data it started on). Refused with NotYourRunError for anyone but
    its owner, a student who follows it, or the teacher, and with CannotResumeError (why, and what to
    do) for a run that is not failed or saved no checkpoint. In classroom mode a student's resume
    passes the same limits as Start: the class's limits on the run's config (the teacher may have
    tightened them since), and the queue's caps, since it waits like a new run (a LimitError naming
    the limit).
    """
    caps = None
    if classroom and not require_person(by).is_teacher:
        limits = load_limits(store)
        limits.check(_existing_run(run_id, store).config)
        caps = limits.caps()
    if classroom and (refusal := weights_refusal(_existing_run(run_id, store).config)) is not None:
        raise NotReadyError(refusal)  # its weights file went away since it started: it would fail again at once
    try:
        epoch = reopen_for_resume(run_id, store, by=by, status=Status.QUEUED, caps=caps)
    except (QueueFullError, ClassFullError) as error:
        raise LimitError(str(error)) from error
    launcher.ensure_workers(store, data_dir)
    epochs = store.get_run(run_id).config.epochs
    return f"run {run_id} continues after epoch {epoch} of {epochs} as soon as a worker is free."


def reopen_for_resume(run_id: str, store: Store, *, by: Person, status: Status = Status.QUEUED, caps: QueueCaps | None = None) -> int:
    """Check that `run_id` can be resumed by `by`, move it back to `status`; return the epoch it continues after.

    `status`: QUEUED for a worker (`resume`), RUNNING when the caller trains it itself (`python -m lab resume`).
    A run whose worker died unnoticed is marked interrupted first, so it can be resumed at once.
    """
    store.mark_interrupted_runs()
    run = _existing_run(run_id, store)
    check_may_manage(require_person(by), run, "resume", followers=store.follower_ids(run_id))  # a follower may resume it too
    refusal = _resume_refusal(run, store)
    if refusal is not None:
        raise CannotResumeError(refusal)
    epoch = checkpoints.saved_epoch(store.run_folder(run_id).checkpoints)
    message = f"resuming after epoch {epoch} of {run.config.epochs}"
    store.reopen_to_resume(run_id, status=status, by=by, message=message, caps=caps)
    return epoch


def can_resume(run_id: str, store: Store, *, by: Person | None = None) -> bool:
    """Whether a run's page should offer "Resume": it failed, saved a checkpoint, and `by` (if given) may manage it.

    Cheap enough for every render: one row and one folder listing.
    """
    run = store.get_run(run_id)
    if run is None or run.status is not Status.FAILED:
        return False
    if by is not None:
        try:
            check_may_manage(by, run, "resume", followers=store.follower_ids(run_id))
        except NotYourRunError:
            return False
    return checkpoints.saved_epoch(store.run_folder(run_id).checkpoints) is not None


def resume_refusal(run_id: str, store: Store) -> str | None:
    """Why a run cannot be resumed, in a sentence that says what to do instead; None when it can be."""
    return _resume_refusal(_existing_run(run_id, store), store)


def _resume_refusal(run: Run, store: Store) -> str | None:
    run_id, status = run.run_id, run.status
    if status is Status.COMPLETED:
        return f"run {run_id} is completed: there is nothing to resume."
    if status.is_active:
        return f"run {run_id} is {status} already: there is nothing to resume."
    if status is Status.CANCELLED:
        return f"run {run_id} was cancelled, and a cancelled run keeps nothing to resume from: train it again."
    if checkpoints.saved_epoch(store.run_folder(run_id).checkpoints) is not None:
        return None
    begin = store.latest_event(run_id, "train_begin")
    if begin is not None and begin.get("feature_cache"):
        return (
            f"run {run_id} trained only its head, on cached features: that takes seconds, "
            "so it saves nothing to resume from; train it again."
        )
    if store.latest_event(run_id, "epoch_end") is not None:
        return f"run {run_id} has nothing saved to resume from (it saved no checkpoint): train it again."
    return f"run {run_id} has nothing saved to resume from: it stopped before its first epoch ended; train it again."


def _existing_run(run_id: str, store: Store) -> Run:
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFoundError(f"no run with id {run_id!r} in the store.")
    return run


def resumed_by_itself_sentence(event: dict | None, epochs: int) -> str | None:
    """Why a run of `epochs` epochs went back in the queue with nobody clicking Resume, in words for its page.

    `event`: the run's RESUMED_BY_ITSELF event (its page already has it: lab.jobs.progress reads it with the
    milestones); None when the run had none, and then there is nothing to say.
    """
    if event is None:
        return None
    because = str(event.get("because") or "no reason was given").rstrip(". ")  # the sentence's own full stop follows
    because = because if len(because) <= 200 else because[:199] + "…"
    return (
        f"One of the machines training this run failed after epoch {event.get('after_epoch')} of {epochs} "
        f"({because}). The run went back in the queue by itself and continues from that epoch; "
        "if it fails again, it stays failed."
    )
