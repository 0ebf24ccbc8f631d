"""The colours the app sets: text contrast of at least 4.5:1 (WCAG 2.1 AA), and a confusion matrix colour-blind eyes can read.

Contrast follows WCAG's definition (relative luminance of linear RGB). Colour blindness is simulated with
the Machado, Oliveira and Fernandes (2009) matrices at full severity, applied in linear RGB; two colours
count as distinguishable when their CIE L*a*b* distance (CIE76) is at least MIN_DISTANCE, well above the
about 2.3 at which a difference becomes just noticeable.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from lab.report import charts

ROOT = Path(__file__).resolve().parent.parent
THEME = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["theme"]
MIN_CONTRAST = 4.5
MIN_DISTANCE = 10.0
CAPTION_OPACITY = 0.6  # Streamlit draws captions, placeholders and help text in the text colour at 60%

SIMULATIONS = {
    "normal vision": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]),
}


def srgb(colour: str) -> np.ndarray:
    """'#1d4ed8' -> its red, green and blue as 0-1 sRGB values."""
    return np.array([int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]) / 255


def linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def contrast(first: str | np.ndarray, second: str | np.ndarray) -> float:
    """WCAG contrast ratio, 1 (same) to 21 (black on white)."""
    darker, lighter = sorted(float(linear(srgb(c) if isinstance(c, str) else c) @ [0.2126, 0.7152, 0.0722]) for c in (first, second))
    return (lighter + 0.05) / (darker + 0.05)


def lab(linear_rgb: np.ndarray) -> np.ndarray:
    """Linear RGB -> CIE L*a*b* (D65 white)."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ np.clip(linear_rgb, 0, 1)
    scaled = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(scaled > 0.008856, np.cbrt(scaled), 7.787 * scaled + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def faded(text: str, background: str, opacity: float) -> np.ndarray:
    """The colour text at `opacity` shows on `background` (what the browser paints)."""
    return opacity * srgb(text) + (1 - opacity) * srgb(background)


def test_contrast_formula_matches_wcags_reference_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic "just below AA" grey


@pytest.mark.parametrize("background", ["backgroundColor", "secondaryBackgroundColor"])
def test_theme_text_and_captions_stand_out_from_both_backgrounds(background):
    text, ground = THEME["textColor"], THEME[background]
    assert contrast(text, ground) >= MIN_CONTRAST
    assert contrast(faded(text, ground, CAPTION_OPACITY), ground) >= MIN_CONTRAST  # captions, the sidebar's included


def test_inline_code_in_a_caption_stays_readable():
    """Streamlit fades inline code in a caption to 60% too (axe measured it on the Teacher page's captions)."""
    ground = THEME["backgroundColor"]
    assert contrast(faded(THEME["codeTextColor"], ground, CAPTION_OPACITY), ground) >= MIN_CONTRAST
    assert contrast(faded("#065f46", ground, CAPTION_OPACITY), ground) < MIN_CONTRAST  # a dark green would not do


def test_primary_colour_carries_white_text_and_reads_on_its_own_tint():
    primary = THEME["primaryColor"]
    assert contrast(primary, "#ffffff") >= MIN_CONTRAST  # a primary button's label, and links
    assert contrast(primary, faded(primary, THEME["backgroundColor"], 0.1)) >= MIN_CONTRAST  # a selected pill's text


@pytest.mark.parametrize("name", ["codeTextColor", "greenTextColor", "redTextColor", "orangeTextColor", "yellowTextColor",
                                  "blueTextColor", "violetTextColor", "grayTextColor"])  # fmt: skip
def test_status_and_code_colours_read_on_white_and_on_their_pale_background(name):
    colour = THEME[name]
    assert contrast(colour, THEME["backgroundColor"]) >= MIN_CONTRAST
    assert contrast(colour, faded(colour, THEME["backgroundColor"], 0.1)) >= MIN_CONTRAST  # an alert's own background
    assert contrast(colour, THEME["secondaryBackgroundColor"]) >= MIN_CONTRAST  # the sidebar, and code's grey background


def test_the_old_theme_would_have_failed():
    """The check can fail: the grey-blue text of before, faded for a caption on the sidebar, is below 4.5:1."""
    assert contrast(faded("#1f2937", "#f3f5f9", CAPTION_OPACITY), "#f3f5f9") < MIN_CONTRAST


def test_confusion_counts_are_readable_on_every_cell_colour():
    steps = [0.0, *charts.CONFUSION_STEPS]  # the share at which each colour begins
    assert len(steps) == len(charts.CONFUSION_COLOURS)
    for start, colour in zip(steps, charts.CONFUSION_COLOURS, strict=True):
        text = charts.CONFUSION_TEXT["light" if start >= charts.CONFUSION_LIGHT_TEXT_FROM else "dark"]
        assert contrast(text, colour) >= MIN_CONTRAST, (colour, text)


@pytest.mark.parametrize("vision", list(SIMULATIONS))
def test_neighbouring_confusion_levels_stay_apart_for_colour_blind_eyes(vision):
    seen = [lab(SIMULATIONS[vision] @ linear(srgb(colour))) for colour in charts.CONFUSION_COLOURS]
    distances = [float(np.linalg.norm(a - b)) for a, b in zip(seen[:-1], seen[1:], strict=True)]
    assert min(distances) >= MIN_DISTANCE, distances


def test_a_red_green_scale_would_fail_the_simulation():
    """The check can fail: red and green of equal lightness, told apart by normal eyes, merge for a deuteranope."""
    red, green = "#e41a1c", "#50a000"
    normal = np.linalg.norm(lab(linear(srgb(red))) - lab(linear(srgb(green))))
    simulated = SIMULATIONS["deuteranopia"]
    merged = np.linalg.norm(lab(simulated @ linear(srgb(red))) - lab(simulated @ linear(srgb(green))))
    assert normal >= MIN_DISTANCE and merged < MIN_DISTANCE


@pytest.mark.parametrize("split", list(charts.SPLIT_COLOURS))
def test_chart_lines_and_bars_stand_out_from_the_page(split):
    assert contrast(charts.SPLIT_COLOURS[split], THEME["backgroundColor"]) >= 3.0  # WCAG 1.4.11: graphics at 3:1


def test_the_confusion_chart_uses_the_checked_colours():
    spec = charts.confusion_matrix_chart([[8, 2], [1, 9]], ["cat", "dog"]).to_dict()
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert scale == {"type": "threshold", "domain": charts.CONFUSION_STEPS, "range": charts.CONFUSION_COLOURS}
    text = spec["layer"][1]["encoding"]["text"]
    assert text["field"] == "count"  # the values are printed in the cells, not only coloured
