"""CIFAR-10 Lab: the entry point. It sets up the page, draws the shared sidebar and routes to a page.

Run it with `streamlit run streamlit_app.py` (set CIFAR10_DIR to a local copy of CIFAR-10).
Each page lives in pages/ and only draws widgets; the work happens in the `lab` package.
In classroom mode (a teacher password is configured: ui/identity.py) a visitor joins or rejoins
before any page opens, and the teacher gets a page of their own.
"""

import streamlit as st

from lab.classroom.teacher import ClassroomConfigError
from ui import identity
from ui.common import return_freed_memory
from ui.rerun_cleanup import keep_keras_between_runs
from ui.router import mark_router_ran, open_pending_page
from ui.sidebar import render_sidebar

st.set_page_config(page_title="CIFAR-10 Lab", page_icon=":material/science:", layout="wide")
keep_keras_between_runs()  # no full garbage collection after each run: pages stay quick while the class trains
try:
    identity.check_configuration()  # a secrets file that cannot be read must not open the app without classroom mode
except ClassroomConfigError as error:
    problem = str(error)
    # One hidden page that shows the error: without st.navigation, Streamlit would list the files in pages/ instead.
    st.navigation([st.Page(lambda: st.error(problem, icon=":material/error:"), title="CIFAR-10 Lab")], position="hidden").run()
    st.stop()

person = identity.current_person()  # before st.navigation: the teacher's page is listed for the teacher only
pages = [
    st.Page("pages/explore.py", title="Explore", icon=":material/image_search:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/photo_camera:"),
]
if identity.classroom_on():  # the guided lesson leads the list; Explore stays the page a visitor lands on
    pages.insert(0, st.Page("pages/lesson.py", title="Lesson", icon=":material/route:"))
if identity.classroom_on() and person is not None and person.is_teacher:
    pages.append(st.Page("pages/teacher.py", title="Teacher", icon=":material/school:"))
page = st.navigation(pages)
mark_router_ran()
open_pending_page()  # a bookmarked page address that arrived before the router ran
render_sidebar()
if person is not None:
    identity.show_new_secret()  # once, after joining: the secret that brings them back on another computer
    page.run()
else:
    identity.ask_who_you_are()
return_freed_memory()
