"""Who a run belongs to, who is asking, and what they may do to a run.

Every run records its owner: a student's identity and display name in classroom mode, or the
local user. Everyone may look at every run (a class learns from each other's results); only a
run's owner, or the teacher, may cancel it, stop it and keep its model, or delete it. The store
enforces that itself, so a page that forgot to hide a button still cannot act for someone else.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass

from lab.store.database import StoreError
from lab.store.records import Run

LOCAL_ID = "local"  # the owner of every run started outside classroom mode, and from the command line


@dataclass(frozen=True)
class Person:
    """Someone using the lab: an identity that never changes, a name to show, and whether they teach.

    `is_teacher` may act on every run. The local user (a laptop, the command line) has it too:
    whoever has the shell is trusted.
    """

    id: str
    name: str
    is_teacher: bool = False


def local_person() -> Person:
    """The person at this computer's keyboard: the owner of runs started outside classroom mode."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment (some containers)
        name = "local user"
    return Person(LOCAL_ID, name, is_teacher=True)


class NotYourRunError(StoreError, PermissionError):
    """Someone asked to change a run that is neither theirs nor theirs to manage."""


class NotTheTeacherError(StoreError, PermissionError):
    """Someone who is not the teacher asked to change what only the teacher sets (the class's limits, its challenge)."""


def require_person(by: Person | None) -> Person:
    """`by` itself; TypeError when it is missing. Every action that changes a run names who acts: no default stands for anyone."""
    if not isinstance(by, Person):
        raise TypeError(f"`by` must be the Person who acts (lab.store.owners.local_person() on the command line), not {by!r}.")
    return by


def check_teacher(person: Person, action: str) -> None:
    """Raise NotTheTeacherError unless `person` teaches; `action` names what was asked ("save the class's limits")."""
    if not require_person(person).is_teacher:
        raise NotTheTeacherError(f"only the teacher can {action}.")


def check_may_manage(person: Person, run: Run, action: str, followers: Iterable[str] = ()) -> None:
    """Raise NotYourRunError unless `person` owns `run` or teaches; `action` names what was asked ("cancel").

    `followers`: identities that share the run and may do `action` too (the store passes them for
    "resume": a failed run someone followed is theirs to continue as well).
    """
    if person.is_teacher or person.id == run.owner_id or person.id in set(followers):
        return
    owner = run.owner_name or "another student"
    raise NotYourRunError(f"run {run.run_id} belongs to {owner}: only its owner or the teacher can {action} it.")
