"""What a page run costs the server: Streamlit's after-run garbage collections against the app's settings.

After every script run Streamlit runs a full garbage collection (`runner.postScriptGC`) and, once
Keras is imported, `keras.backend.clear_session()`, which runs another (ui/rerun_cleanup.py). The
app switches both off. This runs the real app (an AppTest session of streamlit_app.py, the same
harness as bench/classroom_sim.py) through Explore, Train, Compare and Predict several times over,
once per way, each way in a process of its own:

- streamlit: Streamlit's defaults (both collections after every run);
- lab: the app's settings (neither).

Per way: each page run's wall time (p50 / p95), the process's CPU seconds per page run, and its
resident memory at the end and at its peak, so the memory the collections would have freed shows.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.rerun_cost
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.classroom_load import percentile
from bench.harness import ROOT, markdown_table, run_contender, write_section
from bench.server_memory import memory_of

SECTION = "A page run on the server: Streamlit's after-run garbage collections against none"
APP = str(ROOT / "streamlit_app.py")
PAGES = ("pages/explore.py", "pages/train.py", "pages/compare.py", "pages/predict.py")
LABELS = {
    "streamlit": "Streamlit's defaults: two full collections after every run",
    "lab": "the app's settings: none (Python's own collector only)",
}


def page_runs(way: str, rounds: int) -> dict:
    """Open the app once, then visit every page `rounds` times; each page run timed (wall and CPU)."""
    from streamlit import config
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    from ui import rerun_cleanup

    if way == "streamlit":  # the app's entry point must not switch Streamlit's clean-up off
        rerun_cleanup.keep_keras_between_runs = lambda: True
    config.set_option("runner.postScriptGC", way == "streamlit")

    app = AppTest.from_file(APP, default_timeout=300)
    app.run()  # the first visit: imports, the data set, the default model; not counted
    for page in PAGES:
        app.switch_page(page).run()
    if way == "streamlit":
        assert script_runner._clean_problem_modules is rerun_cleanup.STREAMLIT_CLEAN_UP
    wall, cpu = [], []
    for _ in range(rounds):
        for page in PAGES:
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            app.switch_page(page).run()
            wall.append(time.perf_counter() - started_wall)
            cpu.append(time.process_time() - started_cpu)
    errors = [str(exception.value)[:200] for exception in app.exception]
    return {"wall": wall, "cpu": cpu, "errors": errors, "resident_mb": memory_of(os.getpid())["VmRSS"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="visits of every page per way (default 10)")
    parser.add_argument("--out", help="write the table to this file instead of docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not os.environ.get("CIFAR10_DIR"):
        parser.error("set CIFAR10_DIR to a copy of CIFAR-10 (only read)")

    rows = []
    for way in LABELS:
        with tempfile.TemporaryDirectory() as lab_home:
            figures = run_contender("bench.rerun_cost", "page_runs", extra_env={"LAB_HOME": lab_home}, way=way, rounds=args.rounds)
        if figures["errors"]:
            raise SystemExit(f"{way}: the app failed: {figures['errors']}")
        rows.append(
            {
                "way": LABELS[way],
                "runs": len(figures["wall"]),
                "p50": 1000 * statistics.median(figures["wall"]),
                "p95": 1000 * percentile(figures["wall"], 0.95),
                "cpu": 1000 * statistics.mean(figures["cpu"]),
                "resident": figures["resident_mb"],
                "peak": figures["peak_rss_mb"],
            }
        )
        print(rows[-1], flush=True)
    columns = [
        ("way", "after each run", ""),
        ("runs", "page runs", "d"),
        ("p50", "p50 ms", ".0f"),
        ("p95", "p95 ms", ".0f"),
        ("cpu", "CPU ms per run", ".0f"),
        ("resident", "resident MB at the end", ".0f"),
        ("peak", "peak MB", ".0f"),
    ]
    body = (
        f"One AppTest session of the real app (not classroom mode, the shipped default model, real CIFAR-10), "
        f"Explore, Train, Compare and Predict visited {args.rounds} times after a first visit of each; each way in "
        "its own process. A page run's time includes Streamlit's clean-up after it; CPU is the whole process's.\n\n"
        + markdown_table(rows, columns)
    )
    command = "CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.rerun_cost"
    if args.out:
        with open(args.out, "w") as out:
            out.write(body + "\n")
    else:
        write_section(SECTION, body, command)


if __name__ == "__main__":
    main()
