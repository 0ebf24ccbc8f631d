"""A multi-worker run that fails says which worker failed and why, in the worker's own words: no Ray needed.

Ray Train wraps each worker's exception in its own ("Training failed due to worker errors"), which
tells a student nothing; the run's message is the first failed worker's own error.
"""

from __future__ import annotations

from lab.jobs.ray.across_nodes import worker_failures_in_words


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
