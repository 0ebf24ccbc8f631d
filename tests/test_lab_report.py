"""The generated lab report: built from small real runs, written as HTML, Markdown and PDF, and read back."""

from __future__ import annotations

import base64
import re

import pytest

from lab.config import config_for_preset
from lab.jobs.outcome import train_and_record
from lab.report.lab_report import build_report, choose_runs
from lab.report.writers import write_report
from lab.store.records import Status
from lab.store.runs import Store
from tests.synthetic import learnable_cifar10

SECTIONS = (
    "The data set",
    "Preprocessing",
    "The models",
    "Hyperparameters",
    "Results",
    "Learning curves",
    "Confusion matrices",
    "Findings",
    "Weaknesses and next steps",
    "Environment",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two small real runs (ten classes, and one class against the rest) and a worse copy of the first."""
    store = Store(tmp_path_factory.mktemp("report_store"))
    data = learnable_cifar10(n_train=300, n_test=100)
    runs = {
        "cifar10": train_and_record(config_for_preset("seed-cnn", epochs=2, batch_size=32), store, data=data),
        "one-vs-rest": train_and_record(config_for_preset("seed-cnn", task="one-vs-rest:cat", epochs=1, batch_size=32), store, data=data),
        "worse": train_and_record(config_for_preset("seed-cnn", epochs=1, batch_size=32, learning_rate=1e-5), store, data=data),
    }
    return store, runs


@pytest.mark.slow
def test_by_default_the_report_covers_the_best_run_of_each_preset_and_task(trained):
    store, runs = trained
    chosen = {run.run_id for run in choose_runs(store)}
    best = max((runs["cifar10"], runs["worse"]), key=lambda result: result.metrics["accuracy"])
    assert chosen == {best.run_id, runs["one-vs-rest"].run_id}
    with pytest.raises(ValueError, match="not completed runs"):
        choose_runs(store, ["20990101-000000-nothing-0000"])


def test_the_html_report_has_every_section_and_each_runs_numbers(trained, tmp_path):
    store, runs = trained
    chosen = [runs["cifar10"].run_id, runs["one-vs-rest"].run_id]
    page = write_report(build_report(store, chosen), tmp_path / "report.html").read_text()
    for title in SECTIONS:
        assert title in page, title
    for key in chosen:
        metrics = store.get_run(key).metrics
        assert f"{metrics['accuracy']:.2%}" in page
        assert f"{metrics['total_params']:,}" in page
    assert "0.9598" not in page and "95.98%" in page  # the report's own binary row sits beside ours
    assert "always saying &#x27;not cat&#x27; already scores 90.00%" in page  # what the imbalance hides
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 3 and all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)  # self-contained
    assert "http://" not in page and "https://" not in page


def section_of(report, title: str):
    (section,) = [section for section in report.sections if title in section.title]
    return section


def test_findings_set_each_run_against_the_reports_figure_and_budget(trained):
    store, runs = trained
    report = build_report(store, [runs["cifar10"].run_id, runs["one-vs-rest"].run_id])
    findings = "\n".join(block.text for block in section_of(report, "Findings").blocks)
    ten = store.get_run(runs["cifar10"].run_id)
    images, epochs = ten.fingerprint["n_train"], ten.metrics["epochs_completed"]
    gap = abs(100 * (ten.metrics["accuracy"] - 0.7191))
    assert "The report's CNN from scratch on all 10 classes scored 71.91%" in findings  # its figure for the same network
    assert f"{gap:.1f} points below it" in findings or f"{gap:.1f} points above it" in findings
    assert f"It is the same network size, {ten.metrics['total_params']:,} parameters" in findings
    share = images * epochs / (50_000 * 10)  # its budget against the report's: training images times epochs
    assert (
        f"It trained on {images:,} images for {epochs} epochs, {share:.1%} of the report's budget (50,000 images for 10 epochs)" in findings
    )
    assert f"Its accuracy counts {ten.metrics['n_test']:,} test images, the report's CIFAR-10's original 10,000" in findings
    assert "The report has no seed-cnn run on cat vs the rest" in findings  # no figure of its to compare with, said so
    assert "one-vs-rest:" not in findings  # tasks in words


def test_the_results_table_shows_every_figure_of_the_reports_rows(trained):
    store, runs = trained
    report = build_report(store, [runs["cifar10"].run_id])
    (table,) = [block for block in section_of(report, "Results").blocks if block.kind == "table"]
    rows = {(row[0], row[1]): dict(zip(table.columns, row, strict=True)) for row in table.rows}
    assert rows[("vgg16-frozen (the report)", "All 10 classes")] == {
        "model": "vgg16-frozen (the report)", "task": "All 10 classes", "accuracy": "57.68%", "baseline": "10.00%",
        "precision (macro)": "0.58", "recall (macro)": "0.57", "F1 (macro)": "0.57", "parameters": "14,719,818",
        "training s": "164.39", "test images": "10,000",
    }  # fmt: skip
    report_rows = {key: row for key, row in rows.items() if "(the report)" in key[0]}
    assert len(report_rows) == 6 and rows[("seed-cnn (the report)", "ship vs the rest")]["baseline"] == "90.00%"
    accuracies = {model: row["accuracy"] for (model, task), row in report_rows.items() if task == "All 10 classes"}
    assert accuracies == {
        "seed-cnn (the report)": "71.91%", "vgg16-frozen (the report)": "57.68%", "resnet50-frozen (the report)": "38.37%",
        "mobilenetv2-frozen (the report)": "31.54%", "vgg16-finetune (the report)": "82.86%",
    }  # fmt: skip
    assert all("-" not in row.values() for (model, task), row in report_rows.items() if task == "All 10 classes")  # every figure


def test_the_learning_curves_label_whole_epochs_only(trained):
    from lab.report.charts import epoch_ticks

    store, runs = trained
    report = build_report(store, [runs["cifar10"].run_id])
    (figure,) = [block for block in section_of(report, "Learning curves").blocks if block.kind == "chart"]
    axis = figure.chart.to_dict()["encoding"]["x"]["axis"]
    assert axis["values"] == [1, 2] and axis["format"] == "d"  # two epochs: "1 2", never "1 1 2" from ticks at 1.5
    assert epoch_ticks(range(1, 4)) == [1, 2, 3] and epoch_ticks(range(1, 51)) == [1, *range(5, 51, 5)]


def test_the_markdown_report_keeps_its_charts_beside_it(trained, tmp_path):
    store, runs = trained
    text = write_report(build_report(store, [runs["cifar10"].run_id]), tmp_path / "report.md").read_text()
    assert all(f"## {number}. " in text for number in range(1, 11))
    linked = re.findall(r"!\[[^\]]*\]\((report_files/figure-\d+\.png)\)", text)
    assert linked and all((tmp_path / link).read_bytes().startswith(b"\x89PNG") for link in linked)


def test_the_pdf_report_reads_back_with_a_pdf_library(trained, tmp_path):
    from pypdf import PdfReader

    store, runs = trained
    path = write_report(build_report(store, [runs["cifar10"].run_id, runs["one-vs-rest"].run_id]), tmp_path / "report.pdf")
    reader = PdfReader(path)
    text = " ".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2
    assert float(reader.pages[0].mediabox.width) == pytest.approx(595.28, abs=1)  # A4
    for title in SECTIONS:
        assert title in text, title
    assert f"{runs['cifar10'].metrics['accuracy']:.2%}" in text


def test_an_unknown_format_is_refused(trained, tmp_path):
    store, runs = trained
    with pytest.raises(ValueError, match=".html, .md, .pdf"):
        write_report(build_report(store, [runs["cifar10"].run_id]), tmp_path / "report.docx")


def test_every_completed_run_carries_its_model_card(trained):
    store, runs = trained
    completed = store.list_runs(status=Status.COMPLETED)
    assert {row.run_id for row in completed} == {result.run_id for result in runs.values()}  # all three, nothing else
    for row in completed:
        run_id, config, metrics = row.run_id, row.config, row.metrics
        card = store.run_folder(run_id).model_card.read_text()
        assert card.startswith(f"# Model card: {config.model} on {config.task} ({run_id})"), run_id
        assert f"- Accuracy: {metrics['accuracy']:.1%}" in card, run_id
        assert f"{row.fingerprint['n_train']:,} training" in card, run_id
        assert f"{metrics['epochs_completed']} epochs, batch {config.batch_size}" in card, run_id
        assert f"learning rate {config.learning_rate:g}" in card, run_id
        assert "it still answers one of its classes" in card, run_id
    one_vs_rest = store.run_folder(runs["one-vs-rest"].run_id).model_card.read_text()
    assert "whether a picture shows a cat or something else" in one_vs_rest
    assert "Baseline: always answering the commonest class scores 90.0%" in one_vs_rest
    for name in ("cifar10", "worse"):
        assert "which of the ten CIFAR-10 classes a picture shows" in store.run_folder(runs[name].run_id).model_card.read_text()


@pytest.mark.browser
def test_the_html_report_opens_in_a_browser_without_errors(trained, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser

    require_browser()
    store, runs = trained
    path = write_report(build_report(store, [runs["cifar10"].run_id, runs["one-vs-rest"].run_id]), tmp_path / "report.html")
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(path.as_uri())
        assert page.locator("h2").count() == len(SECTIONS)
        shown = page.evaluate("Array.from(document.images).every(image => image.complete && image.naturalWidth > 0)")
        browser.close()
    assert shown and errors == []
