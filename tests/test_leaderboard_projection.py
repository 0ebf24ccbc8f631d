"""A leaderboard to project: the teacher's runs for reference, one row per person, no ids on the board.

The lab-level tests complete runs through the store as a worker would (tests.test_classroom.finish);
the page test draws Compare's board in an AppTest session of the classroom app.
"""

from __future__ import annotations

import pytest

from lab.classroom.leaderboard import leaderboard, teacher_run_ids
from lab.config import config_for_preset
from lab.jobs import launcher, queue
from lab.store.owners import Person
from lab.store.runs import Store
from tests.test_app_classroom import _classroom, completed_run, open_page, session, student  # noqa: F401 - _classroom: autouse
from tests.test_classroom import finish

ANA = Person("p-ana", "Ana")
BEN = Person("p-ben", "Ben")
ANOTHER_ANA = Person("p-ana-2", "Ana")  # a second identity with the same name (two logins, say)
TEACHER = Person("teacher", "Teacher", is_teacher=True)
TEACHER_AS_PERSON = Person("p-lee", "Ms Lee", is_teacher=True)  # a teacher who joined with a name, then gave the password


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains: the tests play the worker
    return Store(tmp_path / "lab_home")


def quick(**overrides):
    return config_for_preset("quick-demo", **{"epochs": 1, "subset": 200, **overrides})


def trained(store: Store, person: Person, accuracy: float, **overrides) -> str:
    run_id = queue.ask_for_run(quick(**overrides), owner=person, store=store, classroom=True).run_id
    finish(store, run_id, accuracy)
    return run_id


def test_the_teacher_s_runs_are_shown_for_reference_and_never_ranked(store):
    trained(store, ANA, 0.61, seed=1)
    trained(store, BEN, 0.55, seed=2)
    demo = trained(store, TEACHER, 0.93, seed=3, subset=None)  # a full-data run no student is allowed
    joined = trained(store, TEACHER_AS_PERSON, 0.90, seed=4)
    assert {demo, joined} <= teacher_run_ids(store)  # the precondition: the teacher's requests were marked as theirs
    board = leaderboard(store)
    assert [(row["student"], row["rank"], row["teacher"]) for row in board] == [
        ("Ana", 1, False),
        ("Ben", 2, False),
        ("Teacher", None, True),
        ("Ms Lee", None, True),
    ]
    assert max(row["accuracy"] for row in board if row["teacher"]) > max(row["accuracy"] for row in board if not row["teacher"])


def test_a_student_s_request_is_never_marked_as_the_teacher_s(store):
    run_id = trained(store, ANA, 0.7)
    assert run_id not in teacher_run_ids(store)
    assert [row["teacher"] for row in leaderboard(store)] == [False]


def test_one_row_per_person_whatever_the_windows_and_keyed_on_the_id_not_the_name(store):
    first = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, classroom=True)
    second_window = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, classroom=True)  # Start in a second window
    assert second_window.run_id == first.run_id and "you asked for the same run already" in second_window.message
    finish(store, first.run_id, 0.6)
    trained(store, ANA, 0.7, seed=2)  # Ana's better run: her one row shows it
    bens = queue.ask_for_run(quick(seed=9), owner=BEN, store=store, classroom=True).run_id
    followed = queue.ask_for_run(quick(seed=9), owner=ANA, store=store, classroom=True, reuse=True)  # and she follows Ben's
    assert followed.outcome == "following"
    finish(store, bens, 0.8)
    trained(store, ANOTHER_ANA, 0.5, seed=3)
    assert len(store.runs_of(ANA.id)) == 3  # the precondition: three completed runs of hers (one followed)
    board = leaderboard(store)
    assert [(row["person_id"], row["student"], row["accuracy"], row["copy_of"]) for row in board] == [
        ("p-ben", "Ben", 0.8, None),
        ("p-ana", "Ana", 0.7, None),  # her own best beats the copy of Ben's
        ("p-ana-2", "Ana", 0.5, None),  # the same name, another person: a row of their own
    ]


def test_the_projected_board_has_no_ids_and_the_teacher_s_table_apart():
    ana, ben = student("Ana"), student("Ben")
    anas = completed_run(ana, config_for_preset("quick-demo", seed=1), accuracy=0.62, params=100_000, seconds=60)
    completed_run(ben, config_for_preset("quick-demo", seed=2), accuracy=0.58, params=100_000, seconds=60)
    demo = completed_run(TEACHER, config_for_preset("seed-cnn"), accuracy=0.72, params=356_810, seconds=300)
    at = open_page(session(ana), "pages/compare.py")
    ranking, teachers = at.table[0].value, at.table[1].value
    assert list(ranking["student"]) == ["Ana", "Ben"] and list(ranking["rank"]) == ["1", "2"]
    assert list(teachers["accuracy"]) == ["72.0%"] and list(teachers["note"]) == ["teacher's, for reference"]
    on_the_board = " ".join(str(table.value.to_dict()) for table in at.table)
    assert anas not in on_the_board and demo not in on_the_board and ana.id not in on_the_board  # no run ids, no identities
    (details,) = [expander for expander in at.expander if expander.label.startswith("Details")]
    assert set(details.dataframe[0].value["run id"]) >= {anas, demo}  # the ids are there, behind the expander
