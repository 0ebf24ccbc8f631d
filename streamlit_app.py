"""CIFAR-10 Lab: the entry point. It sets up the page, draws the shared sidebar and routes to a page.

Run it with `streamlit run streamlit_app.py` (set CIFAR10_DIR to a local copy of CIFAR-10).
Each page lives in pages/ and only draws widgets; the work happens in the `lab` package.
"""

import streamlit as st

from ui.common import return_freed_memory
from ui.router import mark_router_ran, take_pending_page
from ui.sidebar import render_sidebar

st.set_page_config(page_title="CIFAR-10 Lab", page_icon=":material/science:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/explore.py", title="Explore", icon=":material/image_search:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
        st.Page("pages/predict.py", title="Predict", icon=":material/photo_camera:"),
    ]
)
mark_router_ran()
if pending := take_pending_page():
    st.switch_page(pending)  # a bookmarked page address that arrived before the router ran
render_sidebar()
page.run()
return_freed_memory()
