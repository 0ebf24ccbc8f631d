"""Is a training worker still alive, and is it still the same process?

A pid alone is not enough to answer: once a process exits, the system may give its
number to an unrelated process (after a reboot this happens quickly). So besides
"does a process with this pid exist", the store and the job runner ask "did that
process start before the run it is supposed to be training?". A process that
started later cannot be the run's worker, whatever its pid.

Linux answers both from /proc; elsewhere (macOS) only the existence check is
available, and the start-time checks answer "unknown".
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Clock readings from /proc are rounded to ticks and the boot time to whole seconds,
# so a worker that started the same second as its run must not look "newer" than it.
START_TIME_TOLERANCE = timedelta(seconds=2)


def is_alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (a process that exited but was not reaped)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0 checks without touching the process
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just belongs to another user
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc (macOS): trust os.kill
    return fields[0] not in ("Z", "X")  # the state letter: zombie or dead


def start_ticks(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot, as text; "" where /proc is missing.

    Two processes with the same pid and the same start ticks are the same process.
    """
    fields = _stat_fields(pid)
    return fields[19] if fields is not None else ""  # field 22 of /proc/PID/stat


def started_at(pid: int) -> datetime | None:
    """When process `pid` started, in UTC, or None where that cannot be read."""
    ticks = start_ticks(pid)
    boot = _boot_time()
    if not ticks or boot is None:
        return None
    return boot + timedelta(seconds=int(ticks) / os.sysconf("SC_CLK_TCK"))


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


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may contain spaces; what follows starts at field 3.
    return stat.rpartition(")")[2].split()


def _boot_time() -> datetime | None:
    """When the machine booted (the "btime" line of /proc/stat), or None without /proc."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("btime "):
            return datetime.fromtimestamp(int(line.split()[1]), UTC)
    return None
