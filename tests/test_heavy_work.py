"""Heavy work in the server process (Grad-CAM, the learning-rate finder, evaluation, the report) is bounded, tried with threads.

Each Streamlit session runs its script in a thread of one process, so threads here are sessions:
one person cannot run two at once (a second tab), and the whole class no more than
LAB_HEAVY_WORK_SLOTS; the rest wait a moment and are told to try again, never left hanging.
"""

from __future__ import annotations

import threading
import time

import pytest

from lab.classroom import heavy_work
from lab.classroom.heavy_work import BusyError
from lab.store.owners import Person

ANA, BEN, CARL = (Person(f"{name.lower()}-token", name) for name in ("Ana", "Ben", "Carl"))


@pytest.fixture(autouse=True)
def two_slots(monkeypatch):
    monkeypatch.setenv("LAB_HEAVY_WORK_SLOTS", "2")


class Holding:
    """A thread that holds a slot for `person` until released."""

    def __init__(self, person: Person, what: str = "Grad-CAM"):
        self.entered, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(person, what))
        self.thread.start()
        assert self.entered.wait(5), "the slot was never taken"

    def _hold(self, person: Person, what: str) -> None:
        with heavy_work.slot(person, what):
            self.entered.set()
            self.release.wait(10)

    def done(self) -> None:
        self.release.set()
        self.thread.join(5)


def try_in_thread(person: Person, what: str, wait_seconds: float) -> BaseException | str:
    """Ask for a slot from another thread (another session); return "ran" or the error."""
    outcome: list = []

    def ask() -> None:
        try:
            with heavy_work.slot(person, what, wait_seconds=wait_seconds):
                outcome.append("ran")
        except BusyError as error:
            outcome.append(error)

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join(10)
    return outcome[0]


def test_one_person_does_one_heavy_thing_at_a_time():
    first_tab = Holding(ANA, "Grad-CAM")
    try:
        refused = try_in_thread(ANA, "the learning-rate finder", wait_seconds=0.2)  # a second tab of Ana's
        assert isinstance(refused, BusyError)
        assert "your Grad-CAM is still being computed" in str(refused) and "Try again in a few seconds" in str(refused)
        assert try_in_thread(BEN, "Grad-CAM", wait_seconds=0.2) == "ran"  # someone else is not held up
    finally:
        first_tab.done()
    assert try_in_thread(ANA, "the learning-rate finder", wait_seconds=0.2) == "ran"


def test_the_whole_process_does_at_most_the_set_number_at_once():
    holders = [Holding(ANA), Holding(BEN)]
    try:
        assert heavy_work.busy_count() == 2
        refused = try_in_thread(CARL, "evaluation", wait_seconds=0.2)
        assert isinstance(refused, BusyError) and "already doing 2 heavy jobs" in str(refused)
        waiting: list = []
        patient = threading.Thread(target=lambda: waiting.append(try_in_thread(CARL, "evaluation", wait_seconds=5)))
        patient.start()
        time.sleep(0.1)
        holders[0].done()  # a slot comes free while Carl waits: he gets it
        patient.join(10)
        assert waiting == ["ran"]
    finally:
        for holder in holders:
            holder.done()
    assert heavy_work.busy_count() == 0


def test_a_burst_of_thirty_never_runs_more_than_the_slots_and_every_one_is_answered():
    running, most, lock = [0], [0], threading.Lock()
    outcomes: list = []

    def student(number: int) -> None:
        try:
            with heavy_work.slot(Person(f"student-{number}", f"S{number}"), "Grad-CAM", wait_seconds=0.3):
                with lock:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
                time.sleep(0.1)
                with lock:
                    running[0] -= 1
            outcomes.append("ran")
        except BusyError:
            outcomes.append("busy")

    threads = [threading.Thread(target=student, args=(number,)) for number in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2 and len(outcomes) == 30
    assert "ran" in outcomes and "busy" in outcomes  # some were told to try again rather than left waiting


def test_heavy_work_inside_heavy_work_takes_one_slot():
    with heavy_work.slot(ANA, "the lab report"), heavy_work.slot(ANA, "evaluation"):
        assert heavy_work.busy_count() == 1
    assert heavy_work.busy_count() == 0
