"""The one cookie the app sets: the token by which a browser proves who it is (ui/identity.py decides who that is).

Our own small component rather than a cookie package: about twenty lines that can be read whole, and no third-party code in every student's page.

A Streamlit component's JavaScript runs in the app's own page, so it can write `document.cookie`; the
browser then sends the cookie with the websocket request that opens every later session (a refresh,
a new tab, tomorrow), where `st.context.cookies` reads it. Within one session the cookie read at its
start does not change, so ui/identity.py keeps the session's token in st.session_state.

The cookie: Path=/ (every page), SameSite=Strict (never sent with a request another site starts),
Secure over HTTPS, and a Max-Age of a school term or so; clearing it sets Max-Age=0. It is never in an
address, so a copied link carries no identity. JavaScript on the page can read it (a cookie written
from JavaScript cannot be HttpOnly), which is why the store keeps only its hash and Leave ends it there.
"""

from __future__ import annotations

import streamlit as st
import streamlit.components.v2 as components

COOKIE_NAME = "lab_identity"
MAX_AGE_SECONDS = 180 * 24 * 60 * 60
_COMPONENT_KEY = "lab_identity_cookie"

# The component's whole code: called with the data of each mount, it writes the cookie or clears it.
_WRITE_COOKIE_JS = """
export default function ({ data }) {
  if (!data || !data.name) return;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const value = data.token ? encodeURIComponent(data.token) : "";
  const maxAge = data.token ? data.maxAge : 0;
  document.cookie = `${data.name}=${value}; Path=/; Max-Age=${maxAge}; SameSite=Strict${secure}`;
}
"""

_write_cookie = components.component("lab_identity_cookie", js=_WRITE_COOKIE_JS)


def token_sent() -> str | None:
    """The token this browser sent when the session started (None without one)."""
    value = st.context.cookies.get(COOKIE_NAME)
    return value if isinstance(value, str) and value else None  # AppTest, which sends no cookies, answers with a stand-in


def keep(token: str) -> None:
    """Have the browser keep `token` in the cookie (an invisible element; its code runs once the page has it)."""
    _write_cookie(data={"name": COOKIE_NAME, "token": token, "maxAge": MAX_AGE_SECONDS}, key=_COMPONENT_KEY)


def clear() -> None:
    """Have the browser forget the cookie."""
    _write_cookie(data={"name": COOKIE_NAME, "token": None}, key=_COMPONENT_KEY)
