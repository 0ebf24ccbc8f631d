"""Headless Chromium for the browser tests: Debian's package, never a downloaded browser."""

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
