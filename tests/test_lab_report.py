"""The generated lab report: built from small real runs, written as HTML, Markdown and PDF, and read back."""

from __future__ import annotations

import base64
import re

import pytest

from lab.config import config_for_preset
from lab.evaluate.model_card import CARD_FILE
from lab.report.lab_report import build_report, choose_runs
from lab.report.writers import write_report
from lab.store.runs import Store
from lab.train.run import run
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
        "cifar10": run(config_for_preset("seed-cnn", epochs=2, batch_size=32), data=data, store=store),
        "one-vs-rest": run(config_for_preset("seed-cnn", task="one-vs-rest:cat", epochs=1, batch_size=32), data=data, store=store),
        "worse": run(config_for_preset("seed-cnn", epochs=1, batch_size=32, learning_rate=1e-5), data=data, store=store),
    }
    return store, runs


def test_by_default_the_report_covers_the_best_run_of_each_preset_and_task(trained):
    store, runs = trained
    chosen = {run["run_id"] for run in choose_runs(store)}
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
        metrics = store.get_run(key)["metrics"]
        assert f"{metrics['accuracy']:.2%}" in page
        assert f"{metrics['total_params']:,}" in page
    assert "0.9598" not in page and "95.98%" in page  # the report's own binary row sits beside ours
    assert "always saying &#x27;not cat&#x27; already scores 90.00%" in page  # what the imbalance hides
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 3 and all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)  # self-contained
    assert "http://" not in page and "https://" not in page


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
    completed = store.list_runs(status="completed")
    assert {row["run_id"] for row in completed} == {result.run_id for result in runs.values()}  # all three, nothing else
    for row in completed:
        run_id, config, metrics = row["run_id"], row["config"], row["metrics"]
        card = (store.run_dir(run_id) / CARD_FILE).read_text()
        assert card.startswith(f"# Model card: {config['model']} on {config['task']} ({run_id})"), run_id
        assert f"- Accuracy: {metrics['accuracy']:.1%}" in card, run_id
        assert f"{row['fingerprint']['n_train']:,} training" in card, run_id
        assert f"{metrics['epochs_completed']} epochs, batch {config['batch_size']}" in card, run_id
        assert f"learning rate {config['learning_rate']:g}" in card, run_id
        assert "it still answers one of its classes" in card, run_id
    one_vs_rest = (store.run_dir(runs["one-vs-rest"].run_id) / CARD_FILE).read_text()
    assert "whether a picture shows a cat or something else" in one_vs_rest
    assert "Baseline: always answering the commonest class scores 90.0%" in one_vs_rest
    for name in ("cifar10", "worse"):
        assert "which of the ten CIFAR-10 classes a picture shows" in (store.run_dir(runs[name].run_id) / CARD_FILE).read_text()


@pytest.mark.browser
def test_the_html_report_opens_in_a_browser_without_errors(trained, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS
    from tests.test_browser import _require_browser

    _require_browser()
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
