"""CIFAR-10 Lab: the entry point. It sets up the page, draws the shared sidebar and routes to a page.

Run it with `streamlit run streamlit_app.py` (set CIFAR10_DIR to a local copy of CIFAR-10).
Each page lives in pages/ and only draws widgets; the work happens in the `lab` package.
In classroom mode (a teacher password is configured: ui/identity.py) a visitor says who they
are before any page opens, and the teacher gets a page of their own.
"""

import streamlit as st

from ui import identity
from ui.common import return_freed_memory
from ui.router import mark_router_ran, open_pending_page
from ui.sidebar import render_sidebar

st.set_page_config(page_title="CIFAR-10 Lab", page_icon=":material/science:", layout="wide")

person = identity.current_person()  # before st.navigation: the teacher's page is listed for the teacher only
pages = [
    st.Page("pages/explore.py", title="Explore", icon=":material/image_search:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/photo_camera:"),
]
if identity.classroom_on() and person is not None and person.is_teacher:
    pages.append(st.Page("pages/teacher.py", title="Teacher", icon=":material/school:"))
page = st.navigation(pages)
mark_router_ran()
open_pending_page()  # a bookmarked page address that arrived before the router ran
render_sidebar()
if person is not None:
    page.run()
else:
    identity.ask_who_you_are()
return_freed_memory()
