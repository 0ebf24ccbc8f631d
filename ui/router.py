"""Keep every visitor inside the app's router, even one who arrives by a bookmarked page address.

Streamlit decides how to route a session before it runs any script. On a freshly started
server, until `streamlit_app.py` has called `st.navigation` once, a visit straight to
`/compare` is served the old way: `pages/compare.py` runs on its own, without the shared
sidebar, the wide layout or the page titles. `ensure_router` notices that the router has
not run in this session and sends the visitor through `streamlit_app.py`, which then opens
the page that was asked for. The address's parameters travel along both switches (a switch
clears them otherwise): in classroom mode one of them is the student's identity (ui/identity.py).
"""

from __future__ import annotations

import streamlit as st

ROUTER_RAN = "router_ran"
PENDING_PAGE = "router_pending_page"


def mark_router_ran() -> None:
    st.session_state[ROUTER_RAN] = True


def ensure_router(page_path: str) -> None:
    """Call first thing on every page: re-enter through the router if it was skipped."""
    if not st.session_state.get(ROUTER_RAN):
        st.session_state[PENDING_PAGE] = page_path
        st.switch_page("streamlit_app.py", query_params=st.query_params.to_dict())


def open_pending_page() -> None:
    """Open the page a visitor asked for before being sent through the router (once), keeping the address's parameters."""
    if pending := st.session_state.pop(PENDING_PAGE, None):
        st.switch_page(pending, query_params=st.query_params.to_dict())
