"""What this computer has: its CPU's name and vector instructions, the memory free now, a process's memory.

Free memory is the smaller of the machine's and its container's (cgroup) limit: Streamlit
Community Cloud and Docker cap an app below what the machine itself reports. Memory figures
come from psutil, so they exist on macOS and Windows too; the CPU's flags are read from
/proc/cpuinfo, where Linux lists them (elsewhere: none, which only means no bfloat16).
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

MB = 2**20


def cpu_name_and_flags(cpuinfo_path: str = "/proc/cpuinfo") -> tuple[str | None, frozenset[str]]:
    """This CPU's model name and its instruction-set "flags" (avx2, avx512f, avx512_bf16, ...) from /proc/cpuinfo.

    Linux lists both for every core; the first core's are read. Elsewhere (no such file): (None, no flags).
    """
    name = None
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    return name, frozenset(value.split())
    except OSError:
        pass
    return name, frozenset()


def available_memory_mb(cgroup: Path = Path("/sys/fs/cgroup"), *, machine_bytes: int | None = None) -> float | None:
    """Memory a new allocation can get now, in MB: the smaller of the machine's and the container's.

    The machine's comes from psutil (MemAvailable on Linux; its equivalent on macOS and Windows),
    or `machine_bytes` when given. A container (Streamlit Community Cloud, Docker) has a limit of
    its own, which the machine's figure does not show: cgroup v2's memory.max (v1:
    memory.limit_in_bytes) minus what the group uses, not counting file cache the kernel can drop.
    None when neither can be read.
    """
    machine = _machine_available() if machine_bytes is None else machine_bytes
    candidates = [value for value in (machine, _cgroup_available(cgroup)) if value is not None]
    return min(candidates) / MB if candidates else None


def memory_budget_mb(pids: tuple[int, ...] | list[int] | None = None) -> float | None:
    """Free memory plus what processes `pids` hold (default: this one), in MB.

    A run reuses its own process's memory (TensorFlow is already loaded there, so it
    would otherwise be counted twice); the Train page passes the job workers' ids,
    since a queued run trains in a worker once the current run has ended.
    """
    free = available_memory_mb()
    if free is None:
        return None
    pids = (os.getpid(),) if pids is None else pids
    return free + sum(process_rss_mb(pid) for pid in pids)


def process_rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (0 when it is gone or unreadable)."""
    try:
        return psutil.Process(pid).memory_info().rss / MB
    except (psutil.Error, OSError):
        return 0.0


def _machine_available() -> int | None:
    try:
        return int(psutil.virtual_memory().available)
    except (psutil.Error, OSError, RuntimeError):
        return None


def _cgroup_available(root: Path) -> int | None:
    """Bytes left under the container's memory limit, or None when there is no limit."""
    for limit_file, usage_file in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit_text = (root / limit_file).read_text().strip()
            usage = int((root / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 2**60:
            return None  # no limit (cgroup v1 says "no limit" with a huge number)
        stat_file = root / (limit_file.rpartition("/")[0] + "/memory.stat" if "/" in limit_file else "memory.stat")
        return max(0, int(limit_text) - usage + _reclaimable_cache(stat_file))
    return None


def _reclaimable_cache(stat_file: Path) -> int:
    """File cache the kernel drops before it kills anyone (inactive_file), in bytes."""
    try:
        for line in stat_file.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key in ("inactive_file", "total_inactive_file"):
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
