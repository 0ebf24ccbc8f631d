"""Login through Streamlit (`[auth]`, OpenID Connect), without a browser: the dependency, and who a session is.

The whole path, with a real provider and real browsers, is tests/test_browser_login.py. Here:
- `streamlit[auth]` is declared, so a configured `[auth]` finds Authlib (it failed with ModuleNotFoundError).
- With login configured, the login is the only identity: a browser that joined by name earlier
  (its token read from its cookie) is asked to log in, and a logged-in account is that account
  whatever token its browser holds. AppTest sets st.user as Streamlit does once `[auth]` exists.
- An email the provider marks unverified is not the identity: anyone could type a classmate's.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from streamlit.testing.v1 import AppTest

from lab.classroom import identities
from lab.jobs import launcher
from lab.store.runs import Store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TOKEN_KEY = "classroom_browser_token"  # where ui/identity.py keeps the token it read from the browser's cookie


@pytest.fixture(autouse=True)
def _classroom(monkeypatch):
    monkeypatch.setenv("LAB_TEACHER_PASSWORD", "apples-and-pears")
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: None)


def test_streamlit_auth_is_declared_and_authlib_is_there():
    # pyproject.toml declares it once; every requirement file installs this project with it (tests/test_dependencies.py).
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    streamlit = [Requirement(line) for line in declared if line.strip().startswith("streamlit")]
    assert [requirement.extras for requirement in streamlit] == [{"auth"}]
    from streamlit.auth_util import is_authlib_installed

    assert is_authlib_installed()  # what st.login checks before it starts


def session(user: dict, browser_token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.user = user
    if browser_token is not None:
        at.session_state[TOKEN_KEY] = browser_token
    at.run()
    assert not at.exception, at.exception
    return at


def sidebar_text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.sidebar.markdown)


def test_with_login_configured_a_name_identity_is_never_used():
    joined = identities.join(Store(), "Ana")
    assert "you are Ana" in sidebar_text(session({"email": "x@y"}, joined.browser_token))  # precondition: without login it is Ana

    at = session({"is_logged_in": False}, joined.browser_token)  # [auth] configured, nobody logged in yet
    assert [title.value for title in at.title] == ["Welcome to the class"]
    assert [button.key for button in at.button if button.key == "classroom_login"] == ["classroom_login"]
    assert not [field for field in at.text_input if field.label == "Your name"]
    assert "you are Ana" not in sidebar_text(at)

    at = session({"is_logged_in": True, "email": "ben@school.example", "name": "Ben"}, joined.browser_token)
    assert "you are Ben" in sidebar_text(at) and "you are Ana" not in sidebar_text(at)
    assert "classroom_log_out" in [button.key for button in at.sidebar.button]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"sub": "g-1", "email": "ana@school.example", "email_verified": True}, "login:ana@school.example"),
        ({"sub": "m-2", "email": "ana@school.example"}, "login:ana@school.example"),  # a provider that says nothing either way
        ({"sub": "x-9", "email": "ana@school.example", "email_verified": False}, "login:x-9"),  # typed, not proven: its sub
    ],
)
def test_an_unverified_email_is_not_the_identity(monkeypatch, claims, expected):
    import streamlit

    from ui import identity

    monkeypatch.setattr(streamlit, "user", {"is_logged_in": True, "name": "Ana", **claims})  # what st.user holds after login
    assert identity._login_person().id == expected


def test_a_login_named_like_the_teacher_is_told_apart_and_shared_names_reach_the_teacher():
    # The provider's name cannot be refused, so a student whose account is called "Teacher" (or a look-alike) must
    # not pass for the teacher on the leaderboard, and two accounts named Ana must show on the Teacher panel.
    for name in ("Teacher", "ＴＥＡＣＨＥＲ", "Тeacher"):  # plain, fullwidth, a Cyrillic Т
        assert identities.login_person("x@school.example", name).name.endswith("(student)")
    assert identities.login_person("ana@school.example", "Ana").name == "Ana"

    store = Store()
    session({"is_logged_in": True, "email": "ana.m@school.example", "name": "Ana"})
    session({"is_logged_in": True, "email": "ana.k@school.example", "name": "ANA"})
    groups = identities.people_sharing_a_name(store)
    assert [sorted(person["person_id"] for person in group) for group in groups] == [
        ["login:ana.k@school.example", "login:ana.m@school.example"]
    ]
