"""The store's written interface (lab/store/interface.py) and the run folder's one owner (lab/store/run_folder.py).

A second store (a server database) must offer exactly what `RunStore` lists; the SQLite `Store`
is checked here member by member, signature by signature, so a method renamed, dropped or given
another parameter on either side fails this file.
"""

from __future__ import annotations

import inspect

import pytest

from lab.config import RunConfig
from lab.store.interface import RunStore, StoreConnections
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.run_folder import PROBABILITIES_FILE, ModelFolder, RunFolder
from lab.store.runs import Store

ME = local_person()
TINY = RunConfig(epochs=1, subset=100)


def protocol_members(protocol: type) -> dict[str, object]:
    """The methods and attributes a Protocol declares (not those every class has)."""
    names = {name for name in vars(protocol) if not name.startswith("_")} | set(vars(protocol).get("__annotations__", {}))
    return {name: inspect.getattr_static(protocol, name, None) for name in sorted(names)}


def differences(protocol: type, implementation: type) -> list[str]:
    """What `implementation` lacks or spells differently from `protocol`: one line per member."""
    problems = []
    for name, declared in protocol_members(protocol).items():
        if not callable(declared):  # an attribute such as `root`: set in __init__
            continue
        if not hasattr(implementation, name):
            problems.append(f"{name}: missing")
            continue
        wanted = inspect.signature(declared, eval_str=True)
        found = inspect.signature(getattr(implementation, name), eval_str=True)
        if list(wanted.parameters) != list(found.parameters):
            problems.append(f"{name}: parameters {list(found.parameters)}, the interface says {list(wanted.parameters)}")
            continue
        for parameter, expected in wanted.parameters.items():
            actual = found.parameters[parameter]
            if (actual.kind, actual.annotation) != (expected.kind, expected.annotation):
                problems.append(f"{name}({parameter}): {actual} but the interface says {expected}")
            elif (actual.default is inspect.Parameter.empty) != (expected.default is inspect.Parameter.empty):
                problems.append(f"{name}({parameter}): a default on one side only")
            elif expected.default is not Ellipsis and actual.default != expected.default:
                problems.append(f"{name}({parameter}): default {actual.default!r}, the interface says {expected.default!r}")
        if wanted.return_annotation != found.return_annotation:
            problems.append(f"{name}: returns {found.return_annotation}, the interface says {wanted.return_annotation}")
    return problems


def test_the_sqlite_store_has_every_member_of_the_interface_with_the_same_signature(tmp_path):
    members = protocol_members(RunStore)
    assert {"create_run", "get_run", "list_runs", "events", "run_folder", "runs_of", "sign_in_ledger", "root"} <= set(members)
    assert differences(RunStore, Store) == []
    assert isinstance(Store(tmp_path), RunStore)


def test_the_postgresql_store_has_every_member_of_the_interface_with_the_same_signature():
    """The second implementation (lab/store/postgres.py, as lab.store.runs.PostgresStore) offers the same members; no server is needed to compare them."""
    from lab.store.runs import PostgresStore

    assert differences(RunStore, PostgresStore) == []


def test_the_check_fails_on_a_store_that_differs():
    """The comparison itself can fail: a missing method, a renamed parameter, another default, another return type."""

    class Drifted(Store):
        def get_run(self, identifier: str):  # renamed parameter, no return type
            return None

        def set_status(self, run_id: str, status: Status, message: str = "done") -> None:  # another default
            return None

    problems = differences(RunStore, Drifted)
    assert any(line.startswith("get_run: parameters") for line in problems)
    assert any(line.startswith("set_status(message): default") for line in problems)

    class Missing:
        root = None

    assert "create_run: missing" in differences(RunStore, Missing)


def test_a_store_part_without_connections_cannot_be_created():
    """The parts' inside contract is an abstract base: leaving out `_read`/`_write`/`_require_run` fails at once."""

    class Incomplete(StoreConnections):
        def get_run(self, run_id):
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_the_run_folder_names_every_path_under_the_store(tmp_path):
    store = Store(tmp_path)
    folder = store.run_folder("20250101-000000-seed-cnn-abcd")
    assert folder.path == store.run_dir("20250101-000000-seed-cnn-abcd") == tmp_path / "runs" / "20250101-000000-seed-cnn-abcd"
    assert folder.test_probabilities.name == PROBABILITIES_FILE and folder.test_probabilities.parent == folder.path
    assert folder.model.parent == folder.history.parent == folder.model_card.parent == folder.path
    assert folder.checkpoints == tmp_path / "checkpoints" / "20250101-000000-seed-cnn-abcd"
    with pytest.raises(ValueError, match="not valid"):
        RunFolder(tmp_path, "../elsewhere")  # a run id never names a path out of the store
    shipped = ModelFolder(tmp_path / "default_model")  # the shipped default model: laid out like a run's folder
    assert shipped.model == tmp_path / "default_model" / folder.model.name and shipped.model_card.name == folder.model_card.name


def _with_checkpoint(store: Store, run_id: str):
    checkpoint = store.run_folder(run_id).checkpoints / "epoch-0001"
    checkpoint.mkdir(parents=True)
    (checkpoint / "checkpoint.json").write_text("{}")
    assert checkpoint.is_dir()  # the precondition: there is a checkpoint to drop
    return store.run_folder(run_id).checkpoints


def _completed(store: Store, run_id: str) -> None:
    store.complete_run(run_id, metrics={"accuracy": 0.5}, history={}, environment={}, fingerprint={}, train_seconds=1.0)


def _deleted(store: Store, run_id: str) -> None:
    store.set_status(run_id, Status.FAILED)  # a running run cannot be deleted; a failed one can
    assert store.delete_run(run_id, by=ME) is True


ENDINGS = {
    "completed": _completed,
    "cancelled": lambda store, run_id: store.set_status(run_id, Status.CANCELLED),
    "deleted": _deleted,
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_the_store_drops_a_runs_checkpoints_when_it_ends(tmp_path, ending):
    store = Store(tmp_path)
    run_id = store.create_run(TINY, status=Status.RUNNING)
    checkpoints = _with_checkpoint(store, run_id)
    ENDINGS[ending](store, run_id)
    assert not checkpoints.exists()


def test_a_run_cancelled_while_queued_drops_its_checkpoint(tmp_path):
    store = Store(tmp_path)
    run_id = store.create_run(TINY)
    checkpoints = _with_checkpoint(store, run_id)  # a resumed run, waiting again
    assert store.request_cancel(run_id, by=ME) is True
    assert store.get_run(run_id).status is Status.CANCELLED
    assert not checkpoints.exists()


def test_a_failed_run_keeps_its_checkpoint_to_resume_from(tmp_path):
    store = Store(tmp_path)
    run_id = store.create_run(TINY, status=Status.RUNNING)
    checkpoints = _with_checkpoint(store, run_id)
    store.set_status(run_id, Status.FAILED, "out of memory")
    assert store.get_run(run_id).status is Status.FAILED
    assert checkpoints.is_dir()  # resuming continues from here (lab/jobs/resume.py)
