"""Students' names: cleaned to show safely, and compared the way people read them.

Two names that look the same on screen must count as the same name, or a student could join as
"Аna" (with a Cyrillic "А") beside Ana and pass for her on the leaderboard. So names are compared
by their key (`name_key`): Unicode NFKC (fullwidth "Ａ" becomes "A", "ﬁ" becomes "fi"), then every
letter transliterated to plain Latin (`anyascii`: a Cyrillic "а" or a Greek "Α" becomes "a"), then
case, punctuation and spacing folded. The name itself is kept as typed (cleaned) for display.

A new name is refused when its key is the teacher's (nobody joins as "Teacher" or "ＴＥＡＣＨＥＲ")
or another student's (the sentence tells them how to come back as themselves, or to add an initial).
"""

from __future__ import annotations

import unicodedata

from anyascii import anyascii

NAME_MAX_CHARS = 40
TEACHER_NAME = "Teacher"
# A spreadsheet opening the class's CSV evaluates a cell starting with one of these as a formula.
FORMULA_STARTERS = "=+-@"


class NameRefusedError(ValueError):
    """A name a student may not join with; the message says why, in words for the student."""


def clean_name(text: str) -> str:
    """A display name safe to show anywhere (Markdown, tables, CSV): letters, digits, spaces, ' . -; at most 40 characters.

    A leading `-` (or any other formula starter) is dropped, so a spreadsheet never reads a name as a formula.
    """
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " .-'")
    collapsed = " ".join(kept.split()).lstrip(FORMULA_STARTERS + " ")
    return collapsed[:NAME_MAX_CHARS].strip()


def name_key(name: str) -> str:
    """How a name reads: "Ana", " ANA ", "Ａｎａ" and "Аna" (Cyrillic А) all give "ana"."""
    normal = unicodedata.normalize("NFKC", name)
    latin = anyascii(normal) or normal  # a script anyascii has no letters for keeps its own
    words = "".join(ch if ch.isalnum() else " " for ch in latin.casefold())  # "Jean-Luc" reads as "Jean Luc"
    return " ".join(words.split())


TEACHER_KEY = name_key(TEACHER_NAME)


def check_new_name(name: str, taken_keys: set[str] | frozenset[str] = frozenset()) -> str:
    """The cleaned name if a new student may join with it, else NameRefusedError saying why.

    `taken_keys` are the keys of the names already in the class.
    """
    cleaned = clean_name(name)
    key = name_key(cleaned)
    if not key:
        raise NameRefusedError("Type your name (letters or digits), for example your first name and an initial.")
    if key.replace(" ", "").startswith(TEACHER_KEY):  # "Teacher", "T-eacher", "Teacher Ana": none may pass for the teacher
        raise NameRefusedError(f'"{cleaned}" is kept for the teacher. Please use your own name.')
    if key in taken_keys:
        raise NameRefusedError(
            f'Someone in the class is already called "{cleaned}". If that is you, open "Joined before?" below and '
            f'type your name and your secret. If not, add an initial, for example "{cleaned} M.".'
        )
    return cleaned


def people_sharing_a_name(people: list[dict]) -> list[list[dict]]:
    """Groups of people (dicts with name and name_key, as the store lists them) whose names read the same.

    Names joined before keys were stored have an empty key: theirs is computed from the name.
    """
    groups: dict[str, list[dict]] = {}
    for person in people:
        groups.setdefault(person.get("name_key") or name_key(person["name"]), []).append(person)
    return [group for key, group in sorted(groups.items()) if key and len(group) > 1]
