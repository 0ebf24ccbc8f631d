"""Where a training's result becomes a stored run: the one function that records how a run ended.

Training (lab/train/run.py) returns a value and knows nothing of stores. Whoever trained it hands
that value here: the local worker (lab/jobs/worker.py), the command line (`python -m lab train`
and `resume`, through `train_and_record`) and the Ray dispatcher (lab/jobs/ray/remote_run.py), so
a run ends the same way wherever it trained:

- a completed run (stopped early on request included) is saved with its model, history, test
  probabilities and model card (lab/store/run_folder.py names the files);
- a cancelled run keeps nothing but its message;
- a failed run keeps its message and its checkpoint, so it can be resumed (lab/jobs/resume.py).

The store drops a run's checkpoint when it completes or is cancelled.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lab.evaluate.model_card import model_card
from lab.store.records import Status
from lab.store.run_folder import MODEL_CARD_FILE, PROBABILITIES_FILE
from lab.train.result import RunResult

if TYPE_CHECKING:
    from lab.config import RunConfig
    from lab.data.cifar10 import Cifar10
    from lab.store.runs import Store


@dataclass(frozen=True)
class Failed:
    """A run that ended with an error, or whose process or node went away: `message` says why, in one line."""

    message: str
    # Worth one more try without anyone asking: a worker of a multi-worker run failed (its process or node died, say).
    retry_once: bool = False


def record_outcome(store: Store, run_id: str, outcome: RunResult | Failed) -> Status:
    """End the stored run `run_id` as `outcome` says; return its status now.

    A failure never overwrites a run that has already ended (a second Ctrl-C after the run was
    saved, say): the run ends once.
    """
    if isinstance(outcome, Failed):
        run = store.get_run(run_id)
        if run is not None and not run.status.is_finished:
            store.set_status(run_id, Status.FAILED, outcome.message)
        return Status.FAILED
    if outcome.cancelled:
        store.set_status(run_id, Status.CANCELLED, outcome.message)
        return Status.CANCELLED
    store.complete_run(
        run_id,
        metrics=outcome.metrics,
        history=outcome.history,
        model=outcome.saved_model,
        environment=outcome.environment,
        fingerprint=outcome.fingerprint,
        train_seconds=outcome.train_seconds,
        extra_files=_extra_files(run_id, outcome),
        message=outcome.message,
    )
    return Status.COMPLETED


def _extra_files(run_id: str, result: RunResult) -> dict[str, bytes]:
    """The files a completed run keeps beside its model: its test probabilities and its model card."""
    card = model_card(result.config.to_dict(), result.metrics, result.environment, result.fingerprint, run_id=run_id)
    files = {MODEL_CARD_FILE: card.encode()}
    if result.test_probabilities is not None:
        files[PROBABILITIES_FILE] = npy_bytes(result.test_probabilities)
    return files


def train_and_record(
    config: RunConfig,
    store: Store,
    on_event: Callable[[dict], None] | None = None,
    *,
    run_id: str | None = None,
    settings_key: str | None = None,
    resume: bool = False,
    data: Cifar10 | None = None,
    data_dir: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_when_stopped: Callable[[], bool] | None = None,
) -> RunResult:
    """Train one run in this process and record it in `store`; return the result with its `run_id`.

    Without a `run_id`, a new running row is created (with `settings_key`, which lets the same run
    be found later), once the run has passed its pre-flight: a run that cannot start stores
    nothing. With one (a worker's claimed run, or `resume=True` to continue it from its
    checkpoint), that row is the run's. A failure is recorded, then raised again.
    """
    from lab.train import run as training  # TensorFlow loads here, not when the dispatcher imports this module

    if run_id is None:
        training.preflight(config)
        run_id = store.create_run(config, status=Status.RUNNING, settings_key=settings_key)
    try:
        result = training.run(
            config,
            on_event,
            data=data,
            data_dir=data_dir,
            checkpoint_folder=store.run_folder(run_id).checkpoints,
            should_stop=should_stop,
            keep_when_stopped=keep_when_stopped,
            resume=resume,
        )
    except BaseException as error:
        record_outcome(store, run_id, Failed(one_line(error)))
        raise
    record_outcome(store, run_id, result)
    return replace(result, run_id=run_id)


def one_line(error: BaseException) -> str:
    """An exception as one readable line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def npy_bytes(array) -> bytes:
    """An array as the bytes of a `.npy` file."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
