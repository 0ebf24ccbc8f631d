"""A panel that redraws itself on a timer keeps its words at full contrast while it redraws.

Streamlit fades what a rerun has not redrawn yet once the rerun takes longer than half a second, and
on a busy classroom server every redraw of a timed panel takes that long: faint grey text fails WCAG's
contrast rule (1.4.3). A small app draws two slow panels side by side, the same words in each: one
with `ui.live_region.live_panel`, one with a plain `st.fragment`. While both redraw, the browser
reads how opaque every word of each panel is (its own opacity times its ancestors'). The plain panel
fades (so the test sees the fade it guards against), the live one never does.
Skipped without Chromium, except under CI.
"""

from __future__ import annotations

import time

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser, settle, streamlit_server

pytestmark = pytest.mark.browser

REDRAW_SECONDS = 1.2  # each redraw of the panels sleeps this long before drawing: over twice Streamlit's fade delay

APP = f"""
import time

import streamlit as st

from ui.live_region import live_panel


def panel(title):
    time.sleep({REDRAW_SECONDS})
    st.markdown(f"**{{title}}** redrawn at {{time.time():.1f}}")
    with st.expander("Details", icon=":material/info:"):
        st.write("inside")
    st.button("Stop", key=f"stop-{{title}}")


with st.container(key="plain"):
    st.fragment(panel, run_every=1.5)("Plain")
with st.container(key="live"):
    live_panel(panel, every=1.5, name="test")("Live")
"""

# The least opacity of any text or button in the box with the given key: each element's own opacity times its
# ancestors', as the eye sees it.
LEAST_OPACITY_JS = """key => {
  let least = 1;
  for (const element of document.querySelectorAll(`.st-key-${key} p, .st-key-${key} button`)) {
    let opacity = 1;
    for (let node = element; node; node = node.parentElement) opacity *= parseFloat(getComputedStyle(node).opacity);
    least = Math.min(least, opacity);
  }
  return least;
}"""


def test_a_live_panel_does_not_fade_while_it_redraws(tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    (tmp_path / "live_panels.py").write_text(APP)
    with streamlit_server(tmp_path, {}, script=str(tmp_path / "live_panels.py")) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            settle(page, "Live")
            least = {"plain": 1.0, "live": 1.0}
            deadline = time.monotonic() + 4 * REDRAW_SECONDS  # two redraws of each panel at least
            while time.monotonic() < deadline:
                for key in least:
                    least[key] = min(least[key], page.evaluate(LEAST_OPACITY_JS, key))
                page.wait_for_timeout(100)
        finally:
            browser.close()
    assert least["plain"] < 0.8, f"the plain panel never faded ({least}): the test did not see a slow redraw"
    assert least["live"] == 1.0, f"the live panel faded to {least['live']:.2f} of full opacity while it redrew"
