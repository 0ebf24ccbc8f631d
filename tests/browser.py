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
