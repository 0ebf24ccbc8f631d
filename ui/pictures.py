"""Pictures that say what they show: every image the app draws goes through `show_pictures`, with a text alternative.

`st.image` draws an <img> without alt text, so a screen reader announces "image" and nothing more (WCAG 1.1.1).
Here each picture becomes an <img alt="..."> inside a <figure> with its visible caption, sent as a PNG data URL
through `st.html`. Small pictures (CIFAR-10's 32 x 32 pixels) are enlarged by the browser with sharp edges
(`image-rendering: pixelated`), so the page sends the small PNG, not an enlarged copy, and a grid of eighty
pictures stays light. The grid wraps to the width of the screen, so a phone shows fewer pictures per row
rather than a row wider than the screen.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image


def png_data_url(picture) -> str:
    """A picture (NumPy array of uint8 pixels, grey or RGB, or a PIL image) as a `data:image/png;base64,...` address."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pictures_html(pictures: Sequence, alts: Sequence[str], captions: Sequence[str] | None = None, width: int = 96) -> str:
    """The HTML of a wrapping row of figures: each an <img> with its alt text, `width` CSS pixels wide, and its caption."""
    if len(alts) != len(pictures) or (captions is not None and len(captions) != len(pictures)):
        raise ValueError(f"{len(pictures)} pictures need as many alt texts and captions ({len(alts)}, {len(captions or alts)} given)")
    figures = []
    for number, picture in enumerate(pictures):
        caption = (
            ""
            if captions is None
            else f'<figcaption style="font-size:0.875rem;margin-top:2px">{html.escape(captions[number])}</figcaption>'
        )
        figures.append(
            f'<figure style="margin:0;width:{width}px;max-width:100%">'
            f'<img src="{png_data_url(picture)}" alt="{html.escape(alts[number], quote=True)}" '
            f'style="width:100%;height:auto;image-rendering:pixelated;display:block">{caption}</figure>'
        )
    return f'<div style="display:flex;flex-wrap:wrap;gap:8px;max-width:100%">{"".join(figures)}</div>'


def show_pictures(pictures: Sequence, alts: Sequence[str], captions: Sequence[str] | None = None, width: int = 96, where=None) -> None:
    """Draw pictures with text alternatives (one alt text each, saying what the picture shows) and optional captions.

    `where` is the Streamlit container to draw in (a column, a tab), the page itself by default.
    """
    if len(pictures):
        (where or st).html(pictures_html(pictures, alts, captions, width))


def show_picture(picture, alt: str, caption: str | None = None, width: int = 256, where=None) -> None:
    """One picture with its text alternative: `show_pictures` for a single image."""
    show_pictures([picture], [alt], None if caption is None else [caption], width, where)
