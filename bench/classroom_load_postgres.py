"""The classroom load with the store in PostgreSQL, beside the same class on SQLite.

bench/classroom_load.py's class (30 students as AppTest sessions of the real app, the lab's fair queue,
real training on CIFAR-10) runs twice on the same machine: once with the default SQLite store, once
with LAB_DATABASE_URL pointing at a fresh database in a private PostgreSQL server on this machine
(started and stopped here, as the tests do: tests/postgres_server.py). Besides the load's own figures,
each store is checked afterwards for lost or doubled rows: every run a student asked for is stored
once, no settings were trained twice, no epoch's progress event was stored twice.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.classroom_load_postgres

A small trial: `--students 4 --identical 2 --eager 1 --subset 1000 --epochs 1 --no-write`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import classroom_load, harness
from bench.harness import markdown_table, write_section

SECTION = "Classroom load on PostgreSQL beside SQLite"
COLUMNS = [
    ("store", "store", ""),
    *[column for column in classroom_load.SUMMARY_COLUMNS if column[0] != "way"],
    ("rows", "runs stored", ""),
    ("doubled", "doubled rows", ""),
]


def run_on(store_name: str, args: argparse.Namespace, data_dir: str) -> dict:
    """The fair way on one store; the store is kept until its rows are checked, then removed."""
    workspaces = set(Path(tempfile.gettempdir()).glob("classroom-fair-*"))
    args.keep = True  # the rows are checked after the way's process has ended
    figures = classroom_load.run_way("fair", args, data_dir)
    (workspace,) = set(Path(tempfile.gettempdir()).glob("classroom-fair-*")) - workspaces
    try:
        figures.update(check_rows(workspace / "lab_home"))
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    figures["store"] = store_name
    return figures


def check_rows(lab_home: Path) -> dict:
    """Runs stored, and rows stored twice: a completed settings key twice, an epoch's event twice, a run id twice."""
    from lab.store.runs import Store

    store = Store(lab_home)  # PostgreSQL when LAB_DATABASE_URL is set, as during the way
    with store._read() as connection:
        runs = connection.execute("SELECT run_id, status, settings_key FROM runs").fetchall()
        events = connection.execute("SELECT run_id, payload_json FROM events WHERE kind = 'epoch_end'").fetchall()
    completed_keys = Counter(row["settings_key"] for row in runs if row["status"] == "completed" and row["settings_key"])
    epochs = Counter((row["run_id"], json.loads(row["payload_json"]).get("epoch")) for row in events)
    run_ids = Counter(row["run_id"] for row in runs)
    doubled = sum(count - 1 for counter in (completed_keys, epochs, run_ids) for count in counter.values() if count > 1)
    return {"rows": len(runs), "doubled": doubled}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The classroom load on PostgreSQL beside SQLite.")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--identical", type=int, default=10)
    parser.add_argument("--eager", type=int, default=5)
    parser.add_argument("--subset", type=int, help="training images per run (default: the quick-demo preset's)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the quick-demo preset's)")
    parser.add_argument("--arrive-over", type=float, default=60.0)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--out", type=Path, help="write the section into this file instead of docs/BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    data_dir = os.environ.get("CIFAR10_DIR")
    if not data_dir:
        sys.exit("set CIFAR10_DIR to a CIFAR-10 folder (for example ../shared/data/cifar-10-batches-py)")
    data_dir = str(Path(data_dir).expanduser().resolve())
    sys.path.insert(0, str(harness.ROOT))
    from tests.postgres_server import running_server

    os.environ.pop("LAB_DATABASE_URL", None)
    results = [run_on("SQLite", args, data_dir)]
    with running_server() as server:
        os.environ["LAB_DATABASE_URL"] = server.new_database()
        try:
            results.append(run_on("PostgreSQL (same machine)", args, data_dir))
        finally:
            os.environ.pop("LAB_DATABASE_URL", None)

    rows = [
        {"store": figures["store"], **classroom_load.summary_row(figures), "rows": figures["rows"], "doubled": figures["doubled"]}
        for figures in results
    ]
    body = "\n".join(
        [
            f"bench/classroom_load.py's class, the fair way only ({args.students} students, {args.identical} with identical settings, "
            f"{args.eager} eager; quick-demo{_settings(args)}), once per store on the same machine; PostgreSQL 15 from Debian's "
            "package runs on the same machine (its processes' memory is not in the figures). 'doubled rows': a settings key "
            "completed twice, an epoch's progress event stored twice, or a run id twice, counted in the store afterwards.",
            "",
            markdown_table(rows, COLUMNS),
            *(f"\n{figures['store']} errors: " + "; ".join(figures["errors"][:5]) for figures in results if figures["errors"]),
        ]
    )
    print(body)
    if args.no_write:
        return
    if args.out is not None:
        harness.BENCHMARKS_MD = args.out
    options = " ".join(
        f"--{name.replace('_', '-')} {getattr(args, name)}"
        for name in ("students", "identical", "eager", "subset", "epochs")
        if getattr(args, name) != parser.get_default(name)
    )
    write_section(
        SECTION, body, f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.classroom_load_postgres {options}".strip()
    )


def _settings(args: argparse.Namespace) -> str:
    parts = [f"{args.subset:,} training images" if args.subset else "", f"{args.epochs} epochs" if args.epochs else ""]
    return f" ({', '.join(part for part in parts if part)})" if any(parts) else ""


if __name__ == "__main__":
    main()
