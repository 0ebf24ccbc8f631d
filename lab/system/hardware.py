"""What this computer has: its CPU's name and vector instructions, the memory free now, a process's memory.

Free memory is the smaller of the machine's and its container's (cgroup) limit: Streamlit
Community Cloud and Docker cap an app below what the machine itself reports.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def available_memory_mb(meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Memory a new allocation can get now, in MB: the smaller of the machine's and the container's.

    The machine's is MemAvailable in /proc/meminfo. A container (Streamlit Community
    Cloud, Docker) has a limit of its own, which /proc/meminfo does not show: cgroup v2's
    memory.max (v1: memory.limit_in_bytes) minus what the group uses, not counting
    file cache the kernel can drop. None when neither can be read.
    """
    candidates = [value for value in (_meminfo_available(meminfo), _cgroup_available(cgroup)) if value is not None]
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
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _meminfo_available(meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
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
