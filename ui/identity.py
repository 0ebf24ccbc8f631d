"""Who is using the app: classroom mode on or off, the current person, the teacher.

Classroom mode is on when a teacher password is configured (LAB_TEACHER_PASSWORD, or
`teacher_password` in .streamlit/secrets.toml); otherwise everyone is the local user and
nothing is asked. In classroom mode a student is:
- their login, when Streamlit's own authentication is configured (`[auth]` in secrets);
- otherwise a private random identity made the first time they give their name. It lives in
  the address (`?id=...`), so a refresh or a bookmark keeps it, and in the session, so a page
  switch (which clears the address's parameters) keeps it too; the store remembers the name.

The teacher unlocks their panel with the password in the sidebar. The check happens in the
input's callback, which then empties the input, so the password is never kept in the
session, shown again, or put in the address. A session that unlocks it keeps its identity
and gains the teacher's rights; without one it is "the teacher".

Permissions are decided in `lab` (lab/store/owners.py); `may_manage` only asks it, so the
pages can hide buttons that `lab` would refuse anyway.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import UTC, datetime

import streamlit as st

from lab.classroom import teacher
from lab.store.owners import Person, check_may_manage, local_person
from lab.store.runs import StoreError
from ui.common import get_store

ID_PARAM = "id"  # the address parameter that holds a student's private identity
ID_KEY = "classroom_person_id"
NAME_KEY = "classroom_person_name"
TEACHER_KEY = "classroom_teacher"
REFUSED_KEY = "classroom_teacher_refused"
PASSWORD_WIDGET = "classroom_teacher_password"
NAME_WIDGET = "classroom_your_name"
TEACHER_ID, TEACHER_NAME = "teacher", "Teacher"
LOGIN_PREFIX = "login:"
NAME_MAX_CHARS = 40
# What `secrets.token_urlsafe(16)` makes. Anything else in the address is ignored, so a hand-typed
# `?id=teacher` or `?id=local` can never borrow the teacher's or the laptop user's runs.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")


# ---------------------------------------------------------------- the mode


def classroom_on() -> bool:
    """Whether a teacher password is configured. Read on every run, so setting one needs no restart."""
    return _teacher_password() is not None


def _teacher_password() -> str | None:
    # st.secrets raises when there is no secrets.toml (not configured) and when one cannot be read (ClassroomConfigError).
    return teacher.configured_password(st.secrets, secrets_files=st.get_option("secrets.files"))


def auth_configured() -> bool:
    """Whether Streamlit's own login is set up (`[auth]` in secrets): st.user then carries is_logged_in."""
    return "is_logged_in" in st.user


# ---------------------------------------------------------------- the person


def current_person() -> Person | None:
    """The person using this session; None in classroom mode until a student has said who they are."""
    if not classroom_on():
        return local_person()
    person = _login_person() if auth_configured() else _named_person()
    if teacher_session_active():
        return Person(person.id, person.name, is_teacher=True) if person else Person(TEACHER_ID, TEACHER_NAME, is_teacher=True)
    return person


def require_person() -> Person:
    """The current person; in classroom mode, until the visitor has said who they are, the prompt instead and the page stops.

    The router already asks before any page opens; this keeps a page that runs on its own
    (a page address before the router ran, a test) from acting for nobody.
    """
    person = current_person()
    if person is None:
        ask_who_you_are()
        st.stop()
    return person


def may_manage(person: Person | None, run: dict) -> bool:
    """Whether `person` may cancel, stop or delete `run`: asks lab's own rule, which also enforces it."""
    if person is None:
        return False
    try:
        check_may_manage(person, run, "change")
    except PermissionError:
        return False
    return True


def is_mine(person: Person | None, run: dict) -> bool:
    return person is not None and run.get("owner_id") == person.id


def _login_person() -> Person | None:
    if not st.user.get("is_logged_in"):
        return None
    key = st.user.get("email") or st.user.get("sub")
    if not key:
        return None
    name = clean_name(str(st.user.get("name") or str(key).split("@")[0])) or "student"
    return Person(f"{LOGIN_PREFIX}{key}", name)


def _named_person() -> Person | None:
    """The private identity of this browser: from the session, else from the address (a refresh, a bookmark)."""
    state = st.session_state
    person_id, name = state.get(ID_KEY), state.get(NAME_KEY)
    if not (person_id and name):
        person_id = _token_in_address()
        name = _known_name(person_id) if person_id else None
        if not name:
            return None
        state[ID_KEY], state[NAME_KEY] = person_id, name
    if st.query_params.get(ID_PARAM) != person_id:
        st.query_params[ID_PARAM] = person_id  # a page switch clears the address's parameters: put it back
    return Person(person_id, name)


def _token_in_address() -> str | None:
    token = st.query_params.get(ID_PARAM)
    return token if token and TOKEN_PATTERN.fullmatch(token) else None


def _known_name(person_id: str) -> str | None:
    try:
        return get_store().person_name(person_id)
    except StoreError:
        return None


def clean_name(text: str) -> str:
    """A display name safe to show anywhere (Markdown, tables, CSV): letters, digits, spaces, ' . -; at most 40 characters."""
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " .-'")
    return " ".join(kept.split())[:NAME_MAX_CHARS].strip()


def _join() -> None:
    """The name input's callback: a new private identity, kept in the session, the address and the store."""
    name = clean_name(st.session_state.get(NAME_WIDGET) or "")
    if not name:
        return
    person_id = _token_in_address() or secrets.token_urlsafe(16)  # a bookmark whose store was reset keeps its identity
    # If the store cannot be written, the name is still kept in this session and its address; only a refresh would ask again.
    with contextlib.suppress(StoreError):
        get_store().remember_person(person_id, name)
    st.session_state[ID_KEY], st.session_state[NAME_KEY] = person_id, name
    st.query_params[ID_PARAM] = person_id


def ask_who_you_are() -> None:
    """The main area before a classroom visitor is someone: their login, or their name."""
    st.title("Welcome to the class")
    if auth_configured():
        st.write("Log in, so that your runs are yours and your results appear under your name.")
        st.button("Log in", type="primary", icon=":material/login:", on_click=st.login, key="classroom_login")
        return
    st.write(
        "Several people share this lab. Give your name once: your runs are kept under it, and the address of this page "
        "becomes your own (bookmark it to come back as yourself)."
    )
    st.text_input("Your name", max_chars=NAME_MAX_CHARS, key=NAME_WIDGET, on_change=_join, placeholder="First name and initial")
    st.button("Join the class", type="primary", icon=":material/login:", on_click=_join, key="classroom_join")
    st.caption("Teacher? Unlock your panel with the teacher password at the bottom of the sidebar.")


# ---------------------------------------------------------------- the teacher
# The teacher unlocks the panel with the password; lab (lab/classroom/teacher.py) limits the guesses for the whole
# deployment and decides when an unlocked panel ends: after LAB_TEACHER_SESSION_HOURS, at "Lock", or when the password
# changes. The session keeps only a TeacherSession (when, and a keyed fingerprint of the password), never the password.

TEACHER_SESSION_KEY = "classroom_teacher_session"
TEACHER_ENDED_KEY = "classroom_teacher_ended"


def _check_password() -> None:
    """The password input's callback: try it (lab counts and records the try), then empty the input, so it is kept nowhere."""
    state = st.session_state
    given = state.get(PASSWORD_WIDGET) or ""
    state[PASSWORD_WIDGET] = ""
    if not given:
        return
    password = _teacher_password()
    try:
        # A wrong one answers only after a pause. The pause is read here, not bound when lab was imported, so tests can shorten it.
        outcome = teacher.sign_in(get_store(), given, password, current_person(), delay=teacher.WRONG_PASSWORD_DELAY_SECONDS)
    except StoreError as error:  # the try cannot be counted, so it is not checked either
        outcome = teacher.SignInOutcome(False, None, f"Teacher sign-in is not possible now: {error}")
    state[TEACHER_KEY] = outcome.accepted
    if outcome.accepted:
        state[TEACHER_SESSION_KEY] = teacher.TeacherSession.start(password)
        state.pop(TEACHER_ENDED_KEY, None)
    else:
        state[REFUSED_KEY] = outcome.message


def teacher_session_active() -> bool:
    """Whether this session's teacher panel is unlocked: ends it, saying why, once it is too old or the password changed."""
    state = st.session_state
    if not state.get(TEACHER_KEY):
        return False
    session = state.get(TEACHER_SESSION_KEY)
    if not isinstance(session, teacher.TeacherSession):
        why = "The teacher panel is locked: enter the teacher password to open it."
    else:
        hours = teacher.session_hours(st.secrets, secrets_files=st.get_option("secrets.files"))
        why = session.why_ended(datetime.now(UTC), _teacher_password(), hours)
    if why:
        _end_teacher_session(why)
        return False
    return True


def _end_teacher_session(why: str) -> None:
    st.session_state[TEACHER_KEY] = False
    st.session_state.pop(TEACHER_SESSION_KEY, None)
    st.session_state[TEACHER_ENDED_KEY] = why


def _lock_teacher_panel() -> None:
    _end_teacher_session("The teacher panel is locked. Enter the teacher password to open it again.")


def check_configuration() -> None:
    """Read the classroom configuration once, first thing: raises ClassroomConfigError when it cannot be read."""
    if classroom_on():
        teacher.session_hours(st.secrets, secrets_files=st.get_option("secrets.files"))


def sidebar_mode() -> None:
    """The sidebar's first line: which mode the app is in, and who you are in it."""
    if not classroom_on():
        st.markdown(":material/person: **Single-user mode**")
        return
    person = current_person()
    if person is not None and person.is_teacher:
        who = TEACHER_NAME if person.id == TEACHER_ID else f"{TEACHER_NAME} ({person.name})"
        st.markdown(f":material/school: **Classroom mode:** {who}")
    elif person is not None:
        st.markdown(f":material/school: **Classroom mode:** you are {person.name}")
    else:
        st.markdown(":material/school: **Classroom mode:** tell us who you are")


def sidebar_teacher() -> None:
    """At the bottom of the sidebar in classroom mode: the teacher password, or the button that locks the teacher panel."""
    if not classroom_on():
        return
    st.divider()
    if teacher_session_active():
        st.button("Lock the teacher panel", icon=":material/lock:", on_click=_lock_teacher_panel, key="classroom_leave_teacher")
        return
    if ended := st.session_state.pop(TEACHER_ENDED_KEY, None):
        st.info(ended, icon=":material/lock_clock:")
    st.text_input("Teacher password", type="password", key=PASSWORD_WIDGET, on_change=_check_password, autocomplete="off")
    if refused := st.session_state.pop(REFUSED_KEY, None):
        st.error(refused if isinstance(refused, str) else teacher.NOT_ACCEPTED, icon=":material/lock:")
