"""Writing a lab report (lab/report/lab_report.py) to a file: HTML, Markdown or PDF, chosen by the extension.

- HTML: one self-contained file, its charts inside as PNG data, a style sheet that prints on A4.
- Markdown: the text and tables, its charts as PNG files in a folder beside it (`NAME_files/`).
- PDF: A4 pages through fpdf2, which lays out a simple HTML, in DejaVu Sans (assets/fonts/, embedded):
  Greek, Cyrillic and accented names print as written; characters it lacks are spelled in plain letters.
The charts are rendered by vl-convert (Vega-Lite to PNG, without a browser).
"""

from __future__ import annotations

import base64
import functools
import html
import re
from pathlib import Path

from lab.report.lab_report import Block, Report
from lab.system.paths import ASSETS_DIR

FORMATS = (".html", ".md", ".pdf")
CHART_SCALE = 2  # pixels per point: sharp on screen and in print
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1f2937; line-height: 1.45; }
h1 { font-size: 1.8rem; margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; } th, td { border: 1px solid #d1d5db; padding: 0.2rem 0.5rem; }
th { background: #f3f5f9; text-align: left; } figure { margin: 1rem 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85rem; color: #4b5563; }
@page { size: A4; margin: 15mm; } @media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
"""


def chart_png(chart) -> bytes:
    import vl_convert  # imported here: only writing a report needs it

    return vl_convert.vegalite_to_png(chart.to_json(), scale=CHART_SCALE)


def write_report(report: Report, path: str | Path) -> Path:
    """Write `report` to `path` in the format its extension names; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"a report is written as {', '.join(FORMATS)}; {path.name!r} has none of these extensions.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        path.write_text(to_html(report), encoding="utf-8")
    elif suffix == ".md":
        path.write_text(to_markdown(report, path.parent / f"{path.stem}_files"), encoding="utf-8")
    else:
        path.write_bytes(to_pdf(report))
    return path


def to_html(report: Report, *, for_pdf: bool = False) -> str:
    parts = [f"<h1>{html.escape(report.title)}</h1>", f"<p><i>{html.escape(report.subtitle)}</i></p>"]
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [_html_block(block, for_pdf) for block in section.blocks]
    body = "\n".join(parts)
    if for_pdf:
        return body
    return f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n'


def _html_block(block: Block, for_pdf: bool) -> str:
    if block.kind == "text":
        return f"<p>{html.escape(block.text)}</p>"
    if block.kind == "table":
        head = "".join(f"<th>{html.escape(str(column))}</th>" for column in block.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in block.rows)
        border = ' border="1"' if for_pdf else ""
        return f"<table{border}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    data = base64.b64encode(chart_png(block.chart)).decode()
    if for_pdf:
        return f'<img src="data:image/png;base64,{data}" width="480"><p><i>{html.escape(block.text)}</i></p>'
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.text)}"><figcaption>{html.escape(block.text)}</figcaption></figure>'


def to_markdown(report: Report, images_folder: Path) -> str:
    lines = [f"# {report.title}", "", f"*{report.subtitle}*", ""]
    figure = 0
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if block.kind == "text":
                lines += [block.text, ""]
            elif block.kind == "table":
                lines += ["| " + " | ".join(map(str, block.columns)) + " |", "|" + "---|" * len(block.columns)]
                lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in block.rows]
                lines.append("")
            else:
                figure += 1
                images_folder.mkdir(parents=True, exist_ok=True)
                name = f"figure-{figure}.png"
                (images_folder / name).write_bytes(chart_png(block.chart))
                lines += [f"![{block.text}]({images_folder.name}/{name})", "", f"*{block.text}*", ""]
    return "\n".join(lines)


# fpdf2's built-in fonts (Helvetica, Times) know Latin-1 only: "Łukasz" or "Дмитрий" would print as "?".
# DejaVu Sans covers Latin, Greek, Cyrillic and more; bold and italic each need their own file
# (bold italic, which the report never uses, falls back to bold).
PDF_FONT = "DejaVuSans"
PDF_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf", "BI": "DejaVuSans-Bold.ttf"}
FONTS_DIR = ASSETS_DIR / "fonts"


def to_pdf(report: Report) -> bytes:
    from fpdf import FPDF  # imported here: only writing a PDF needs it

    pdf = FPDF(format="A4")
    for style, file_name in PDF_FONT_FILES.items():
        pdf.add_font(PDF_FONT, style, str(FONTS_DIR / file_name))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(PDF_FONT, size=9)
    pdf.write_html(printable(to_html(report, for_pdf=True)), table_line_separators=True, font_family=PDF_FONT)
    return bytes(pdf.output())


@functools.cache
def _font_characters() -> frozenset[int]:
    """The characters every one of the PDF's font files has a glyph for."""
    from fontTools.ttLib import TTFont  # fpdf2's own dependency: reads a font's table of characters

    covered = None
    for file_name in set(PDF_FONT_FILES.values()):
        with TTFont(FONTS_DIR / file_name, lazy=True) as font:
            characters = frozenset(font.getBestCmap())
        covered = characters if covered is None else covered & characters
    return covered


def printable(text: str) -> str:
    """The text with each character the font lacks spelled in plain letters (anyascii): "张伟" -> "ZhangWei".

    Without this, a missing character would print as an empty box; anyascii writes it as it sounds
    or reads, the way names are compared elsewhere in the lab.
    """
    from anyascii import anyascii

    covered = _font_characters()
    return re.sub(r"[^\x00-\x7f]", lambda match: match[0] if ord(match[0]) in covered else (anyascii(match[0]) or "?"), text)
