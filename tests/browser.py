"""Headless Chromium for the browser tests: Debian's package, never a downloaded browser; and what the browser test modules share."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
# Headless on a machine with no display, no GPU and no internet; /dev/shm is small in containers.
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


def run_id_in_address(page, timeout_ms: int = 30_000) -> str:
    """The run the Train page shows, from its address (`?run=...`): run ids are kept off the screen, behind Details."""
    import re
    from urllib.parse import parse_qs, urlparse

    page.wait_for_url(re.compile(r"[?&]run=[\w.-]+"), timeout=timeout_ms)
    return parse_qs(urlparse(page.url).query)["run"][0]


# ---------------------------------------------------------------- shared by the browser test modules

AXE_JS = ROOT / "build" / "node" / "node_modules" / "axe-core" / "axe.min.js"


def require_browser() -> None:
    """Skip when Chromium or Playwright is missing, except under CI, where that is a failure."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -r requirements-dev.txt)"
    if missing and os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {missing}")
    if missing:
        pytest.skip(missing)


def require_axe() -> Path:
    """axe-core's script (installed by .ci/run with npm into build/node); skip without it, except under CI."""
    if not AXE_JS.is_file():
        missing = f"axe-core is not installed: npm install --no-save --prefix build/node axe-core@4 (looked for {AXE_JS})"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return AXE_JS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_small_cifar10(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 2) -> Path:
    """A small CIFAR-10 folder in the official layout: real pictures when a real copy is at hand, else coloured noise.

    The real copy comes from CIFAR10_REAL_DIR (set by .ci/run) or ../shared beside the clone; the first images of its
    batches are copied, so the pages show real-looking pictures (axe and the eye judge what a student would see).
    Without it, colour_coded_cifar10's noise, each class its own mean colour (same size, same seed).
    """
    from lab.data.cifar10 import load_cifar10, write_cifar10_folder

    real = os.environ.get("CIFAR10_REAL_DIR") or str(ROOT.parent / "shared" / "data" / "cifar-10-batches-py")
    if not Path(real, "test_batch").is_file():
        return colour_coded_cifar10(folder, n_train, n_test, seed)
    data = load_cifar10(real)
    return write_cifar10_folder(folder, data.x_train[:n_train], data.y_train[:n_train], data.x_test[:n_test], data.y_test[:n_test])


def colour_coded_cifar10(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 2) -> Path:
    """A small CIFAR-10 folder of coloured noise in the official layout, where each class has its own mean colour.

    Labels go 0, 1, ..., 9, 0, 1, ...; a picture of class k is noise around the grey 25 * k, so even a one-epoch
    model learns something visible. The same arguments always write the same bytes (the noise comes from `seed`).
    """
    from lab.data.cifar10 import write_cifar10_folder

    rng = np.random.default_rng(seed)
    y_train, y_test = np.arange(n_train) % 10, np.arange(n_test) % 10
    x_train = np.clip(rng.normal(25 * y_train[:, None, None, None], 30, size=(n_train, 32, 32, 3)), 0, 255).astype(np.uint8)
    x_test = np.clip(rng.normal(25 * y_test[:, None, None, None], 30, size=(n_test, 32, 32, 3)), 0, 255).astype(np.uint8)
    return write_cifar10_folder(folder, x_train, y_train, x_test, y_test)


def store_trained_run(lab_home: Path, data_dir: Path, owner=None) -> str:
    """A completed run in the store, as training would leave it: a tiny Keras model fitted for one epoch, its real metrics."""
    import keras
    from keras import layers

    from lab.config import CLASS_NAMES, config_for_preset
    from lab.data.cifar10 import load_cifar10
    from lab.evaluate.metrics import evaluate_model
    from lab.store.records import Status
    from lab.store.runs import Store

    data = load_cifar10(data_dir)
    keras.utils.set_random_seed(0)
    # A functional model with one small convolution, like the lab's own networks: Grad-CAM ("Why?") has a map to use.
    inputs = keras.Input((32, 32, 3))
    features = layers.Conv2D(8, 3, activation="relu", name="conv")(layers.Rescaling(1 / 255)(inputs))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fitted = model.fit(data.x_train, data.y_train, validation_data=(data.x_test, data.y_test), epochs=2, batch_size=64, verbose=0)
    metrics = evaluate_model(model, data.x_test, data.y_test, list(CLASS_NAMES)).metrics
    metrics |= {"total_params": model.count_params(), "trainable_params": model.count_params(), "class_names": list(CLASS_NAMES)}
    store = Store(lab_home)
    run_id = store.create_run(config_for_preset("seed-cnn", epochs=2), status=Status.RUNNING, **({"owner": owner} if owner else {}))
    history = {name: [float(value) for value in values] for name, values in fitted.history.items()}
    store.complete_run(
        run_id, metrics=metrics, history=history, model=model, environment={"device": "CPU"},
        fingerprint={"source": str(data_dir), "n_test": metrics["n_test"]}, train_seconds=3.0,
    )  # fmt: skip
    return run_id


@contextmanager
def streamlit_server(
    workspace: Path, env: dict[str, str], script: str = "streamlit_app.py", *, port: int | None = None, extra_args: Sequence[str] = ()
):
    """`streamlit run script` on a loopback port with the given environment; yields its address, stops it afterwards.

    `port`: one chosen beforehand (the login test names its address in the secrets first); a free one otherwise.
    `extra_args`: more `streamlit run` options. The server's output goes to workspace/streamlit.log.
    A training worker leaves as soon as the queue is empty, unless `env` sets LAB_WORKER_IDLE_SECONDS (a test of
    several runs keeps it warm, so each run skips TensorFlow's start): whatever the server started is stopped
    with it either way.
    """
    port = port or free_port()
    log_path = workspace / "streamlit.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port), "--server.address", "127.0.0.1", *extra_args],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "LAB_WORKER_IDLE_SECONDS": "0", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        started = _processes_started_by(server.pid)  # asked before the server goes: its children then lose their parent
        server.terminate()
        server.wait(timeout=20)
        log.close()
        _stop(started)


def _processes_started_by(pid: int) -> list[psutil.Process]:
    """The processes `pid` started (training workers, their children), while it still runs."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _stop(started: list[psutil.Process]) -> None:
    """Stop those still running: only processes the server started, never a worker a test registered for itself."""
    for process in started:
        with contextlib.suppress(psutil.Error):  # it left by itself meanwhile
            process.terminate()
    psutil.wait_procs(started, timeout=20)


def settle(page, text: str, timeout: float = 60_000) -> None:
    """Wait until `text` is on the page and the script has stopped running (no status widget, skeleton or unloaded image).

    When it does not come, the failure says what the page showed instead (its address, whether the
    script was still running, the start of its text), so a failure in CI can be read without a screenshot.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
        page.wait_for_function(
            """() => !document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]')
                  && [...document.querySelectorAll('[data-testid="stMain"] img')].every(img => img.complete)""",
            timeout=timeout,
        )
    except PlaywrightTimeout as error:
        raise AssertionError(f"waited {timeout / 1000:.0f} s for {text!r}; {what_the_page_shows(page)}") from error
    page.wait_for_timeout(500)  # let charts finish drawing


def what_the_page_shows(page) -> str:
    """A few lines on the page's state: its address, whether a script is running, the start of its main text."""
    try:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        main = page.locator('[data-testid="stMain"]').inner_text(timeout=5_000)
    except Exception as error:  # noqa: BLE001 - the page itself may be gone: say so instead
        return f"the page at {page.url} could not be read ({type(error).__name__})"
    return f"the page at {page.url} shows (script {'still running' if running else 'done'}):\n{main[:800]}"


def fill_number(page, label: str, value: str, timeout: float = 60_000) -> None:
    """Type a number into a labelled field and wait until the app has taken it: the field shows it, the script rerun is over.

    Streamlit sends a number to the server on Enter and reruns the page's script; typing into the next
    field while that rerun is still going could be lost, so this waits on the rerun rather than a fixed time.
    """
    from playwright.sync_api import expect

    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    expect(field).to_have_value(value, timeout=timeout)
    page.wait_for_function(
        """([field, value]) => field.value === value && !document.querySelector('[data-testid="stStatusWidget"]')""",
        arg=[field.element_handle(), value],
        timeout=timeout,
    )


def axe_findings(page, ignore: Iterable[tuple[str, str]] = (), impacts=("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2.1 A and AA findings on the page as it is now, of the given impacts: one dict per element.

    `ignore` holds (axe rule, CSS selector) pairs: a finding of that rule on an element the selector matches is left out.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(
        """async ([ignore, impacts]) => {
             const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                                                     resultTypes: ['violations']});
             const found = [];
             for (const violation of result.violations) {
               for (const node of violation.nodes) {
                 const impact = node.impact || violation.impact;
                 const element = document.querySelector(node.target[node.target.length - 1]);
                 const ignored = ignore.some(([rule, selector]) => rule === violation.id && element && element.matches(selector));
                 if (impacts.includes(impact) && !ignored) {
                   found.push({rule: violation.id, impact, target: node.target.join(' '), html: node.html.slice(0, 160),
                               summary: (node.failureSummary || '').slice(0, 300)});
                 }
               }
             }
             return found;
           }""",
        [list(map(list, ignore)), list(impacts)],
    )


def horizontal_overflow(page) -> int:
    """How many pixels of the page stick out past the window's right edge (0: nothing needs a sideways scroll).

    The page itself (document.scrollingElement), and every element of the main area whose right edge passes the
    window's, unless a box between it and the main area scrolls or clips sideways (a table or chart that scrolls
    inside itself is fine). Streamlit's main area hides what sticks out, so the page alone would not show it.
    A data frame's grid always scrolls inside itself, and keeps its old width a while when the window shrinks
    under an open page (a phone never does that: it loads at its own width), so data frames count as contained.
    """
    return page.evaluate(
        """() => {
             const main = document.querySelector('[data-testid="stMain"]');
             let worst = document.scrollingElement.scrollWidth - window.innerWidth;
             for (const element of (main ? main.querySelectorAll('*') : [])) {
               const box = element.getBoundingClientRect();
               if (box.width === 0 || box.height === 0 || box.right <= window.innerWidth + 1) continue;
               if (element.closest('[data-testid="stDataFrame"]')) continue;
               let contained = false;
               for (let up = element.parentElement; up && up !== main && !contained; up = up.parentElement) {
                 contained = ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(up).overflowX);
               }
               if (!contained) worst = Math.max(worst, Math.ceil(box.right - window.innerWidth));
             }
             return worst;
           }"""
    )
