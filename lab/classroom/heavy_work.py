"""Heavy work in the web server's own process, bounded per person and in total.

Training runs in worker processes (lab/jobs), but a few things a page asks for run in the server
itself, in the session's thread: the learning-rate finder, Grad-CAM, evaluating a model on the
test images, rendering the lab report. Thirty students asking at once would share the server's
few cores thirty ways and every page would stall. So each of them takes a slot first:

    with heavy_work.slot(person, "Grad-CAM"):
        heatmap = gradcam.gradcam(model, image)

At most one slot per person at a time (a second tab waits for the first), and at most
LAB_HEAVY_WORK_SLOTS (default 2) in the whole process. A request that finds no slot waits a few
seconds, then gets a BusyError whose message says what is busy and to try again: the page shows it,
never a silent wait. A slot is re-entrant in its own thread, so heavy work that calls heavy work
(a report that evaluates a model) takes one slot, not two.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lab.store.owners import Person

SLOTS_VARIABLE = "LAB_HEAVY_WORK_SLOTS"
DEFAULT_SLOTS = 2
WAIT_SECONDS = 5.0  # how long a request waits for a slot before it is told to try again


class BusyError(RuntimeError):
    """No slot for heavy work came free in time; the message says what is busy and to try again in a few seconds."""


@dataclass
class _Holder:
    what: str
    thread: int
    depth: int = 1


_changed = threading.Condition()
_holders: dict[str, _Holder] = {}  # person id -> the heavy work they are doing now


def total_slots() -> int:
    """LAB_HEAVY_WORK_SLOTS, read on every call so a change needs no restart (at least 1)."""
    try:
        return max(1, int(os.environ.get(SLOTS_VARIABLE, DEFAULT_SLOTS)))
    except ValueError:
        return DEFAULT_SLOTS


def busy_count() -> int:
    """How many people are doing heavy work in this process now."""
    with _changed:
        return len(_holders)


@contextlib.contextmanager
def slot(person: Person | None, what: str, wait_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold one of the process's heavy-work slots for `person` while doing `what` ("Grad-CAM"); BusyError after `wait_seconds`."""
    key = person.id if person is not None else "anonymous"
    me = threading.get_ident()
    deadline = time.monotonic() + wait_seconds
    with _changed:
        while True:
            holder = _holders.get(key)
            if holder is not None and holder.thread == me:  # heavy work inside heavy work, in the same thread
                holder.depth += 1
                break
            if holder is None and len(_holders) < total_slots():
                _holders[key] = _Holder(what, me)
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise BusyError(_why_busy(what, holder))
            _changed.wait(left)
    try:
        yield
    finally:
        with _changed:
            held = _holders[key]
            held.depth -= 1
            if held.depth == 0:
                del _holders[key]
                _changed.notify_all()


def _why_busy(what: str, yours: _Holder | None) -> str:
    if yours is not None:
        return f"{what} has to wait: your {yours.what} is still being computed (one at a time per person). Try again in a few seconds."
    return (
        f"{what} has to wait: the server is already doing {total_slots()} heavy jobs for the class "
        "(the most it does at once, so that every page stays quick). Try again in a few seconds."
    )
