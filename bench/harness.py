"""Side-by-side benchmark plumbing: run each contender in its own process, write its table to docs/BENCHMARKS.md.

Each contender runs in a fresh Python process so its peak memory (`ru_maxrss`) is its own
and neither warms the other's caches. A contender is a function in a bench module that
returns a dict of figures; `run_contender()` adds wall time and peak memory. `write_section()`
puts the table in its named section, under the command, the machine class and the date.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"
# The file's opening when a benchmark writes the first section of a new one.
INTRO = "# Benchmarks\n\nEach section below is written by the command it names.\n"


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
    from lab.system.hardware import cpu_name_and_flags

    name, flags = cpu_name_and_flags(cpuinfo_path)
    return name, [label for flag, label in VECTOR_INSTRUCTIONS if flag in flags]


def cpu_line(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's name and its widest vector instructions, e.g. "AMD EPYC, AVX2, no AVX-512".

    TensorFlow's speed on a CPU depends most on these instructions (AVX-512, bfloat16, AMX), and
    the machines this project is measured on differ, so every section names them.
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


def gpu_line() -> str:
    """The GPUs `nvidia-smi` lists ("GPU: NVIDIA H200"), or "no GPU"; without importing TensorFlow."""
    if shutil.which("nvidia-smi") is None:
        return "no GPU"
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "no GPU"
    names = [line.split(":", 1)[1].split("(UUID")[0].strip() for line in listed if line.startswith("GPU ") and ":" in line]
    return f"GPU: {', '.join(names)}" if names else "no GPU"


def machine_line() -> str:
    """The machine class a table was measured on: CPU vector instructions, cores, GPU."""
    return f"{cpu_line()}; {os.cpu_count()} CPU cores; {gpu_line()}"


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


def section_text(name: str, body: str, command: str, machine: str, date: str) -> str:
    """One generated section: heading, the command, the machine class and the date, then the body (the table)."""
    return (
        f"<!-- bench:{name} -->\n## {name}\n\n"
        f"- Command: `{command}`\n- Machine: {machine}\n- Date: {date}\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )


def write_section(name: str, body: str, command: str, *, per_cpu: bool = False) -> None:
    """Replace the section `name` of docs/BENCHMARKS.md in place (or append it), stamped with machine and date.

    `body` is the table, with at most a line or two saying what its columns mean. `per_cpu`: the
    section's name ends with the CPU's class (", on AVX2 CPUs"), so a table measured on a CPU with
    other vector instructions sits beside this one instead of replacing it; for the benchmarks whose
    figures those instructions change several-fold (bfloat16 arithmetic or not).
    """
    if per_cpu:
        name = f"{name}, on {cpu_class()} CPUs"
    section = section_text(name, body, command, machine_line(), datetime.date.today().isoformat())
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else INTRO
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text)


def stopwatch():
    """A tiny timer: `elapsed = stopwatch(); ...; seconds = elapsed()`."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
