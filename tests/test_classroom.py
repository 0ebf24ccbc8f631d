"""Classroom mode in lab/: owners and permissions, the fair queue, no duplicate training, limits, the leaderboard.

No worker ever starts here (lab.jobs.launcher.ensure_workers is a no-op in these tests): runs are
claimed and completed through the store's own calls, as a worker would, so each test is quick.
"""

from __future__ import annotations

import time

import keras
import pytest

from lab.classroom import teacher
from lab.classroom.leaderboard import leaderboard
from lab.classroom.limits import Challenge, ClassLimits, LimitError, load_limits, save_challenge, save_limits
from lab.config import config_for_preset
from lab.data.cache import source_identity
from lab.jobs import fairness, launcher, queue
from lab.report.results_table import results_table
from lab.store.owners import NotYourRunError, Person, local_person
from lab.store.records import Status
from lab.store.runs import Store
from tests.synthetic import random_cifar10_folder

ANA = Person("ana-token", "Ana")
BEN = Person("ben-token", "Ben")
CARL = Person("carl-token", "Carl")
TEACHER = Person("teacher", "Teacher", is_teacher=True)


@pytest.fixture
def store(tmp_path, monkeypatch, store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains: the tests play the worker
    return Store(tmp_path / "lab_home")


@pytest.fixture
def data_dir(tmp_path) -> str:
    return str(random_cifar10_folder(tmp_path / "cifar" / "cifar-10-batches-py", 100, 20, seed=0))


def quick(**overrides):
    return config_for_preset("quick-demo", **{"epochs": 1, "subset": 200, **overrides})


def finish(store: Store, run_id: str, accuracy: float, train_seconds: float = 60.0, params: int = 1000, **more_metrics) -> None:
    """Complete a run the way a worker would, with a tiny model and the given figures."""
    if store.get_run(run_id).status is Status.QUEUED:
        store.set_status(run_id, "running")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    metrics = {"accuracy": accuracy, "total_params": params, "trainable_params": params, "epochs_completed": 1, **more_metrics}
    store.complete_run(run_id, metrics=metrics, history={}, model=model, environment={}, fingerprint={}, train_seconds=train_seconds)


# ---------------------------------------------------------------- owners and permissions


def test_every_run_records_its_owner_and_the_results_show_it(store, data_dir):
    mine = queue.ask_for_run(quick(), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    local = queue.ask_for_run(quick(seed=1), store=store, data_dir=data_dir, owner=local_person()).run_id
    assert (store.get_run(mine).owner_id, store.get_run(mine).owner) == ("ana-token", "Ana")
    assert store.get_run(local).owner_id == "local" and store.get_run(local).owner == local_person().name
    finish(store, mine, 0.5)
    (row,) = [row for row in results_table(store) if row["run_id"] == mine]
    assert row["owner"] == "Ana"


def test_only_the_owner_or_the_teacher_may_cancel_stop_or_delete_a_run(store, data_dir):
    queued = queue.ask_for_run(quick(), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    with pytest.raises(NotYourRunError, match="belongs to Ana: only its owner or the teacher can cancel it"):
        queue.cancel(queued, store, by=BEN)
    assert store.get_run(queued).status is Status.QUEUED

    running = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    store.claim_next_queued(worker_pid=1, choose=lambda waiting: running)
    with pytest.raises(NotYourRunError, match="can stop it"):
        queue.cancel(running, store, keep_model=True, by=BEN)
    assert not store.keep_requested(running) and not store.cancel_requested(running)
    assert queue.cancel(running, store, keep_model=True, by=TEACHER)  # the teacher may
    assert store.keep_requested(running)

    assert queue.cancel(queued, store, by=ANA)  # the owner may: it leaves the queue at once
    assert store.get_run(queued).status is Status.CANCELLED and queue.queue_position(queued, store) is None
    with pytest.raises(NotYourRunError, match="can delete it"):
        queue.delete(queued, store, by=BEN)
    assert store.get_run(queued) is not None
    assert queue.delete(queued, store, by=TEACHER)
    assert store.get_run(queued) is None


def test_the_local_user_may_manage_every_run(store, data_dir):
    """The command line and a laptop without classroom mode: whoever has the shell is trusted."""
    theirs = queue.ask_for_run(quick(), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    assert queue.cancel(theirs, store, by=local_person()) and store.delete_run(theirs, by=local_person())


# ---------------------------------------------------------------- the fair queue


def test_the_queue_takes_turns_across_students_not_first_come_first_served(store, data_dir):
    """Ana queues three runs first, then Ben two and Carl one: they start Ana, Ben, Carl, Ana, Ben, Ana."""
    save_limits(store, ClassLimits(max_queued_per_student=3), by=TEACHER)
    queued = {}
    for person, seeds in ((ANA, (1, 2, 3)), (BEN, (4, 5)), (CARL, (6,))):
        for seed in seeds:
            queued[seed] = queue.ask_for_run(quick(seed=seed), owner=person, store=store, data_dir=data_dir, classroom=True).run_id
    expected = [queued[seed] for seed in (1, 4, 6, 2, 5, 3)]
    assert fairness.fair_order(store.waiting_runs()) == expected
    assert [queue.queue_position(run_id, store) for run_id in expected] == [1, 2, 3, 4, 5, 6]
    started = []
    while (run_id := store.claim_next_queued(worker_pid=1, choose=fairness.next_run)) is not None:
        started.append(run_id)
    assert started == expected  # what the workers really take, one after another


def test_a_student_whose_last_run_started_longest_ago_goes_first(store, data_dir):
    ben_earlier = queue.ask_for_run(quick(seed=9), owner=BEN, store=store, data_dir=data_dir, classroom=True).run_id
    store.claim_next_queued(worker_pid=1)  # Ben's first run has started
    time.sleep(0.01)
    ana_first = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    ben_second = queue.ask_for_run(quick(seed=2), owner=BEN, store=store, data_dir=data_dir, classroom=True).run_id
    assert store.get_run(ben_earlier).status is Status.RUNNING
    # Carl queues last, but he has never had a turn and Ben has: Carl goes before Ben's second run.
    carl_first = queue.ask_for_run(quick(seed=3), owner=CARL, store=store, data_dir=data_dir, classroom=True).run_id
    assert fairness.fair_order(store.waiting_runs()) == [ana_first, carl_first, ben_second]


def test_with_one_user_the_queue_is_first_come_first_served(store, data_dir):
    runs = [queue.submit(quick(seed=seed), store=store, data_dir=data_dir) for seed in range(4)]
    assert fairness.fair_order(store.waiting_runs()) == runs


def test_a_queued_run_knows_roughly_when_it_starts(store, data_dir):
    done = queue.ask_for_run(quick(seed=7), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    store.claim_next_queued(worker_pid=1)
    store.complete_run(
        done, metrics={"accuracy": 0.5, "epochs_completed": 1}, history={}, model=None, environment={},
        fingerprint={"n_train": 180}, train_seconds=30.0,
    )  # fmt: skip
    ana = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    ben = queue.ask_for_run(quick(seed=2), owner=BEN, store=store, data_dir=data_dir, classroom=True).run_id
    assert queue.queue_position(ben, store) == 1  # Ana has had a turn, Ben has not
    assert queue.seconds_until_start(ben, store) == 0.0
    wait = queue.seconds_until_start(ana, store)
    assert wait == pytest.approx(30.0 + 10, rel=0.05)  # Ben's run: the pace of the past run of that network, plus a worker's start


# ---------------------------------------------------------------- no duplicate training


def test_equal_settings_add_no_row_and_a_changed_seed_does(store, data_dir):
    first = queue.ask_for_run(quick(), owner=ANA, store=store, data_dir=data_dir, classroom=True)
    assert first.outcome == "queued"
    again = queue.ask_for_run(quick(), owner=BEN, store=store, data_dir=data_dir, classroom=True, reuse=True)
    assert (again.outcome, again.run_id) == ("following", first.run_id)
    assert "started by Ana" in again.message
    assert len(store.list_runs()) == 1
    assert [run.run_id for run in store.runs_of(BEN.id)] == [first.run_id]  # Ben follows Ana's run

    finish(store, first.run_id, accuracy=0.805)
    later = queue.ask_for_run(quick(), owner=CARL, store=store, data_dir=data_dir, classroom=True, reuse=True)
    assert later.outcome == "trained before" and later.run_id == first.run_id
    assert later.message.startswith("already trained") and "by Ana: 80.5%" in later.message
    assert len(store.list_runs()) == 1

    reseeded = queue.ask_for_run(quick(seed=1), owner=CARL, store=store, data_dir=data_dir, classroom=True)
    assert reseeded.outcome == "queued" and len(store.list_runs()) == 2
    forced = queue.ask_for_run(quick(), owner=CARL, store=store, data_dir=data_dir, classroom=True, force=True)
    assert forced.outcome == "queued" and len(store.list_runs()) == 3


def test_other_data_is_another_run(store, data_dir, tmp_path):
    queue.ask_for_run(quick(), owner=ANA, store=store, data_dir=data_dir, classroom=True)
    other = str(random_cifar10_folder(tmp_path / "other" / "cifar-10-batches-py", 100, 20, seed=1))
    assert source_identity(other) != source_identity(data_dir)
    assert queue.ask_for_run(quick(), owner=BEN, store=store, data_dir=other, classroom=True).outcome == "queued"


def test_outside_classroom_mode_every_request_is_queued(store, data_dir):
    queue.ask_for_run(quick(), store=store, data_dir=data_dir, owner=local_person())
    queue.ask_for_run(quick(), store=store, data_dir=data_dir, owner=local_person())
    assert len(store.list_runs()) == 2


# ---------------------------------------------------------------- the class's limits


@pytest.mark.parametrize(
    ("limits", "config", "message"),
    [
        (ClassLimits(max_epochs=2), quick(epochs=3), "at most 2 epochs (you asked for 3)"),
        (ClassLimits(max_train_images=1000), quick(subset=5000), "at most 1,000 training images (you asked for 5,000)"),
        (ClassLimits(max_train_images=1000), config_for_preset("seed-cnn"), "at most 1,000 training images (you asked for 50,000)"),
        (
            ClassLimits(max_input_size=32),
            config_for_preset("vgg16-frozen", input_size=64, subset=200, weights="none"),
            "input size of at most 32",
        ),
        (ClassLimits(allowed_presets=("quick-demo",)), config_for_preset("seed-cnn", subset=200), "only these models: quick-demo"),
    ],
)
def test_each_class_limit_refuses_with_its_message(store, data_dir, limits, config, message):
    save_limits(store, limits, by=TEACHER)
    with pytest.raises(LimitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        queue.ask_for_run(config, owner=ANA, store=store, data_dir=data_dir, classroom=True)
    assert store.list_runs() == []
    queue.ask_for_run(config, owner=ANA, store=store, data_dir=data_dir)  # outside classroom mode: no limits
    queue.ask_for_run(config, owner=TEACHER, store=store, data_dir=data_dir, classroom=True, force=True)  # the teacher sets them
    assert len(store.list_runs()) == 2


def test_a_full_queue_refuses_one_more_run_and_lists_the_waiting_ones(store, data_dir):
    waiting = [queue.ask_for_run(quick(seed=seed), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id for seed in (1, 2)]
    with pytest.raises(LimitError) as refused:
        queue.ask_for_run(quick(seed=3), owner=ANA, store=store, data_dir=data_dir, classroom=True)
    assert "you already have 2 runs waiting" in str(refused.value) and all(run_id in str(refused.value) for run_id in waiting)
    queue.ask_for_run(quick(seed=3), owner=BEN, store=store, data_dir=data_dir, classroom=True)  # Ben's own queue is empty
    queue.cancel(waiting[0], store, by=ANA)
    queue.ask_for_run(quick(seed=3), owner=ANA, store=store, data_dir=data_dir, classroom=True)  # room again


def test_limits_survive_a_restart(store, store_backend):
    save_limits(store, ClassLimits(max_epochs=3, allowed_presets=("quick-demo", "fast-cnn-quick"), max_queued_per_student=1), by=TEACHER)
    assert load_limits(Store(store.root)) == ClassLimits(
        max_epochs=3, allowed_presets=("quick-demo", "fast-cnn-quick"), max_queued_per_student=1
    )
    if store_backend == "sqlite":  # a fresh SQLite store is another folder (PostgreSQL: another database, the same here)
        assert load_limits(Store(store.root.parent / "fresh")) == ClassLimits()  # the defaults: 2 runs waiting per student
    with pytest.raises(ValueError, match="allowed presets"):
        ClassLimits(allowed_presets=("alexnet",))


# ---------------------------------------------------------------- the leaderboard


def test_the_leaderboard_ranks_each_students_best_run_per_task(store, data_dir):
    ana_low = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    ana_high = queue.ask_for_run(quick(seed=2), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    ben = queue.ask_for_run(quick(seed=3), owner=BEN, store=store, data_dir=data_dir, classroom=True).run_id
    for run_id, accuracy in ((ana_low, 0.40), (ana_high, 0.55), (ben, 0.50)):
        finish(store, run_id, accuracy)
    # Carl reuses Ana's best.
    followed = queue.ask_for_run(quick(seed=2), owner=CARL, store=store, data_dir=data_dir, classroom=True, reuse=True)
    assert followed.outcome == "trained before"
    board = leaderboard(store)
    # Carl's row is a copy of Ana's: listed after the ranked rows, never ranked (tests/test_shared_runs.py).
    assert [(row["rank"], row["student"], row["copy_of"]) for row in board] == [(1, "Ana", None), (2, "Ben", None), (None, "Carl", "Ana")]
    assert board[0]["run_id"] == board[2]["run_id"] == ana_high  # Ana's best, not her first; Carl's by reuse
    assert [row["accuracy"] for row in board] == [0.55, 0.50, 0.55]


def test_on_a_one_vs_rest_task_the_board_ranks_by_the_class_f1_not_accuracy(store, data_dir):
    """Saying "not truck" every time scores 90%: the model that finds trucks ranks first, though less accurate."""
    truck = {"task": "one-vs-rest:truck"}
    says_no = queue.ask_for_run(quick(seed=1, **truck), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    finds = queue.ask_for_run(quick(seed=2, **truck), owner=BEN, store=store, data_dir=data_dir, classroom=True).run_id
    finish(store, says_no, 0.90, positive_precision=0.0, positive_recall=0.0, positive_f1=0.0)
    finish(store, finds, 0.88, positive_precision=0.45, positive_recall=0.6, positive_f1=0.51)
    board = leaderboard(store)
    assert [(row["student"], row["rank"], row["score"]) for row in board] == [("Ben", 1, 0.51), ("Ana", 2, 0.0)]
    assert [row["accuracy"] for row in board] == [0.88, 0.90]  # shown beside the F1


def test_a_challenge_ranks_only_the_runs_that_meet_it_and_says_why_the_others_do_not(store, data_dir):
    fast = queue.ask_for_run(quick(seed=1), owner=ANA, store=store, data_dir=data_dir, classroom=True).run_id
    slow = queue.ask_for_run(quick(seed=2), owner=BEN, store=store, data_dir=data_dir, classroom=True).run_id
    big = queue.ask_for_run(quick(seed=3), owner=CARL, store=store, data_dir=data_dir, classroom=True).run_id
    finish(store, fast, 0.45, train_seconds=90)
    finish(store, slow, 0.60, train_seconds=300)
    finish(store, big, 0.70, train_seconds=60, params=500_000)
    challenge = Challenge(task="cifar10", max_train_seconds=120, max_params=200_000)
    save_challenge(store, challenge, by=TEACHER)
    board = leaderboard(store, challenge)
    # Only Ana's run meets the challenge; the others come after it, unranked, best first, each with its reason.
    assert [(row["student"], row["rank"], row["qualifies"]) for row in board] == [
        ("Ana", 1, True),
        ("Carl", None, False),
        ("Ben", None, False),
    ]
    assert board[1]["why_not"] == "500,000 parameters, over the 200,000 limit"
    assert board[2]["why_not"] == "trained 300 s, over the 120 s limit"
    assert challenge.describe() == "cifar10, at most 120 s of training and at most 200,000 parameters"


# ---------------------------------------------------------------- the teacher's password


def test_classroom_mode_is_on_when_a_teacher_password_is_configured(monkeypatch):
    monkeypatch.delenv("LAB_TEACHER_PASSWORD", raising=False)
    assert teacher.configured_password(None) is None
    assert teacher.configured_password({}) is None
    assert teacher.configured_password({"teacher_password": "from-secrets"}) == "from-secrets"
    monkeypatch.setenv("LAB_TEACHER_PASSWORD", "from-env")
    assert teacher.configured_password({"teacher_password": "from-secrets"}) == "from-env"


def test_a_wrong_teacher_password_is_refused_after_a_delay(monkeypatch):
    # Every wait is recorded (and still waited): the right password must not wait at all, whatever the machine's load.
    waits, real_sleep = [], time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: (waits.append(seconds), real_sleep(seconds))[1])
    assert teacher.is_teacher_password("open sesame", "open sesame", delay=0.3)
    assert waits == []  # the right one answers at once
    for wrong in ("open", "", "open sesame!"):
        started = time.perf_counter()
        assert not teacher.is_teacher_password(wrong, "open sesame", delay=0.3)
        assert time.perf_counter() - started >= 0.3
    assert waits == [0.3, 0.3, 0.3]  # the recorder sees the delay: a wait on the right one could not hide from it
    assert not teacher.is_teacher_password("anything", None, delay=0.0)  # classroom mode off: nobody is the teacher


def test_two_students_asking_at_the_same_moment_queue_one_run(store, data_dir):
    """The search for the same run and the new row happen in one transaction: simultaneous clicks never train twice."""
    import threading

    students = [Person(f"student-{number}", f"Student {number}") for number in range(8)]
    barrier = threading.Barrier(len(students))
    outcomes = []

    def click(person: Person) -> None:
        barrier.wait()
        outcomes.append(queue.ask_for_run(quick(), owner=person, store=store, data_dir=data_dir, classroom=True, reuse=True).outcome)

    threads = [threading.Thread(target=click, args=(person,)) for person in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(store.list_runs()) == 1
    assert sorted(outcomes) == ["following"] * 7 + ["queued"]


def test_a_worker_can_take_runs_first_come_first_served(store, data_dir):
    """`python -m lab.jobs.worker --order oldest`: the order a class had before the fair queue (for comparisons)."""
    from lab.jobs import worker

    save_limits(store, ClassLimits(max_queued_per_student=3), by=TEACHER)
    runs = [queue.ask_for_run(quick(seed=seed), owner=person, store=store, data_dir=data_dir, classroom=True).run_id
            for seed, person in ((1, ANA), (2, ANA), (3, BEN))]  # fmt: skip
    assert store.claim_next_queued(worker_pid=1, choose=worker.ORDERS["oldest"]) == runs[0]
    assert store.claim_next_queued(worker_pid=1, choose=worker.ORDERS["oldest"]) == runs[1]  # fair would take Ben's
