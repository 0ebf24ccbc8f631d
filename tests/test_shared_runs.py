"""A run several students share belongs to all of them: nobody's action removes another's result.

Ben asks for the same settings as Ana's run and follows it instead of training a copy. Whatever
Ana does afterwards (cancel it while it waits or trains, stop it and keep the model, delete it),
Ben keeps a run that gives him the result; he may resume it if it fails; the teacher keeps full
rights. The leaderboard credits Ana, who trained it first, and shows Ben's row as a copy.
"""

from __future__ import annotations

import pytest

from lab.classroom.leaderboard import leaderboard
from lab.config import config_for_preset
from lab.jobs import launcher, queue, resume
from lab.store.owners import NotYourRunError, Person
from lab.store.records import Status
from lab.store.runs import Store
from lab.train import checkpoints
from tests.test_classroom import finish
from tests.test_resume import _checkpoint, _failed_run
from ui.leaderboard_view import ranking_frame

ANA = Person("ana-token", "Ana")
BEN = Person("ben-token", "Ben")
CARL = Person("carl-token", "Carl")
DAN = Person("dan-token", "Dan")
TEACHER = Person("teacher", "Teacher", is_teacher=True)


@pytest.fixture
def store(tmp_path, monkeypatch, store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains: the tests play the worker
    return Store(tmp_path / "lab_home")


def quick(**overrides):
    return config_for_preset("quick-demo", **{"epochs": 1, "subset": 200, **overrides})


def shared_run(store: Store, *followers: Person, running: bool = False) -> str:
    """Ana's run, which each of `followers` asked for too (and so follows)."""
    run_id = queue.ask_for_run(quick(), owner=ANA, store=store, classroom=True).run_id
    if running:
        store.claim_next_queued(worker_pid=1, choose=lambda waiting: run_id)
    for follower in followers:
        assert queue.ask_for_run(quick(), owner=follower, store=store, classroom=True, reuse=True).outcome == "following"
    return run_id


def own_run_ids(store: Store, person: Person) -> list[str]:
    return [run.run_id for run in store.runs_of(person.id)]


@pytest.mark.parametrize("running", [False, True])
def test_when_the_owner_cancels_a_shared_run_it_goes_on_for_the_followers(store, running):
    run_id = shared_run(store, BEN, CARL, running=running)
    assert run_id in own_run_ids(store, BEN) and run_id in own_run_ids(store, CARL)  # the precondition: they follow it
    done = queue.cancel(run_id, store, by=ANA)
    assert done and "it goes on for 2 classmates who asked for the same run" in done.message
    run = store.get_run(run_id)
    assert run.status is (Status.RUNNING if running else Status.QUEUED) and not run.cancel_requested
    assert run.owner_id == BEN.id  # the earliest follower owns it now
    assert [follower["owner_id"] for follower in store.followers(run_id)] == [CARL.id]
    assert run_id not in own_run_ids(store, ANA) and run_id in own_run_ids(store, CARL)


def test_when_the_owner_stops_and_keeps_a_shared_run_the_followers_get_it_queued_again(store):
    run_id = shared_run(store, BEN, CARL, running=True)
    done = queue.cancel(run_id, store, keep_model=True, by=ANA)
    assert done and "queued again for 2 classmates" in done.message
    stopped = store.get_run(run_id)
    assert stopped.owner_id == ANA.id and store.keep_requested(run_id) and store.followers(run_id) == []  # Ana's, stopping
    (again,) = [run for run in store.list_runs(status="queued")]
    assert again.config == stopped.config and again.owner_id == BEN.id
    assert [follower["owner_id"] for follower in store.followers(again.run_id)] == [CARL.id]
    finish(store, run_id, 0.3)  # Ana's stops early and is kept as hers
    later = queue.ask_for_run(quick(), owner=DAN, store=store, classroom=True, reuse=True)
    assert later.run_id == again.run_id  # the same settings find the whole run, not the one that stopped early


def test_when_the_owner_deletes_a_shared_run_only_their_listing_goes(store):
    run_id = shared_run(store, BEN, running=True)
    finish(store, run_id, 0.7)
    assert store.run_dir(run_id).is_dir()
    done = queue.delete(run_id, store, by=ANA)
    assert done and "1 classmate who asked for the same run keep" in done.message
    run = store.get_run(run_id)
    assert run is not None and run.owner_id == BEN.id and store.run_dir(run_id).is_dir()  # files and result stay Ben's
    assert own_run_ids(store, ANA) == [] and own_run_ids(store, BEN) == [run_id]
    assert [(row["student"], row["copy_of"], row["rank"]) for row in leaderboard(store)] == [("Ben", None, 1)]


def test_the_teacher_keeps_full_rights_over_a_shared_run(store):
    run_id = shared_run(store, BEN)
    assert queue.cancel(run_id, store, by=TEACHER)
    assert store.get_run(run_id).status is Status.CANCELLED
    assert queue.delete(run_id, store, by=TEACHER) and store.get_run(run_id) is None


def test_a_follower_may_resume_a_failed_run_they_follow_and_nobody_else(store):
    run_id = _failed_run(store, owner=ANA)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    store.follow(run_id, BEN)
    assert resume.can_resume(run_id, store, by=BEN) and not resume.can_resume(run_id, store, by=CARL)
    with pytest.raises(NotYourRunError):
        resume.resume(run_id, store, by=CARL, classroom=True)
    assert store.get_run(run_id).status is Status.FAILED
    resume.resume(run_id, store, by=BEN, classroom=True)
    assert store.get_run(run_id).status is Status.QUEUED


def test_the_leaderboard_credits_the_first_and_shows_a_copy_as_same_as_their_run(store):
    """Following (or training again) the best row gives its score to nobody at once: the copy is listed, not ranked."""
    best = shared_run(store, running=True)
    finish(store, best, 0.9)
    carls = queue.ask_for_run(quick(seed=5), owner=CARL, store=store, classroom=True).run_id
    finish(store, carls, 0.6)
    request = queue.ask_for_run(quick(), owner=BEN, store=store, classroom=True, reuse=True)  # Ben uses the best row's run
    assert request.outcome == "trained before" and request.run_id == best
    forced = queue.ask_for_run(quick(), owner=DAN, store=store, classroom=True, force=True).run_id  # trained again, a copy too
    finish(store, forced, 0.95)
    board = leaderboard(store)
    assert [(row["student"], row["rank"], row["copy_of"]) for row in board] == [
        ("Ana", 1, None),
        ("Carl", 2, None),
        ("Dan", None, "Ana"),
        ("Ben", None, "Ana"),
    ]
    shown = ranking_frame(board)
    assert list(shown["student"]) == ["Ana", "Carl", "Dan (same as Ana's)", "Ben (same as Ana's)"]
    assert list(shown["rank"]) == ["1", "2", "–", "–"]
