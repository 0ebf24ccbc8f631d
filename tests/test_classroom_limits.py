"""The class's limits against a student getting round them: many names, bursts, deleted runs, resume, a modified client.

As the issue found them: five tabs with five names queued ten runs under a limit of two per
student; each new name went first in the fair queue; deleting your finished runs moved you ahead;
resume skipped the limits; the allowed-presets limit read only the preset's name. Each test
plays the attack through `lab`, the way the pages or a modified client call it, and checks
the precondition (the attacker really had room, the run really existed) beside the refusal.
"""

from __future__ import annotations

import dataclasses
import threading
import types

import pytest

from lab.classroom.limits import PRESET_FREE_FIELDS, ClassLimits, LimitError, load_limits, preset_differences, save_limits
from lab.config import PRESETS, config_for_preset
from lab.jobs import fairness, launcher, queue, resume
from lab.store.owners import Person
from lab.store.records import Status
from lab.store.runs import Store
from lab.train import checkpoints
from tests.test_classroom import finish
from tests.test_resume import _checkpoint, _failed_run

ANA = Person("ana-token", "Ana")
BEN = Person("ben-token", "Ben")
TEACHER = Person("teacher", "Teacher", is_teacher=True)


@pytest.fixture
def store(tmp_path, monkeypatch, store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains: the tests play the worker
    return Store(tmp_path / "lab_home")


def quick(**overrides):
    return config_for_preset("quick-demo", **{"epochs": 1, "subset": 200, **overrides})


def students(count: int) -> list[Person]:
    return [Person(f"tab-{number:02d}-identity-token", f"Name {number}") for number in range(count)]


def ask(person: Person, store: Store, **overrides):
    return queue.ask_for_run(quick(**overrides), owner=person, store=store, classroom=True)


# ---------------------------------------------------------------- class-wide caps


def test_five_names_queueing_ten_runs_hit_the_class_wide_cap(store):
    save_limits(store, ClassLimits(max_queued_per_student=2, max_waiting_total=6), by=TEACHER)
    queued, refused = [], []
    for number, person in enumerate(students(5)):
        for seed in (2 * number, 2 * number + 1):  # two runs each: within the per-student limit
            try:
                queued.append(ask(person, store, seed=seed).run_id)
            except LimitError as error:
                refused.append(str(error))
    assert len(queued) == 6 and len(store.list_runs(status="queued")) == 6
    assert len(refused) == 4 and all("the class's queue is full: 6 runs are waiting" in message for message in refused)
    queue.cancel(queued[0], store, by=students(5)[0])
    ask(students(5)[4], store, seed=50)  # room again once one leaves the queue
    queue.ask_for_run(quick(seed=99), owner=TEACHER, store=store, classroom=True)  # the teacher's own runs stay outside the caps
    assert len(store.list_runs(status="queued")) == 7


def test_new_names_beyond_the_cap_per_minute_are_refused(store):
    save_limits(store, ClassLimits(max_new_students_per_minute=3), by=TEACHER)
    first, second, third, fourth = students(4)
    for seed, person in enumerate((first, second, third)):
        ask(person, store, seed=seed)
    with pytest.raises(LimitError, match="3 people started their first run in the last minute"):
        ask(fourth, store, seed=10)
    assert not any(run.owner_id == fourth.id for run in store.list_runs())
    ask(first, store, seed=11)  # someone who queued before is not new: not counted
    with store._write() as connection:  # a minute passes (the same SQL on either backend)
        connection.execute("UPDATE turns SET first_queued_at = '2000-01-01T00:00:00.000+00:00'")
    ask(fourth, store, seed=10)


@pytest.mark.parametrize("cap", ["max_waiting_total", "max_new_students_per_minute"])
def test_a_concurrent_burst_cannot_pass_a_class_wide_cap(store, cap):
    """Twelve names press Start at the same moment, each in its own thread: exactly the cap gets in."""
    save_limits(store, ClassLimits(**{cap: 5}), by=TEACHER)
    people = students(12)
    start, outcomes = threading.Barrier(len(people)), []

    def press_start(person: Person, seed: int) -> None:
        start.wait()
        try:
            outcomes.append(ask(person, Store(store.root), seed=seed).outcome)
        except LimitError:
            outcomes.append("refused")

    threads = [threading.Thread(target=press_start, args=(person, seed)) for seed, person in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["queued"] * 5 + ["refused"] * 7
    assert len(store.list_runs(status="queued")) == 5


# ---------------------------------------------------------------- turns


def test_deleting_your_finished_runs_does_not_move_you_ahead(store):
    ben_run = ask(BEN, store, seed=1).run_id
    store.claim_next_queued(worker_pid=1, choose=lambda waiting: ben_run)  # Ben had a turn first
    ana_run = ask(ANA, store, seed=2).run_id
    store.claim_next_queued(worker_pid=1, choose=lambda waiting: ana_run)  # then Ana
    finish(store, ben_run, 0.5)
    finish(store, ana_run, 0.6)
    assert queue.delete(ana_run, store, by=ANA) and store.get_run(ana_run) is None  # Ana removes every trace of her turn
    ana_next, ben_next = ask(ANA, store, seed=3).run_id, ask(BEN, store, seed=4).run_id
    assert fairness.fair_order(store.waiting_runs()) == [ben_next, ana_next]  # Ben's turn was longer ago: he goes first


# ---------------------------------------------------------------- resume and train again pass the same limits


def test_resume_is_refused_beyond_the_class_limits(store):
    run_id = _failed_run(store, owner=ANA, epochs=3)
    checkpoints.write_checkpoint(store.run_folder(run_id).checkpoints, _checkpoint(1))
    assert resume.can_resume(run_id, store, by=ANA)  # the precondition: Ana may resume it
    save_limits(store, ClassLimits(max_epochs=2), by=TEACHER)  # the teacher tightened the limits since
    with pytest.raises(LimitError, match="at most 2 epochs"):
        resume.resume(run_id, store, by=ANA, classroom=True)
    save_limits(store, ClassLimits(max_waiting_total=1), by=TEACHER)
    ask(BEN, store, seed=5)
    with pytest.raises(LimitError, match="the class's queue is full"):
        resume.resume(run_id, store, by=ANA, classroom=True)
    assert store.get_run(run_id).status is Status.FAILED  # refused: nothing moved
    resume.resume(run_id, store, by=TEACHER, classroom=True)  # the teacher's action is outside the class limits
    assert store.get_run(run_id).status is Status.QUEUED


def test_training_a_row_again_passes_the_same_limits_as_start(store):
    """Compare's "Train a row again" opens the row's settings in the Train form, whose Start is ask_for_run."""
    from ui.results import rerun_config

    big = config_for_preset("quick-demo", epochs=5, subset=200)
    best = queue.ask_for_run(big, owner=TEACHER, store=store, classroom=True).run_id
    finish(store, best, 0.9)
    save_limits(store, ClassLimits(max_epochs=3), by=TEACHER)
    again = rerun_config({"model": "quick-demo", "run_id": best}, store.get_run(best))
    with pytest.raises(LimitError, match="at most 3 epochs"):
        queue.ask_for_run(
            config_for_preset("quick-demo", **{k: v for k, v in again.items() if k != "model"}), owner=BEN, store=store, classroom=True
        )
    assert [run.run_id for run in store.runs_of(BEN.id)] == []  # Ben got nothing: neither a run nor the teacher's score


# ---------------------------------------------------------------- the allowed presets check the whole configuration


def test_a_preset_name_with_other_settings_is_refused(store):
    save_limits(store, ClassLimits(allowed_presets=("quick-demo",)), by=TEACHER)
    ask(ANA, store, seed=1, epochs=2, learning_rate=0.01)  # what the Train form lets a student change under a preset
    disguised = dataclasses.replace(quick(), backbone="fast-cnn", width=1.0, batch_size=128)  # a modified client's request
    assert disguised.model == "quick-demo"  # the precondition: it carries the allowed preset's name
    with pytest.raises(LimitError, match="your quick-demo has a different backbone, width, batch_size"):
        queue.ask_for_run(disguised, owner=BEN, store=store, classroom=True)
    assert store.runs_of(BEN.id) == []
    save_limits(store, ClassLimits(allowed_presets=("quick-demo", "custom")), by=TEACHER)  # "custom" allows any configuration
    queue.ask_for_run(disguised, owner=BEN, store=store, classroom=True)
    assert load_limits(store).allowed_presets == ("quick-demo", "custom")


def test_every_preset_the_train_form_fills_in_counts_as_that_preset(monkeypatch):
    """The rule must not refuse an honest student: the form's own config for each preset, and its free changes, pass."""
    from ui import train_form

    state: dict = {}
    monkeypatch.setattr(train_form, "st", types.SimpleNamespace(session_state=state))
    for name in PRESETS:
        train_form.apply_config(config_for_preset(name))
        state.update(train_epochs=2, train_seed=7, train_learning_rate=0.01, train_subset=5000, train_augment=True)
        config = train_form.config_from_state(state)
        assert config.model == name and preset_differences(config, name) == [], name
    assert {"epochs", "subset", "seed", "learning_rate"} <= PRESET_FREE_FIELDS
    assert not {"backbone", "width", "input_size", "weights", "batch_size", "precision"} & PRESET_FREE_FIELDS
