"""The guided lesson in `lab`: steps on and off, only the teacher sets it, answers kept per person, the teacher's table,
and every training step's prefilled settings within tight class limits (queued without a refusal)."""

from __future__ import annotations

import threading

import pytest

from lab.classroom import lesson_progress, preflight
from lab.classroom.lesson import (
    STEP_IDS,
    STEPS_BY_ID,
    Lesson,
    LessonError,
    class_step_config,
    load_lesson,
    save_lesson,
    step_config,
)
from lab.classroom.limits import ClassLimits, LimitError, save_limits
from lab.jobs import launcher, queue
from lab.report.lab_report import build_report
from lab.store.owners import NotTheTeacherError, NotYourRunError, Person
from lab.store.runs import Store
from tests.test_classroom import finish

ANA = Person("p-ana", "Ana")
BEN = Person("p-ben", "Ben")
TEACHER = Person("teacher", "Teacher", is_teacher=True)
TIGHT = ClassLimits(max_epochs=1, max_train_images=200, max_input_size=32, max_queued_per_student=5)


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains: the tests play the worker
    store = Store(tmp_path / "lab_home")
    for person in (ANA, BEN):
        store.remember_person(person.id, person.name)
    return store


def training_steps():
    return [step for step in Lesson().steps() if step.trains]


def test_the_lesson_follows_the_report_and_steps_turn_off(store):
    assert [step.id for step in load_lesson(store).steps()] == list(STEP_IDS)  # every step on until the teacher says otherwise
    assert STEP_IDS == ("data", "scratch", "frozen", "finetune", "compare", "predict")
    assert [step.preset for step in training_steps()] == ["seed-cnn", "vgg16-frozen", "vgg16-finetune"]
    for step in STEPS_BY_ID.values():
        assert step.goal.endswith(".") and step.term and 1 <= len(step.questions) <= 2 and step.look_at.startswith("pages/")

    save_lesson(store, Lesson(steps_on=("data", "scratch", "predict"), questions={"data": ("What do you see?",)}), by=TEACHER)
    chosen = load_lesson(store).steps()
    assert [step.id for step in chosen] == ["data", "scratch", "predict"]
    assert chosen[0].questions == ("What do you see?",) and chosen[1].questions == STEPS_BY_ID["scratch"].questions
    with pytest.raises(LessonError, match="at least one step"):
        Lesson(steps_on=())
    with pytest.raises(LessonError, match="no step"):
        Lesson(steps_on=("data", "homework"))
    with pytest.raises(LessonError, match="questions"):
        Lesson(questions={"data": ()})


def test_only_the_teacher_saves_the_lesson(store):
    save_lesson(store, Lesson(steps_on=("data",)), by=TEACHER)
    assert [step.id for step in load_lesson(store).steps()] == ["data"]  # the teacher's save took: the refusal below is real
    for someone in (ANA, Person("teacher-look-alike", "Teacher")):
        with pytest.raises(NotTheTeacherError):
            save_lesson(store, Lesson(), by=someone)
    with pytest.raises(TypeError):
        save_lesson(store, Lesson(), by=None)
    assert [step.id for step in load_lesson(store).steps()] == ["data"]


def test_every_training_step_fits_tight_limits_and_queues_without_a_refusal(store):
    save_limits(store, TIGHT, by=TEACHER)
    preflight.switch_weights_none(store, "vgg16", True, by=TEACHER)  # no ImageNet files offline: the class's pre-flight switch
    for step in training_steps():
        config, changes = class_step_config(store, step)
        assert (config.epochs, config.subset, config.input_size) == (1, 200, 32) and config.model == step.preset
        assert config.weights == "none" and any("epochs" in change for change in changes)
        assert queue.ask_for_run(config, owner=ANA, store=store, classroom=True).outcome == "queued"
    # Unfitted, the same presets break the limits: fitting is what made them start.
    with pytest.raises(LimitError):
        TIGHT.check(step_config(training_steps()[0], ClassLimits())[0])
    assert step_config(training_steps()[1], ClassLimits())[0].weights == "imagenet"  # without the switch, the preset's own weights


def test_a_preset_the_teacher_did_not_allow_is_named(store):
    limits = ClassLimits(allowed_presets=("seed-cnn",))
    assert step_config(training_steps()[0], limits)[0].model == "seed-cnn"
    with pytest.raises(LimitError, match="only these models"):
        step_config(training_steps()[2], limits)


def test_each_student_trains_their_own_run_of_a_step(store):
    scratch = training_steps()[0]
    ana = queue.ask_for_run(class_step_config(store, scratch)[0], owner=ANA, store=store, classroom=True)
    ben = queue.ask_for_run(class_step_config(store, scratch)[0], owner=BEN, store=store, classroom=True)
    assert (ana.outcome, ben.outcome) == ("queued", "queued") and ana.run_id != ben.run_id  # two networks learn, not one


def test_answers_are_kept_per_person(store):
    lesson_progress.record_answer(store, ANA, "data", 0, "cat and dog")
    lesson_progress.record_answer(store, BEN, "data", 0, "ship and airplane")
    lesson_progress.record_answer(store, ANA, "data", 1, "it would be cheating")
    assert lesson_progress.read_progress(store, ANA.id).answer("data", 0) == "cat and dog"
    assert lesson_progress.read_progress(store, BEN.id).answer("data", 0) == "ship and airplane"
    assert lesson_progress.read_progress(store, BEN.id).answer("data", 1) == ""
    with pytest.raises(LessonError, match="no question"):
        lesson_progress.record_answer(store, ANA, "data", 5, "?")
    with pytest.raises(LessonError, match="characters"):
        lesson_progress.record_answer(store, ANA, "data", 0, "x" * (lesson_progress.ANSWER_MAX_CHARS + 1))
    save_lesson(store, Lesson(steps_on=("scratch",)), by=TEACHER)
    with pytest.raises(LessonError, match="not on"):
        lesson_progress.record_answer(store, ANA, "data", 0, "a step the teacher turned off")
    with pytest.raises(TypeError):
        lesson_progress.record_answer(store, None, "scratch", 0, "nobody")


def test_a_run_counts_only_for_its_owner(store):
    config = class_step_config(store, training_steps()[0])[0]
    run_id = queue.ask_for_run(config, owner=ANA, store=store, classroom=True).run_id
    lesson_progress.record_run(store, ANA, "scratch", run_id)
    assert lesson_progress.step_run(store, ANA.id, "scratch").run_id == run_id
    with pytest.raises(NotYourRunError):  # Ben had the id (it was Ana's run), and it does not count as his
        lesson_progress.record_run(store, BEN, "scratch", run_id)
    assert lesson_progress.step_run(store, BEN.id, "scratch") is None
    with pytest.raises(LessonError, match="trains nothing"):
        lesson_progress.record_run(store, ANA, "data", run_id)


def test_the_teachers_table_and_the_students_place(store):
    lesson = Lesson()
    config = class_step_config(store, training_steps()[0])[0]
    run_id = queue.ask_for_run(config, owner=ANA, store=store, classroom=True).run_id
    for index in range(2):
        lesson_progress.record_answer(store, ANA, "data", index, "an answer")
    lesson_progress.mark_done(store, ANA, "data")
    lesson_progress.record_run(store, ANA, "scratch", run_id)
    lesson_progress.record_answer(store, BEN, "data", 0, "half done")
    rows = {row["student"]: row for row in lesson_progress.progress(store, lesson)}
    assert rows["Ana"]["data"] == lesson_progress.ANSWERED and rows["Ana"]["scratch"] == lesson_progress.RUN_TRAINED
    assert rows["Ana"]["frozen"] == lesson_progress.NOT_STARTED
    assert rows["Ben"]["data"] == lesson_progress.STARTED and rows["Ben"]["scratch"] == lesson_progress.NOT_STARTED
    assert lesson_progress.current_step(lesson, lesson_progress.read_progress(store, ANA.id)).id == "scratch"
    assert lesson_progress.current_step(lesson, lesson_progress.read_progress(store, BEN.id)).id == "data"
    for index in range(2):
        lesson_progress.record_answer(store, ANA, "scratch", index, "learned")
    assert {row["student"]: row for row in lesson_progress.progress(store, lesson)}["Ana"]["scratch"] == lesson_progress.ANSWERED


def test_the_students_lab_report_holds_their_answers_and_runs(store):
    save_limits(store, TIGHT, by=TEACHER)
    config = class_step_config(store, training_steps()[0])[0]
    run_id = queue.ask_for_run(config, owner=ANA, store=store, classroom=True).run_id
    lesson_progress.record_run(store, ANA, "scratch", run_id)
    assert lesson_progress.lesson_runs(store, ANA.id) == []  # only finished runs go into the report
    finish(store, run_id, accuracy=0.4)
    lesson_progress.record_answer(store, ANA, "scratch", 0, "it went up every epoch")
    assert lesson_progress.lesson_runs(store, ANA.id) == [run_id]
    report = build_report(store, lesson_progress.lesson_runs(store, ANA.id), answers=lesson_progress.answers_for_report(store, ANA.id))
    answers = report.sections[-1]
    assert answers.title.endswith("Lesson answers")
    rows = {row[1]: row[2] for row in answers.blocks[0].rows}
    assert rows[STEPS_BY_ID["scratch"].questions[0]] == "it went up every epoch"
    assert rows[STEPS_BY_ID["data"].questions[0]] == "(not answered)"
    assert all("Lesson answers" not in section.title for section in build_report(store, [run_id]).sections)


def test_changes_from_several_tabs_at_once_are_all_kept(store):
    """Two tabs of one student are two server threads: every answer each of them saves stays, none overwrites another."""
    questions = [(step.id, index) for step in Lesson().steps() for index in range(len(step.questions))]
    start = threading.Barrier(len(questions))

    def save(step_id: str, index: int) -> None:
        start.wait()
        lesson_progress.record_answer(store, ANA, step_id, index, f"{step_id} {index}")

    threads = [threading.Thread(target=save, args=question) for question in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = lesson_progress.read_progress(store, ANA.id)
    assert len(questions) > 5 and all(record.answer(step_id, index) == f"{step_id} {index}" for step_id, index in questions)
