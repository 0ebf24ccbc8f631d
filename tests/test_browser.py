"""End to end in a real browser: `streamlit run` on a free port, headless Chromium driven by Playwright.

Clicks through every page from the sidebar, trains a tiny model from the Train page,
uploads a PNG on Predict, and saves a screenshot of each step to artifacts/screenshots/.
Skipped when Chromium is not installed, except under CI, where that is a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, colour_coded_cifar10, fill_number, require_browser, settle, streamlit_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The app's folder: its results store (lab_home/), the CIFAR-10 folder and the server's log."""
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def app_url(workspace):
    """A running app with a private results store and a tiny synthetic CIFAR-10 folder."""
    require_browser()
    # Coloured noise, not real pictures: each class its own mean colour, so even a one-epoch model learns something visible.
    data_dir = colour_coded_cifar10(workspace / "cifar-10-batches-py", seed=2)
    with streamlit_server(workspace, {"LAB_HOME": str(workspace / "lab_home"), "CIFAR10_DIR": str(data_dir)}) as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    # Only this module's pictures (they start with a step number): other browser modules may be writing theirs now.
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("[0-9]-*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})  # a fresh profile each time
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(app_url)
        page.wait_for_selector('[data-testid="stApp"]')
        yield page
        context.close()
        browser.close()


def shot(page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main area, so grow the window to fit it."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(900, min(int(height), 6000))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})


def open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()


def assert_healthy(page) -> None:
    """No exception on the page, and the app's own frame around it (navigation and the shared sidebar)."""
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
    assert page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()[-1].endswith("Predict")
    assert page.get_by_text("Device:").count() == 1


def test_click_through_train_and_predict(page, tmp_path, workspace):
    settle(page, "Device")
    page.locator('[data-testid="stMain"] figure img').first.wait_for()  # Explore's sample grid (ui/pictures.py)
    settle(page, "airplane")
    assert_healthy(page)
    shot(page, "1-explore")

    open_page(page, "Train")
    settle(page, "Start training")
    assert_healthy(page)
    shot(page, "2-train-form")
    for label, value in (("Training images (0 = all)", "200"), ("Epochs", "1"), ("Batch size", "16")):
        fill_number(page, label, value)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Cancel this run").or_(page.get_by_text("Test accuracy")).first.wait_for()
    from lab.store.runs import Store

    (run,) = Store(workspace / "lab_home").list_runs()  # the run the button queued, with the values typed above
    assert (run.config.subset, run.config.epochs, run.config.batch_size) == (200, 1, 16)
    shot(page, "3-train-running")
    settle(page, "Test accuracy", timeout=120_000)
    assert_healthy(page)
    shot(page, "4-train-finished")

    open_page(page, "Compare")
    settle(page, "Compare runs")
    assert_healthy(page)
    shot(page, "5-compare")

    open_page(page, "Predict")
    settle(page, "Upload images")
    picture = tmp_path / "red-square.png"
    from PIL import Image

    Image.new("RGB", (96, 64), (200, 30, 30)).save(picture)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(picture))
    settle(page, "sure")
    assert_healthy(page)
    shot(page, "6-predict")


def test_the_sidebar_follows_a_run_without_a_reload(page, workspace):
    # The sidebar's run counts redraw themselves every few seconds while a run is queued or running
    # (ui/sidebar.py): the Train page's progress panel refreshes only itself, so without this the
    # sidebar kept saying "1 queued" for as long as the run trained.
    from lab.config import RunConfig
    from lab.store.runs import Store

    store = Store(workspace / "lab_home")
    run_id = store.create_run(RunConfig(epochs=1), status="running")  # a run no worker will touch: only this test moves it
    open_page(page, "Explore")
    settle(page, "airplane")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("1 running").wait_for(timeout=20_000)
    store.set_status(run_id, "failed", "ended by the test")
    # No click, no reload: the line redraws itself.
    page.wait_for_function(
        """() => { const text = document.querySelector('[data-testid="stSidebar"]').innerText;
                   return text.includes('Results:') && !text.includes('running'); }""",
        timeout=20_000,
    )
    assert_healthy(page)
