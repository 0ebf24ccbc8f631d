"""A full classroom at the store: eight processes submit, claim, finish and read runs at the same moment.

Four "students" queue runs and keep reading the results table as the app does, two "workers"
claim queued runs and finish them (progress events, then files and the completed
status), and two "viewers" poll runs and their events the way the Train page does.
Nothing trains: this is about the database. Afterwards every submitted run exists
exactly once, no run was claimed twice, every acknowledged event is stored, and no
process ever saw an error such as "database is locked". The processes start their work together
(a barrier through files) and the test checks that all eight were at work at the same moment.

This module imports nothing heavy at the top: each spawned process imports it again.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from pathlib import Path

import pytest

from lab.report.results_table import results_table
from lab.store.records import Status

# Eight processes that each start the lab: the slow tier (`pytest -m "not slow"` leaves it out).
pytestmark = pytest.mark.slow

PROCESSES = 8
RUNS_PER_STUDENT = 12
EVENTS_PER_RUN = 5
WORK_SECONDS = 6.0  # how long the workers and viewers keep going after the start signal
BARRIER_TIMEOUT_S = 180.0  # how long a process waits for the others to start (importing the lab on a busy machine)


def _start_together(barrier: str, number: int) -> float:
    """Say this process is ready (the lab imported, its store open), then wait until all of them are: a barrier
    through files, so that no process starts its work before the slowest one has even started.

    Returns the moment this process began its work (seconds since the epoch).
    """
    folder = Path(barrier)
    (folder / f"ready-{number}").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while (ready := len(list(folder.glob("ready-*")))) < PROCESSES:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {ready} of {PROCESSES} processes had started after {BARRIER_TIMEOUT_S:.0f} s")
        time.sleep(0.005)
    return time.time()


def _student(root: str, number: int, barrier: str) -> dict:
    from lab.config import RunConfig
    from lab.store.runs import Store

    store, created = Store(root), []
    began = _start_together(barrier, number)
    deadline = time.monotonic() + WORK_SECONDS
    for index in range(RUNS_PER_STUDENT):
        created.append(store.create_run(RunConfig(seed=number * 100 + index, subset=1000, batch_size=32)))
        results_table(store)
        store.list_runs(status=("queued", "running"))
    while time.monotonic() < deadline:  # then watches the results, as a student on Compare does
        results_table(store)
        store.list_runs(status=("queued", "running"))
    return {"created": created, "began": began, "ended": time.time()}


def _worker(root: str, number: int, barrier: str) -> dict:
    import os

    from lab.store.runs import Store

    store, claimed, events = Store(root), [], 0
    began = _start_together(barrier, number)
    deadline = time.monotonic() + WORK_SECONDS
    while time.monotonic() < deadline:
        run_id = store.claim_next_queued(os.getpid())
        if run_id is None:
            time.sleep(0.02)
            continue
        claimed.append(run_id)
        for epoch in range(1, EVENTS_PER_RUN + 1):
            store.add_event(run_id, {"kind": "epoch_end", "epoch": epoch, "worker": number})
            events += 1
        if len(claimed) % 3 == 0:
            store.set_status(run_id, "failed", "a deliberately failed run")
        else:
            store.complete_run(
                run_id, metrics={"accuracy": 0.5}, history={"loss": [1.0]}, environment={}, fingerprint={}, train_seconds=0.1
            )
    return {"claimed": claimed, "events": events, "began": began, "ended": time.time()}


def _viewer(root: str, number: int, barrier: str) -> dict:
    from lab.store.runs import Store

    store, reads, rng = Store(root), 0, random.Random(number)
    began = _start_together(barrier, number)
    deadline = time.monotonic() + WORK_SECONDS
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs:
            run = rng.choice(runs)
            store.get_run(run.run_id)
            store.events(run.run_id, after_id=0)
            store.latest_event(run.run_id, "epoch_end")
        results_table(store)
        reads += 1
    return {"reads": reads, "began": began, "ended": time.time()}


ROLES = {"student": _student, "worker": _worker, "viewer": _viewer}


def _play(role: str, root: str, number: int, barrier: str) -> dict:
    """Run one role; any exception comes back as text, so the test can show it."""
    try:
        return {"role": role, **ROLES[role](root, number, barrier)}
    except Exception:  # noqa: BLE001 - reported and asserted on by the test
        return {"role": role, "error": traceback.format_exc()}


def test_eight_processes_submit_claim_and_read_without_losing_a_row(tmp_path, store_backend):
    """On each backend in turn (store_backend, tests/conftest.py): the processes inherit LAB_DATABASE_URL."""
    from lab.store.runs import Store

    root = str(tmp_path / "classroom")
    Store(root).list_runs()  # the app creates the schema before anyone clicks
    roles = ["student"] * 4 + ["worker"] * 2 + ["viewer"] * 2
    assert len(roles) == PROCESSES
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        outcomes = pool.starmap(_play, [(role, root, number, str(barrier)) for number, role in enumerate(roles)])

    errors = [outcome["error"] for outcome in outcomes if "error" in outcome]
    assert not errors, "\n".join(errors)
    # The contention really happened: there was a moment when all eight were at work on the store at once.
    last_to_begin = max(outcome["began"] for outcome in outcomes)
    first_to_end = min(outcome["ended"] for outcome in outcomes)
    assert last_to_begin < first_to_end, [
        (outcome["role"], outcome["began"] - last_to_begin, outcome["ended"] - last_to_begin) for outcome in outcomes
    ]
    created = [run_id for outcome in outcomes for run_id in outcome.get("created", [])]
    claimed = [run_id for outcome in outcomes for run_id in outcome.get("claimed", [])]
    store = Store(root)
    runs = {run.run_id: run for run in store.list_runs()}

    assert len(created) == 4 * RUNS_PER_STUDENT == len(set(created))
    assert set(runs) == set(created)  # nothing lost, nothing extra
    assert len(claimed) == len(set(claimed)), "a run was claimed by two workers"
    assert claimed, "the workers claimed nothing"
    for run_id, run in runs.items():
        if run_id in claimed:
            assert run.status in (Status.COMPLETED, Status.FAILED)
            assert [event["epoch"] for event in store.events(run_id)] == list(range(1, EVENTS_PER_RUN + 1))
        else:
            assert run.status is Status.QUEUED and store.events(run_id) == []
    completed = {run_id for run_id, run in runs.items() if run.status is Status.COMPLETED}
    assert {row["run_id"] for row in results_table(store) if not row["reference"]} == completed
    assert sum(outcome.get("events", 0) for outcome in outcomes) == len(claimed) * EVENTS_PER_RUN
    assert all(outcome["reads"] > 5 for outcome in outcomes if outcome["role"] == "viewer")
    assert store.integrity_check() == "ok"
