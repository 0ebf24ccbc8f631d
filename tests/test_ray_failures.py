"""A multi-worker run whose worker fails: what it says, and how the dispatcher resumes it once by itself. No Ray needed.

Ray Train wraps each worker's exception in its own ("Training failed due to worker errors"), which
tells a student nothing; the run's message is the first failed worker's own error. The run on the
real cluster, with a worker process killed, is in tests/test_ray_cluster.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lab.jobs import resume
from lab.jobs.outcome import Failed, record_outcome
from lab.jobs.progress import RESUMED_BY_ITSELF
from lab.jobs.ray import dispatch
from lab.jobs.ray.across_nodes import worker_failures_in_words
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import Store
from lab.train import checkpoints
from tests.test_jobs import tiny_config

WORKER_DIED = Failed("worker 1 of 2 failed: ActorDiedError: the actor died unexpectedly.", retry_once=True)


class _TaskError(Exception):
    """Stands for Ray's task error, which carries the worker's exception as its `cause`."""

    def __init__(self, cause: BaseException):
        super().__init__(f"ray::RayTrainWorker failed\n{cause}")
        self.cause = cause


def test_the_first_failed_worker_speaks_in_its_own_words():
    failures = {1: _TaskError(MemoryError("out of memory\nmore detail")), 0: ValueError("bad shape (2, 3)\ntraceback...")}
    assert worker_failures_in_words(failures, 2) == "worker 0 of 2 failed (and 1 more): ValueError: bad shape (2, 3)"


def test_a_wrapped_error_is_unwrapped():
    assert worker_failures_in_words({1: _TaskError(MemoryError("out of memory"))}, 4) == "worker 1 of 4 failed: MemoryError: out of memory"


@pytest.fixture
def failed_run(tmp_path) -> tuple[Store, str]:
    """A run of the dispatcher's that failed after saving the checkpoint of its second epoch."""
    store = Store(tmp_path / "lab_home")
    run_id = store.create_run(tiny_config(epochs=5))
    store.claim_next_queued(os.getpid())
    arrays = {"weights": [np.zeros((2, 3), np.float32)]}
    checkpoint = checkpoints.Checkpoint(2, {"epochs": 5}, {"loss": [1.0, 0.9]}, 3.0, "abc", {"callbacks": []}, arrays)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, checkpoint)
    return store, run_id


def test_a_run_whose_worker_failed_is_resumed_once_and_a_second_failure_stays(failed_run):
    store, run_id = failed_run
    record_outcome(store, run_id, WORKER_DIED)
    assert store.get_run(run_id).status is Status.FAILED
    dispatch._resume_once_by_itself(store, run_id, WORKER_DIED)
    assert store.get_run(run_id).status is Status.QUEUED  # back in the queue: the dispatcher takes it again
    event = store.latest_event(run_id, RESUMED_BY_ITSELF)
    assert event["after_epoch"] == 2 and event["because"] == WORKER_DIED.message
    # Its page says why it started again by itself, with the worker's own words.
    sentence = resume.resumed_by_itself_sentence(event, store.get_run(run_id).config.epochs)
    assert "after epoch 2 of 5" in sentence and "ActorDiedError" in sentence and "by itself" in sentence
    assert ".)" not in sentence and "..." not in sentence

    store.claim_next_queued(os.getpid())  # it fails again, the same way
    record_outcome(store, run_id, WORKER_DIED)
    dispatch._resume_once_by_itself(store, run_id, WORKER_DIED)
    assert store.get_run(run_id).status is Status.FAILED and store.get_run(run_id).message == WORKER_DIED.message


def test_a_run_that_failed_on_its_own_is_left_to_its_owner(failed_run):
    store, run_id = failed_run
    own_error = Failed("ValueError: the model does not fit these pictures")  # the run's own fault: trying again would not help
    record_outcome(store, run_id, own_error)
    dispatch._resume_once_by_itself(store, run_id, own_error)
    assert store.get_run(run_id).status is Status.FAILED and store.latest_event(run_id, RESUMED_BY_ITSELF) is None
    nothing = store.latest_event(run_id, RESUMED_BY_ITSELF)
    assert resume.resumed_by_itself_sentence(nothing, 5) is None  # nothing to explain on its page


def test_a_run_with_no_checkpoint_yet_stays_failed(tmp_path):
    store = Store(tmp_path / "lab_home")
    run_id = store.create_run(tiny_config(epochs=5))
    store.claim_next_queued(os.getpid())
    record_outcome(store, run_id, WORKER_DIED)
    dispatch._resume_once_by_itself(store, run_id, WORKER_DIED)  # nothing to continue from: the owner starts it again
    assert store.get_run(run_id).status is Status.FAILED


def test_a_run_its_owner_asked_to_stop_is_not_resumed(failed_run):
    """Stop was clicked just as a worker died: resuming would undo the student's own request."""
    store, run_id = failed_run
    store.request_cancel(run_id, by=local_person(), keep_model=True)
    record_outcome(store, run_id, WORKER_DIED)
    assert store.cancel_requested(run_id)
    dispatch._resume_once_by_itself(store, run_id, WORKER_DIED)
    assert store.get_run(run_id).status is Status.FAILED
