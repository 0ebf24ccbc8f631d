"""In `lab`, every action that changes or removes a run names the person acting, as a modified client would call it.

Without `by` there is no default standing for the local user (who has the teacher's rights): the
call is a TypeError. Deleting an id with no row touches no folder, and only the teacher sets the
class's limits and challenge.
"""

from __future__ import annotations

import pytest

from lab.classroom.limits import Challenge, ClassLimits, load_challenge, load_limits, save_challenge, save_limits
from lab.config import config_for_preset
from lab.jobs import launcher, queue, resume
from lab.store.owners import NotTheTeacherError, Person, local_person
from lab.store.records import Status
from lab.store.runs import Store

ANA = Person("ana-token", "Ana")
TEACHER = Person("teacher", "Teacher", is_teacher=True)


@pytest.fixture
def store(tmp_path, monkeypatch, store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains here
    return Store(tmp_path / "lab_home")


def quick(**overrides):
    return config_for_preset("quick-demo", **{"epochs": 1, "subset": 200, **overrides})


def test_every_lab_action_on_a_run_without_by_is_a_type_error(store):
    run_id = queue.ask_for_run(quick(), owner=ANA, store=store, classroom=True).run_id
    assert store.get_run(run_id).status is Status.QUEUED  # the run exists: only the missing person is refused
    without_by = [
        lambda: store.request_cancel(run_id),
        lambda: store.delete_run(run_id),
        lambda: store.reopen_to_resume(run_id),
        lambda: queue.cancel(run_id, store),
        lambda: queue.delete(run_id, store),
        lambda: resume.resume(run_id, store),
        lambda: resume.reopen_for_resume(run_id, store),
        lambda: queue.ask_for_run(quick(seed=1), store=store),
        lambda: save_limits(store, ClassLimits()),
        lambda: save_challenge(store, None),
    ]
    for call in without_by:
        with pytest.raises(TypeError):
            call()
    for call in (lambda: queue.cancel(run_id, store, by=None), lambda: store.delete_run(run_id, by=None)):
        with pytest.raises(TypeError, match="`by` must be the Person"):  # None does not stand for the local user either
            call()
    assert store.get_run(run_id).status is Status.QUEUED  # nothing happened to it
    assert queue.cancel(run_id, store, by=ANA)  # with the person acting, the owner may


def test_deleting_an_unknown_id_leaves_a_folder_of_that_name_untouched(store):
    store.list_runs()  # creates the store's folders
    unknown = "20260101-000000-seed-cnn-dead"
    planted = store.runs_folder / unknown
    planted.mkdir(parents=True)
    (planted / "keep.txt").write_text("not a run of this store")
    assert store.get_run(unknown) is None and planted.is_dir()  # the precondition: a folder, no row
    assert not queue.delete(unknown, store, by=ANA)
    assert store.delete_run(unknown, by=local_person()) is False
    assert (planted / "keep.txt").read_text() == "not a run of this store"


def test_only_the_teacher_saves_the_class_limits_and_the_challenge(store):
    with pytest.raises(NotTheTeacherError, match="only the teacher can set the class's limits"):
        save_limits(store, ClassLimits(max_queued_per_student=50), by=ANA)
    with pytest.raises(PermissionError):
        save_challenge(store, Challenge("cifar10", max_params=10), by=ANA)
    assert load_limits(store) == ClassLimits() and load_challenge(store) is None  # nothing was saved
    save_limits(store, ClassLimits(max_queued_per_student=5), by=TEACHER)
    save_challenge(store, Challenge("cifar10", max_params=10), by=TEACHER)
    assert load_limits(store).max_queued_per_student == 5 and load_challenge(store).max_params == 10
