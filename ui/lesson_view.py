"""The Lesson page's parts: a student's stepper, one step (goal, its network, where to look, questions), and the teacher's view.

A student sees where they are ("Step 2 of 6"), trains the step's prefilled network through the
queue (their own run), watches it learn with the Train page's own run panel,
answers the questions (kept in the store as they type) and moves on. Their answers and lesson runs
make their own lab report. The teacher sees the class's progress step by step, turns steps on and
off and rewrites the questions. Every action passes the acting person to `lab`, which checks it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from lab.classroom import heavy_work, lesson_progress, preflight
from lab.classroom.lesson import (
    MOST_QUESTIONS,
    STEPS,
    Lesson,
    Step,
    class_step_config,
    load_lesson,
    save_lesson,
)
from lab.classroom.limits import LimitError
from lab.jobs import queue
from lab.store.owners import Person
from lab.store.runs import RunStore, Store
from ui import run_view
from ui.common import data_dir_setting, data_problem, get_store
from ui.live_region import live_panel

STEP_KEY = "lesson_step"  # the step this session shows
REPORT_KEY = "lesson_report_html"  # the student's lab report, once made
PROGRESS_REFRESH_SECONDS = 5


# ---------------------------------------------------------------- a student's lesson


def student_lesson(store: RunStore, person: Person) -> None:
    """The stepper, then the step this session shows."""
    lesson = load_lesson(store)
    steps = lesson.steps()
    record = lesson_progress.read_progress(store, person.id)
    if st.session_state.get(STEP_KEY) not in {step.id for step in steps}:
        st.session_state[STEP_KEY] = lesson_progress.current_step(lesson, record).id
    finished = sum(step.id in record.done for step in steps)
    st.progress(finished / len(steps), text=f"{finished} of {len(steps)} steps finished")
    st.segmented_control(
        "Steps",
        [step.id for step in steps],
        format_func=lambda step_id: _step_label(steps, step_id, record),
        key=STEP_KEY,
        help="Open any step: a tick marks the steps you finished.",
    )
    step_id = st.session_state.get(STEP_KEY) or steps[0].id  # a click on the chosen step clears the control
    index = next(number for number, step in enumerate(steps) if step.id == step_id)
    step = steps[index]
    st.header(f"Step {index + 1} of {len(steps)}: {step.title}")
    st.markdown(f"**Goal:** {step.goal}")
    st.caption(f"In the exact terms: {step.term}")
    if step.trains:
        _train_part(store, person, step)
    st.page_link(step.look_at, label=f"Look at it: {step.look_label}", icon=":material/visibility:")
    _questions(store, person, step, record)
    _next_button(store, person, steps, index)
    _report_download(store, person)


def _step_label(steps: list[Step], step_id: str, record: lesson_progress.StudentProgress) -> str:
    number = next(number for number, step in enumerate(steps, start=1) if step.id == step_id)
    mark = "✓ " if step_id in record.done else ""
    return f"{mark}{number}. {next(step.title for step in steps if step.id == step_id)}"


def _train_part(store: RunStore, person: Person, step: Step) -> None:
    """The step's prefilled network, the button that trains it, and its run's live panel."""
    try:
        config, changes = class_step_config(store, step)
    except LimitError as error:
        st.error(f"The class's limits do not allow this step's network: {error} Ask your teacher.", icon=":material/block:")
        return
    images = f"{config.subset:,} training images" if config.subset else "all 50,000 training images"
    st.markdown(f"**This step's network:** the `{config.model}` preset, {config.epochs} epoch(s), {images}.")
    if changes:
        st.caption("Fitted to the class's limits: " + "; ".join(changes) + ".")
    if config.is_pretrained and config.weights == "none":
        st.info(preflight.WEIGHTS_NONE_NOTE, icon=":material/info:")
    not_ready = preflight.weights_refusal(config)
    if not_ready:
        st.warning(not_ready[:1].upper() + not_ready[1:] + " Ask your teacher.", icon=":material/block:")
    missing_data = data_problem()
    if missing_data:
        st.warning(f"Training needs CIFAR-10 on this server. {missing_data}", icon=":material/dataset:")
    if st.button(
        "Train this step's network",
        type="primary",
        icon=":material/play_arrow:",
        disabled=bool(missing_data or not_ready),
        key=f"lesson_train_{step.id}",
        help="Queues your own run with these settings; it keeps training if you change page.",
    ):
        try:
            request = queue.ask_for_run(config, owner=person, store=store, data_dir=data_dir_setting(), classroom=True)
            lesson_progress.record_run(store, person, step.id, request.run_id)
        except (ValueError, PermissionError) as error:  # the class's limits, a full queue, or a run not theirs
            st.error(str(error), icon=":material/block:")
        else:
            run_view.remember(request.run_id)
            if request.outcome != "queued":
                st.info(request.message[:1].upper() + request.message[1:] + ".", icon=":material/recycling:")
    run = lesson_progress.step_run(store, person.id, step.id)
    if run is not None:
        run_view.show_run(run, person)  # the Train page's own panel: live progress, then the results


def _questions(store: RunStore, person: Person, step: Step, record: lesson_progress.StudentProgress) -> None:
    """One text area per question; each answer is kept in the store as soon as it is typed (on leaving the box)."""
    st.subheader("Questions")
    for index, question in enumerate(step.questions):
        key = f"lesson_answer_{step.id}_{index}"
        if key not in st.session_state:
            st.session_state[key] = record.answer(step.id, index)
        st.text_area(
            f"{index + 1}. {question}",
            key=key,
            max_chars=lesson_progress.ANSWER_MAX_CHARS,
            on_change=_save_answer,
            args=(person, step.id, index, key),
            placeholder="Your answer, in your own words",
        )


def _save_answer(person: Person, step_id: str, index: int, key: str) -> None:
    try:
        lesson_progress.record_answer(get_store(), person, step_id, index, st.session_state[key])
    except ValueError as error:
        st.toast(str(error), icon=":material/error:")
    else:
        st.toast("Answer saved.", icon=":material/check:")


def _next_button(store: RunStore, person: Person, steps: list[Step], index: int) -> None:
    last = index == len(steps) - 1
    st.button(
        "Finish the lesson" if last else "Next step",
        icon=":material/flag:" if last else ":material/arrow_forward:",
        key="lesson_next",
        on_click=_finish_step,  # a callback: it runs before the stepper is drawn, so it can move it
        args=(person, steps[index].id, None if last else steps[index + 1].id),
    )


def _finish_step(person: Person, step_id: str, next_step_id: str | None) -> None:
    lesson_progress.mark_done(get_store(), person, step_id)
    if next_step_id is not None:
        st.session_state[STEP_KEY] = next_step_id
    else:
        st.toast("Lesson finished: well done. Download your lab report below.", icon=":material/celebration:")


def _report_download(store: RunStore, person: Person) -> None:
    """The student's own lab report: their lesson runs and their answers, made on request, then downloaded."""
    st.subheader("Your lab report")
    run_ids = lesson_progress.lesson_runs(store, person.id)
    if not run_ids:
        st.caption("Your lab report needs one finished run of a lesson step: train one first.")
        return
    if st.button("Make my lab report", icon=":material/article:", key="lesson_make_report", help=REPORT_HELP):
        try:
            with st.spinner("Writing your lab report: every chart is drawn ..."):
                st.session_state[REPORT_KEY] = report_bytes(str(store.root), person, run_ids)
        except heavy_work.BusyError as error:
            st.warning(str(error), icon=":material/hourglass_top:")
    if REPORT_KEY in st.session_state:
        st.download_button(
            "Download my lab report (HTML)",
            st.session_state[REPORT_KEY],
            file_name="my-lab-report.html",
            mime="text/html",
            on_click="ignore",
            icon=":material/download:",
            key="lesson_report",
        )


REPORT_HELP = "Your runs of the lesson (data, models, results beside the report's, curves, findings) and your answers, as one page."


def report_bytes(root: str, person: Person, run_ids: list[str]) -> bytes:
    """The lab report of `run_ids` with `person`'s lesson answers, as HTML."""
    from lab.report.lab_report import build_report
    from lab.report.writers import write_report

    store = Store(root)
    answers = lesson_progress.answers_for_report(store, person.id)
    with heavy_work.slot(person, "the lab report", wait_seconds=30), tempfile.TemporaryDirectory(prefix="lab-report-") as folder:
        return write_report(build_report(store, run_ids, answers=answers), Path(folder) / "lab-report.html").read_bytes()


# ---------------------------------------------------------------- the teacher's view


def progress_view(store: RunStore) -> None:
    """The class's progress, student by step, redrawn every few seconds."""
    live_panel(_progress_panel, every=PROGRESS_REFRESH_SECONDS, name="lesson-progress")(str(store.root))


def _progress_panel(root: str) -> None:
    store = Store(root)
    lesson = load_lesson(store)
    steps = lesson.steps()
    rows = lesson_progress.progress(store, lesson)
    if not rows:
        st.info("No student has joined yet.", icon=":material/group:")
        return
    titles = {step.id: f"{number}. {step.title}" for number, step in enumerate(steps, start=1)}
    table = [{"student": row["student"], **{titles[s.id]: lesson_progress.STATE_MARKS[row[s.id]] for s in steps}} for row in rows]
    counts = {"student": "answered (✓)", **{titles[s.id]: str(sum(row[s.id] == lesson_progress.ANSWERED for row in rows)) for s in steps}}
    st.table(pd.DataFrame([*table, counts]), hide_index=True)
    st.caption("✓ answered every question (and trained the step's network); … begun: a run trained or some answers; – not started.")


def lesson_form(store: RunStore, teacher: Person) -> None:
    """Which steps are on, and their questions (one per line). The pretrained steps' weights are the Teacher page's pre-flight."""
    lesson = load_lesson(store)
    st.caption(
        "The steps' networks follow the class's limits. Whether the pretrained steps start from ImageNet weights "
        "is set in the pre-flight on the Teacher page."
    )
    with st.form("lesson_form", border=True):
        chosen, questions = [], {}
        for number, step in enumerate(STEPS, start=1):
            own = lesson.questions.get(step.id, step.questions)
            on = st.toggle(f"{number}. {step.title}", value=step.id in lesson.steps_on, key=f"lesson_on_{step.id}")
            text = st.text_area(
                f"Questions of step {number}, one per line (at most {MOST_QUESTIONS})",
                "\n".join(own),
                key=f"lesson_questions_{step.id}",
                height=100,
            )
            chosen += [step.id] if on else []
            lines = tuple(line.strip() for line in text.splitlines() if line.strip())
            if lines != step.questions:
                questions[step.id] = lines
        if st.form_submit_button("Save the lesson", type="primary", icon=":material/save:"):
            try:
                save_lesson(store, Lesson(tuple(chosen), questions), by=teacher)
            except (PermissionError, ValueError) as error:  # a bad value, or lab's check: not the teacher after all
                st.error(str(error), icon=":material/error:")
            else:
                st.success("Lesson saved: students see it on their next click.", icon=":material/check:")
