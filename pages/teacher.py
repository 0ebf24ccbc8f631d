"""Teacher: the class's queue, any run's buttons, the class's limits and challenge, its results, a fresh start.

Listed in the navigation only for a session that gave the teacher password (ui/identity.py);
`lab` checks the teacher's rights again on every action.
"""

import streamlit as st

from ui import identity, lesson_view, teacher_views
from ui.common import get_store
from ui.router import ensure_router

ensure_router("pages/teacher.py")

person = identity.require_person()
st.title("Teacher")
if not person.is_teacher or not identity.classroom_on():
    st.error("This page is for the teacher: enter the teacher password in the sidebar.", icon=":material/lock:")
    st.stop()
store = get_store()

st.subheader("Before the lesson: what this server has")
st.caption("A run that needs something missing here is not offered to students, so no job fails for a reason known now.")
teacher_views.preflight_view(store, person)

st.subheader("The class's queue")
st.caption("Running runs, then the waiting ones in the order they will start: one student after another, not first come, first served.")
teacher_views.queue_view(store)

st.subheader("The lesson, step by step")
lesson_view.progress_view(store)
st.page_link("pages/lesson.py", label="Turn steps on or off and edit the questions on the Lesson page", icon=":material/route:")

st.subheader("Any run")
teacher_views.manage_run(store, person)

limits_column, challenge_column = st.columns(2, gap="large")
with limits_column:
    st.subheader("Class limits")
    st.caption("What one student may start. Kept in the results store, so they survive a restart.")
    teacher_views.limits_form(store, person)
with challenge_column:
    st.subheader("Challenge")
    st.caption("A task and a budget: the class leaderboard on Compare then ranks only the runs that meet it.")
    teacher_views.challenge_form(store, person)

teacher_views.shared_names(store)  # drawn only when two students' names read the same

st.subheader("The class's results")
st.download_button(
    "Download the class's results (CSV)",
    teacher_views.class_results_csv(store),
    file_name="class-results.csv",
    mime="text/csv",
    icon=":material/download:",
    key="teacher_csv",
)

st.subheader("Tries at the teacher password")
st.caption(
    "Every try, newest first: when, from which student's identity, and whether it was accepted. "
    "After 5 wrong tries within 10 minutes teacher sign-in locks for everyone; "
    "`python -m lab teacher unlock` on the server clears it."
)
teacher_views.sign_in_attempts(store)

with st.expander("Start afresh: clear the class's runs", icon=":material/delete_sweep:"):
    teacher_views.clear_class(store, person)
