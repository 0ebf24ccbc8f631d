"""The whole guided lesson in classroom mode: a teacher and two students, three browsers on one `streamlit run` server.

The teacher's limits (1 epoch, 200 images) and the pre-flight's switch of VGG16 to weights "none"
(no ImageNet files offline) are in the store before the server starts, as a teacher sets them before
class; on the Lesson page the teacher rewrites the first step's questions. Ana and Ben each walk
every step through the page: answers typed, each training step's network trained as their own run,
"Next step" to move on; each downloads their lab report and finds their answers in it. The teacher's progress view
then shows both students with every step answered. Screenshots go to artifacts/screenshots/lesson-*.png,
at 1440 px and at 390x844 (a phone). Skipped without Chromium, except under CI.
"""

from __future__ import annotations

import re
import time

import pytest

from lab.classroom import lesson_progress, preflight
from lab.classroom.lesson import STEPS
from lab.classroom.limits import ClassLimits, save_limits
from lab.store.owners import Person
from lab.store.runs import Status, Store
from tests.browser import CHROMIUM, CHROMIUM_ARGS, colour_coded_cifar10, require_browser, settle, streamlit_server
from tests.test_browser_classroom import PASSWORD, SHOTS, join, no_exception, open_page, sidebar

pytestmark = pytest.mark.browser

QUESTIONS = ("Which picture surprised you most?", "Which class looks hardest to you?")
RUN_DONE = 180_000  # ms: a tiny run of each network, one after another on one worker, on a busy 2-core machine


@pytest.fixture(scope="module")
def lesson_server(tmp_path_factory):
    """A classroom server (test_browser_classroom's pattern) and its store, which holds the teacher's limits for a quick lesson."""
    require_browser()
    workspace = tmp_path_factory.mktemp("lesson")
    # Coloured noise, not real pictures: each class its own mean colour, so a one-epoch model learns something.
    data_dir = colour_coded_cifar10(workspace / "cifar-10-batches-py", seed=4)
    store = Store(workspace / "lab_home")
    teacher = Person("teacher", "Teacher", is_teacher=True)
    save_limits(store, ClassLimits(max_epochs=1, max_train_images=200), by=teacher)
    preflight.switch_weights_none(store, "vgg16", True, by=teacher)
    env = {"LAB_HOME": str(workspace / "lab_home"), "CIFAR10_DIR": str(data_dir), "LAB_TEACHER_PASSWORD": PASSWORD}
    env["LAB_WORKER_IDLE_SECONDS"] = "120"  # six runs, one after another: one warm worker trains them all
    with streamlit_server(workspace, env) as url:
        yield url, store


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("lesson-*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def visitor(browser, url: str):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    return page


def shot(page, name: str, *, phone: bool = False) -> None:
    """The whole page at 1440 px wide (Streamlit scrolls inside its main area, so the window grows to fit), or a phone's screen."""
    width = 390 if phone else 1440
    page.set_viewport_size({"width": width, "height": 844 if phone else 900})
    page.wait_for_timeout(300)
    if not phone:
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": width, "height": max(900, min(int(height), 5000))})
        page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"lesson-{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})


def main(page):
    return page.locator('[data-testid="stMain"]')


def wait_until(condition, what: str, seconds: float = 60) -> None:
    """Wait on a condition the store can answer (an answer kept, a step finished), not on a toast that may be an earlier one."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.2)


def answer(page, store: Store, person_id: str, step_id: str, index: int, text: str) -> None:
    """Type an answer and commit it (Ctrl+Enter, as leaving the box does); the app keeps it in the store."""
    field = main(page).locator("textarea").nth(index)
    field.fill(text)
    field.press("Control+Enter")
    wait_until(lambda: lesson_progress.read_progress(store, person_id).answer(step_id, index) == text, f"{text!r} to be kept")
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")


def walk_step(page, store: Store, number: int, name: str, *, shots: bool = False) -> None:
    """Step `number` (1-based) of the lesson: train its network if it has one, answer its questions, move on."""
    step = STEPS[number - 1]
    person_id = next(person["person_id"] for person in store.people() if person["name"] == name)
    settle(page, f"Step {number} of {len(STEPS)}: {step.title}")
    if step.trains:
        page.get_by_role("button", name="Train this step's network").click()
        if shots:
            main(page).get_by_text(re.compile(r"Epoch|Waiting|Loading|Test accuracy")).first.wait_for()
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
            shot(page, f"3-{name.lower()}-training")
        done = main(page).get_by_text(re.compile(rf"{re.escape(step.preset)} on .*: completed"))
        done.first.wait_for(timeout=RUN_DONE)
        settle(page, "Test accuracy")
        if shots:
            shot(page, f"4-{name.lower()}-trained")
    for index, _ in enumerate(step.questions):
        answer(page, store, person_id, step.id, index, f"{name}'s answer {index + 1} to {step.id}")
    no_exception(page)
    page.get_by_role("button", name="Finish the lesson" if number == len(STEPS) else "Next step").click()
    wait_until(lambda: step.id in lesson_progress.read_progress(store, person_id).done, f"{name} to finish step {step.id}")


def class_table(teacher) -> dict[str, list[str]]:
    """The teacher's progress table: the first cell of each row (a student, or the counts) -> the steps' cells."""
    return _rows(main(teacher).locator('[data-testid="stTable"]').first)


def class_table_after(teacher, heading: str) -> dict[str, list[str]]:
    """The first table under `heading` on the page."""
    return _rows(main(teacher).get_by_text(heading).locator("xpath=following::*[@data-testid='stTable'][1]"))


def _rows(table) -> dict[str, list[str]]:
    rows = {}
    for row in table.locator("tbody tr").all():
        cells = [cell.strip() for cell in row.locator("td, th").all_inner_texts()]
        rows[cells[0]] = cells[1:]
    return rows


def test_a_teacher_and_two_students_walk_the_whole_lesson(browser, lesson_server):
    class_url, lab_home = lesson_server
    teacher, ana, ben = visitor(browser, class_url), visitor(browser, class_url), visitor(browser, class_url)

    # The teacher: the password, then the Lesson page, where the first step gets the teacher's own questions.
    settle(teacher, "Welcome to the class")
    password = sidebar(teacher).get_by_label("Teacher password", exact=True)
    password.fill(PASSWORD)
    password.press("Enter")
    sidebar(teacher).get_by_text("Classroom mode: Teacher").wait_for()
    assert teacher.locator('[data-testid="stSidebarNav"] a').first.inner_text().strip().endswith("Lesson")  # the first page
    open_page(teacher, "Lesson")
    settle(teacher, "The class's progress")
    teacher.get_by_label("Questions of step 1, one per line (at most 3)").fill(f"{QUESTIONS[0]}\n{QUESTIONS[1]}")
    teacher.get_by_role("button", name="Save the lesson").click()
    settle(teacher, "Lesson saved")
    shot(teacher, "1-teacher-setup")

    for page, name in ((ana, "Ana"), (ben, "Ben")):
        join(page, name)
        open_page(page, "Lesson")
        settle(page, "Step 1 of 6: The data")
        assert all(main(page).get_by_text(question).count() == 1 for question in QUESTIONS)  # the teacher's questions
    shot(ana, "2-ana-step-1")
    shot(ana, "2-ana-step-1-phone", phone=True)

    # Every step, Ana then Ben: each trains their own network of each training step.
    for number in range(1, len(STEPS) + 1):
        walk_step(ana, lab_home, number, "Ana", shots=number == 2)
        walk_step(ben, lab_home, number, "Ben")

    people = {person["name"]: person["person_id"] for person in lab_home.people()}
    for step in (step for step in STEPS if step.trains):
        runs = {name: lesson_progress.step_run(lab_home, people[name], step.id) for name in ("Ana", "Ben")}
        assert all(run is not None and run.status is Status.COMPLETED for run in runs.values()), (step.id, runs)
        assert runs["Ana"].run_id != runs["Ben"].run_id  # each watched their own network learn
        assert (runs["Ana"].owner_id, runs["Ben"].owner_id) == (people["Ana"], people["Ben"])
        assert runs["Ana"].config.weights == "none" and runs["Ana"].config.epochs == 1

    # Each student's lab report holds their own answers, not the other's.
    for page, name, other in ((ana, "Ana", "Ben"), (ben, "Ben", "Ana")):
        settle(page, "Your lab report")
        page.get_by_role("button", name="Make my lab report").click()
        page.get_by_role("button", name="Download my lab report (HTML)").wait_for(timeout=120_000)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download my lab report (HTML)").click()
        report = download.value.path().read_text(encoding="utf-8")
        assert "Lesson answers" in report and f"{name}&#x27;s answer 1 to scratch" in report, report[-2000:]
        assert f"{other}&#x27;s answer" not in report
    shot(ben, "5-ben-finished")
    shot(ben, "5-ben-finished-phone", phone=True)

    # The teacher's progress view (it redraws itself): both students, every step answered; the counts say two of two.
    everyone_done = {"Ana": ["✓"] * len(STEPS), "Ben": ["✓"] * len(STEPS), "answered (✓)": ["2"] * len(STEPS)}
    wait_until(lambda: class_table(teacher) == everyone_done, "the teacher's table to show both students done", seconds=30)
    shot(teacher, "6-teacher-progress")
    shot(teacher, "6-teacher-progress-phone", phone=True)
    no_exception(teacher)
    open_page(teacher, "Teacher")  # the Teacher page shows the same table, under the queue
    settle(teacher, "The lesson, step by step")
    wait_until(lambda: class_table_after(teacher, "The lesson, step by step") == everyone_done, "the Teacher page's table", seconds=30)
    shot(teacher, "7-teacher-page")
