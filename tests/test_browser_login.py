"""Login end to end: a classroom server with Streamlit's login (`[auth]`, OpenID Connect) and a real provider.

The provider is tests/oidc_provider.py (oidc-provider-mock on a loopback port); its sign-in page
has one button per account, so each browser chooses who logs in. The app's `[auth]` settings go
in a temporary secrets file handed to `streamlit run` (--secrets.files), never into the
repository's own .streamlit/ folder. Several browser contexts (separate cookies) share the server:

- Ana logs in through the provider and is Ana; her runs carry her account (`login:` + email).
- Ben logs in as another account and stays Ben even on Ana's exact address (run link included);
  a browser that has not logged in gets the Log in button there, not Ana.
- Ana logged in on a second browser is the same person: the class's waiting-run limit counts the
  runs of both her browsers, while another person can still queue.
- Log out ends it: the page asks to log in again, and Ana's address does not bring her back.

Runs stay waiting: the test process registers itself as the store's busy worker, so no training
starts (nothing here needs a trained model). Screenshots go to artifacts/screenshots/login-*.png.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import numpy as np
import pytest

from lab.classroom.limits import LIMITS_KEY, ClassLimits
from lab.data.cifar10 import write_cifar10_folder
from lab.jobs import launcher
from lab.store.runs import Run, Status, Store
from tests.browser import CHROMIUM, CHROMIUM_ARGS, fill_number, free_port, require_browser, run_id_in_address, streamlit_server
from tests.browser import settle as settle_within
from tests.oidc_provider import Account, running_provider

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "plums-and-cherries"  # classroom mode on; nobody here unlocks the teacher's panel
ANA = Account(sub="ana", email="ana@school.example", name="Ana")
BEN = Account(sub="ben", email="ben@school.example", name="Ben")


@pytest.fixture(scope="module")
def provider():
    require_browser()
    with running_provider([ANA, BEN]) as url:
        yield url


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return tmp_path_factory.mktemp("login") / "lab_home"


@pytest.fixture(scope="module")
def login_url(provider, store_root, tmp_path_factory):
    """A classroom server whose students log in through `provider`; the class allows one waiting run per student."""
    workspace = store_root.parent
    store = Store(store_root)
    store.set_setting(LIMITS_KEY, ClassLimits(max_queued_per_student=1).to_dict())  # as the teacher's panel saves it
    # A worker that is always busy and trains nothing: this test process. So queued runs stay waiting.
    launcher.register_worker(store, os.getpid())
    rng = np.random.default_rng(5)
    y_train, y_test = np.arange(100) % 10, np.arange(50) % 10
    x_train = rng.integers(0, 255, size=(100, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 255, size=(50, 32, 32, 3), dtype=np.uint8)
    data_dir = write_cifar10_folder(workspace / "cifar-10-batches-py", x_train, y_train, x_test, y_test)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = workspace / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "cifar10-lab"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    env = {"LAB_HOME": str(store_root), "CIFAR10_DIR": str(data_dir), "LAB_TEACHER_PASSWORD": PASSWORD}
    try:
        with streamlit_server(workspace, env, port=port, extra_args=["--secrets.files", str(secrets_file)]) as started:
            assert started == url
            yield url
    finally:
        launcher.unregister_worker(store, os.getpid())


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("login-*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def visitor(browser, url: str):
    """A browser of its own (fresh cookies and storage), on `url`."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)  # the machine may be busy with other tests: wait on conditions, generously
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    return page


def shot(page, name: str) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"login-{name}.png"))


def settle(page, text: str) -> None:
    settle_within(page, text, timeout=120_000)


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def asks_to_log_in(page) -> None:
    """The welcome page of a visitor who has not logged in: a Log in button, no name to type, nobody in the sidebar."""
    settle(page, "Welcome to the class")
    page.get_by_role("button", name="Log in").wait_for()
    assert page.get_by_label("Your name", exact=True).count() == 0  # with login configured, a typed name is no identity
    assert not re.search(r"you are (Ana|Ben)", sidebar(page).inner_text())
    assert sidebar(page).get_by_role("button", name="Log out").count() == 0


def log_in(page, provider: str, account: Account, screenshot: str | None = None) -> None:
    """Streamlit's Log in button, the provider's sign-in page (choose the account), back to the app as that account."""
    asks_to_log_in(page)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{provider}/oauth2/authorize**")
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name=account.sub, exact=True).click()
    sidebar(page).get_by_text(f"you are {account.name}").wait_for()
    settle(page, "Explore CIFAR-10")


def open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()


def ask_for_run(page, epochs: int) -> None:
    """The Train page's form: a small run (`epochs` tells runs apart, so none follows another), then Start training."""
    open_page(page, "Train")
    page.get_by_role("tab", name="Settings").click()  # the page opens on the current run while one is waiting
    settle(page, "Start training")
    for label, value in (("Training images (0 = all)", "100"), ("Epochs", str(epochs)), ("Batch size", "16")):
        fill_number(page, label, value, timeout=120_000)
    page.get_by_role("button", name="Start training").click()


def waiting_runs(store_root: Path, owner_id: str) -> list[Run]:
    return Store(store_root).runs_of(owner_id, Status.QUEUED)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()


def test_the_login_is_the_identity_in_every_browser(browser, login_url, provider, store_root):
    ana_id, ben_id = f"login:{ANA.email}", f"login:{BEN.email}"

    # Ana logs in through the provider; her queued run is her account's.
    ana = visitor(browser, login_url)
    asks_to_log_in(ana)
    shot(ana, "1-welcome")
    log_in(ana, provider, ANA, screenshot="2-provider")
    sidebar(ana).get_by_role("button", name="Log out").wait_for()
    ask_for_run(ana, epochs=1)
    ana.get_by_role("button", name="Cancel this run").first.wait_for()
    run_id = run_id_in_address(ana)
    run = Store(store_root).get_run(run_id)
    assert run.owner_id == ana_id and run.config.epochs == 1
    ana_link = ana.url
    assert f"run={run_id}" in ana_link and "id=" not in ana_link.replace("run=", "")  # the link names the run, not the person
    shot(ana, "3-ana-queued")
    no_exception(ana)

    # Ben logs in as another account, then opens Ana's exact address: he is still Ben, and her run is not his.
    ben = visitor(browser, login_url)
    log_in(ben, provider, BEN)
    ben.goto(ana_link)
    sidebar(ben).get_by_text("you are Ben").wait_for()
    open_page(ben, "Train")
    settle(ben, "Start training")
    ben.get_by_role("tab", name="Current run").click()
    settle(ben, "No run yet")
    assert run_id not in main_text(ben) and "Cancel this run" not in main_text(ben)
    assert "you are Ana" not in sidebar(ben).inner_text()
    shot(ben, "4-ben-on-anas-link")

    # A browser that has not logged in, on Ana's address: asked to log in, not made Ana.
    stranger = visitor(browser, ana_link)
    asks_to_log_in(stranger)
    assert "Ana" not in sidebar(stranger).inner_text()
    stranger.context.close()

    # Ana on a second browser is the same person: her run is hers there, and her waiting runs are counted together.
    ana_again = visitor(browser, login_url)
    log_in(ana_again, provider, ANA)
    open_page(ana_again, "Train")
    ana_again.get_by_role("tab", name="Current run").click()
    assert run_id_in_address(ana_again) == run_id  # her Current run is the one she queued in her other browser
    ana_again.get_by_role("button", name="Cancel this run").first.wait_for()  # hers to cancel here too
    assert len(waiting_runs(store_root, ana_id)) == 1  # the class allows one waiting run per student: she has it
    ask_for_run(ana_again, epochs=2)
    ana_again.get_by_text("Class limit:").first.wait_for()
    shot(ana_again, "5-ana-second-browser-refused")
    assert [run.run_id for run in Store(store_root).runs_of(ana_id)] == [run_id]  # nothing new was queued for her

    # The limit is Ana's, not the class's: Ben can still queue a run of his own.
    ask_for_run(ben, epochs=3)
    ben.get_by_role("button", name="Cancel this run").first.wait_for()
    assert [run.config.epochs for run in waiting_runs(store_root, ben_id)] == [3]
    no_exception(ben)

    # Log out ends Ana's login on her first browser (the provider confirms the end of the session, then sends her back).
    sidebar(ana).get_by_role("button", name="Log out").click()
    ana.wait_for_url(f"{provider}/oauth2/end_session**")
    ana.get_by_role("button", name="End session").click()
    asks_to_log_in(ana)
    shot(ana, "6-logged-out")
    ana.goto(ana_link)  # her own run link does not log her back in
    asks_to_log_in(ana)
    # Her other browser keeps its own login: logging out is for one browser.
    ana_again.reload()
    sidebar(ana_again).get_by_text("you are Ana").wait_for()
