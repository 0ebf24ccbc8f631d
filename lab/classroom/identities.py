"""Who a student is without a login: an identity their browser holds, and a secret that brings it to another computer.

Joining makes three things, all new:
- the person's public id (`p-` and 16 hex digits): what their runs record as owner and pages may show;
- a browser token (43 random characters) that the browser keeps in a cookie and sends with each
  visit. The store keeps only its SHA-256, so a copy of the store, an address or a screen never
  holds what proves who you are. One person may have several (they rejoined on another computer);
- a short rejoin secret (8 characters, shown once as `K7QP-3XMA`). With their name it gives a
  student a new browser token on another computer. The store keeps only a slow salted hash of it.

Nothing the visitor sends is ever adopted as an identity: an unknown token is no one, and a person
id is never a proof of anything. Wrong rejoin secrets are limited for the whole deployment (per
name and in total, over a sliding window), so guessing from many browsers at once gains nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from lab.classroom import names, teacher
from lab.classroom.names import NameRefusedError, check_new_name, clean_name, name_key
from lab.store.classroom import REJOIN
from lab.store.owners import Person

# The secret's letters: no 0/O, 1/I/L, so it can be read off a screen and typed back without doubt.
SECRET_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LOGIN_PREFIX = "login:"  # a logged-in account's person id: `login:` and its verified email, else its `sub`
SECRET_LENGTH = 8
# scrypt's cost: slow and memory-hungry enough that a stolen store cannot be searched quickly for secrets.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# Wrong rejoin secrets allowed in the window: per person, and for the whole class together.
REJOIN_WINDOW = timedelta(minutes=10)
WRONG_REJOINS_PER_NAME = 5
WRONG_REJOINS_IN_TOTAL = 30


class RejoinRefusedError(PermissionError):
    """A rejoin that did not go through: a wrong name or secret, or too many wrong ones lately."""


class RejoinLockedError(RejoinRefusedError):
    """Too many wrong secrets lately: nothing is checked until `retry_at`."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__(message)
        self.retry_at = retry_at


class Joined(NamedTuple):
    """What joining hands back: the person, the token for their browser's cookie, and the secret to show them once."""

    person: Person
    browser_token: str
    secret: str


# ---------------------------------------------------------------- tokens and secrets


def hash_token(token: str) -> str:
    """What the store keeps of a browser token. A plain SHA-256 suffices: the token is 256 random bits, not a word."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def show_secret(secret: str) -> str:
    """`K7QP3XMA` as a student copies it down: `K7QP-3XMA`."""
    half = len(secret) // 2
    return f"{secret[:half]}-{secret[half:]}"


def normalise_secret(typed: str) -> str:
    """What a student typed, as the secret: case, spaces and dashes do not matter."""
    return "".join(ch for ch in typed.upper() if ch.isalnum())


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        method, n, r, p, salt, digest = stored.split("$")
        if method != "scrypt":
            return False
        given = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:  # a hash this code did not write
        return False
    return hmac.compare_digest(given.hex(), digest)


def _new_browser(store, person_id: str) -> str:
    token = secrets.token_urlsafe(32)
    store.add_browser_token(hash_token(token), person_id)
    return token


# ---------------------------------------------------------------- joining, coming back, leaving


def join(store, name: str) -> Joined:
    """A new person named `name`, with a token for this browser and a secret for another; NameRefusedError if the name cannot be used."""
    cleaned = check_new_name(name, store.name_keys())
    secret = new_secret()
    person = Person(f"p-{secrets.token_hex(8)}", cleaned)
    if not store.add_person(person.id, cleaned, name_key=name_key(cleaned), secret_hash=hash_secret(secret)):
        check_new_name(name, {name_key(cleaned)})  # someone took the name a moment ago: this raises the same refusal
    return Joined(person, _new_browser(store, person.id), secret)


def person_for_browser(store, token: str | None, *, seen: bool = False) -> Person | None:
    """The person whose browser holds `token`, or None for no token, a made-up one, or one that has left.

    `seen` records the visit (once per session is enough).
    """
    if not isinstance(token, str) or not token:
        return None
    row = store.person_for_token_hash(hash_token(token), seen=seen)
    return None if row is None else Person(row["person_id"], row["name"])


def rejoin(store, name: str, secret: str, *, now: datetime | None = None) -> tuple[Person, str]:
    """The person named `name` whose secret is `secret`, and a new browser token for them; else RejoinRefusedError.

    Refused without checking anything while there were too many wrong secrets in the last ten
    minutes, for this name or for the whole class (RejoinLockedError, which says when to try again).
    """
    now = now or datetime.now(UTC)
    cleaned = clean_name(name)
    candidates = store.people_with_name_key(name_key(cleaned)) if cleaned else []
    _check_not_locked(store, [person["person_id"] for person in candidates], now)
    given = normalise_secret(secret)
    match = next((person for person in candidates if given and secret_matches(given, person["secret_hash"])), None)
    attempt_id = match["person_id"] if match else (candidates[0]["person_id"] if candidates else None)
    store.record_rejoin_attempt(person_id=attempt_id, person_name=cleaned, ok=match is not None, at=_iso(now))
    with store.sign_in_ledger() as ledger:  # only the last REJOIN_WINDOW counts; a term's worth stays for the record
        ledger.forget((REJOIN,), before=now - teacher.ATTEMPTS_KEPT)
    if match is None:
        raise RejoinRefusedError(
            "That name and secret do not match anyone in the class. Check both (the secret looks like K7QP-3XMA) and try again."
        )
    person = Person(match["person_id"], match["name"])
    return person, _new_browser(store, person.id)


def leave(store, token: str | None) -> bool:
    """End the identity on the browser holding `token` (the person's other browsers keep theirs); False if it had none."""
    return bool(token) and store.forget_browser_token(hash_token(token))


def login_person(account: str, name: str) -> Person:
    """The person behind a login (`account`: its verified email or the provider's id for it).

    A login's name comes from the school's provider and cannot be refused, so a name that reads as
    the teacher's is told apart ("Teacher (student)") instead.
    """
    cleaned = clean_name(name) or "student"
    if name_key(cleaned).replace(" ", "").startswith(names.TEACHER_KEY):
        cleaned = f"{cleaned} (student)"
    return Person(f"{LOGIN_PREFIX}{account}", cleaned)


def remember_login(store, person: Person) -> None:
    """Record a login's name, so that the teacher sees two logins whose names read the same (once a session is enough)."""
    store.remember_person(person.id, person.name, name_key=name_key(person.name))


def people_sharing_a_name(store) -> list[list[dict]]:
    """For the teacher: groups of people whose names read the same (joined at the same moment, or before names were compared)."""
    return names.people_sharing_a_name(store.people())


def _iso(moment: datetime) -> str:
    """A time as the store writes it (ISO 8601 UTC, fixed width, so text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _check_not_locked(store, person_ids: list[str], now: datetime) -> None:
    # `python -m lab teacher unlock` clears this pause too: wrong secrets typed before it no longer count.
    since = _iso(max(filter(None, (now - REJOIN_WINDOW, _last_unlock(store)))))
    for wrong, limit, whose in (
        (store.wrong_rejoins_since(since, person_ids), WRONG_REJOINS_PER_NAME, "for this name"),
        (store.wrong_rejoins_since(since), WRONG_REJOINS_IN_TOTAL, "in the class"),
    ):
        if len(wrong) >= limit:
            # The lock lifts when enough of these wrong guesses are older than the window.
            retry_at = datetime.fromisoformat(wrong[len(wrong) - limit]) + REJOIN_WINDOW
            minutes = max(1, math.ceil((retry_at - now).total_seconds() / 60))
            raise RejoinLockedError(
                f"Too many wrong secrets {whose} in the last {REJOIN_WINDOW.seconds // 60} minutes, so rejoining is paused. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask your teacher for help.",
                retry_at,
            )


def _last_unlock(store) -> datetime | None:
    """When the teacher last cleared the locks on the server (`python -m lab teacher unlock`), or None."""
    newest = store.recent_sign_in_attempts([teacher.UNLOCKED], limit=1)
    return newest[0]["at"] if newest else None


__all__ = [
    "Joined",
    "NameRefusedError",
    "RejoinLockedError",
    "RejoinRefusedError",
    "hash_token",
    "join",
    "leave",
    "login_person",
    "remember_login",
    "people_sharing_a_name",
    "person_for_browser",
    "rejoin",
    "show_secret",
]
