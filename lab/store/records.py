"""What the store hands back: a run as a typed value, and the statuses a run can have.

A run used to travel through the code as a dict (`run["status"]`, `run.get("metrics")`), so a typo in
a key failed only at run time, on the one screen that read it. `Run` names every field once, with
its type: an editor completes `run.metrics`, and a checker catches `run.metrcs` before anyone runs
the app. `Status` is the closed list of statuses: compare `run.status is Status.COMPLETED`, never a
string that might be spelled wrong. A `Status` is also a `str` ("completed"), so the database keeps
the same text values as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lab.config import RunConfig


class Status(StrEnum):
    """Where a run is in its life: waiting, training, or ended one of three ways."""

    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # a process is training it
    COMPLETED = "completed"  # ended with a saved model and its results
    FAILED = "failed"  # ended with an error (or its process died); it may be resumed from a checkpoint
    CANCELLED = "cancelled"  # ended because someone asked it to stop and drop what it learned

    @property
    def is_active(self) -> bool:
        """True while the run waits or trains: it may still change."""
        return self in ACTIVE

    @property
    def is_finished(self) -> bool:
        """True once the run has ended (completed, failed or cancelled)."""
        return self in FINISHED


# Defined after the class: a set written inside an Enum's body would become a member itself.
ACTIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING})
FINISHED: frozenset[Status] = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


def stored_config(values: dict[str, Any]) -> RunConfig:
    """The RunConfig a run was stored with, even one this version would refuse for a new run.

    A run stored by another version of the lab (a preset since renamed, a limit since tightened)
    must still show in the results: its config is then built as stored, without the checks that
    guard new runs. Keys this version does not know are left out; missing ones take their defaults.
    """
    try:
        return RunConfig.from_dict(values)
    except (TypeError, ValueError):
        config = object.__new__(RunConfig)  # skips __post_init__'s validation, on purpose
        for known in dataclasses.fields(RunConfig):
            default = known.default if known.default is not dataclasses.MISSING else None
            object.__setattr__(config, known.name, values.get(known.name, default))
        return config


@dataclass(frozen=True)
class Run:
    """One run as the store recorded it. Frozen: to change a run, ask the store (set_status, complete_run, ...).

    The times are ISO 8601 UTC text (lab.store.database.utc_now), so text order is time order;
    `started_at`/`finished_at` are None until the run starts or ends. `metrics`, `environment` and
    `fingerprint` are empty until the run completes.
    """

    run_id: str
    status: Status
    config: RunConfig
    model: str  # the preset the run started from (the same as config.model)
    task: str  # what it learns (the same as config.task)
    owner_id: str  # who owns it: a student's identity in classroom mode, else "local"
    owner_name: str  # the name to show for the owner ("" when none was given)
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""  # why it failed, or a note on how it ended ("stopped early at epoch 3")
    metrics: dict[str, Any] = field(default_factory=dict)  # test accuracy, per-class scores, ... (lab.evaluate)
    environment: dict[str, Any] = field(default_factory=dict)  # versions and hardware it trained on
    fingerprint: dict[str, Any] = field(default_factory=dict)  # which data it saw (lab.data)
    train_seconds: float | None = None
    worker_pid: int | None = None  # the process training it, while it runs
    cancel_requested: bool = False  # someone asked it to stop after its current batch
    keep_when_stopped: bool = False  # ... and to keep what it learned (it then completes, stopped early)
    settings_key: str | None = None  # finds a run with the same settings on the same data (lab.jobs.queue)
    followed: bool = False  # only from Store.runs_of: True when the person follows it rather than owns it

    @property
    def owner(self) -> str:
        """Who to name as the owner: the display name, else the identity."""
        return self.owner_name or self.owner_id

    def to_dict(self) -> dict[str, Any]:
        """The run as plain JSON-ready values (what `python -m lab runs --json` prints): config as a dict, status as text."""
        values = {known.name: getattr(self, known.name) for known in dataclasses.fields(self)}
        return values | {"status": self.status.value, "config": self.config.to_dict(), "owner": self.owner}


@dataclass(frozen=True)
class WaitingRun:
    """A queued run as the fair queue sees it (Store.waiting_runs): whose it is, and when its owner last had a turn.

    `owner_last_started`: when a run of this owner last started (the store's `turns` table), or None: never.
    """

    run_id: str
    owner_id: str
    owner_name: str
    created_at: str
    owner_last_started: str | None = None
