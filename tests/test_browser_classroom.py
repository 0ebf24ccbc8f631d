"""Classroom mode end to end: one `streamlit run` server with a teacher password, three browsers on it.

Ana and Ben are two students (two browser contexts: separate cookies, separate sessions), the
teacher a third. Ana trains a tiny run; Ben's Train page does not show it as his, nor offer to stop
it; the teacher's panel lists it; the class leaderboard shows it once it finishes. Screenshots of
each step go to artifacts/screenshots/classroom-*.png. Skipped without Chromium, except under CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    colour_coded_cifar10,
    fill_number,
    require_browser,
    run_id_in_address,
    settle,
    streamlit_server,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "apples-and-pears"


@pytest.fixture(scope="module")
def class_url(tmp_path_factory):
    """A classroom server: a teacher password, a private results store, a tiny synthetic CIFAR-10 folder."""
    require_browser()
    workspace = tmp_path_factory.mktemp("classroom")
    # Coloured noise, not real pictures: each class its own mean colour, so a one-epoch model learns something.
    data_dir = colour_coded_cifar10(workspace / "cifar-10-batches-py", seed=3)
    # streamlit_server also makes the worker leave once the queue is empty (LAB_WORKER_IDLE_SECONDS=0).
    env = {"LAB_HOME": str(workspace / "lab_home"), "CIFAR10_DIR": str(data_dir), "LAB_TEACHER_PASSWORD": PASSWORD}
    with streamlit_server(workspace, env) as url:
        yield url
    log = (workspace / "streamlit.log").read_text(errors="replace")
    assert PASSWORD not in log, "the teacher password reached the server's log"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("classroom-*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def visitor(browser, url: str):
    """A browser of its own (fresh cookies and storage), on the app's address."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    return page


def shot(page, name: str) -> None:
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(900, min(int(height), 4000))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"classroom-{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})


def join(page, name: str) -> None:
    settle(page, "Welcome to the class")
    field = page.get_by_label("Your name", exact=True)
    field.fill(name)
    field.press("Enter")
    sidebar(page).get_by_text(f"you are {name}").wait_for()
    settle(page, "Explore CIFAR-10")


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()


def test_two_students_and_a_teacher_share_one_server(browser, class_url):
    ana, ben, teacher = visitor(browser, class_url), visitor(browser, class_url), visitor(browser, class_url)

    settle(ana, "Welcome to the class")
    shot(ana, "1-welcome")
    join(ana, "Ana")
    assert "id=" not in ana.url, ana.url  # the identity is kept by the browser (a cookie), never in the address
    join(ben, "Ben")

    # The teacher unlocks the panel before anything runs, so its queue shows Ana's run as it arrives.
    settle(teacher, "Welcome to the class")
    password = sidebar(teacher).get_by_label("Teacher password", exact=True)
    password.fill("pears-and-apples")
    password.press("Enter")
    sidebar(teacher).get_by_text("Not accepted.").wait_for()
    settle(teacher, "Not accepted.")
    assert password.input_value() == ""  # the wrong guess is not kept, not even in the input
    password.fill(PASSWORD)
    password.press("Enter")
    sidebar(teacher).get_by_text("Classroom mode: Teacher").wait_for()
    settle(teacher, "Lock the teacher panel")
    assert PASSWORD not in teacher.url
    # The password field goes once the panel is unlocked (waited for: the sidebar redraws a moment after the page).
    from playwright.sync_api import expect

    expect(sidebar(teacher).get_by_label("Teacher password")).to_have_count(0)
    shot(teacher, "2-teacher-sidebar")
    open_page(teacher, "Teacher")
    settle(teacher, "The class's queue")

    # Ana trains a tiny run.
    open_page(ana, "Train")
    settle(ana, "Start training")
    for label, value in (("Training images (0 = all)", "200"), ("Epochs", "1"), ("Batch size", "16")):
        fill_number(ana, label, value)
    ana.get_by_role("button", name="Start training").click()
    ana.get_by_text("Cancel this run").or_(ana.get_by_text("Test accuracy")).first.wait_for()
    run_id = run_id_in_address(ana)
    shot(ana, "3-ana-training")

    # The teacher's queue redraws itself and names Ana's run.
    teacher.locator('[data-testid="stMain"]').get_by_text(run_id).first.wait_for(timeout=20_000)
    assert "Ana" in teacher.locator('[data-testid="stMain"]').inner_text()
    shot(teacher, "4-teacher-queue")

    # Ben's Train page: his own runs only. Ana's run is not his current run and he cannot stop it.
    open_page(ben, "Train")
    settle(ben, "Start training")
    ben.get_by_role("tab", name="Current run").click()
    settle(ben, "No run yet")
    main = ben.locator('[data-testid="stMain"]').inner_text()
    assert run_id not in main and "Cancel this run" not in main and "Stop now" not in main
    shot(ben, "5-ben-train")
    no_exception(ben)

    # A refresh keeps Ben's identity (his browser's cookie).
    ben.reload()
    sidebar(ben).get_by_text("you are Ben").wait_for()
    assert ben.get_by_label("Your name", exact=True).count() == 0

    # Ana's run finishes; the class leaderboard shows it, and the teacher's projected board too.
    settle(ana, "Test accuracy", timeout=120_000)
    no_exception(ana)
    open_page(teacher, "Compare")
    settle(teacher, "Class leaderboard")
    teacher.locator('[data-testid="stMain"] [data-testid="stTable"]').get_by_text("Ana").first.wait_for(timeout=30_000)
    shot(teacher, "6-leaderboard")
    no_exception(teacher)
