"""A class of 30 on one machine: the lab's queue (no duplicate runs, fair order) against first come, first served.

The class is limited to the quick-demo preset. Each student arrives (students come in over a
minute), gives a name, browses Explore, presses Start once (ten of them with identical settings, who choose
to use a classmate's run; everyone else trains their own; five eager students queue a second run at once), opens Compare and, once their first result is
in, predicts once with it. Side by side on the same machine and the same data:

- fair: the lab's queue (`ask_for_run` in classroom mode: the same settings on the same data are
  trained once and followed by everyone who asks; the class's limits; lab's workers, which take
  runs round robin across students and stay warm between runs);
- fcfs: first come, first served without dedupe: every request queued, the oldest trained first,
  by a worker that also stays warm, so the ways differ in the queue only;
- fcfs-cold (only on request): as fcfs, each run in a new process that loads TensorFlow and the data.

It reports, per way: errors, page interaction latency (p50 / p95), the peak memory of the server
and of the workers, the order in which runs started, each student's time from their first Start
to their first result (median and maximum), and what a run's start costs in a new worker against
a warm one. How the students are simulated (AppTest sessions of the real app, on the real job
queue, in one server process) is in bench/classroom_sim.py, which runs each way in a process of
its own, on a fresh temporary LAB_HOME and the real CIFAR-10 (CIFAR10_DIR, only read). Each way's
runs must be trained by that way's own workers; the targets are judged only when every way ran
without errors, since a way with errors measured something else.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.classroom_load

A small trial: `--students 4 --identical 2 --eager 1 --subset 1000 --epochs 1 --out /tmp/BENCHMARKS.md`.
Bounded: every way ends by its deadline (--minutes), its workers are killed at the end, its files
live in a temporary folder, and nothing talks to the network (AppTest runs the app in-process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import harness
from bench.classroom_sim import WAYS
from bench.harness import ROOT, markdown_table, write_section
from lab.config import PRESETS

SECTION = "Classroom load: a class on one machine, the fair queue against first come first served"
LABELS = {
    "fair": "fair: no duplicates, round robin (lab)",
    "fcfs": "first come first served, every request trained",
    "fcfs-cold": "first come first served, a new process per run",
}
TARGET_RATIO = 2.0  # the fair queue's median time to a first result, at least this much shorter than FCFS
TARGET_LAST_S = 600.0  # the last student's first result within 10 minutes
EXTRA_S = 600  # a way's process may take this long beyond its deadline: the server's warm-up, collecting the figures


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- running the ways


def run_way(way: str, args: argparse.Namespace, data_dir: str) -> dict:
    """One way in its own process (bench/classroom_sim.py), on a fresh store in a temporary folder."""
    from lab.jobs import launcher
    from lab.store.runs import Store

    workspace = Path(tempfile.mkdtemp(prefix=f"classroom-{way}-"))
    overrides = {name: value for name, value in (("subset", args.subset), ("epochs", args.epochs)) if value is not None}
    spec = {
        "way": way,
        "workspace": str(workspace),
        "data_dir": data_dir,
        "minutes": args.minutes,
        "overrides": overrides,
        "plan": {"students": args.students, "identical": args.identical, "eager": args.eager, "arrive_over": args.arrive_over},
    }
    (workspace / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "bench.classroom_sim", "way", str(workspace / "spec.json"), str(workspace / "result.json")]
    print(f"{way}: {args.students} students, workspace {workspace}", flush=True)
    started = time.monotonic()
    try:
        subprocess.run(command, cwd=ROOT, env=env, timeout=args.minutes * 60 + EXTRA_S, check=True)
        figures = json.loads((workspace / "result.json").read_text())
    finally:
        # The way kills its workers itself; these are the ones left if it was killed (lab's run in sessions of their own).
        for pid in launcher.live_workers(Store(workspace / "lab_home")):
            os.kill(pid, 9)
        if not args.keep:
            shutil.rmtree(workspace, ignore_errors=True)
    figures["wall_s"] = time.monotonic() - started
    return figures


# ---------------------------------------------------------------- figures


def first_result_waits(students: list[dict]) -> list[float | None]:
    """Per student: seconds from their first Start to their first result (None: none by the deadline)."""
    return [student["first_result_s"] - student["start_s"] if "first_result_s" in student else None for student in students]


def summary_row(figures: dict) -> dict:
    runs, timings = figures["runs"], figures["timings"]
    latencies = [timing["wait_s"] + timing["run_s"] for timing in timings]
    waits = first_result_waits(figures["students"])
    served = [wait for wait in waits if wait is not None]
    cold = [run["start_cost_s"] for run in runs if run.get("cold") and "start_cost_s" in run]
    warm = [run["start_cost_s"] for run in runs if run.get("cold") is False and "start_cost_s" in run]
    trained = [run["finished_s"] - run["claimed_s"] for run in runs if run["status"] == "completed"]
    return {
        "way": LABELS[figures["way"]],
        "trained": sum(run["status"] == "completed" for run in runs),
        "errors": len(figures["errors"]),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "server_mb": figures["server_peak_mb"],
        "workers_mb": figures["workers_peak_mb"],
        "median": median(served) if len(served) == len(waits) else None,
        "max": max(served) if served and len(served) == len(waits) else None,
        "unserved": len(waits) - len(served),
        "all_done": figures["all_done_s"],
        "run_s": median(trained),
        "cold": median(cold),
        "cold_n": len(cold),
        "warm": median(warm),
        "warm_n": len(warm),
    }


def group_rows(figures: dict) -> list[dict]:
    """The students by what they asked for: the same settings as others, their own, a second run at once; then everyone."""
    students = figures["students"]
    groups = [
        ("same settings as others", [s for s in students if s["identical"]]),
        ("own settings, one run", [s for s in students if not s["identical"] and not s["eager"]]),
        ("own settings, a second run at once", [s for s in students if s["eager"]]),
        ("everyone", students),
    ]
    rows = []
    for name, members in groups:
        if not members:
            continue
        waits = first_result_waits(members)
        served = [wait for wait in waits if wait is not None]
        rows.append(
            {
                "group": name,
                "students": len(members),
                "start": median([s["start_s"] for s in members if "start_s" in s]),
                "median": median(served) if len(served) == len(waits) else None,
                "max": max(served) if served and len(served) == len(waits) else None,
                "served": f"{len(served)} / {len(members)}",
            }
        )
    return rows


def start_order(figures: dict) -> str:
    """The runs by the time a worker took them: the owner's arrival number, 'b' for a second run, '=' for the shared settings."""
    identical = {s["number"] for s in figures["students"] if s["identical"]}
    seen: dict[int, int] = {}
    labels = {}
    for run in sorted(figures["runs"], key=lambda run: run["queued_s"]):
        number = run["student"]
        seen[number] = seen.get(number, 0) + 1
        labels[run["run_id"]] = f"{number}{'b' if seen[number] > 1 else ''}{'=' if number in identical else ''}"
    taken = sorted((run for run in figures["runs"] if run["claimed_s"] is not None), key=lambda run: run["claimed_s"])
    left = [labels[run["run_id"]] for run in figures["runs"] if run["claimed_s"] is None]
    return ", ".join(labels[run["run_id"]] for run in taken) + (f" (never started: {', '.join(left)})" if left else "")


def requests_line(figures: dict) -> str:
    outcomes = [outcome["outcome"] for student in figures["students"] for outcome in student["outcomes"]]
    counts = {name: outcomes.count(name) for name in ("queued", "following", "trained before")}
    return f"{len(outcomes)} Start requests: " + ", ".join(f"{count} {name}" for name, count in counts.items() if count)


# ---------------------------------------------------------------- the section


SUMMARY_COLUMNS = [
    ("way", "way", ""),
    ("trained", "runs trained", ""),
    ("errors", "errors", ""),
    ("p50", "page p50 s", ".2f"),
    ("p95", "page p95 s", ".2f"),
    ("server_mb", "server peak MB", ".0f"),
    ("workers_mb", "workers peak MB", ".0f"),
    ("median", "first result median s", ".0f"),
    ("max", "first result max s", ".0f"),
    ("all_done", "all runs done s", ".0f"),
    ("run_s", "one run s", ".1f"),
    ("cold", "run start, new worker s", ".1f"),
    ("warm", "run start, warm worker s", ".1f"),
]
GROUP_COLUMNS = [
    ("group", "students who", ""),
    ("students", "students", ""),
    ("start", "Start at s (median)", ".0f"),
    ("median", "first result median s", ".0f"),
    ("max", "first result max s", ".0f"),
    ("served", "served", ""),
]


def targets(summaries: dict[str, dict]) -> list[str]:
    """The targets, each met or not; none at all while a way has errors, since its figures then measure something else
    (a run trained by another way's worker, a student who never got a result)."""
    fair = summaries.get("fair")
    if fair is None:
        return []
    broken = [f"{summary['way']}: {summary['errors']}" for summary in summaries.values() if summary["errors"]]
    if broken:
        return [
            f"- No verdict on the targets: a way with errors did not measure what they compare (errors per way: {'; '.join(broken)}; "
            "listed below). Fix what they name and run the benchmark again."
        ]
    lines = ["- 0 errors in every way: met."]
    fcfs = summaries.get("fcfs") or summaries.get("fcfs-cold")
    if fcfs is not None and fair["median"] and fcfs["median"]:
        ratio = fcfs["median"] / fair["median"]
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        lines.append(
            f"- Median time to a first result at least {TARGET_RATIO:g}x shorter than first come first served: {verdict} ({ratio:.1f}x)."
        )
    elif fcfs is not None:
        lines.append(
            "- Median time to a first result against first come first served: not measured (a way left students without a result)."
        )
    last = fair["max"]
    verdict = "met" if last is not None and last <= TARGET_LAST_S else "NOT met"
    shown = f"{last:.0f} s" if last is not None else f"{fair['unserved']} students without a result"
    lines.append(f"- The last student's first result within {TARGET_LAST_S / 60:.0f} minutes (fair): {verdict} ({shown}).")
    return lines


def section_body(args: argparse.Namespace, results: list[dict]) -> str:
    summaries = {figures["way"]: summary_row(figures) for figures in results}
    epochs = args.epochs or PRESETS["quick-demo"]["fields"]["epochs"]
    settings = f"{args.subset or PRESETS['quick-demo']['fields']['subset']:,} training images, {epochs} epoch{'s' if epochs != 1 else ''}"
    lines = [
        f"{args.students} students arriving over {args.arrive_over:.0f} s, each an AppTest session of the real app in one server process "
        f"(page runs take turns, as on one Python interpreter); quick-demo only ({settings}); every student trains a run of "
        f"their own (the classroom default), except {args.identical} students with identical settings who choose a classmate's run "
        f"(the Train page's labelled choice: a copy); {args.eager} eager students queue a second run at once; LAB_MAX_JOBS={results[0]['max_jobs']}. Students think 1-4 s "
        "between clicks and predict once their first result is in. A page interaction is one script run, its wait for a turn "
        "included. A student's wait runs from their first Start to their first result (their own run, or one with the same "
        "settings that they follow). 'Run start': from when a worker could take the run (a new worker's process start, a warm "
        "worker's previous run's end, or the run's queueing if later) to the run's first progress event. Memory: the server's "
        "peak (getrusage), all workers together sampled every 0.5 s.",
        "",
        markdown_table(list(summaries.values()), SUMMARY_COLUMNS),
    ]
    if targets(summaries):
        lines += ["", *targets(summaries)]
    for figures in results:
        summary = summaries[figures["way"]]
        lines += [
            "",
            f"**{LABELS[figures['way']]}**: {requests_line(figures)}; run start in a new worker {_count(summary, 'cold')}, "
            f"in a warm one {_count(summary, 'warm')}.",
            "",
            markdown_table(group_rows(figures), GROUP_COLUMNS),
            "",
            f"Runs in the order they started (student by arrival; b = a second run; = the shared settings): {start_order(figures)}.",
        ]
        if figures["errors"]:
            lines += ["", "Errors:", *(f"- {error}" for error in figures["errors"][:10])]
            if len(figures["errors"]) > 10:
                lines.append(f"- ... and {len(figures['errors']) - 10} more")
    return "\n".join(lines)


def _count(summary: dict, key: str) -> str:
    value = summary[key]
    return "-" if value is None else f"{value:.1f} s (median of {summary[key + '_n']})"


def command_line(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The command that measures this class again: the options that differ from their defaults."""
    options = []
    for name in ("students", "identical", "eager", "subset", "epochs", "ways", "arrive_over", "minutes"):
        value = getattr(args, name)
        if value != parser.get_default(name):
            options.append(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float) else f"--{name.replace('_', '-')} {value}")
    return " ".join(["CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.classroom_load", *options])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A class on one machine: the fair queue against first come, first served.")
    parser.add_argument("--students", type=int, default=30, help="students in the class")
    parser.add_argument("--identical", type=int, default=10, help="students who choose the very same settings")
    parser.add_argument("--eager", type=int, default=5, help="students who queue a second run at once")
    parser.add_argument("--subset", type=int, help="training images per run (default: the quick-demo preset's)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the quick-demo preset's)")
    parser.add_argument("--ways", default="fair,fcfs", help=f"comma-separated, from: {', '.join(WAYS)}")
    parser.add_argument("--arrive-over", type=float, default=60.0, help="seconds over which the students arrive")
    parser.add_argument(
        "--minutes", type=float, default=40.0, help="each way's deadline; students without a result by then count as errors"
    )
    parser.add_argument("--out", type=Path, help="write the section into this file instead of docs/BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print the section without writing it")
    parser.add_argument("--keep", action="store_true", help="keep each way's temporary folder (store, worker logs)")
    args = parser.parse_args(argv)
    ways = [way.strip() for way in args.ways.split(",") if way.strip()]
    if not ways or any(way not in WAYS for way in ways):
        parser.error(f"--ways takes some of: {', '.join(WAYS)}")
    data_dir = os.environ.get("CIFAR10_DIR")
    if not data_dir:
        sys.exit("set CIFAR10_DIR to a CIFAR-10 folder (for example ../shared/data/cifar-10-batches-py)")
    data_dir = str(Path(data_dir).expanduser().resolve())

    results = [run_way(way, args, data_dir) for way in ways]
    body = section_body(args, results)
    print(body)
    print("wall time per way: " + ", ".join(f"{figures['way']} {figures['wall_s']:.0f} s" for figures in results))
    if args.no_write:
        return
    if args.out is not None:
        harness.BENCHMARKS_MD = args.out  # write_section reads it when called
    write_section(SECTION, body, command_line(args, parser))


if __name__ == "__main__":
    main()
