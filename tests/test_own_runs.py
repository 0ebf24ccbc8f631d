"""Everyone watches their own network learn: in classroom mode Start trains the student's own run.

A classmate's run with the same settings is used only when the student chooses it (`reuse=True`, the
Train page's toggle); it then passes the same limits and counts as a copy on the leaderboard.
"""

from __future__ import annotations

import pytest

from lab.classroom.leaderboard import leaderboard
from lab.classroom.limits import ClassLimits, LimitError, save_limits
from lab.config import config_for_preset
from lab.jobs import launcher, queue
from lab.store.owners import Person
from lab.store.records import Status
from lab.store.runs import Store
from tests.test_app_classroom import _classroom, open_page, session, student, tiny_data  # noqa: F401 - fixtures
from tests.test_classroom import finish

ANA = Person("p-ana", "Ana")
BEN = Person("p-ben", "Ben")
TEACHER = Person("teacher", "Teacher", is_teacher=True)


@pytest.fixture
def store(tmp_path, monkeypatch, store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains: the tests play the worker
    return Store(tmp_path / "lab_home")


def quick(**overrides):
    return config_for_preset("quick-demo", **{"epochs": 1, "subset": 200, **overrides})


def test_identical_settings_train_a_run_of_their_own_unless_the_student_chooses_a_copy(store):
    anas = queue.ask_for_run(quick(), owner=ANA, store=store, classroom=True).run_id
    finish(store, anas, 0.7)
    bens = queue.ask_for_run(quick(), owner=BEN, store=store, classroom=True)  # the very same settings, no choice made
    assert bens.outcome == "queued" and bens.run_id != anas
    finish(store, bens.run_id, 0.7)
    carl = Person("p-carl", "Carl")
    copied = queue.ask_for_run(quick(), owner=carl, store=store, classroom=True, reuse=True)
    assert (copied.outcome, copied.run_id) == ("trained before", bens.run_id)  # the newest completed run with these settings
    assert "by Ben: 70.0% (it counts as a copy)" in copied.message
    assert len(store.list_runs()) == 2  # Carl's choice trained nothing
    rows = {row["student"]: (row["rank"], row["copy_of"]) for row in leaderboard(store)}
    assert rows == {"Ana": (1, None), "Ben": (None, "Ana"), "Carl": (None, "Ana")}  # the same settings trained again are a copy too


def test_start_pressed_again_finds_the_student_s_own_run(store):
    first = queue.ask_for_run(quick(), owner=ANA, store=store, classroom=True)
    again = queue.ask_for_run(quick(), owner=ANA, store=store, classroom=True)
    assert again.run_id == first.run_id and len(store.list_runs()) == 1
    finish(store, first.run_id, 0.65)
    done = queue.ask_for_run(quick(), owner=ANA, store=store, classroom=True)
    assert done.run_id == first.run_id and "by you: 65.0%. Change the seed" in done.message


def test_a_chosen_copy_passes_the_same_limits(store):
    anas = queue.ask_for_run(quick(epochs=3), owner=ANA, store=store, classroom=True).run_id
    finish(store, anas, 0.8)
    save_limits(store, ClassLimits(max_epochs=2), by=TEACHER)
    with pytest.raises(LimitError, match="at most 2 epochs"):
        queue.ask_for_run(quick(epochs=3), owner=BEN, store=store, classroom=True, reuse=True)
    assert store.runs_of(BEN.id) == [] and store.get_run(anas).status is Status.COMPLETED  # the run to copy was there


def test_each_student_s_seed_is_their_own_and_stays_theirs():
    assert queue.student_seed(ANA.id) == queue.student_seed(ANA.id) != queue.student_seed(BEN.id)
    seeds = {queue.student_seed(f"p-{number:016x}") for number in range(30)}
    assert len(seeds) == 30  # a class of thirty: thirty different default runs


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_data")
def test_two_students_pressing_start_on_the_defaults_each_train_their_own():
    ana, ben = student("Ana"), student("Ben")
    runs = []
    for person in (ana, ben):
        at = open_page(session(person), "pages/train.py")
        assert at.number_input(key="train_seed").value == queue.student_seed(person.id)  # visible in the form
        assert at.toggle(key="train_reuse").value is False  # a copy is a choice, off by default
        at.button(key="trainbtn_start").click().run()
        assert not at.exception
        runs.append(at.session_state["train_run_id"])
    assert runs[0] != runs[1] and {run.owner_id for run in Store().list_runs()} == {ana.id, ben.id}
