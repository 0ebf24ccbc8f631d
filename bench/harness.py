"""Side-by-side benchmark plumbing: run each contender in its own process, collect a table.

Each contender runs in a fresh Python process so its peak memory (`ru_maxrss`) is its own
and neither warms the other's caches. A contender is a function in a bench module that
returns a dict of figures; `measure()` adds wall time and peak memory.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"


CHROMIUM = "/usr/bin/chromium"  # Debian's package; the benchmarks never download a browser
# Headless on a machine with no display, no GPU and no internet (see ../shared/GUIDE.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_contender(module: str, function: str, *, extra_env: dict[str, str] | None = None, **kwargs) -> dict:
    """Run `module.function(**kwargs)` in a child process and return its figures as a dict.

    `extra_env` adds environment variables for the child only (settings TensorFlow reads when it starts).
    """
    # `import lab` first: every contender, the naive one included, starts TensorFlow with the same CPU
    # kernels (lab/__init__.py switches oneDNN on), so a table compares the ways, not the kernels.
    code = (
        "import json, sys, time\nimport lab\n"
        f"from bench.harness import peak_rss_mb\nfrom {module} import {function} as contender\n"
        "started = time.perf_counter()\n"
        f"figures = contender(**json.loads({json.dumps(json.dumps(kwargs))}))\n"
        "figures['wall_seconds'] = time.perf_counter() - started\n"
        "figures['peak_rss_mb'] = peak_rss_mb()\n"
        "print('BENCH-RESULT ' + json.dumps(figures))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT ") :])
    raise RuntimeError(f"{module}.{function} failed:\n{completed.stderr[-3000:]}")


# The vector instructions TensorFlow's speed depends on most, widest first: (/proc/cpuinfo flag, name).
VECTOR_INSTRUCTIONS = [("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")]


def _vector_instructions(cpuinfo_path: str) -> tuple[str, list[str]]:
    from lab.train.memory import cpu_name_and_flags

    name, flags = cpu_name_and_flags(cpuinfo_path)
    return name, [label for flag, label in VECTOR_INSTRUCTIONS if flag in flags]


def cpu_line(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's name and its widest vector instructions, e.g. "AMD EPYC, AVX2, no AVX-512".

    The machines this project is measured on differ from session to session, and TensorFlow's
    speed depends most on these instructions (AVX-512, bfloat16, AMX), so every section names them.
    """
    name, found = _vector_instructions(cpuinfo_path)
    name = name or platform.processor() or platform.machine()
    if found and "AVX-512" not in found:
        found.append("no AVX-512")
    return f"{name}, {', '.join(found)}" if found else name


def cpu_class(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The widest of VECTOR_INSTRUCTIONS this CPU has ("AVX512-BF16", "AVX2", ...), or "other"."""
    _, found = _vector_instructions(cpuinfo_path)
    return found[0] if found else "other"


def machine_line() -> str:
    return f"{platform.machine()} ({cpu_line()}), {os.cpu_count()} CPU cores, no GPU, Python {platform.python_version()}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """rows -> a Markdown table; columns are (key, header, format spec)."""
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("-" if value is None else format(value, spec) if spec else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_section(name: str, body: str, command: str, *, per_cpu: bool = False) -> None:
    """Replace (or append) the section `name` of docs/BENCHMARKS.md, stamped with date and machine.

    `per_cpu`: the section's name ends with the CPU's class (", on AVX2 CPUs"), so a table measured on
    a CPU with other vector instructions sits beside this one instead of replacing it. For the
    benchmarks whose figures those instructions change several-fold (bfloat16 arithmetic or not).
    """
    if per_cpu:
        name = f"{name}, on {cpu_class()} CPUs"
    today = datetime.date.today().isoformat()
    section = f"<!-- bench:{name} -->\n## {name}\n\nCommand: `{command}`  \nMeasured {today} on {machine_line()}.\n\n{body}\n<!-- /bench:{name} -->"
    text = (
        BENCHMARKS_MD.read_text()
        if BENCHMARKS_MD.exists()
        else "# Benchmarks\n\nEvery figure below sits beside the command that produced it.\n"
    )
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text)


def stopwatch():
    """A tiny timer: `elapsed = stopwatch(); ...; seconds = elapsed()`."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
