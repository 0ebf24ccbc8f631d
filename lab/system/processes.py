"""Is a training worker still alive, and is it still the same process? Asking for less CPU, and a child's environment without secrets.

A pid alone is not enough to answer: once a process exits, the system may give its
number to an unrelated process (after a reboot this happens quickly). So besides
"does a process with this pid exist", the store and the job runner ask "did that
process start before the run it is supposed to be training?". A process that
started later cannot be the run's worker, whatever its pid.

psutil answers both on Linux, macOS and Windows (on Linux it reads /proc for us).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import psutil

# Start times are rounded (to clock ticks, and the boot time to whole seconds on Linux),
# so a worker that started the same second as its run must not look "newer" than it.
START_TIME_TOLERANCE = timedelta(seconds=2)


def is_alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (a process that exited but was not reaped)."""
    if not pid or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists, it just belongs to another user


def start_stamp(pid: int) -> str:
    """When process `pid` started, as text ("" when it is gone or unreadable).

    Two processes with the same pid and the same start stamp are the same process.
    """
    started = _create_time(pid)
    return "" if started is None else f"{started:.2f}"


def started_at(pid: int) -> datetime | None:
    """When process `pid` started, in UTC, or None where that cannot be read."""
    started = _create_time(pid)
    return None if started is None else datetime.fromtimestamp(started, UTC)


def could_be_worker(pid: int | None, run_started: str | None) -> bool:
    """Whether `pid` may still be the worker of a run that started at `run_started` (ISO 8601, UTC).

    False when the process is gone, or when the process now holding that pid started
    after the run did (the pid was reused). True when the start time cannot be read.
    """
    if not is_alive(pid):
        return False
    process_start = started_at(pid)
    if process_start is None or not run_started:
        return True
    return process_start <= datetime.fromisoformat(run_started) + START_TIME_TOLERANCE


def lower_priority(niceness: int) -> None:
    """Give up CPU priority for this process: `niceness` steps on Linux and macOS, "below normal" on Windows.

    Does nothing where the system refuses; a worker then simply competes with the web server as an equal.
    """
    process = psutil.Process()
    with contextlib.suppress(psutil.Error, OSError, ValueError):
        if psutil.WINDOWS:
            process.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            process.nice(min(19, process.nice() + niceness))


def _create_time(pid: int) -> float | None:
    """Seconds since the epoch at which process `pid` started, or None."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError, ValueError):
        return None


# Environment variables that hold secrets no child process needs. Streamlit also copies every top-level string of
# .streamlit/secrets.toml into the environment under its own name, so `teacher_password` is dropped as well
# (names are compared without regard to case), and so is Streamlit's copy of `database_url`. LAB_DATABASE_URL stays:
# a worker writes its run into that database (lab/store/postgres.py), and a worker started from the app's folder
# finds `database_url` in the same secrets file the app read.
SECRET_VARIABLES = ("LAB_TEACHER_PASSWORD", "TEACHER_PASSWORD", "DATABASE_URL")


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process the lab starts (a worker, the Ray dispatcher): this one's, without its secrets."""
    secret = {name.upper() for name in SECRET_VARIABLES}
    source = os.environ if base is None else base
    return {name: value for name, value in source.items() if name.upper() not in secret}
