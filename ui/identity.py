"""Who is using the app: classroom mode on or off, the current person, the teacher.

Classroom mode is on when a teacher password is configured (LAB_TEACHER_PASSWORD, or
`teacher_password` in .streamlit/secrets.toml); otherwise everyone is the local user and
nothing is asked. In classroom mode a student is:
- their login, when Streamlit's own authentication is configured (`[auth]` in secrets);
- otherwise an identity made when they join with their name (lab/classroom/identities.py). Their
  browser keeps its proof, a random token, in a cookie (ui/browser_cookie.py), so a refresh, a new
  tab or a closed and reopened browser keeps it, and the session keeps it across page changes. It is
  never in an address: a copied link, a bookmark or a hand-made `?id=` makes nobody anybody. Joining
  shows a short secret once; with their name it brings a student back on another computer ("Joined
  before?"). "Leave" in the sidebar ends the identity on this browser.

The teacher unlocks their panel with the password in the sidebar. The check happens in the
input's callback, which then empties the input, so the password is never kept in the
session, shown again, or put in the address. A session that unlocks it keeps its identity
and gains the teacher's rights; without one it is "the teacher".

Permissions are decided in `lab` (lab/store/owners.py); `may_manage` only asks it, so the
pages can hide buttons that `lab` would refuse anyway.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import streamlit as st

from lab.classroom import identities, teacher
from lab.classroom.names import NAME_MAX_CHARS, NameRefusedError, clean_name
from lab.store.owners import Person, check_may_manage, local_person
from lab.store.runs import Run, StoreError
from ui import browser_cookie
from ui.common import get_store

# What this session knows of its person: the browser token (its proof, server memory only), and the id and name it gave.
TOKEN_KEY = "classroom_browser_token"
ID_KEY = "classroom_person_id"
NAME_KEY = "classroom_person_name"
LEFT_KEY = "classroom_left"  # this session left: the cookie it started with is not read again
NEW_SECRET_KEY = "classroom_new_secret"  # the rejoin secret, shown once after joining until "I wrote it down"
JOIN_ERROR_KEY = "classroom_join_refused"
REJOIN_ERROR_KEY = "classroom_rejoin_refused"
REJOIN_NAME_WIDGET = "classroom_rejoin_name"
REJOIN_SECRET_WIDGET = "classroom_rejoin_secret"
TEACHER_KEY = "classroom_teacher"
REFUSED_KEY = "classroom_teacher_refused"
PASSWORD_WIDGET = "classroom_teacher_password"
NAME_WIDGET = "classroom_your_name"
TEACHER_ID, TEACHER_NAME = "teacher", "Teacher"
LOGIN_PREFIX = identities.LOGIN_PREFIX
LOGIN_REMEMBERED_KEY = "classroom_login_remembered"


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


def may_manage(person: Person | None, run: Run) -> bool:
    """Whether `person` may cancel, stop or delete `run`: asks lab's own rule, which also enforces it."""
    if person is None:
        return False
    try:
        check_may_manage(person, run, "change")
    except PermissionError:
        return False
    return True


def is_mine(person: Person | None, run: Run) -> bool:
    return person is not None and run.owner_id == person.id


def _login_person() -> Person | None:
    """The logged-in account as a person: `login:` and its email, else its `sub` (the provider's permanent id for it).

    The email is used only when the provider does not say it is unverified: an account that could
    type any email address must not become the classmate whose address it typed. The identity comes
    from Streamlit's signed login cookie, never from the address, so a copied link carries none.
    """
    if not st.user.get("is_logged_in"):
        return None
    email = st.user.get("email") if st.user.get("email_verified") is not False else None
    key = email or st.user.get("sub")
    if not key:
        return None
    person = identities.login_person(str(key), str(st.user.get("name") or str(key).split("@")[0]))
    if st.session_state.get(LOGIN_REMEMBERED_KEY) != person:
        # Once a session: the teacher's list of names that read the same includes logins. A store that cannot be
        # written leaves the login working; only that list misses it.
        with contextlib.suppress(StoreError):
            identities.remember_login(get_store(), person)
            st.session_state[LOGIN_REMEMBERED_KEY] = person
    return person


def _log_out() -> None:
    """The Log out button's callback: teacher rights end with the login, then Streamlit forgets the login (st.logout)."""
    _end_teacher_session("You logged out, so the teacher panel is locked.")
    st.logout()


def _named_person() -> Person | None:
    """The person whose token this browser holds: the session's token, else the cookie the browser sent when the session began.

    The store is asked on every run, so Leave in one tab ends the identity in the browser's other tabs too.
    """
    state = st.session_state
    token = state.get(TOKEN_KEY)
    from_cookie = token is None and not state.get(LEFT_KEY)
    if from_cookie:
        token = browser_cookie.token_sent()
    if not token:
        return None
    try:
        person = identities.person_for_browser(get_store(), token, seen=from_cookie)
    except StoreError:  # the store cannot be read just now: the session's own person stays who they were
        return Person(state[ID_KEY], state[NAME_KEY]) if state.get(TOKEN_KEY) == token and state.get(ID_KEY) else None
    if person is None:  # a token no one was given, or one that has left
        for key in (TOKEN_KEY, ID_KEY, NAME_KEY):
            state.pop(key, None)
        return None
    state[TOKEN_KEY], state[ID_KEY], state[NAME_KEY] = token, person.id, person.name
    return person


def _become(person: Person, token: str) -> None:
    """This session is now `person`; its browser keeps `token` (the sidebar writes the cookie)."""
    state = st.session_state
    state[TOKEN_KEY], state[ID_KEY], state[NAME_KEY] = token, person.id, person.name
    state.pop(LEFT_KEY, None)


def _join() -> None:
    """The name input's callback: a new person, always (nothing the browser sends is adopted), and their secret to show once."""
    state = st.session_state
    name = state.get(NAME_WIDGET) or ""
    if not clean_name(name) or _named_person() is not None:  # Enter then the button: one join, not two
        return
    try:
        joined = identities.join(get_store(), name)
    except NameRefusedError as refusal:
        state[JOIN_ERROR_KEY] = str(refusal)
        return
    except StoreError as error:
        state[JOIN_ERROR_KEY] = f"The class's records cannot be written just now, so you cannot join yet: {error}"
        return
    _become(joined.person, joined.browser_token)
    state[NEW_SECRET_KEY] = identities.show_secret(joined.secret)


def _rejoin() -> None:
    """The rejoin form's callback: name and secret give this browser a new token for that person; the typed secret is then forgotten."""
    state = st.session_state
    name, secret = state.get(REJOIN_NAME_WIDGET) or "", state.get(REJOIN_SECRET_WIDGET) or ""
    state[REJOIN_SECRET_WIDGET] = ""
    if not (name.strip() and secret.strip()):
        state[REJOIN_ERROR_KEY] = "Type the name you joined with and your secret."
        return
    try:
        person, token = identities.rejoin(get_store(), name, secret)
    except identities.RejoinRefusedError as refusal:
        state[REJOIN_ERROR_KEY] = str(refusal)
        return
    except StoreError as error:
        state[REJOIN_ERROR_KEY] = f"The class's records cannot be read just now: {error}"
        return
    _become(person, token)


def _leave() -> None:
    """The Leave button's callback: this browser's token ends in the store, and the cookie is cleared at the next draw."""
    state = st.session_state
    with contextlib.suppress(StoreError):  # the session forgets it either way; the sidebar clears the cookie
        identities.leave(get_store(), state.get(TOKEN_KEY))
    for key in (TOKEN_KEY, ID_KEY, NAME_KEY, NEW_SECRET_KEY, TEACHER_KEY):
        state.pop(key, None)
    state[LEFT_KEY] = True


def keep_identity_in_browser() -> None:
    """Write or clear the cookie when this session's token differs from what the browser sent (an invisible element)."""
    if not classroom_on() or auth_configured():
        return
    state, sent = st.session_state, browser_cookie.token_sent()
    token = state.get(TOKEN_KEY)
    if token and token != sent:
        browser_cookie.keep(token)
    elif state.get(LEFT_KEY) and not token and sent:
        browser_cookie.clear()


def show_new_secret() -> None:
    """Once, after joining: the rejoin secret, until the student says they wrote it down."""
    secret, name = st.session_state.get(NEW_SECRET_KEY), st.session_state.get(NAME_KEY)
    if not (secret and name):
        return
    with st.container(border=True):
        st.subheader(f":material/key: Your secret: {secret}", anchor=False)
        st.write(
            f"Write it down now. With your name ({name}), it brings you back as yourself on another computer or browser. "
            "It is shown only this once, and the teacher cannot see it either."
        )
        st.button("I wrote it down", icon=":material/check:", key="classroom_secret_done", on_click=_secret_written_down)


def _secret_written_down() -> None:
    st.session_state.pop(NEW_SECRET_KEY, None)


def ask_who_you_are() -> None:
    """The main area before a classroom visitor is someone: their login, or their name."""
    st.title("Welcome to the class")
    if auth_configured():  # the login is the only identity then: no name to type, nothing kept in the address
        st.write("Log in with your school account, so that your runs are yours and your results appear under your name.")
        st.button("Log in", type="primary", icon=":material/login:", on_click=st.login, key="classroom_login")
        return
    st.write("Several people share this lab. Join with your name: your runs are kept under it, and this browser remembers you.")
    st.text_input("Your name", max_chars=NAME_MAX_CHARS, key=NAME_WIDGET, on_change=_join, placeholder="First name and initial")
    st.button("Join the class", type="primary", icon=":material/login:", on_click=_join, key="classroom_join")
    if refusal := st.session_state.pop(JOIN_ERROR_KEY, None):
        st.error(refusal, icon=":material/person_off:")
    rejoin_refusal = st.session_state.pop(REJOIN_ERROR_KEY, None)
    with st.expander("Joined before? Come back with your secret", icon=":material/key:", expanded=rejoin_refusal is not None):
        st.write("On another computer or browser, type the name you joined with and the secret you were shown (like K7QP-3XMA).")
        with st.form("classroom_rejoin_form", border=False):
            st.text_input("Name you joined with", max_chars=NAME_MAX_CHARS, key=REJOIN_NAME_WIDGET)
            st.text_input("Your secret", max_chars=20, key=REJOIN_SECRET_WIDGET, placeholder="K7QP-3XMA", autocomplete="off")
            st.form_submit_button("Rejoin", icon=":material/login:", on_click=_rejoin)
        if rejoin_refusal:
            st.error(rejoin_refusal, icon=":material/lock:")
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
    if auth_configured() and st.user.get("is_logged_in"):  # on a shared computer, the way to stop being this account
        st.button("Log out", icon=":material/logout:", on_click=_log_out, key="classroom_log_out")
    elif person is not None and st.session_state.get(TOKEN_KEY):  # a joined name, not a login: Leave ends it on this browser
        with st.popover("Leave", icon=":material/logout:"):
            st.write(
                f"Leaving makes this browser forget that you are {person.name}. To come back as {person.name}, here or on "
                "another computer, you need your name and the secret you were shown when you joined."
            )
            st.button("Leave on this browser", type="primary", icon=":material/logout:", on_click=_leave, key="classroom_leave")
    keep_identity_in_browser()


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
