"""One rule for "the same run", so the app and the command line find the same one.

Two runs are the same run when they share a settings key (every RunConfig
field, the seed included, on one copy of the data: lab.jobs.queue.settings_key). Among the runs with that key, the one that
counts is the newest completed run, else the newest queued or running one. A failed or
cancelled run never counts: it has no result to share, and nothing is training it.

The store applies this rule inside the transaction that queues a run (`Store.queue_run`, its
SQL `SAME_SETTINGS`), so two Starts pressed at once never train the same settings twice;
`same_run` is the rule for a caller that only looks (`python -m lab train` shows the run it
finds instead of training it again). tests/test_same_run.py checks that both always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lab.store.records import Run, Status

if TYPE_CHECKING:
    from lab.store.runs import Store


def same_run(store: Store, key: str, *, owner_id: str | None = None) -> Run | None:
    """The run that counts as the same run for `key` (only `owner_id`'s runs, when given), or None."""
    runs = store.runs_with_settings(key)  # newest first
    return pick_same_run([run for run in runs if owner_id is None or run.owner_id == owner_id])


def pick_same_run(runs: Sequence[Run]) -> Run | None:
    """Of runs with one settings key, newest first: the newest completed one, else the newest queued or running one."""
    completed = [run for run in runs if run.status is Status.COMPLETED]
    active = [run for run in runs if run.status.is_active]
    return (completed or active or [None])[0]
