"""Is classroom mode on, who may sign in as the teacher, and for how long.

Classroom mode is on when a teacher password is configured: LAB_TEACHER_PASSWORD, or
`teacher_password` in .streamlit/secrets.toml (how Streamlit Community Cloud passes secrets).
A secrets file that exists but cannot be read stops the app (`ClassroomConfigError`) instead of
switching classroom mode off, which would give every visitor the teacher's rights.

Guessing the password is limited for the whole deployment, not per browser: every try is
recorded in the results store (lab/store/attempts.py) with when and from which identity, and
`SignInPolicy` says how many wrong guesses within how long lock the teacher's sign-in, and for
how long. While it is locked every try is refused at once, the right password included; the
teacher can clear the lock on the server with `python -m lab teacher unlock`. The check and its
record are one write transaction, so fifty browsers guessing at the same moment get no more
guesses checked than one browser would.

An unlocked teacher panel is a `TeacherSession`: when it was unlocked and a keyed fingerprint
of the password it was unlocked with (never the password itself). It ends after a set time
(LAB_TEACHER_SESSION_HOURS, default 8), when the teacher locks it, and as soon as the password
changes. The password is compared in constant time and never logged, stored or returned.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lab.store.owners import Person

UNLOCK_COMMAND = "python -m lab teacher unlock"
# A wrong guess is answered after this pause. The deployment-wide lock is the real protection; the pause only keeps
# one browser from trying its five guesses in the same instant.
WRONG_PASSWORD_DELAY_SECONDS = 0.5
DEFAULT_SESSION_HOURS = 8.0

# The kinds of rows the teacher's sign-in writes into the store's sign_in_attempts table.
CHECKED = "teacher"  # a password that was compared: ok says whether it was the right one
REFUSED_WHILE_LOCKED = "teacher-locked"  # refused without being compared, because sign-in was locked
UNLOCKED = "teacher-unlock"  # the lock was cleared on the server (`python -m lab teacher unlock`)
TEACHER_KINDS = (CHECKED, REFUSED_WHILE_LOCKED, UNLOCKED)

NOT_ACCEPTED = "Not accepted."
# How long the record of sign-in attempts is kept: long enough for a teacher to look back over a term's lessons,
# short enough that a script knocking on a locked sign-in cannot fill the disk. Attempts a lock still counts stay.
ATTEMPTS_KEPT = timedelta(days=30)


class ClassroomConfigError(RuntimeError):
    """Classroom mode is configured but its configuration cannot be read: the app must not open."""


# ---------------------------------------------------------------- configuration


def configured_password(secrets: Mapping[str, Any] | None = None, secrets_files: Iterable[str | Path] = ()) -> str | None:
    """The teacher password, or None when classroom mode is off (nothing configured).

    `secrets_files` are the files `secrets` is read from (Streamlit's `secrets.files` option). When
    reading `secrets` fails and one of them exists, the file is broken or unreadable: that raises
    ClassroomConfigError rather than answering "not configured".
    """
    from_environment = os.environ.get("LAB_TEACHER_PASSWORD")
    from_secrets = _read_secret(secrets, "teacher_password", secrets_files)
    password = from_environment or from_secrets
    return str(password) if password else None


def session_hours(secrets: Mapping[str, Any] | None = None, secrets_files: Iterable[str | Path] = ()) -> float:
    """How long an unlocked teacher panel stays unlocked: LAB_TEACHER_SESSION_HOURS, else `teacher_session_hours` in secrets, else 8."""
    raw = os.environ.get("LAB_TEACHER_SESSION_HOURS") or _read_secret(secrets, "teacher_session_hours", secrets_files)
    if raw in (None, ""):
        return DEFAULT_SESSION_HOURS
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        hours = -1.0
    if not 0 < hours <= 24 * 365:
        raise ClassroomConfigError(
            f"The teacher's session length {raw!r} (LAB_TEACHER_SESSION_HOURS or teacher_session_hours) is not a number of hours "
            "between 0 and 8760. Set it to, for example, 8, then restart the app."
        )
    return hours


def _read_secret(secrets: Mapping[str, Any] | None, key: str, secrets_files: Iterable[str | Path]) -> Any:
    if secrets is None:
        return None
    try:
        return secrets.get(key)
    except Exception as error:  # noqa: BLE001 - Streamlit raises its own errors for a missing and for a broken file alike
        broken = [Path(path) for path in secrets_files if Path(path).exists()]
        if not broken:
            return None  # no secrets file at all: nothing is configured there
        raise ClassroomConfigError(_unreadable_sentence(broken[0], error)) from error


def _unreadable_sentence(path: Path, error: Exception) -> str:
    why = _why_unreadable(path) or str(error) or type(error).__name__
    return (
        f"The app's secrets file {path} exists but cannot be read ({why}), so the app cannot tell whether classroom mode is on "
        'and does not open. Fix the file (it is TOML: name = "value", one per line; strings in quotes) or make it readable '
        "by the user running the app, then reload this page."
    )


def _why_unreadable(path: Path) -> str | None:
    """What is wrong with a secrets file, in a few words that never quote its content."""
    import tomllib

    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except PermissionError:
        return "permission denied"
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except IsADirectoryError:
        return "it is a folder, not a file"
    except tomllib.TOMLDecodeError as error:
        # TOMLDecodeError says what it expected and where ("... (at line 2, column 9)"), never the text it read.
        return f"not valid TOML: {error}"
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def is_teacher_password(given: str, expected: str | None, *, delay: float | None = None) -> bool:
    """Whether `given` is the teacher password (compared in constant time); a wrong one returns False only after `delay` seconds.

    This compares only: `sign_in` is the teacher's way in, which also counts and records the try.
    """
    if _matches(given, expected):
        return True
    time.sleep(WRONG_PASSWORD_DELAY_SECONDS if delay is None else delay)
    return False


def _matches(given: str, expected: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(given.encode(), expected.encode())


# ---------------------------------------------------------------- guessing, limited for the whole deployment


@dataclass(frozen=True)
class SignInPolicy:
    """How many wrong guesses within how long lock the teacher's sign-in, and for how long.

    Each lock lasts twice as long as the one before (10 minutes, 20, 40, ...), up to `longest_lock`;
    the count starts again when the right password gets in or the teacher clears the lock.
    """

    max_failures: int = 5
    window: timedelta = timedelta(minutes=10)
    first_lock: timedelta = timedelta(minutes=10)
    longest_lock: timedelta = timedelta(hours=24)

    def lock_length(self, number: int) -> timedelta:
        """How long the `number`-th lock in a row lasts (1 for the first)."""
        return min(self.first_lock * 2 ** min(number - 1, 30), self.longest_lock)


POLICY = SignInPolicy()


@dataclass(frozen=True)
class SignInOutcome:
    """What one try got: accepted or not, until when sign-in is locked (if it is), and the sentence to show."""

    accepted: bool
    locked_until: datetime | None = None
    message: str = ""


def lock_from(checked: list[dict], policy: SignInPolicy = POLICY) -> tuple[datetime, int] | None:
    """The last lock that these checked guesses set, as (until, how many locks in a row), or None.

    `checked` are the compared guesses since the right password last got in (or the lock was
    last cleared), oldest first, each with `at` and `ok`. Guesses refused while locked are never
    compared, so they are not among them: a lock is not made longer by knocking on it.
    """
    recent: list[datetime] = []
    locks, until = 0, None
    for guess in checked:
        if guess["ok"]:
            recent, locks, until = [], 0, None
            continue
        at = guess["at"]
        recent = [earlier for earlier in recent if earlier > at - policy.window] + [at]
        if len(recent) >= policy.max_failures:
            locks += 1
            until = at + policy.lock_length(locks)
            recent = []
    return None if until is None else (until, locks)


def _current_lock(ledger, policy: SignInPolicy) -> tuple[datetime, int] | None:
    """The lock the store's record sets, read inside the caller's transaction."""
    fresh_start = _fresh_start(ledger)
    return lock_from(ledger.since((CHECKED,), after_id=fresh_start["id"] if fresh_start else None), policy)


def _fresh_start(ledger) -> dict | None:
    """The attempt the count of wrong guesses starts again from: the right password, or the lock cleared on the server."""
    return ledger.last((CHECKED, UNLOCKED), ok=True)


def forget_old_attempts(ledger, now: datetime) -> None:
    """Delete the teacher's attempts older than ATTEMPTS_KEPT, except those the current lock is counted from.

    Knocks on a locked sign-in never count. A compared guess or an unlock counts until the next fresh start,
    so only those before the latest fresh start go; the fresh start itself stays, to count from.
    """
    before = now - ATTEMPTS_KEPT
    ledger.forget((REFUSED_WHILE_LOCKED,), before=before)
    fresh_start = _fresh_start(ledger)
    if fresh_start is not None:
        ledger.forget((CHECKED, UNLOCKED), before=before, below_id=fresh_start["id"])


def sign_in(
    store,
    given: str,
    expected: str | None,
    person: Person | None = None,
    *,
    now: datetime | None = None,
    policy: SignInPolicy = POLICY,
    delay: float | None = None,
) -> SignInOutcome:
    """Try `given` as the teacher password for `person` (None: a visitor who has not joined), and record the try.

    Refused at once, without comparing, while sign-in is locked. Reading the record, comparing and
    recording happen in one write transaction of the store, so simultaneous tries are judged one
    after the other. A wrong guess is answered after `delay` seconds (default: the module's), outside
    that transaction, so one slow answer never holds up the others.
    """
    if not expected or not given:
        return SignInOutcome(False, None, NOT_ACCEPTED)  # classroom mode off (nobody is the teacher), or nothing typed
    now = now or datetime.now(UTC)
    who = {"person_id": person.id, "person_name": person.name} if person else {}
    with store.sign_in_ledger() as ledger:
        lock = _current_lock(ledger, policy)
        if lock and now < lock[0]:
            ledger.record(REFUSED_WHILE_LOCKED, ok=False, at=now, **who)
            forget_old_attempts(ledger, now)
            return SignInOutcome(False, lock[0], locked_sentence(lock[0]))
        accepted = _matches(given, expected)
        ledger.record(CHECKED, ok=accepted, at=now, **who)
        forget_old_attempts(ledger, now)
        lock = None if accepted else _current_lock(ledger, policy)
    if accepted:
        return SignInOutcome(True)
    time.sleep(WRONG_PASSWORD_DELAY_SECONDS if delay is None else delay)
    if lock and now < lock[0]:
        return SignInOutcome(False, lock[0], f"{NOT_ACCEPTED} {locked_sentence(lock[0])}")
    return SignInOutcome(False, None, NOT_ACCEPTED)


def locked_until(store, *, now: datetime | None = None, policy: SignInPolicy = POLICY) -> datetime | None:
    """Until when the teacher's sign-in is locked, or None when it is open."""
    now = now or datetime.now(UTC)
    with store.sign_in_ledger() as ledger:
        lock = _current_lock(ledger, policy)
    return lock[0] if lock and now < lock[0] else None


def unlock(store, *, now: datetime | None = None, policy: SignInPolicy = POLICY) -> datetime | None:
    """Clear the lock (from the server: `python -m lab teacher unlock`); returns until when it would have lasted, or None.

    Records an "unlocked" row, so the history of attempts stays whole; the count of wrong guesses
    and of locks starts again from it.
    """
    now = now or datetime.now(UTC)
    with store.sign_in_ledger() as ledger:
        lock = _current_lock(ledger, policy)
        ledger.record(UNLOCKED, ok=True, at=now, person_name="the server")
    return lock[0] if lock and now < lock[0] else None


def attempts(store, limit: int = 100) -> list[dict]:
    """The newest tries at the teacher password (and unlocks), newest first, each with a plain `outcome`."""
    rows = store.recent_sign_in_attempts(TEACHER_KINDS, limit=limit)
    for row in rows:
        row["outcome"] = describe_outcome(row)
    return rows


def describe_outcome(attempt: dict) -> str:
    if attempt["kind"] == UNLOCKED:
        return "lock cleared on the server"
    if attempt["kind"] == REFUSED_WHILE_LOCKED:
        return "refused: sign-in was locked"
    return "accepted" if attempt["ok"] else "wrong password"


def locked_sentence(until: datetime) -> str:
    return (
        f"Too many wrong passwords: teacher sign-in is locked until {format_moment(until)}, for everyone. "
        f"The teacher can clear the lock on the server with `{UNLOCK_COMMAND}`."
    )


def format_moment(moment: datetime) -> str:
    """A moment in the server's local time: "14:32" today, else "2025-03-02 14:32"."""
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------- the teacher's session

# A key made fresh by every server process: the fingerprints it makes mean nothing outside it (nor after a restart),
# and without it a fingerprint could not be turned back into the password by trying likely passwords.
_FINGERPRINT_KEY = secrets.token_bytes(32)


def fingerprint(password: str) -> str:
    """A keyed fingerprint of the password (HMAC-SHA256 with this process's random key): tells a change, reveals nothing."""
    return hmac.new(_FINGERPRINT_KEY, password.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class TeacherSession:
    """An unlocked teacher panel: when it was unlocked, and the fingerprint of the password that unlocked it."""

    unlocked_at: datetime
    fingerprint: str

    @classmethod
    def start(cls, password: str, now: datetime | None = None) -> TeacherSession:
        return cls(now or datetime.now(UTC), fingerprint(password))

    def why_ended(self, now: datetime, current_password: str | None, hours: float = DEFAULT_SESSION_HOURS) -> str | None:
        """None while the session still holds; else the sentence that says why it ended."""
        if not current_password or not hmac.compare_digest(self.fingerprint, fingerprint(current_password)):
            return "The teacher password was changed, so the teacher panel locked itself: enter the new password to open it again."
        if now - self.unlocked_at >= timedelta(hours=hours):
            return f"The teacher panel locked itself after {hours:g} hours: enter the teacher password to open it again."
        return None

    def still_valid(self, now: datetime, current_password: str | None, hours: float = DEFAULT_SESSION_HOURS) -> bool:
        return self.why_ended(now, current_password, hours) is None
