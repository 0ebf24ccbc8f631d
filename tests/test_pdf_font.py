"""The PDF lab report prints students' names as they are written, not as "?" (lab/report/writers.py, assets/fonts/)."""

from __future__ import annotations

import io

import pytest

from lab.report.lab_report import Report, Section
from lab.report.writers import PDF_FONT, printable, to_pdf

NAMES = ["Zoë", "Łukasz", "Ελένη", "Дмитрий", "Şükrü", "Nguyễn"]  # Latin-1, Latin Extended, Greek, Cyrillic, Vietnamese


def _pdf_text(pdf: bytes) -> tuple[str, set[str]]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    fonts = {str(font.get_object()["/BaseFont"]) for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    return " ".join(page.extract_text() for page in reader.pages), fonts


@pytest.mark.slow  # embeds three font files
def test_names_outside_latin1_print_as_written():
    # Precondition: all but the first lie outside Latin-1, which the built-in PDF fonts are limited to.
    assert [name for name in NAMES if not name.isascii() and not _fits_latin1(name)] == NAMES[1:]
    section = Section("The class")
    section.text("Best runs: " + ", ".join(NAMES) + " · 95% → 96% — done")
    section.table(["student", "accuracy"], [[name, f"{0.9 + index / 100:.2%}"] for index, name in enumerate(NAMES)])
    report = Report(title="Lab report for Ελένη", subtitle="Prepared by Zoë", sections=[section], run_ids=[])
    text, fonts = _pdf_text(to_pdf(report))
    assert any(PDF_FONT in font for font in fonts), fonts  # the bundled font is embedded, not Helvetica
    for name in NAMES:
        assert text.count(name) >= 2, (name, text)  # in the paragraph and in the table
    assert "Ελένη" in text and "→" in text and "?" not in text


def test_characters_the_font_lacks_are_spelled_in_plain_letters():
    assert printable("Zoë Дмитрий 张伟") == "Zoë Дмитрий ZhangWei"  # DejaVu Sans has no Chinese: anyascii spells it
    section = Section("The class")
    section.text("张伟 trained 3 runs")
    text, fonts = _pdf_text(to_pdf(Report(title="Lab report", subtitle="", sections=[section], run_ids=[])))
    assert any(PDF_FONT in font for font in fonts), fonts
    assert "ZhangWei trained 3 runs" in text and "?" not in text


def _fits_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
