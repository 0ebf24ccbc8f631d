"""Resident memory of the Streamlit server with the data set loaded and every page visited.

Starts `streamlit run streamlit_app.py` on a free port, opens each page in headless
Chromium (Explore loads CIFAR-10 into the server's cache; Predict loads the default
model), then reads the server process's memory from /proc: VmRSS (resident), split into
RssAnon (the server's own memory) and RssFile (pages of shared libraries such as
TensorFlow's, shared with every other process that maps them and reclaimable), and VmHWM
(the peak).

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.server_memory
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from bench.harness import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, markdown_table, write_section

PAGES = ("explore", "train", "compare", "predict")
SETTINGS_TRIED = 5


def memory_of(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MB
    return fields


def visit_pages(port: int, on_visited=None) -> None:
    """Visit every page; then `on_visited()`; then try SETTINGS_TRIED batch sizes on the Train page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name in PAGES:
            page.goto(f"http://127.0.0.1:{port}/{name}")
            page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
            page.wait_for_selector("h1", timeout=120_000)
            time.sleep(8)  # let the page finish its work (loading data, models)
        if on_visited is not None:
            on_visited()
        # A student trying settings: each new batch size is a new network to time (ui/model_view.show_estimate).
        page.goto(f"http://127.0.0.1:{port}/train")
        page.wait_for_selector("h1", timeout=120_000)
        time.sleep(6)
        batch_size = page.locator('[data-testid="stNumberInput"]').filter(has_text="Batch size")
        for _ in range(SETTINGS_TRIED):
            batch_size.locator('[data-testid="stNumberInputStepUp"]').click()
            time.sleep(6)  # the step timing (about a second) and the rerun
        browser.close()


def main() -> None:
    port = free_port()
    env = {**os.environ, "LAB_HOME": tempfile.mkdtemp(prefix="bench-server-"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6)
        idle = memory_of(server.pid)
        loaded = {}
        visit_pages(port, on_visited=lambda: loaded.update(memory_of(server.pid)))
        tried = memory_of(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows = [
        {"state": "started, no page visited", **idle},
        {"state": "every page visited (data set + default model loaded)", **loaded},
        {"state": f"then {SETTINGS_TRIED} more batch sizes tried on the Train page (each one timed)", **tried},
    ]
    table = markdown_table(
        rows,
        [
            ("state", "server state", ""),
            ("VmRSS", "resident MB", ".0f"),
            ("RssAnon", "own (anon) MB", ".0f"),
            ("RssFile", "shared-library MB", ".0f"),
            ("VmHWM", "peak MB", ".0f"),
        ],
    )
    print(table)
    note = (
        "One server process, one browser session visiting Explore, Train, Compare and Predict; 'own' is the server's anonymous "
        f"memory, 'shared-library' its mapped library pages. Last row: the Train page's batch size raised {SETTINGS_TRIED} times by one."
    )
    write_section(
        "Streamlit server memory",
        note + "\n\n" + table,
        "CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.server_memory",
    )


if __name__ == "__main__":
    main()
