"""A classroom at once: several browsers use the real app while training jobs queue up.

Starts `streamlit run streamlit_app.py` on a free localhost port (a temporary LAB_HOME,
CIFAR-10 from CIFAR10_DIR), stores one quick model first so Predict has something to
answer with, then lets N headless Chromium sessions (one browser, N contexts, driven by
Playwright's asyncio API) click through Explore, Train, Compare and Predict, uploading a
picture on every Predict visit (each student's third one is not a picture at all). Meanwhile a
few tiny training jobs are queued with `lab.jobs.worker.submit`, as students pressing Start do.

It reports what a teacher cares about: page loads served, errors (Streamlit exception
blocks on a page, and loads that failed or timed out), how long a prediction takes under
load (from the upload to the top-k chart on screen, p50 / p95), and the queue (jobs done,
in the order they were queued, the longest queue, the server's peak memory).

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.classroom_load --students 6

Bounded in time (about 4 minutes with the defaults) and only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.harness import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, markdown_table, write_section

PAGES = (("Train", "Train a model"), ("Compare", "Compare runs"), ("Predict", "Predict"), ("Explore", "Explore CIFAR-10"))
STEP_TIMEOUT_MS = 90_000  # a page may wait behind a busy CPU, not forever


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# ---------------------------------------------------------------- the server and its first model


def train_first_model(env: dict) -> str:
    """A stored quick-demo run, so Predict can answer (the command the issue asks for)."""
    command = [sys.executable, "-m", "lab", "train", "--model", "quick-demo", "--subset", "2000", "--epochs", "1", "--json"]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    if completed.returncode != 0:
        raise RuntimeError(f"could not train the first model:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout)["run_id"]


def start_server(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = open(log_path, "wb")  # noqa: SIM115 - the server keeps writing to it; closed with the process
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
        if server.poll() is not None:
            break
    server.kill()
    raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()[-2000:]}")


def server_memory_mb(pid: int) -> dict:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0]) / 1024
    return values


# ---------------------------------------------------------------- the jobs students queue


class QueueWatcher(threading.Thread):
    """Queues `count` tiny runs, one every `spacing` seconds, and samples the queue twice a second."""

    def __init__(self, lab_home: str, data_dir: str, count: int, spacing: float):
        super().__init__(daemon=True)
        self.lab_home, self.data_dir, self.count, self.spacing = lab_home, data_dir, count, spacing
        self.submitted: list[str] = []
        self.max_queued = 0
        self.stop = threading.Event()

    def run(self) -> None:
        from lab.config import config_for_preset
        from lab.jobs import queue
        from lab.store.runs import Store

        store = Store(self.lab_home)
        next_submit = time.monotonic() + 5
        while not self.stop.is_set():
            if len(self.submitted) < self.count and time.monotonic() >= next_submit:
                config = config_for_preset("quick-demo", subset=500, epochs=1, seed=len(self.submitted))
                self.submitted.append(queue.submit(config, store=store, data_dir=self.data_dir))
                next_submit = time.monotonic() + self.spacing
            queued = len(store.list_runs(status="queued"))
            self.max_queued = max(self.max_queued, queued)
            self.stop.wait(0.5)

    def summary(self) -> dict:
        from lab.store.runs import Store

        runs = [Store(self.lab_home).get_run(run_id) for run_id in self.submitted]
        done = [run for run in runs if run["status"] == "completed"]
        started = [run for run in runs if run["started_at"]]
        in_order = [run["run_id"] for run in sorted(started, key=lambda run: run["started_at"])] == [run["run_id"] for run in started]
        waits = [_seconds_between(run["created_at"], run["started_at"]) for run in started]
        return {
            "submitted": len(runs),
            "completed": len(done),
            "statuses": {status: sum(run["status"] == status for run in runs) for status in {run["status"] for run in runs}},
            "in_order": in_order,
            "max_queued": self.max_queued,
            "mean_wait_s": statistics.mean(waits) if waits else None,
        }


def _seconds_between(earlier: str, later: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


# ---------------------------------------------------------------- the students


def upload_files(folder: Path, students: int) -> list[list[Path]]:
    """Each student's pictures: a few PNGs and JPEGs of different sizes, and one file that is not an image."""
    from PIL import Image

    rng = random.Random(0)
    sets = []
    for student in range(students):
        files = []
        for index in range(4):
            size = rng.choice([(64, 48), (640, 480), (1600, 1200), (300, 300)])
            colour = tuple(rng.randrange(256) for _ in range(3))
            path = folder / f"student{student}-{index}.{'png' if index % 2 else 'jpg'}"
            Image.new("RGB", size, colour).save(path)
            files.append(path)
        notes = folder / f"student{student}-notes.png"
        notes.write_bytes(b"my homework, not a picture\n" * 40)
        files.insert(2, notes)  # the third upload of each student
        sets.append(files)
    return sets


async def settle(page, heading: str) -> None:
    """Wait for a page's title, then for its script to finish (no running indicator, no skeletons)."""
    await page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=STEP_TIMEOUT_MS)
    await page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]')""",
        timeout=STEP_TIMEOUT_MS,
    )


async def student(browser, number: int, url: str, deadline: float, files: list[Path], stats: dict) -> None:
    from playwright.async_api import Error as PlaywrightError

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    rng = random.Random(number)
    uploads = 0
    await asyncio.sleep(number * 1.5)  # students arrive over a few seconds, not in the same millisecond
    try:
        await page.goto(url)
        await settle(page, "Explore CIFAR-10")
        stats["page_loads"] += 1
    except PlaywrightError as error:
        stats["failed_loads"].append(f"student {number} first load: {str(error).splitlines()[0]}")
    while time.monotonic() < deadline:
        for title, heading in PAGES:
            if time.monotonic() >= deadline:
                break
            try:
                await page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
                await settle(page, heading)
                stats["page_loads"] += 1
                if title == "Predict":
                    await predict(page, files[uploads % len(files)], stats)
                    uploads += 1
            except PlaywrightError as error:
                stats["failed_loads"].append(f"student {number} {title}: {str(error).splitlines()[0]}")
                try:  # start again from the front door, as a student would reload
                    await page.goto(url)
                    await settle(page, "Explore CIFAR-10")
                except PlaywrightError:
                    pass
            exceptions = await page.locator('[data-testid="stException"]').count()
            if exceptions:
                text = await page.locator('[data-testid="stException"]').first.inner_text()
                stats["exceptions"].append(f"student {number} {title}: {text[:300]}")
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # reading the page
    await context.close()


async def predict(page, path: Path, stats: dict) -> None:
    """Upload one file and time it until the answer (the top-k chart, or the refusal) is on screen."""
    started = time.perf_counter()
    await page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    if path.name.endswith("notes.png"):
        await page.get_by_text(re.compile("is not an image we can read")).first.wait_for(timeout=STEP_TIMEOUT_MS)
        stats["refused_uploads"] += 1
        return
    await page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=STEP_TIMEOUT_MS)
    await page.get_by_text(re.compile(r"\d+% sure")).first.wait_for(timeout=STEP_TIMEOUT_MS)
    stats["predict_seconds"].append(time.perf_counter() - started)


async def classroom(url: str, students: int, seconds: float, files: list[list[Path]]) -> dict:
    from playwright.async_api import async_playwright

    stats = {"page_loads": 0, "failed_loads": [], "exceptions": [], "predict_seconds": [], "refused_uploads": 0}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(student(browser, number, url, deadline, files[number], stats) for number in range(students)))
        await browser.close()
    return stats


# ---------------------------------------------------------------- putting it together


def table_row(stats: dict, peak_mb: float | None) -> dict:
    latencies = stats["predict_seconds"]
    return {
        "students": stats["students"],
        "seconds": stats["seconds"],
        "page_loads": stats["page_loads"],
        "loads_per_min": stats["page_loads"] / stats["seconds"] * 60,
        "predictions": len(latencies),
        "refused": stats["refused_uploads"],
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies) if latencies else None,
        "exceptions": len(stats["exceptions"]),
        "failed": len(stats["failed_loads"]),
        "peak_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Several headless browsers use the app while jobs queue.")
    parser.add_argument("--students", type=int, default=6, help="concurrent browser sessions")
    parser.add_argument("--seconds", type=float, default=120, help="how long the students click around")
    parser.add_argument("--solo-seconds", type=float, default=25, help="one student alone first, for comparison")
    parser.add_argument("--jobs", type=int, default=3, help="tiny training jobs queued while they do")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating docs/BENCHMARKS.md")
    args = parser.parse_args()
    data_dir = os.environ.get("CIFAR10_DIR")
    if not data_dir:
        sys.exit("set CIFAR10_DIR to a CIFAR-10 folder (for example ../shared/data/cifar-10-batches-py)")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    workspace = Path(tempfile.mkdtemp(prefix="classroom-"))
    lab_home = str(workspace / "lab_home")
    env = {**os.environ, "LAB_HOME": lab_home, "CIFAR10_DIR": data_dir, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    os.environ.update(LAB_HOME=lab_home, CIFAR10_DIR=data_dir)  # for the job workers this process starts

    print("training the first model ...", flush=True)
    first_run = train_first_model(env)
    print(f"stored {first_run} in {time.monotonic() - started:.0f} s; starting the server ...", flush=True)
    port = free_port()
    server = start_server(env, port, workspace / "streamlit.log")
    watcher = QueueWatcher(lab_home, data_dir, args.jobs, spacing=10)
    url = f"http://127.0.0.1:{port}"
    try:
        files = upload_files(workspace, args.students)
        # One student alone first (it also warms the server's caches: data set, model, step timing).
        solo_started = time.monotonic()
        solo = asyncio.run(classroom(url, 1, args.solo_seconds, files))
        solo["seconds"], solo["students"] = time.monotonic() - solo_started, 1
        watcher.start()
        browse_started = time.monotonic()
        stats = asyncio.run(classroom(url, args.students, args.seconds, files))
        stats["seconds"], stats["students"] = time.monotonic() - browse_started, args.students
        from lab.jobs import launcher, queue
        from lab.store.runs import Store

        store = Store(lab_home)
        wait_until = time.monotonic() + max(30, 290 - (time.monotonic() - started))  # stay within about 5 minutes
        while queue.active_runs(store) and time.monotonic() < wait_until:
            time.sleep(1)
        watcher.stop.set()
        watcher.join(5)
        queue = watcher.summary()
        memory = server_memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
        from lab.jobs import launcher, queue
        from lab.store.runs import Store

        for pid in launcher.live_workers(Store(lab_home)):  # workers this run started; never anyone else's
            os.kill(pid, 9)

    rows = [table_row(solo, None), table_row(stats, memory.get("VmHWM"))]
    table = markdown_table(
        rows,
        [
            ("students", "browsers", ""),
            ("seconds", "seconds", ".0f"),
            ("page_loads", "page loads", ""),
            ("loads_per_min", "loads / min", ".0f"),
            ("predictions", "predictions", ""),
            ("refused", "non-images refused", ""),
            ("p50", "predict p50 s", ".2f"),
            ("p95", "predict p95 s", ".2f"),
            ("max", "predict max s", ".2f"),
            ("exceptions", "exception blocks", ""),
            ("failed", "failed loads", ""),
            ("peak_mb", "server peak MB", ".0f"),
        ],
    )
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(queue["statuses"].items()))
    wait = "-" if queue["mean_wait_s"] is None else f"{queue['mean_wait_s']:.0f} s"
    queue_line = (
        f"Queue: {queue['submitted']} tiny jobs (quick-demo, 500 images, 1 epoch) queued 10 s apart while browsing, LAB_MAX_JOBS=1: "
        f"{statuses}; started in the order queued: {'yes' if queue['in_order'] else 'NO'}; longest queue {queue['max_queued']}; "
        f"mean wait before starting {wait}."
    )
    note = (
        f"The first row is one student alone; then {args.students} headless Chromium sessions on the same cores as the server and the "
        "jobs. A prediction is timed from handing the file to the browser to the top-k chart on screen."
    )
    load_line = f"Load average (1 min): {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} at its end."
    problems = solo["exceptions"] + solo["failed_loads"] + stats["exceptions"] + stats["failed_loads"]
    body = note + "\n\n" + table + "\n\n" + queue_line + " " + load_line
    if problems:
        body += "\n\nProblems seen:\n" + "\n".join(f"- {problem}" for problem in problems[:10])
    print(body)
    print(f"total {time.monotonic() - started:.0f} s")
    if not args.no_write:
        write_section(
            "Classroom load: concurrent browsers and queued jobs",
            body,
            f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.classroom_load --students {args.students}",
        )


if __name__ == "__main__":
    main()
