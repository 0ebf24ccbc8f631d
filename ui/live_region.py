"""Telling a screen reader what changed, politely: a hidden aria-live="polite" line that speaks when its words change.

A progress bar that redraws every few seconds says nothing to someone who cannot see it, and announcing
every batch would drown out everything else. `announce` draws one visually hidden line with role="status"
(polite: it waits until the reader is quiet). The caller chooses words that change rarely (a new epoch,
a new phase), and the browser reads them out only when they differ from the last time.

`live_panel` keeps a panel that redraws itself on a timer readable while it redraws: Streamlit fades
what a rerun has not redrawn yet ("stale" elements) to a third of its opacity once the rerun takes
longer than half a second. On a busy classroom server every redraw of a timed panel takes that long,
so its words would flicker between full and faint, and faint grey on white falls below the 4.5:1
contrast WCAG asks of text (1.4.3). Inside a live panel they keep their colour, and the new figures
simply replace the old ones when they arrive.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable

import streamlit as st

# Hidden from the eye, still read by screen readers (the usual "visually hidden" recipe).
VISUALLY_HIDDEN = (
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0"
)


def announce(words: str, where=None) -> None:
    """A polite live region holding `words` (in `where`, the page by default)."""
    (where or st).html(f'<div role="status" aria-live="polite" style="{VISUALLY_HIDDEN}">{html.escape(words)}</div>')


# Everything inside a live panel keeps full opacity while stale: the element boxes Streamlit marks with
# data-stale, and the expanders' headers, which fade by a style of their own.
STEADY_WHILE_STALE = (
    '<style>[class*="st-key-live-panel-"] [data-stale="true"], [class*="st-key-live-panel-"] summary'
    " { opacity: 1 !important; transition: none !important; }</style>"
)


def live_panel(panel: Callable, *, every: float | None, name: str) -> Callable:
    """`st.fragment(panel, run_every=every)`, drawn in a box that does not fade while the panel redraws.

    `name` tells the page's live panels apart (it becomes the box's key, `live-panel-NAME`); `every=None`
    draws a panel without a timer (a finished run), which reruns only when asked.
    """

    @functools.wraps(panel)  # the fragment keeps the panel's own name, which Streamlit uses to tell fragments apart
    def steady(*args, **kwargs):
        with st.container(key=f"live-panel-{name}"):
            st.html(STEADY_WHILE_STALE)  # only a <style>: Streamlit adds it to the page without a visible box
            return panel(*args, **kwargs)

    return st.fragment(steady, run_every=every)
