"""Identity end to end: no address makes its opener someone else; the browser that joined keeps it; a secret brings it back.

One classroom `streamlit run` server (tests/test_browser_classroom.py's fixture) and three browser
contexts, each with its own cookies: Ana's computer, Ben's, and a third computer (a phone-sized
window) where Ana rejoins with her secret and then leaves. Ben opens Ana's exact address, copied
with its `&run=`, and a hand-made `?id=` with Ana's public id: he is asked to join, is never Ana,
and has no button for Ana's run. Screenshots go to artifacts/screenshots/identity-*.png.
"""

from __future__ import annotations

import re

import pytest

from lab.classroom import identities
from lab.store.runs import Store
from tests.browser import CHROMIUM, CHROMIUM_ARGS, run_id_in_address, settle
from tests.test_browser_classroom import SHOTS, class_url, join, no_exception, open_page, sidebar  # noqa: F401 - class_url is a fixture

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
COOKIE = "lab_identity"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("identity-*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def computer(browser, url: str, viewport: dict | None = None):
    """A browser of its own (its own cookies), on `url`."""
    context = browser.new_context(viewport=viewport or {"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    return page


def shot(page, name: str) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"identity-{name}.png"), full_page=True)


def identity_cookie(page) -> dict | None:
    return next((cookie for cookie in page.context.cookies() if cookie["name"] == COOKIE), None)


def wait_for_cookie(page) -> dict:
    page.wait_for_function(f"() => document.cookie.includes('{COOKIE}=')")
    return identity_cookie(page)


def asked_to_join(page) -> None:
    settle(page, "Welcome to the class")
    sidebar(page).get_by_text("tell us who you are").wait_for()
    from playwright.sync_api import expect

    expect(page.get_by_label("Your name", exact=True)).to_have_count(1)  # the join form, however slowly it is drawn


def store_holding(tmp_path_factory, token: str) -> Store:
    """The classroom server's store: the one whose browser_tokens know `token` (each module has its own server)."""
    for lab_home in tmp_path_factory.getbasetemp().glob("classroom*/lab_home"):
        if identities.person_for_browser(Store(lab_home), token) is not None:
            return Store(lab_home)
    raise AssertionError("no classroom store knows Ana's browser token")


def rejoin(page, name: str, secret: str) -> None:
    form = page.locator('[data-testid="stExpander"]').filter(has_text="Joined before?")
    if form.get_by_label("Your secret", exact=True).is_hidden():
        form.get_by_text("Joined before?").click()
    form.get_by_label("Name you joined with", exact=True).fill(name)
    form.get_by_label("Your secret", exact=True).fill(secret)
    form.get_by_role("button", name="Rejoin").click()


def test_no_address_makes_its_opener_someone_and_the_secret_brings_one_back(browser, class_url, tmp_path_factory):  # noqa: F811
    ana = computer(browser, class_url)
    asked_to_join(ana)
    shot(ana, "1-join")
    join(ana, "Ana")
    secret = re.search(r"Your secret: ([2-9A-Z]{4}-[2-9A-Z]{4})", ana.locator('[data-testid="stMain"]').inner_text()).group(1)
    shot(ana, "2-secret")
    cookie = wait_for_cookie(ana)
    assert cookie["path"] == "/" and cookie["sameSite"] == "Strict" and cookie["expires"] > 0  # kept after the browser closes
    token = cookie["value"]
    store = store_holding(tmp_path_factory, token)
    anas = identities.person_for_browser(store, token)
    assert anas.name == "Ana" and anas.id not in ana.url and token not in ana.url and "id=" not in ana.url
    ana.get_by_role("button", name="I wrote it down").click()
    settle(ana, "Explore CIFAR-10")
    assert ana.get_by_text("Your secret:").count() == 0

    # Ana queues a tiny run; the Train page puts its id in her address, which she could paste to a friend.
    open_page(ana, "Train")
    settle(ana, "Start training")
    for label, value in (("Training images (0 = all)", "200"), ("Epochs", "1"), ("Batch size", "16")):
        field = ana.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        ana.wait_for_timeout(600)
    ana.get_by_role("button", name="Start training").click()
    ana.get_by_text("Cancel this run").or_(ana.get_by_text("Test accuracy")).first.wait_for()
    run_id = run_id_in_address(ana)
    anas_address = ana.url
    assert store.get_run(run_id).owner_id == anas.id  # the run really is Ana's

    # Ben opens Ana's exact address, then one made by hand with her public id: each time he is asked who he is.
    ben = computer(browser, anas_address)
    asked_to_join(ben)
    assert "you are Ana" not in sidebar(ben).inner_text() and "Cancel this run" not in ben.content()
    shot(ben, "3-ben-opens-anas-address")
    ben.goto(f"{class_url}/?id={anas.id}")
    asked_to_join(ben)
    join(ben, "Ben")  # from that address: a new person, never Ana
    bens_token = wait_for_cookie(ben)["value"]
    assert identities.person_for_browser(store, bens_token).id not in (anas.id, None)
    ben.goto(anas_address)  # and Ana's address once more, now as Ben
    sidebar(ben).get_by_text("you are Ben").wait_for()
    settle(ben, "Start training")
    main = ben.locator('[data-testid="stMain"]').inner_text()
    assert "Cancel this run" not in main and "Stop now" not in main
    assert ben.get_by_role("button", name="Delete").count() == 0
    no_exception(ben)

    # Ana's own browser keeps her: a refresh, and the app in a new tab.
    ana.reload()
    sidebar(ana).get_by_text("you are Ana").wait_for()
    tab = ana.context.new_page()
    tab.goto(class_url)
    sidebar(tab).get_by_text("you are Ana").wait_for()
    assert tab.get_by_label("Your name", exact=True).count() == 0
    tab.close()

    # A third computer, phone-sized: a wrong secret is refused, Ana's secret brings her back.
    phone = computer(browser, class_url, PHONE)
    asked_to_join(phone)
    rejoin(phone, "Ana", "AAAA-BBBB")
    phone.get_by_text("do not match anyone").wait_for()
    phone.get_by_text("do not match anyone").scroll_into_view_if_needed()
    assert identity_cookie(phone) is None
    shot(phone, "4-rejoin-refused-phone")
    rejoin(phone, "ana", secret.lower())
    settle(phone, "Explore CIFAR-10")
    assert identities.person_for_browser(store, wait_for_cookie(phone)["value"]) == anas
    phone.reload()  # the cookie written from the collapsed sidebar of a phone brings her back too
    settle(phone, "Explore CIFAR-10")
    phone.locator('[data-testid="stExpandSidebarButton"]').click()
    sidebar(phone).get_by_text("you are Ana").wait_for()
    shot(phone, "5-ana-on-a-phone")

    # Leave ends her identity on this computer only.
    sidebar(phone).get_by_role("button", name="Leave").click()
    phone.get_by_role("button", name="Leave on this browser").click()
    phone.wait_for_function(f"() => !document.cookie.includes('{COOKIE}=')")
    phone.reload()
    asked_to_join(phone)
    ana.reload()
    sidebar(ana).get_by_text("you are Ana").wait_for()
    assert store.browser_token_count(anas.id) == 1
