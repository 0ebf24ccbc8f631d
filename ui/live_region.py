"""Telling a screen reader what changed, politely: a hidden aria-live="polite" line that speaks when its words change.

A progress bar that redraws every few seconds says nothing to someone who cannot see it, and announcing
every batch would drown out everything else. `announce` draws one visually hidden line with role="status"
(polite: it waits until the reader is quiet). The caller chooses words that change rarely (a new epoch,
a new phase), and the browser reads them out only when they differ from the last time.
"""

from __future__ import annotations

import html

import streamlit as st

# Hidden from the eye, still read by screen readers (the usual "visually hidden" recipe).
VISUALLY_HIDDEN = (
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0"
)


def announce(words: str, where=None) -> None:
    """A polite live region holding `words` (in `where`, the page by default)."""
    (where or st).html(f'<div role="status" aria-live="polite" style="{VISUALLY_HIDDEN}">{html.escape(words)}</div>')
