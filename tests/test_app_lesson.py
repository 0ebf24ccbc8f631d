"""The Lesson page through the app (AppTest): a student walks the steps, answers and trains; the teacher sees and sets it.

Uses test_app_classroom's fixtures (classroom mode on, no worker ever started, no download tried):
Start only queues a run, which is enough to check that it is the student's own, with the step's settings.
"""

from __future__ import annotations

import pytest

from lab.classroom import lesson_progress, preflight
from lab.classroom.lesson import Lesson, load_lesson, save_lesson
from lab.classroom.limits import ClassLimits, save_limits
from lab.store.records import Status
from lab.store.runs import Store

# _classroom and tiny_data are fixtures: classroom mode on (no worker, no download), and a tiny data folder.
from tests.test_app_classroom import TEACHER, _classroom, as_teacher, open_page, session, student, texts, tiny_data  # noqa: F401

PAGE = "pages/lesson.py"


def headers(at) -> list[str]:
    return [header.value for header in at.header]


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_data")
def test_a_student_answers_trains_and_moves_on():
    save_limits(Store(), ClassLimits(max_epochs=1, max_train_images=200), by=TEACHER)
    ana, ben = student("Ana"), student("Ben")
    at = open_page(session(ana), PAGE)
    assert at.title[0].value == "Lesson" and headers(at) == ["Step 1 of 6: The data"]
    at.text_area(key="lesson_answer_data_0").set_value("cat and dog look alike").run()
    assert lesson_progress.read_progress(Store(), ana.id).answer("data", 0) == "cat and dog look alike"
    at.button(key="lesson_next").click().run()
    assert headers(at) == ["Step 2 of 6: A CNN from scratch"] and not at.exception
    assert "seed-cnn" in texts(at) and "1 epoch(s), 200 training images" in texts(at)  # the class's limits, already applied
    assert "Fitted to the class's limits: epochs: 3 → 1" in texts(at)

    at.button(key="lesson_train_scratch").click().run()
    assert not at.exception and not at.error, [error.value for error in at.error]
    run = lesson_progress.step_run(Store(), ana.id, "scratch")
    assert run is not None and run.owner_id == ana.id and run.status is Status.QUEUED
    assert (run.config.model, run.config.epochs, run.config.subset) == ("seed-cnn", 1, 200)

    # Ben's lesson is his own: none of Ana's answers, none of her runs; his Start trains his own network.
    other = open_page(session(ben), PAGE)
    assert headers(other) == ["Step 1 of 6: The data"] and other.text_area(key="lesson_answer_data_0").value == ""
    assert lesson_progress.step_run(Store(), ben.id, "scratch") is None


def test_the_teacher_sees_the_class_and_sets_the_lesson():
    ana = student("Ana")
    lesson_progress.record_answer(Store(), ana, "data", 0, "an answer")
    lesson_progress.record_answer(Store(), ana, "data", 1, "another")
    at = open_page(as_teacher(), PAGE)
    table = at.table[0].value
    assert "Ana" in table["student"].tolist() and table.iloc[0]["1. The data"] == "✓" and table.iloc[0]["2. A CNN from scratch"] == "–"
    at.toggle(key="lesson_on_finetune").set_value(False)
    at.text_area(key="lesson_questions_data").set_value("What surprised you?")
    at.button(key="FormSubmitter:lesson_form-Save the lesson").click().run()
    assert not at.exception and at.success, [error.value for error in at.error]
    lesson = load_lesson(Store())
    assert "finetune" not in lesson.steps_on and lesson.questions["data"] == ("What surprised you?",)


def test_a_student_sees_only_the_steps_that_are_on():
    save_lesson(Store(), Lesson(steps_on=("scratch", "predict")), by=TEACHER)
    at = open_page(session(student("Ana")), PAGE)
    assert headers(at) == ["Step 1 of 2: A CNN from scratch"]
    assert at.table == [] or "student" not in at.table[0].value.columns  # no class table for a student


@pytest.mark.usefixtures("tiny_data")
def test_a_step_whose_weights_are_missing_says_so_before_the_click(monkeypatch):
    from lab.models import pretrained

    monkeypatch.setattr(pretrained, "cached_imagenet_weights", lambda *args, **kwargs: None)  # offline: no ImageNet files
    at = session(student("Ana"))
    at.session_state["lesson_step"] = "frozen"
    open_page(at, PAGE)
    assert headers(at) == ["Step 3 of 6: A frozen pretrained backbone"]
    assert at.button(key="lesson_train_frozen").disabled and "ImageNet weights for vgg16" in texts(at)

    preflight.switch_weights_none(Store(), "vgg16", True, by=TEACHER)  # the teacher's pre-flight switch
    at.run()
    assert not at.button(key="lesson_train_frozen").disabled and "ImageNet weights for vgg16" not in texts(at)
    assert preflight.WEIGHTS_NONE_NOTE in texts(at)
