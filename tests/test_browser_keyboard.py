"""The whole student path with the keyboard alone, and a focus the eye can follow.

One classroom server on a small CIFAR-10 folder. A student who uses no mouse joins, opens Train,
chooses a preset, sets a short run, starts it, watches its progress (announced politely to a
screen reader), stops it keeping the model, opens Compare and the run's confusion matrix and
mistakes, uploads a picture on Predict and reads the prediction. Every step is Tab, Shift+Tab,
arrows, typing, Enter or Space: `tab_to` presses Tab until the wanted control has the focus, and
checks that the focused control shows it (an outline, a ring or a border the eye can see).
Skipped without Chromium, except under CI.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    axe_findings,
    require_axe,
    require_browser,
    settle,
    streamlit_server,
    write_small_cifar10,
)
from tests.test_browser_a11y import STREAMLIT_OWN

pytestmark = pytest.mark.browser

SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "apples-and-pears"
MAX_TABS = 120  # more presses than any page needs to reach a control: a control that never gets the focus fails

# What the focused element is: its accessible name (or text), tag and role.
FOCUS_JS = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return {name: '', tag: '', role: ''};
  const name = (element.getAttribute('aria-label') || element.innerText || element.value || element.title || '').trim().slice(0, 120);
  return {name, tag: element.tagName.toLowerCase(), role: element.getAttribute('role') || ''};
}"""
# Whether the focus shows: the element or the widget frame around it (Streamlit marks a focused text field or
# select box by its frame's border colour, a button by a ring) looks different with the focus than without it.
# The styles of the element and its three nearest ancestors are compared with the focus and after a blur (each
# after the widget's restyling and transitions have run), and the focus is put back where it was.
FOCUS_SHOWS_JS = """async () => {
  const element = document.activeElement;
  const settled = () => new Promise(resolve => setTimeout(resolve, 400));
  const looks = () => { const styles = [];
    for (let node = element, depth = 0; node && depth < 4; node = node.parentElement, depth++) {
      const style = getComputedStyle(node);
      styles.push([style.outlineStyle, style.outlineWidth, style.outlineColor, style.boxShadow, style.borderColor, style.backgroundColor].join('|'));
    }
    return styles.join(';'); };
  await settled();
  const focused = looks();
  element.blur();
  await settled();
  const unfocused = looks();
  element.focus();
  await settled();
  return focused !== unfocused;
}"""


@pytest.fixture(scope="module")
def class_url(tmp_path_factory):
    require_browser()
    workspace = tmp_path_factory.mktemp("keyboard")
    data_dir = write_small_cifar10(workspace / "cifar-10-batches-py")
    env = {"LAB_HOME": str(workspace / "lab_home"), "CIFAR10_DIR": str(data_dir), "LAB_TEACHER_PASSWORD": PASSWORD}
    with streamlit_server(workspace, env) as url:
        yield url


@pytest.fixture(scope="module")
def page(class_url):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(class_url)
        page.wait_for_selector('[data-testid="stApp"]')
        yield page
        context.close()
        browser.close()


def tab_to(page, name: str, *, role: str | None = None, backwards: bool = False, exact: bool = False) -> dict:
    """Press Tab (Shift+Tab with `backwards`) until a control whose name starts with `name` (is `name`, with `exact`)
    has the focus; the focus must show."""
    seen = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focus = page.evaluate(FOCUS_JS)
        seen.append(focus["name"][:40])
        # A control's text may start with its icon's name ("model_training\n\nTrain"): any line may carry the name.
        lines = [line.strip() for line in focus["name"].splitlines()]
        named = name in lines if exact else any(line.startswith(name) for line in lines)
        if named and (role is None or focus["role"] == role or focus["tag"] == role):
            assert focus_shows(page), f"{name!r} has the focus but shows no outline, ring or border: {focus}"
            return focus
    raise AssertionError(f"{name!r} never got the focus in {MAX_TABS} presses of Tab; the focus went through: {seen}")


def focus_shows(page, tries: int = 3) -> bool:
    """Whether the focused element shows that it has the focus, in any of `tries` measurements.

    On a busy machine one measurement of a tab that had just opened its section (a rerun) once came out the same
    with and without the focus, and the next ones did not (the cause is not pinned down). An element that never
    shows its focus fails every try.
    """
    return any(page.evaluate(FOCUS_SHOWS_JS) for _ in range(tries))


def arrow_to(page, name: str, presses: int = 8) -> None:
    """Within a group reached by Tab (pills, tabs: one stop for the group), move with the right arrow to `name`, then Enter."""
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
        if any(line.strip().startswith(name) for line in page.evaluate(FOCUS_JS)["name"].splitlines()):
            assert focus_shows(page), f"{name!r} has the focus but shows no outline, ring or border"
            page.keyboard.press("Enter")
            return
    raise AssertionError(f"{name!r} was not reached with the arrow keys")


def go_to_page(page, title: str, text: str, timeout: float = 60_000) -> None:
    """Open a page from the sidebar's navigation with the keyboard: Shift+Tab back to its link (the sidebar comes first), Enter."""
    tab_to(page, title, role="a", backwards=True)
    page.keyboard.press("Enter")
    settle(page, text, timeout)


def type_number(page, label: str, value: str) -> None:
    """Tab to a number field, replace its value, Enter; wait until the app took it."""
    tab_to(page, label)
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """([label, value]) => { const field = document.querySelector(`input[aria-label="${label}"]`);
                                 return field && field.value === value && !document.querySelector('[data-testid="stStatusWidget"]'); }""",
        arg=[label, value],
    )


def test_the_student_path_with_the_keyboard_alone(page, tmp_path):
    settle(page, "Welcome to the class")
    tab_to(page, "Your name")
    page.keyboard.type("Kim")
    page.keyboard.press("Enter")
    page.locator('[data-testid="stSidebar"]').get_by_text("you are Kim").wait_for()
    settle(page, "Explore CIFAR-10")

    # Train: choose a preset, make the run short, start it.
    go_to_page(page, "Train", "Start training")
    tab_to(page, "Preset", role="combobox")
    page.keyboard.type("seed-cnn")
    page.keyboard.press("Enter")
    page.wait_for_function(
        """() => document.querySelector('input[aria-label="Preset"]').value === 'seed-cnn'
                 && !document.querySelector('[data-testid="stStatusWidget"]')"""
    )
    page.evaluate("() => document.activeElement.blur()")
    for label, value in (("Training images (0 = all)", "0"), ("Epochs", "30"), ("Batch size", "16")):
        type_number(page, label, value)
    tab_to(page, "Start training", role="button")
    page.keyboard.press("Enter")

    # Watch it: the progress bar, and a polite live line for screen readers (not one per batch).
    page.get_by_text(re.compile(r"Epoch \d+/30 · step")).first.wait_for(timeout=120_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[role="status"][aria-live="polite"]')]
                   .some(line => /Training, epoch \\d+ of 30/.test(line.textContent))""",
        timeout=30_000,
    )
    page.screenshot(path=str(SHOTS / "keyboard-1-training.png"))
    # The page while a run is live (progress bar, live line, Stop buttons): the one state the page-by-page
    # accessibility test (test_browser_a11y.py) cannot hold still long enough to check.
    require_axe()
    assert axe_findings(page, ignore=STREAMLIT_OWN) == []

    # Stop it, keeping the model.
    page.get_by_role("button", name="Stop now and keep the model").wait_for()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "Stop now and keep the model", role="button")
    page.keyboard.press("Enter")
    settle(page, "Test accuracy", timeout=180_000)

    # Compare: every run, then one run's confusion matrix and mistakes.
    go_to_page(page, "Compare", "Class leaderboard")
    tab_to(page, "Class leaderboard")  # the View pills: one Tab stop, the arrows move between them
    arrow_to(page, "Every run")
    settle(page, "Compare runs")
    tab_to(page, "Results table", role="tab")  # the sections: one Tab stop too
    arrow_to(page, "One run: matrix and mistakes")
    settle(page, "Confusion matrix", timeout=120_000)
    settle(page, "Test images this run got wrong")
    page.locator('[data-testid="stMain"] figure img[alt]').first.wait_for(timeout=120_000)  # the mistakes, each with its alt text
    page.screenshot(path=str(SHOTS / "keyboard-2-compare.png"))

    # Predict: upload a picture through the file chooser the keyboard opens, and read the answer.
    from PIL import Image
    from playwright.sync_api import TimeoutError

    picture = tmp_path / "blue-sky.png"
    Image.new("RGB", (80, 60), (40, 90, 220)).save(picture)
    go_to_page(page, "Predict", "Upload images", timeout=120_000)
    settle(page, "Crop to the centre square")
    # What the browser says meanwhile: Chromium explains a file dialog it refused to open in its console.
    said: list[str] = []
    page.on("console", lambda message: said.append(f"{message.type}: {message.text}"[:200]))
    chooser = None
    for attempt in range(1, 4):  # a busy CI machine once let a key press pass unanswered: the keys are tried again
        if attempt > 1:
            settle(page, "Crop to the centre square")
            page.keyboard.press("Shift+Tab")  # a step back off the button, to come to it again
        tab_to(page, "Upload", role="button", exact=True)  # the uploader's button, not the "Upload images" pill
        assert page.evaluate("() => !!document.activeElement.closest('[data-testid=\"stFileUploader\"]')")
        for key in ("Enter", "Space"):  # a button answers both; the dialog opens on the first that reaches it
            try:
                with page.expect_file_chooser(timeout=10_000) as opened:
                    page.keyboard.press(key)
                chooser = opened.value
                break
            except TimeoutError:
                page.screenshot(path=str(SHOTS / f"keyboard-upload-{attempt}-{key}.png"))
        if chooser is not None:
            break
    assert chooser is not None, f"neither Enter nor Space on the focused Upload button opened the file dialog; the console: {said}"
    chooser.set_files(str(picture))
    settle(page, "sure", timeout=120_000)
    answer = page.locator('[data-testid="stMain"]').get_by_text("sure").first.inner_text()
    assert "%" in answer  # "<class>, NN% sure": the prediction, as text
    page.screenshot(path=str(SHOTS / "keyboard-3-predict.png"))
    assert page.locator('[data-testid="stException"]').count() == 0
