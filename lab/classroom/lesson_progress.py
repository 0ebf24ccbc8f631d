"""Where each student is in the lesson: their answers, the runs they trained for each step, the steps they finished.

Kept per person in the store's settings (one JSON value under `lesson_progress:<person id>`), so it
survives a restart and needs no table of its own. A student writes only their own record: every
function takes the acting person, and a run counts for a step only when it is that person's (started
or followed). The teacher reads everyone's with `progress` (each student x each step).

A change reads the record, changes it and writes it back; two tabs of one student (two sessions, two
threads of the server) could otherwise each read the same record and the later write would drop the
earlier change, so each change holds the server's lock for the record while it does so.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from lab.classroom.lesson import STEPS_BY_ID, Lesson, LessonError, Step, load_lesson
from lab.store.interface import RunStore
from lab.store.owners import NotYourRunError, Person, require_person
from lab.store.records import Run, Status

PROGRESS_PREFIX = "lesson_progress:"
ANSWER_MAX_CHARS = 2_000
_CHANGING = threading.Lock()  # one change of a student's record at a time in this process
# A step's state, from nothing to all done: the teacher's table draws them as -, ... and a tick.
NOT_STARTED, STARTED, RUN_TRAINED, ANSWERED = "not started", "started", "run trained", "answered"
STATE_MARKS = {NOT_STARTED: "–", STARTED: "…", RUN_TRAINED: "…", ANSWERED: "✓"}


@dataclass
class StudentProgress:
    """One student's record: answers by step and question number, run ids by step (oldest first), steps finished."""

    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    runs: dict[str, list[str]] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)

    def answer(self, step_id: str, index: int) -> str:
        return self.answers.get(step_id, {}).get(str(index), "")

    def state(self, step: Step) -> str:
        """How far this student got with `step` (its questions as the teacher set them)."""
        answered = all(self.answer(step.id, index).strip() for index in range(len(step.questions)))
        has_run = bool(self.runs.get(step.id))
        if answered and (has_run or not step.trains):
            return ANSWERED
        if has_run:
            return RUN_TRAINED
        if step.id in self.done or any(text.strip() for text in self.answers.get(step.id, {}).values()):
            return STARTED
        return NOT_STARTED


def _key(person_id: str) -> str:
    return PROGRESS_PREFIX + person_id


def read_progress(store: RunStore, person_id: str) -> StudentProgress:
    values = store.get_setting(_key(person_id)) or {}
    return StudentProgress(
        answers={
            str(step): {str(index): str(text) for index, text in (answers or {}).items()}
            for step, answers in values.get("answers", {}).items()
        },
        runs={str(step): [str(run_id) for run_id in run_ids] for step, run_ids in values.get("runs", {}).items()},
        done=[str(step_id) for step_id in values.get("done", [])],
    )


@contextlib.contextmanager
def _changing(store: RunStore, person_id: str) -> Iterator[StudentProgress]:
    """The person's record, to change inside the block; written back when the block ends, under the lock."""
    with _CHANGING:
        record = read_progress(store, person_id)
        yield record
        store.set_setting(_key(person_id), {"answers": record.answers, "runs": record.runs, "done": record.done})


def _step(step_id: str, lesson: Lesson) -> Step:
    step = next((step for step in lesson.steps() if step.id == step_id), None)
    if step is None:
        known = "is not on in this lesson" if step_id in STEPS_BY_ID else "does not exist"
        raise LessonError(f"step {step_id!r} {known}.")
    return step


def record_answer(store: RunStore, person: Person, step_id: str, question_index: int, text: str) -> None:
    """Keep `person`'s answer to question `question_index` of step `step_id` (an empty text clears it)."""
    person = require_person(person)
    step = _step(step_id, load_lesson(store))
    if not isinstance(question_index, int) or not 0 <= question_index < len(step.questions):
        raise LessonError(f"step '{step.title}' has {len(step.questions)} question(s); there is no question {question_index!r}.")
    if not isinstance(text, str) or len(text) > ANSWER_MAX_CHARS:
        raise LessonError(f"an answer may be up to {ANSWER_MAX_CHARS:,} characters long.")
    with _changing(store, person.id) as record:
        record.answers.setdefault(step_id, {})[str(question_index)] = text


def record_run(store: RunStore, person: Person, step_id: str, run_id: str) -> None:
    """Count run `run_id` for `person`'s step `step_id`: it must be theirs, started or followed (NotYourRunError otherwise)."""
    person = require_person(person)
    step = _step(step_id, load_lesson(store))
    if not step.trains:
        raise LessonError(f"step '{step.title}' trains nothing: it is about looking.")
    if run_id not in {run.run_id for run in store.runs_of(person.id)}:
        raise NotYourRunError(f"run {run_id} is not {person.name}'s: only a run of their own counts for their lesson.")
    with _changing(store, person.id) as record:
        runs = record.runs.setdefault(step_id, [])
        if run_id not in runs:
            runs.append(run_id)


def mark_done(store: RunStore, person: Person, step_id: str) -> None:
    """Note that `person` finished step `step_id` and moved on."""
    person = require_person(person)
    _step(step_id, load_lesson(store))
    with _changing(store, person.id) as record:
        if step_id not in record.done:
            record.done.append(step_id)


def current_step(lesson: Lesson, record: StudentProgress) -> Step:
    """The first step that is on and not finished; the last one when every step is finished."""
    steps = lesson.steps()
    return next((step for step in steps if step.id not in record.done), steps[-1])


def progress(store: RunStore, lesson: Lesson | None = None) -> list[dict[str, str]]:
    """The teacher's table: one row per student who joined, with each step's state (NOT_STARTED ... ANSWERED)."""
    lesson = lesson or load_lesson(store)
    rows = []
    for person in store.people():
        record = read_progress(store, person["person_id"])
        row = {"student": person["name"]}
        row.update({step.id: record.state(step) for step in lesson.steps()})
        rows.append(row)
    return rows


def lesson_runs(store: RunStore, person_id: str, *, status: Status = Status.COMPLETED) -> list[str]:
    """The run ids `person_id` trained for the lesson's steps, newest of each step, still theirs and in `status`."""
    record = read_progress(store, person_id)
    theirs = {run.run_id: run for run in store.runs_of(person_id, status)}
    chosen = []
    for step_id in STEPS_BY_ID:
        latest = next((run_id for run_id in reversed(record.runs.get(step_id, [])) if run_id in theirs), None)
        if latest is not None and latest not in chosen:
            chosen.append(latest)
    return chosen


def answers_for_report(store: RunStore, person_id: str, lesson: Lesson | None = None) -> list[dict[str, str]]:
    """Each question of the lesson's steps with `person_id`'s answer (empty when unanswered): what the lab report lists."""
    lesson = lesson or load_lesson(store)
    record = read_progress(store, person_id)
    return [
        {"step": step.title, "question": question, "answer": record.answer(step.id, index)}
        for step in lesson.steps()
        for index, question in enumerate(step.questions)
    ]


def step_run(store: RunStore, person_id: str, step_id: str) -> Run | None:
    """The newest run `person_id` trained for step `step_id` that is still theirs (any status), or None."""
    recorded = read_progress(store, person_id).runs.get(step_id, [])
    theirs = {run.run_id: run for run in store.runs_of(person_id)}
    return next((theirs[run_id] for run_id in reversed(recorded) if run_id in theirs), None)
