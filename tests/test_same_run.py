"""One "same run" rule: the app's queue (the store's SQL, inside its transaction) and the command line find the same run.

Each case stores runs with one settings key, oldest first, each ending in a given status; then it
asks the rule (lab/jobs/same_run.py, what `python -m lab train` uses) and the store's queue
(`Store.queue_run(reuse=True)`, what the Train page's Start uses) and checks that they name the same run.
"""

from __future__ import annotations

import json

import pytest

from lab.cli.main import main
from lab.config import config_for_preset
from lab.data.cache import source_identity
from lab.jobs.queue import settings_key
from lab.jobs.same_run import same_run
from lab.store.owners import Person, local_person
from lab.store.records import Status
from lab.store.runs import Store

ANA, BEN, ZOE = Person("ana", "Ana"), Person("ben", "Ben"), Person("zoe", "Zoe")
CONFIG = config_for_preset("quick-demo")
FINISH = {"metrics": {"accuracy": 0.5}, "history": {"loss": [1.0]}, "environment": {}, "fingerprint": {}, "train_seconds": 1.0}

# Runs with the same settings, oldest first: (owner, how it ended), and which of them is "the same run" (an index, or None).
CASES = {
    "a completed run beats a newer queued one": ([(ANA, Status.COMPLETED), (BEN, Status.QUEUED)], 0),
    "the newest of two completed runs": ([(ANA, Status.COMPLETED), (BEN, Status.COMPLETED)], 1),
    "no result yet: the newest queued or running run": ([(ANA, Status.QUEUED), (BEN, Status.RUNNING)], 1),
    "a failed or cancelled run never counts": ([(ANA, Status.FAILED), (BEN, Status.CANCELLED)], None),
    "a running run beats a newer failed one": ([(ANA, Status.RUNNING), (BEN, Status.FAILED)], 0),
    "a completed run beats newer active and failed ones": ([(BEN, Status.COMPLETED), (ANA, Status.RUNNING), (ANA, Status.FAILED)], 0),
    "nothing stored": ([], None),
}


def store_with(tmp_path, runs, key) -> tuple[Store, list[str]]:
    store = Store(tmp_path)
    ids = []
    for owner, status in runs:
        run_id = store.create_run(CONFIG, owner=owner, settings_key=key)
        if status is not Status.QUEUED:
            store.set_status(run_id, Status.RUNNING)
        if status is Status.COMPLETED:
            store.complete_run(run_id, **FINISH)
        elif status in (Status.FAILED, Status.CANCELLED):
            store.set_status(run_id, status, "ended")
        ids.append(run_id)
    assert [store.get_run(run_id).status for run_id in ids] == [status for _, status in runs]  # the precondition: stored as meant
    return store, ids


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_queue_and_the_command_line_find_the_same_run(tmp_path, case):
    runs, expected = CASES[case]
    for owner_id, folder in ((None, "anyone's"), (ANA.id, "own only")):
        store, ids = store_with(tmp_path / folder, runs, "key")
        found = same_run(store, "key", owner_id=owner_id)
        # What the Start button does: inside the store's transaction, the same rule (a classmate's run, or only one's own).
        queued_id, queue_found = store.queue_run(
            CONFIG, owner=ANA if owner_id else ZOE, settings_key="key", reuse=True, own_only=bool(owner_id)
        )
        assert (found and found.run_id) == (queue_found and queue_found.run_id), (case, owner_id)
        if owner_id is None:  # the expected answer, said once, for anyone's runs
            assert (found and found.run_id) == (ids[expected] if expected is not None else None), case
        if found is None:
            assert queued_id not in ids  # nothing to reuse: the queue made a new run


@pytest.mark.parametrize(
    ("runs", "expected", "already_trained"),
    [([(BEN, Status.COMPLETED), (ANA, Status.QUEUED)], 0, True), ([(ANA, Status.FAILED), (BEN, Status.RUNNING)], 1, False)],
)
def test_python_m_lab_train_shows_the_run_the_rule_finds(tmp_path, monkeypatch, capsys, runs, expected, already_trained):
    data_dir = str(tmp_path / "data")
    key = settings_key(CONFIG, source_identity(data_dir))  # the key `train` works out for these options on this data
    store, ids = store_with(tmp_path / "lab", runs, key)
    monkeypatch.setenv("LAB_HOME", str(store.root))
    assert main(["train", "--model", "quick-demo", "--data-dir", data_dir, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_id"] == ids[expected] == same_run(store, key).run_id and shown["already_trained"] is already_trained
    assert len(store.list_runs()) == len(ids)  # nothing trained, nothing queued
    assert local_person().id not in {run.owner_id for run in store.list_runs()}  # the precondition: none of them was the shell's own
