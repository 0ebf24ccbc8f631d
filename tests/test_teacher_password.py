"""The teacher password: guessing limited for the whole deployment, the lock and its unlock, the session's end, secrets kept in.

Each test tries to get round one protection and checks both that the attempt really happened
(the guesses were made, the worker really started, the file really exists) and that it was refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from streamlit.testing.v1 import AppTest

from lab.classroom import identities, teacher
from lab.classroom.teacher import CHECKED, REFUSED_WHILE_LOCKED, ClassroomConfigError, SignInPolicy, TeacherSession
from lab.data import cifar10 as lab_data
from lab.jobs import launcher
from lab.store.owners import Person
from lab.store.runs import Store
from lab.system import processes
from tests.postgres_server import database_dump

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
PASSWORD = "apples-and-pears"
ANA = Person("ana-identity", "Ana")
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    return Store()  # LAB_HOME is private to each test (conftest.py)


def guess_wrong(store: Store, times: int, at: datetime, person: Person | None = ANA) -> list[teacher.SignInOutcome]:
    return [teacher.sign_in(store, f"guess-{n}", PASSWORD, person, now=at + timedelta(seconds=n), delay=0) for n in range(times)]


def kinds(store: Store) -> list[str]:
    return [row["kind"] for row in store.recent_sign_in_attempts(teacher.TEACHER_KINDS, limit=1000)]


def lab_command(*args: str) -> subprocess.CompletedProcess:
    """`python -m lab ...` on this test's LAB_HOME, as the teacher would type it on the server."""
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=os.environ.copy(), cwd=ROOT, timeout=60)


# ---------------------------------------------------------------- guessing, for the whole deployment


def test_fifty_sessions_guessing_at_once_get_five_guesses_checked(store):
    """Check and record are one transaction: simultaneous guesses cannot all slip in before the lock is read."""
    barrier = threading.Barrier(50)
    outcomes: list[teacher.SignInOutcome] = []

    def guess(number: int) -> None:
        barrier.wait()
        outcomes.append(teacher.sign_in(store, f"guess-{number}", PASSWORD, Person(f"tab-{number}", f"Tab {number}"), delay=0))

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 50 and not any(outcome.accepted for outcome in outcomes)  # all fifty really guessed
    recorded = kinds(store)
    assert recorded.count(CHECKED) == 5  # at most five were compared with the password
    assert recorded.count(REFUSED_WHILE_LOCKED) == 45 and len(recorded) == 50  # every try is on record
    locked = [outcome for outcome in outcomes if outcome.locked_until is not None]
    assert len(locked) == 46  # the fifth wrong guess locked it; the 45 after it were refused unchecked
    assert all("python -m lab teacher unlock" in outcome.message for outcome in locked)


def test_the_right_password_is_refused_while_locked_and_the_server_unlocks_it(store):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)  # the unlock command reads the real clock
    outcomes = guess_wrong(store, 5, start)
    assert [outcome.message == teacher.NOT_ACCEPTED for outcome in outcomes] == [True] * 4 + [False]
    assert outcomes[-1].locked_until == start + timedelta(seconds=4, minutes=10)
    right = teacher.sign_in(store, PASSWORD, PASSWORD, ANA, delay=0)
    assert not right.accepted and right.locked_until == outcomes[-1].locked_until
    assert "locked until" in right.message and "python -m lab teacher unlock" in right.message

    unlocked = lab_command("teacher", "unlock")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "unlocked" in unlocked.stdout
    assert teacher.sign_in(store, PASSWORD, PASSWORD, ANA, delay=0).accepted
    assert kinds(store)[:2] == [CHECKED, teacher.UNLOCKED]  # the unlock is a row of its own: the history stays whole
    assert len(kinds(store)) == 8


def test_each_lock_lasts_twice_as_long_and_knocking_does_not_extend_it(store):
    guess_wrong(store, 5, T0)
    first_until = T0 + timedelta(seconds=4, minutes=10)
    knocks = [teacher.sign_in(store, "knock", PASSWORD, None, now=T0 + timedelta(minutes=minute), delay=0) for minute in (1, 2, 3)]
    assert all(knock.locked_until == first_until for knock in knocks)  # refused guesses during a lock do not lengthen it
    assert teacher.locked_until(store, now=first_until + timedelta(seconds=1)) is None  # then it opens again

    second = guess_wrong(store, 5, first_until + timedelta(minutes=1))
    assert second[-1].locked_until == first_until + timedelta(minutes=1, seconds=4) + timedelta(minutes=20)
    third = guess_wrong(store, 5, second[-1].locked_until + timedelta(minutes=1))
    assert third[-1].locked_until - (second[-1].locked_until + timedelta(minutes=1, seconds=4)) == timedelta(minutes=40)
    assert SignInPolicy().lock_length(30) == timedelta(hours=24)  # capped


def test_wrong_guesses_spread_out_never_lock_and_the_right_password_starts_the_count_again(store):
    guess_wrong(store, 4, T0)
    guess_wrong(store, 4, T0 + timedelta(minutes=11))  # the first four are out of the ten-minute window by now
    assert teacher.locked_until(store, now=T0 + timedelta(minutes=12)) is None
    assert teacher.sign_in(store, PASSWORD, PASSWORD, None, now=T0 + timedelta(minutes=12), delay=0).accepted
    assert guess_wrong(store, 4, T0 + timedelta(minutes=13))[-1].locked_until is None  # a fresh count after the right password


def test_old_attempts_are_forgotten_but_never_those_a_lock_counts(store):
    """A script knocking on a locked sign-in for months cannot fill the disk, and waiting out the record opens no lock."""
    month = teacher.ATTEMPTS_KEPT + timedelta(days=1)
    guess_wrong(store, 5, T0)  # locked
    for minute in (1, 2, 3):
        teacher.sign_in(store, "knock", PASSWORD, None, now=T0 + timedelta(minutes=minute), delay=0)
    assert kinds(store).count(REFUSED_WHILE_LOCKED) == 3 and kinds(store).count(CHECKED) == 5
    # A month later, four wrong guesses in a row: with the old five, still nine guesses since the last fresh start.
    later = T0 + month
    last = guess_wrong(store, 4, later)[-1]
    assert REFUSED_WHILE_LOCKED not in kinds(store)  # the old knocks are gone: nothing counts them
    assert kinds(store).count(CHECKED) == 9  # no right password since: the old guesses still count toward the lock
    assert last.locked_until is None  # the window holds only the new four
    assert teacher.sign_in(store, PASSWORD, PASSWORD, None, now=later + timedelta(minutes=1), delay=0).accepted
    teacher.sign_in(store, "typo", PASSWORD, None, now=later + month, delay=0)  # a month after the right password
    assert kinds(store) == [CHECKED, CHECKED]  # the typo and the fresh start it is counted from; the older ones went


def test_a_wrong_guess_is_answered_after_a_short_pause(store):
    started = time.perf_counter()
    assert not teacher.sign_in(store, "wrong", PASSWORD, None, delay=0.2).accepted
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    assert teacher.sign_in(store, PASSWORD, PASSWORD, None, delay=0.2).accepted
    assert time.perf_counter() - started < 0.2


def test_the_password_is_never_recorded_nor_printed(store):
    guess_wrong(store, 5, datetime.now(UTC))
    teacher.sign_in(store, PASSWORD, PASSWORD, ANA, delay=0)
    listed = lab_command("teacher", "attempts")
    as_json = lab_command("teacher", "attempts", "--json")
    unlocked = lab_command("teacher", "unlock")
    assert listed.returncode == as_json.returncode == unlocked.returncode == 0
    assert "Ana (ana-identity)" in listed.stdout and "wrong password" in listed.stdout and '"person_name": "Ana"' in as_json.stdout
    for text in (listed.stdout, listed.stderr, as_json.stdout, unlocked.stdout):
        assert PASSWORD not in text
    dump = database_dump(store)
    assert "guess-0" not in dump and PASSWORD not in dump  # neither the guesses nor the password are stored
    assert "Ana" in dump  # the precondition: the tries themselves are


# ---------------------------------------------------------------- the teacher's session


def test_a_session_ends_after_its_hours_and_when_the_password_changes():
    session = TeacherSession.start(PASSWORD, now=T0)
    assert PASSWORD not in repr(session)
    assert session.still_valid(T0 + timedelta(hours=7, minutes=59), PASSWORD)
    assert not session.still_valid(T0 + timedelta(hours=8), PASSWORD)
    assert "after 8 hours" in session.why_ended(T0 + timedelta(hours=8), PASSWORD)
    assert session.still_valid(T0 + timedelta(hours=2), PASSWORD, hours=3)
    assert not session.still_valid(T0 + timedelta(minutes=1), "a-new-password")
    assert "password was changed" in session.why_ended(T0 + timedelta(minutes=1), "a-new-password")
    assert not session.still_valid(T0 + timedelta(minutes=1), None)  # classroom mode switched off


def test_the_session_length_comes_from_the_environment_or_the_secrets(monkeypatch):
    monkeypatch.delenv("LAB_TEACHER_SESSION_HOURS", raising=False)
    assert teacher.session_hours({}) == 8
    assert teacher.session_hours({"teacher_session_hours": 2}) == 2
    monkeypatch.setenv("LAB_TEACHER_SESSION_HOURS", "0.5")
    assert teacher.session_hours({"teacher_session_hours": 2}) == 0.5
    monkeypatch.setenv("LAB_TEACHER_SESSION_HOURS", "forever")
    with pytest.raises(ClassroomConfigError, match="not a number of hours"):
        teacher.session_hours({})


@pytest.fixture
def classroom(tmp_path, monkeypatch):
    """Classroom mode on, a wrong password answered at once, no worker started, no CIFAR-10 download tried."""
    monkeypatch.setenv("LAB_TEACHER_PASSWORD", PASSWORD)
    monkeypatch.setattr(teacher, "WRONG_PASSWORD_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: None)

    def refuse():
        raise lab_data.DataUnavailableError("offline in tests: " + lab_data.HOW_TO_GET_IT)

    monkeypatch.setattr(lab_data, "_download_with_keras", refuse)
    (tmp_path / "no_cifar").mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "no_cifar"))


def app(browser_token: str | None = None) -> AppTest:
    """A browser session, first run done: a visitor who has not joined, or a student whose browser holds `browser_token`."""
    at = AppTest.from_file(APP, default_timeout=90)
    if browser_token is not None:
        at.session_state["classroom_browser_token"] = browser_token  # what ui/identity.py keeps once it read the cookie
    at.run()
    assert not at.exception, at.exception
    return at


def reroute(at: AppTest) -> AppTest:
    """Run the router (and with it the sidebar) again: AppTest runs it on an app's first run only."""
    at.switch_page("streamlit_app.py").run()
    assert not at.exception, at.exception
    return at


def unlock_panel(at: AppTest, password: str = PASSWORD) -> AppTest:
    """Type `password` into the sidebar's teacher password (shown on a router run)."""
    at.text_input(key="classroom_teacher_password").set_value(password).run()
    assert not at.exception, at.exception
    return at


def refusal(at: AppTest) -> str:
    """The sentence the sidebar shows this session for its last refused try."""
    return at.session_state["classroom_teacher_refused"]


def sidebar(at: AppTest) -> str:
    parts = [at.sidebar.markdown, at.sidebar.info, at.sidebar.error]
    return "\n".join(str(element.value) for elements in parts for element in elements)


def teacher_page_listed(at: AppTest) -> bool:
    try:
        at.switch_page("pages/teacher.py").run()
    except ValueError:  # "Could not find a navigation page": not listed for this session
        return False
    return [title.value for title in at.title] == ["Teacher"]


@pytest.mark.slow
def test_lock_ends_the_teacher_session(classroom):
    at = unlock_panel(app())
    assert at.session_state["classroom_teacher"] is True and teacher_page_listed(at)
    reroute(at)
    at.button(key="classroom_leave_teacher").click().run()
    assert at.session_state["classroom_teacher"] is False
    assert "The teacher panel is locked" in sidebar(at)
    assert not teacher_page_listed(at)


def test_a_password_change_ends_the_teacher_session(classroom, monkeypatch):
    at = unlock_panel(app())
    assert teacher_page_listed(at)
    monkeypatch.setenv("LAB_TEACHER_PASSWORD", "a-brand-new-password")
    reroute(at)
    assert at.session_state["classroom_teacher"] is False
    assert "password was changed" in sidebar(at)
    assert not teacher_page_listed(at)


def test_an_old_teacher_session_is_no_longer_the_teacher(classroom):
    at = unlock_panel(app())
    session = at.session_state["classroom_teacher_session"]
    assert teacher_page_listed(at) and PASSWORD not in repr(session)
    at.session_state["classroom_teacher_session"] = TeacherSession(session.unlocked_at - timedelta(hours=8), session.fingerprint)
    reroute(at)
    assert at.session_state["classroom_teacher"] is False
    assert "after 8 hours" in sidebar(at)
    assert not teacher_page_listed(at)


@pytest.mark.slow
def test_the_app_locks_out_every_session_after_five_wrong_guesses_and_the_teacher_sees_them(classroom):
    ana = identities.join(Store(), "Ana")  # one of the guessers is a student who joined: her identity is on record
    guessers = [unlock_panel(app(ana.browser_token if number == 0 else None), f"guess-{number}") for number in range(5)]  # five browsers
    assert all(at.session_state["classroom_teacher"] is False for at in guessers)
    assert [refusal(at) for at in guessers[:4]] == [teacher.NOT_ACCEPTED] * 4
    assert "locked until" in refusal(guessers[4])  # the fifth wrong guess locked sign-in for everyone
    locked_out = unlock_panel(app())  # another browser, with the right password
    assert locked_out.session_state["classroom_teacher"] is False
    assert "locked until" in refusal(locked_out) and "python -m lab teacher unlock" in refusal(locked_out)

    assert lab_command("teacher", "unlock").returncode == 0
    the_teacher = unlock_panel(app())
    assert teacher_page_listed(the_teacher)
    table = next(frame.value for frame in the_teacher.dataframe if "outcome" in frame.value.columns)
    assert list(table["outcome"]) == ["accepted", "lock cleared on the server", "refused: sign-in was locked", *["wrong password"] * 5]
    assert list(table["who"])[-1] == "Ana" and list(table["identity"])[-1] == ana.person.id
    assert list(table["who"])[:-1] == ["someone who had not joined", "the server", *["someone who had not joined"] * 5]
    assert PASSWORD not in table.to_string()


# ---------------------------------------------------------------- what leaves the server process


def test_a_worker_the_app_starts_does_not_receive_the_teacher_password(store, monkeypatch):
    monkeypatch.setenv("LAB_TEACHER_PASSWORD", PASSWORD)
    monkeypatch.setenv("teacher_password", PASSWORD)  # what Streamlit copies into the environment from secrets.toml
    monkeypatch.setenv("LAB_WORKER_IDLE_SECONDS", "60")  # it waits for work, so its environment can be read
    monkeypatch.setenv("LAB_TEST_MARKER", "inherited")
    with launcher.workers_lock(store):
        pid = launcher.start_worker(store, None)  # what ensure_workers does for a queued run
    try:
        worker = psutil.Process(pid)
        # /proc shows an empty command line for a moment while a busy machine is still starting the process: wait for it.
        deadline = time.monotonic() + 20
        while not worker.cmdline() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "lab.jobs.worker" in " ".join(worker.cmdline())  # it really is the worker, started
        environment = worker.environ()
        assert environment.get("LAB_TEST_MARKER") == "inherited"  # it did get this process's environment...
        assert "LAB_TEACHER_PASSWORD" not in environment and "teacher_password" not in environment  # ...without the secrets
        assert PASSWORD not in "\n".join(environment.values())
        assert processes.is_alive(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        psutil.Process(pid).wait(timeout=30)


def test_child_environment_drops_every_secret_name_whatever_its_case():
    given = {"PATH": "/bin", "LAB_TEACHER_PASSWORD": "x", "teacher_password": "y", "Teacher_Password": "z", "LAB_HOME": "/h"}
    assert processes.child_environment(given) == {"PATH": "/bin", "LAB_HOME": "/h"}


# ---------------------------------------------------------------- a secrets file that cannot be read


class BrokenSecrets(dict):
    """What st.secrets does when its file cannot be parsed: every read raises."""

    def get(self, key, default=None):
        raise RuntimeError("Error parsing secrets file")


def test_a_broken_secrets_file_fails_closed(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_TEACHER_PASSWORD", raising=False)
    broken = tmp_path / "secrets.toml"
    broken.write_text('teacher_password = "apples\nbroken = = 3\n')
    with pytest.raises(ClassroomConfigError, match=r"secrets\.toml exists but cannot be read \(not valid TOML") as raised:
        teacher.configured_password(BrokenSecrets(), secrets_files=[tmp_path / "missing.toml", broken])
    assert "apples" not in str(raised.value)  # the sentence never quotes the file
    assert teacher.configured_password(BrokenSecrets(), secrets_files=[tmp_path / "missing.toml"]) is None  # no file: not configured


def test_streamlit_s_own_secrets_raise_on_a_broken_file_and_lab_stops(tmp_path, monkeypatch):
    """With Streamlit's real st.secrets: a broken file raises on read, and lab turns that into ClassroomConfigError."""
    from streamlit import config as streamlit_config
    from streamlit.runtime.secrets import Secrets

    monkeypatch.delenv("LAB_TEACHER_PASSWORD", raising=False)
    broken = tmp_path / "secrets.toml"
    broken.write_text("teacher_password = \n")
    before = streamlit_config.get_option("secrets.files")
    streamlit_config.set_option("secrets.files", [str(broken)])
    try:
        with pytest.raises(ClassroomConfigError, match="cannot be read"):
            teacher.configured_password(Secrets(), secrets_files=[broken])
        broken.write_text(f'teacher_password = "{PASSWORD}"\n')
        assert teacher.configured_password(Secrets(), secrets_files=[broken]) == PASSWORD  # the precondition: a good file is read
    finally:
        streamlit_config.set_option("secrets.files", before)
        os.environ.pop("teacher_password", None)  # Streamlit copied it into the environment


@pytest.mark.browser
def test_the_app_with_a_broken_secrets_file_shows_an_error_and_no_page(tmp_path):
    """`streamlit run` in a folder whose .streamlit/secrets.toml is broken: one error for everyone, no page, no sidebar."""
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port, require_browser

    require_browser()
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('teacher_password = "apples\n')
    (tmp_path / "home").mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("LAB_TEACHER_PASSWORD", None)
    port = free_port()
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                APP,
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            from playwright.sync_api import sync_playwright

            url = f"http://127.0.0.1:{port}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    page.set_default_timeout(60_000)
                    for path in ("", "/teacher"):  # the front page, and a page address typed by hand
                        deadline = time.monotonic() + 60
                        while True:
                            try:
                                page.goto(url + path)
                                break
                            except Exception:  # noqa: BLE001 - the server is still starting
                                if time.monotonic() > deadline or server.poll() is not None:
                                    raise
                                time.sleep(0.5)
                        alert = page.locator('[data-testid="stAlert"]')
                        alert.wait_for()
                        assert "secrets.toml exists but cannot be read" in alert.inner_text()
                        assert page.locator('[data-testid="stSidebar"]').count() == 0
                        assert page.get_by_text("Teacher password").count() == 0 and page.get_by_text("Explore CIFAR-10").count() == 0
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
