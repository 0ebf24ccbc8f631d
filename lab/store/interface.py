"""The results store's interface, written as code: what every store offers, whatever database keeps it.

`RunStore` lists each public method the rest of the lab calls on a store (runs and their statuses,
progress events, saved files, classroom records, sign-in attempts, turns in the queue). The SQLite
`Store` (lab/store/runs.py) is its first implementation; a second one (a server database) implements
the same members with the same signatures, and no caller changes. tests/test_store_interface.py
checks that `Store` has every member, signature for signature.

Callers outside lab/store type-hint `RunStore`, not `Store`: it says what they rely on. A `Protocol`
needs no inheritance: any class with these members is a `RunStore`.

`StoreConnections` is the store's inside contract: the parts `Store` is built from (ProgressEvents,
SavedRuns, ClassroomRecords, SignInAttempts) each need a read connection, a write transaction and a
way to find a run. Each part inherits it, so a class that combines them without providing these
cannot even be created (an abstract base class refuses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lab.config import RunConfig
from lab.store.owners import Person
from lab.store.records import Run, Status, WaitingRun
from lab.store.run_folder import RunFolder
from lab.store.turns import QueueCaps


class SignInLedger(Protocol):
    """The sign-in attempts inside one write transaction: what is read and recorded there happens as one step."""

    def record(
        self, kind: str, *, ok: bool, person_id: str | None = None, person_name: str | None = None, at: datetime | None = None
    ) -> None: ...

    def since(self, kinds: Iterable[str], after_id: int | None = None) -> list[dict]: ...

    def last(self, kinds: Iterable[str], *, ok: bool | None = None) -> dict | None: ...

    def forget(self, kinds: Iterable[str], *, before: datetime, below_id: int | None = None) -> int: ...


@runtime_checkable
class RunStore(Protocol):
    """Everything the lab asks of a results store. See lab/store/runs.py for what each method promises."""

    root: Path  # the folder of the store's files (LAB_HOME): run folders, checkpoints, workers' logs

    # -- a run's life: created, claimed, moved along, completed, read back, deleted ---------------------

    def create_run(
        self, config: RunConfig, *, status: Status = Status.QUEUED, owner: Person | None = None, settings_key: str | None = None
    ) -> str: ...

    def queue_run(
        self,
        config: RunConfig,
        *,
        owner: Person,
        settings_key: str,
        reuse: bool = False,
        own_only: bool = False,
        caps: QueueCaps | None = None,
    ) -> tuple[str, Run | None]: ...

    def claim_next_queued(self, worker_pid: int, choose: Callable[[Sequence[WaitingRun]], str | None] | None = None) -> str | None: ...

    def waiting_runs(self) -> list[WaitingRun]: ...

    def set_status(self, run_id: str, status: Status, message: str = "") -> None: ...

    def reopen_to_resume(
        self, run_id: str, *, by: Person, status: Status = Status.QUEUED, message: str = "", caps: QueueCaps | None = None
    ) -> None: ...

    def request_cancel(self, run_id: str, *, by: Person, keep_model: bool = False) -> bool: ...

    def cancel_requested(self, run_id: str) -> bool: ...

    def keep_requested(self, run_id: str) -> bool: ...

    def mark_interrupted_runs(self, still_working: Callable[[int | None, str | None], bool] = ...) -> list[str]: ...

    def complete_run(
        self,
        run_id: str,
        *,
        metrics: dict,
        history: dict,
        model=None,
        environment: dict,
        fingerprint: dict,
        train_seconds: float,
        extra_files: dict[str, bytes] | None = None,
        message: str = "",
    ) -> Path: ...

    def get_run(self, run_id: str) -> Run | None: ...

    def list_runs(self, status: Status | Iterable[Status] | None = None) -> list[Run]: ...

    def delete_run(self, run_id: str, *, by: Person) -> bool: ...

    def integrity_check(self) -> str: ...

    # -- progress events -----------------------------------------------------------------------

    def add_event(self, run_id: str, event: dict) -> int: ...

    def events(self, run_id: str, after_id: int = 0, kinds: Iterable[str] | None = None, limit: int | None = None) -> list[dict]: ...

    def latest_event(self, run_id: str, kind: str) -> dict | None: ...

    # -- a completed run's files ------------------------------------------------------------------

    def run_folder(self, run_id: str) -> RunFolder: ...

    def run_dir(self, run_id: str) -> Path: ...

    def load_history(self, run_id: str) -> dict: ...

    def load_model(self, run_id: str): ...

    def export_run(self, run_id: str, path: str | Path) -> Path: ...

    # -- classroom: the same settings, followers, the class's settings, people and their browsers -----

    def runs_with_settings(self, settings_key: str) -> list[Run]: ...

    def follow(self, run_id: str, person: Person) -> None: ...

    def followers(self, run_id: str) -> list[dict]: ...

    def follower_ids(self, run_id: str) -> set[str]: ...

    def runs_of(self, person_id: str, status: Status | tuple[Status, ...] | None = None) -> list[Run]: ...

    def get_setting(self, key: str, default: Any = None) -> Any: ...

    def set_setting(self, key: str, value: Any) -> None: ...

    def add_person(self, person_id: str, name: str, *, name_key: str, secret_hash: str | None) -> bool: ...

    def remember_person(self, person_id: str, name: str, *, name_key: str = "") -> None: ...

    def person_name(self, person_id: str) -> str | None: ...

    def people(self) -> list[dict]: ...

    def name_keys(self) -> set[str]: ...

    def people_with_name_key(self, name_key: str) -> list[dict]: ...

    def add_browser_token(self, token_hash: str, person_id: str) -> None: ...

    def person_for_token_hash(self, token_hash: str, *, seen: bool = False) -> dict | None: ...

    def forget_browser_token(self, token_hash: str) -> bool: ...

    def browser_token_count(self, person_id: str) -> int: ...

    def record_rejoin_attempt(self, *, person_id: str | None, person_name: str, ok: bool, at: str | None = None) -> None: ...

    def wrong_rejoins_since(self, since: str, person_ids: list[str] | None = None) -> list[str]: ...

    # -- sign-in attempts (the teacher's password, rejoins) ---------------------------------------------

    def sign_in_ledger(self) -> AbstractContextManager[SignInLedger]: ...

    def record_sign_in_attempt(
        self, kind: str, *, ok: bool, person_id: str | None = None, person_name: str | None = None, at: datetime | None = None
    ) -> None: ...

    def recent_sign_in_attempts(self, kinds: Iterable[str], limit: int = 100) -> list[dict]: ...

    def sign_in_failures_since(self, kind: str, since: datetime) -> int: ...


class StoreConnections(ABC):
    """What the store's parts (events, saved files, classroom records, sign-in attempts) need from the store they make up.

    `_read()` opens a connection for reads; `_write()` one write transaction, committed when the
    block ends and rolled back on an error; both turn the database's own errors into StoreError.
    `_require_run(run_id)` is `get_run` that raises RunNotFoundError instead of answering None.
    """

    root: Path  # the store's folder
    runs_folder: Path  # root / "runs": completed runs' folders

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A connection for reads (a `with` block)."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """One write transaction (a `with` block)."""

    @abstractmethod
    def _require_run(self, run_id: str) -> Run:
        """The run, or RunNotFoundError."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""
