"""Lesson: the report's study as a guided path, one step at a time (classroom mode's first page).

A student walks through the steps the teacher turned on: each with its goal, its network to
train (their own run), where to look and questions to answer. The teacher sees the class's
progress step by step and sets the lesson. The free pages stay for those who go further.
"""

import streamlit as st

from lab.jobs import queue
from lab.store.runs import StoreError
from ui import identity, lesson_view
from ui.common import data_dir_setting, get_store
from ui.router import ensure_router

ensure_router("pages/lesson.py")
person = identity.require_person()
st.title("Lesson")
store = get_store()
try:
    queue.recover(store, data_dir_setting())  # marks runs whose worker died; restarts queued work after a server restart
except StoreError as error:  # LAB_HOME cannot be written (or the disk is full): nowhere to keep a run or an answer
    st.error(f"The lesson is unavailable because the results store cannot be written: {error}", icon=":material/error:")
    st.stop()

if person.is_teacher and identity.classroom_on():
    st.caption("The class's progress, step by step; below it, which steps are on and their questions.")
    st.subheader("The class's progress")
    lesson_view.progress_view(store)
    st.subheader("The lesson")
    lesson_view.lesson_form(store, person)
else:
    st.caption("The lab report's study step by step: look, train, compare, explain. Your answers and runs make your own lab report.")
    lesson_view.student_lesson(store, person)
