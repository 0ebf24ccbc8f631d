"""Streamlit helpers shared by the pages: cached access to the library, the sidebar, who is using the app.

This is the only place besides `pages/` and `streamlit_app.py` that imports streamlit.
"""
