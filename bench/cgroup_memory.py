"""The app and its worker inside a 2.7 GB memory limit, as Streamlit Community Cloud's largest app gets.

Makes a Linux memory cgroup (v1, /sys/fs/cgroup/memory; run as root) limited to 2.7 GB with no swap
beyond it, starts `streamlit run streamlit_app.py` inside it on a free loopback port (the worker the app
starts for a run is its child, so inside too), and drives it with headless Chromium (outside the limit):
a quick training run on the Train page, the Compare page, then ten predictions on the Predict page. Every
half second it reads each process in the cgroup (/proc/<pid>/status: VmHWM, the peak resident memory);
at the end the cgroup's own peak and whether the kernel killed anything for memory (memory.oom_control).

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.cgroup_memory

Bounded: the server is stopped, every process left in the cgroup killed and the cgroup removed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.harness import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, markdown_table, write_section

SECTION = "Memory: the app and its worker inside a 2.7 GB limit"
LIMIT_BYTES = 2_700_000_000
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
PREDICTIONS = 10


def make_cgroup(limit: int) -> Path:
    group = CGROUP_ROOT / f"cifar10-lab-bench-{os.getpid()}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(limit))
    swap_limit = group / "memory.memsw.limit_in_bytes"
    if swap_limit.exists():
        swap_limit.write_text(str(limit))  # memory plus swap: no swap beyond the limit, as on Community Cloud
    return group


def processes_in(group: Path) -> list[int]:
    return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]


class Sampler(threading.Thread):
    """Every half second: each process in the cgroup, its role (server or worker) and its peak resident memory."""

    def __init__(self, group: Path):
        super().__init__(daemon=True)
        self.group, self.stop, self.peaks = group, threading.Event(), {}

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for pid in processes_in(self.group):
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
                role = "worker" if "lab.jobs.worker" in command else "server" if "streamlit" in command else command[:40]
                self.peaks[pid] = (role, max(peak, self.peaks.get(pid, ("", 0.0))[1]))


def drive(url: str, workspace: Path, epochs: int, subset: int) -> float:
    """Train, Compare, ten predictions; returns the seconds it took."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/train")
        page.get_by_role("button", name="Start training").wait_for(timeout=180_000)
        for label, value in (("Training images (0 = all)", str(subset)), ("Epochs", str(epochs))):
            field = page.get_by_label(label, exact=True)
            field.fill(value)
            field.press("Enter")
            page.wait_for_timeout(1500)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Test accuracy").first.wait_for(timeout=900_000)
        page.goto(f"{url}/compare")
        page.get_by_text("Compare runs").first.wait_for(timeout=180_000)
        page.wait_for_timeout(5000)
        page.goto(f"{url}/predict")
        page.get_by_text("Upload images").first.wait_for(timeout=180_000)
        for number in range(PREDICTIONS):
            picture = workspace / f"picture-{number}.png"
            Image.new("RGB", (64, 48), (25 * number, 200 - 15 * number, 40)).save(picture)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(picture))
            page.get_by_text("sure").first.wait_for(timeout=180_000)
            page.wait_for_timeout(1000)
        browser.close()
    return time.monotonic() - started


def oom_kills(group: Path) -> int:
    for line in (group / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The app and its worker inside a 2.7 GB memory cgroup.")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=5000, help="training images of the quick run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    data_dir = os.environ.get("CIFAR10_DIR")
    if not data_dir:
        sys.exit("set CIFAR10_DIR to a CIFAR-10 folder (for example ../shared/data/cifar-10-batches-py)")
    if not os.access(CGROUP_ROOT, os.W_OK):
        sys.exit(f"{CGROUP_ROOT} is not writable: run as root on a machine with cgroup v1's memory controller")
    workspace = Path(tempfile.mkdtemp(prefix="cgroup-memory-"))
    group = make_cgroup(LIMIT_BYTES)
    port = free_port()
    env = {**os.environ, "LAB_HOME": str(workspace / "lab_home"), "CIFAR10_DIR": str(Path(data_dir).resolve()), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["LAB_WORKER_IDLE_SECONDS"] = "0"
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true"]  # fmt: skip
    # The shell joins the cgroup, then becomes the server: everything the server starts is inside the limit.
    inside = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *command]
    log = open(workspace / "server.log", "wb")  # noqa: SIM115 - closed at the end
    server = subprocess.Popen(inside, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    sampler = Sampler(group)
    sampler.start()
    outcome = "finished"
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start: " + (workspace / "server.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        seconds = drive(url, workspace, args.epochs, args.subset)
    except Exception as error:  # noqa: BLE001 - reported in the table: a run that failed under the limit is the finding
        outcome, seconds = f"failed: {type(error).__name__}: {str(error)[:200]}", None
    finally:
        sampler.stop.set()
        sampler.join()
        server_alive = server.poll() is None
        peak_mb = int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
        kills, failures = oom_kills(group), int((group / "memory.failcnt").read_text())
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        for pid in processes_in(group):
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        group.rmdir()
        log.close()
    rows = [{"process": role, "peak": peak} for _, (role, peak) in sorted(sampler.peaks.items(), key=lambda item: item[1][0])]
    rows.append({"process": "the cgroup (all together, each page once)", "peak": peak_mb})
    body = "\n".join(
        [
            f"`streamlit run` and the worker it starts inside a memory cgroup of {LIMIT_BYTES / 1e9:.1f} GB (memory plus swap), driven "
            f"by headless Chromium outside it: one run of {args.subset:,} training images for {args.epochs} epoch(s) from the Train page, "
            f"the Compare page, then {PREDICTIONS} predictions on the Predict page. Peak resident memory per process (VmHWM, sampled "
            "every 0.5 s; it counts the shared libraries' pages in each process) and the cgroup's own peak (each page once; pages "
            "already cached by processes outside it, such as TensorFlow's libraries, are not charged to it).",
            "",
            markdown_table(rows, [("process", "process", ""), ("peak", "peak MB", ".0f")]),
            "",
            f"Outcome: {outcome}{f' in {seconds:.0f} s' if seconds else ''}; processes killed for memory: {kills}; "
            f"times the limit was hit: {failures}; server still running at the end: {'yes' if server_alive else 'no'}.",
        ]
    )
    print(body)
    if not args.no_write:
        options = " ".join(
            f"--{name} {getattr(args, name)}" for name in ("epochs", "subset") if getattr(args, name) != parser.get_default(name)
        )
        write_section(
            SECTION, body, f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.cgroup_memory {options}".strip()
        )


if __name__ == "__main__":
    main()
