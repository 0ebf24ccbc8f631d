"""Identities without a login (lab/classroom/identities.py) and names (lab/classroom/names.py), tried the way a student
getting round them would: made-up tokens, someone else's public id, look-alike names, guessing secrets from many browsers.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab.classroom import identities
from lab.classroom.identities import RejoinLockedError, RejoinRefusedError
from lab.classroom.names import NameRefusedError, check_new_name, clean_name, name_key
from lab.store.classroom import REJOIN
from lab.store.runs import Store
from tests.postgres_server import database_dump


@pytest.fixture
def store(tmp_path, store_backend) -> Store:
    """On each backend in turn: SQLite, then PostgreSQL (store_backend in tests/conftest.py)."""
    return Store(tmp_path / "lab_home")


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "written",
    [
        "Ana",
        "  ANA ",
        "ana",
        "Ａｎａ",  # fullwidth letters
        "\u0410na",  # a Cyrillic capital A
        "\u0391na",  # a Greek capital Alpha
        "An\u0430",  # a Cyrillic small a
    ],
)
def test_names_that_read_the_same_have_the_same_key(written):
    assert name_key(written) == "ana"


def test_name_keys_fold_accents_spacing_and_punctuation_but_tell_different_names_apart():
    assert name_key("Zoë  Martin") == name_key("zoe martin") == name_key("Zoe-Martin") == "zoe martin"
    assert name_key("Ana M.") == name_key("ana m") != name_key("Ana")
    assert name_key("Ben") != name_key("Ana")


@pytest.mark.parametrize("name", ["Teacher", "teacher", "ＴＥＡＣＨＥＲ", "\u0422eacher", "T-eacher", "Teacher Ana", " tEACHER "])
def test_the_teacher_s_name_and_its_look_alikes_are_refused(name, store):
    assert name_key(name).replace(" ", "").startswith("teacher")  # the precondition: it reads as the teacher's name
    with pytest.raises(NameRefusedError, match="kept for the teacher"):
        identities.join(store, name)
    assert store.people() == []


def test_a_name_already_in_the_class_is_refused_with_what_to_do(store):
    identities.join(store, "Ana")
    for look_alike in ("ana", "ＡＮＡ", "\u0410na", " Ana "):
        with pytest.raises(NameRefusedError) as refused:
            identities.join(store, look_alike)
        assert 'already called "' in str(refused.value) and "Joined before?" in str(refused.value)
        assert "add an initial" in str(refused.value)
    assert [person["name"] for person in store.people()] == ["Ana"]
    assert identities.join(store, "Ana M.").person.name == "Ana M."  # an initial tells them apart


def test_clean_names_cannot_start_a_spreadsheet_formula_or_carry_markup():
    assert clean_name("-2+3") == "23"
    assert clean_name("=cmd") == "cmd" and clean_name("@SUM(A1)") == "SUMA1" and clean_name("+ - Ana") == "Ana"
    assert clean_name("  Ana <b>M.</b>  ") == "Ana bM.b"
    assert clean_name("Jean-Luc O'Neil") == "Jean-Luc O'Neil"  # a dash or an apostrophe inside a name stays
    assert clean_name("x" * 100) == "x" * 40
    with pytest.raises(NameRefusedError, match="Type your name"):
        check_new_name("-=+@")


# ---------------------------------------------------------------- browsers


def test_joining_always_makes_a_new_identity_and_adopts_nothing(store):
    ana = identities.join(store, "Ana")
    ben = identities.join(store, "Ben")
    assert ana.person.id.startswith("p-") and ana.person.id != ben.person.id
    assert ana.browser_token != ben.browser_token and len(ana.browser_token) >= 40
    assert identities.person_for_browser(store, ana.browser_token) == ana.person
    # The store keeps neither the token nor the secret, only their hashes.
    if isinstance(store.database, Path):  # SQLite: the file's bytes, with its WAL file
        stored = b"".join(path.read_bytes() for path in store.root.glob(store.database.name + "*"))
    else:
        stored = database_dump(store).encode()
    assert identities.hash_token(ana.browser_token).encode() in stored
    assert ana.browser_token.encode() not in stored and ana.secret.encode() not in stored
    row = store.people_with_name_key("ana")[0]
    assert row["secret_hash"].startswith("scrypt$") and ana.secret not in row["secret_hash"]


@pytest.mark.parametrize("how", ["made up", "someone's public id", "the hash the store keeps", "empty"])
def test_a_token_the_browser_was_not_given_is_no_one(store, how):
    ana = identities.join(store, "Ana")
    assert identities.person_for_browser(store, ana.browser_token) == ana.person  # the real one works
    token = {
        "made up": secrets.token_urlsafe(32),
        "someone's public id": ana.person.id,
        "the hash the store keeps": identities.hash_token(ana.browser_token),
        "empty": "",
    }[how]
    assert identities.person_for_browser(store, token) is None


def test_leaving_ends_only_that_browser(store):
    ana = identities.join(store, "Ana")
    again, second_token = identities.rejoin(store, "Ana", ana.secret)  # Ana on a second computer
    assert again == ana.person and store.browser_token_count(ana.person.id) == 2
    assert identities.leave(store, ana.browser_token)
    assert identities.person_for_browser(store, ana.browser_token) is None
    assert identities.person_for_browser(store, second_token) == ana.person
    assert not identities.leave(store, ana.browser_token)  # nothing left to end
    assert not identities.leave(store, None)
    assert store.person_name(ana.person.id) == "Ana"  # her runs keep their owner's name


# ---------------------------------------------------------------- rejoining


def test_rejoining_with_the_right_secret_gives_the_same_person_and_a_new_browser(store):
    ana = identities.join(store, "Ana")
    shown = identities.show_secret(ana.secret)
    assert len(ana.secret) == 8 and shown == f"{ana.secret[:4]}-{ana.secret[4:]}"
    assert not set(ana.secret) & set("01OIL")  # no letters to misread
    person, token = identities.rejoin(store, "  ana ", shown.lower())  # as a student may type it
    assert person == ana.person and token != ana.browser_token
    assert identities.person_for_browser(store, token) == ana.person


def test_a_wrong_secret_or_name_is_refused(store):
    ana = identities.join(store, "Ana")
    identities.join(store, "Ben")
    for name, secret in (("Ana", "AAAA-AAAA"), ("Ben", ana.secret), ("Nobody", ana.secret), ("Ana", ""), ("", ana.secret)):
        with pytest.raises(RejoinRefusedError, match="do not match anyone"):
            identities.rejoin(store, name, secret)
    assert store.browser_token_count(ana.person.id) == 1


def test_wrong_secrets_for_a_name_lock_it_even_against_the_right_secret(store):
    ana = identities.join(store, "Ana")
    ben = identities.join(store, "Ben")
    now = datetime.now(UTC)
    for _ in range(identities.WRONG_REJOINS_PER_NAME):  # each guess as if from another browser: nothing per session
        with pytest.raises(RejoinRefusedError):
            identities.rejoin(store, "Ana", identities.new_secret(), now=now)
    with pytest.raises(RejoinLockedError) as locked:
        identities.rejoin(store, "Ana", ana.secret, now=now)  # the right secret, refused while locked
    assert "Too many wrong secrets for this name" in str(locked.value) and "Try again in 10 minutes" in str(locked.value)
    assert "ask your teacher" in str(locked.value)
    assert store.browser_token_count(ana.person.id) == 1
    assert identities.rejoin(store, "Ben", ben.secret, now=now)[0] == ben.person  # another name is not locked
    later = now + identities.REJOIN_WINDOW + timedelta(seconds=1)
    assert identities.rejoin(store, "Ana", ana.secret, now=later)[0] == ana.person  # the lock lifts by itself


def test_rejoin_attempts_older_than_the_record_keeps_are_forgotten(store):
    from lab.classroom import teacher

    ana = identities.join(store, "Ana")
    now = datetime.now(UTC)
    with pytest.raises(RejoinRefusedError):
        identities.rejoin(store, "Ana", identities.new_secret(), now=now)
    assert len(store.recent_sign_in_attempts([REJOIN])) == 1
    later = now + teacher.ATTEMPTS_KEPT + timedelta(seconds=1)
    identities.rejoin(store, "Ana", ana.secret, now=later)
    assert [row["ok"] for row in store.recent_sign_in_attempts([REJOIN])] == [True]  # the old wrong one is gone


def test_the_teachers_unlock_on_the_server_lifts_a_rejoin_pause_at_once(store):
    """The locked student asks the teacher, as the message says: `python -m lab teacher unlock` lets them back in."""
    from lab.classroom import teacher

    ana = identities.join(store, "Ana")
    now = datetime.now(UTC)
    for _ in range(identities.WRONG_REJOINS_PER_NAME):
        with pytest.raises(RejoinRefusedError):
            identities.rejoin(store, "Ana", identities.new_secret(), now=now)
    with pytest.raises(RejoinLockedError):
        identities.rejoin(store, "Ana", ana.secret, now=now + timedelta(seconds=1))
    teacher.unlock(store, now=now + timedelta(seconds=2))
    assert identities.rejoin(store, "Ana", ana.secret, now=now + timedelta(seconds=3))[0] == ana.person
    # Guessing starts from nothing again after the unlock, and locks again at the same count.
    for _ in range(identities.WRONG_REJOINS_PER_NAME):
        with pytest.raises(RejoinRefusedError):
            identities.rejoin(store, "Ana", identities.new_secret(), now=now + timedelta(seconds=4))
    with pytest.raises(RejoinLockedError):
        identities.rejoin(store, "Ana", ana.secret, now=now + timedelta(seconds=5))


def test_wrong_secrets_across_the_class_lock_every_name(store, monkeypatch):
    monkeypatch.setattr(identities, "WRONG_REJOINS_IN_TOTAL", 6)
    ana = identities.join(store, "Ana")
    now = datetime.now(UTC)
    # Guessing spread over many names (each under its own limit) adds up for the whole class.
    for number in range(6):
        with pytest.raises(RejoinRefusedError, match="do not match"):
            identities.rejoin(store, f"Student {number}", identities.new_secret(), now=now)
    assert len(store.wrong_rejoins_since((now - timedelta(minutes=1)).isoformat())) == 6
    with pytest.raises(RejoinLockedError, match="Too many wrong secrets in the class"):
        identities.rejoin(store, "Ana", ana.secret, now=now)


def test_the_teacher_sees_people_whose_names_read_the_same(store):
    identities.join(store, "Ana")
    identities.join(store, "Ben")
    store.remember_person("p-old", "ANA")  # joined before names were compared: no key stored
    groups = identities.people_sharing_a_name(store)
    assert [[person["name"] for person in group] for group in groups] == [["Ana", "ANA"]]
