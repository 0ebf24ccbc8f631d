"""The lab report's findings for one run, from stored numbers: the report's figure, the budget, the test images."""

from __future__ import annotations

from lab.config import REPORT_BINARY_TASK
from lab.report.findings import budget_share, run_findings
from lab.report.results_table import reference_rows
from lab.store.records import Run, Status, stored_config

REFERENCE = {(row["model"], row["task"]): row for row in reference_rows()}


def stored_run(model="seed-cnn", task="cifar10", *, accuracy=0.477, n_train=9_000, epochs=3, n_test=5_000, params=356_810, config=None):
    """A completed run as the store returns it, with only what the findings read."""
    metrics = {"accuracy": accuracy, "baseline_accuracy": 0.1, "n_test": n_test, "epochs_completed": epochs, "total_params": params}
    return Run(
        run_id="20250101-000000-run-abcd", status=Status.COMPLETED, model=model, task=task, owner_id="local", owner_name="",
        created_at="2025-01-01T00:00:00.000+00:00", updated_at="2025-01-01T00:00:00.000+00:00", metrics=metrics,
        fingerprint={"n_train": n_train}, train_seconds=95.0, config=stored_config(config or {"model": model, "task": task}),
    )  # fmt: skip


def test_a_run_is_set_against_the_reports_figure_its_budget_and_test_images():
    text = run_findings(stored_run(), REFERENCE)
    assert "seed-cnn on all 10 classes: 47.70% of 5,000 test images right" in text
    assert "The report's CNN from scratch on all 10 classes scored 71.91%: this run is 24.2 points below it" in text
    assert "It is the same network size, 356,810 parameters" in text
    assert "Training took 95 s here and 48 s in the report" in text
    # 9,000 images x 3 epochs against the report's 50,000 x 10: 27,000 / 500,000 = 5.4%.
    assert "It trained on 9,000 images for 3 epochs, 5% of the report's budget (50,000 images for 10 epochs)" in text
    assert "a lower accuracy is expected" in text
    assert "Its accuracy counts 5,000 JPEG-decoded test images, the report's CIFAR-10's original 10,000" in text


def test_the_one_class_run_meets_the_reports_binary_row_and_its_five_epochs():
    text = run_findings(stored_run(task=REPORT_BINARY_TASK, accuracy=0.96, params=355_649), REFERENCE)
    one_class = REPORT_BINARY_TASK.split(":")[1]
    assert f"The report's CNN from scratch on {one_class} vs the rest scored 95.98%: this run is level with it" in text
    assert "11% of the report's budget (50,000 images for 5 epochs)" in text
    assert "a lower accuracy is expected" not in text  # it is not lower


def test_without_a_figure_of_the_report_it_says_so_and_keeps_the_budget():
    text = run_findings(stored_run(task="pair:cat,dog"), REFERENCE)
    assert "The report has no seed-cnn run on cat vs dog" in text and "points" not in text
    assert "of the report's budget" in text and "JPEG" not in text  # the test-set note belongs to a figure compared


def test_a_pretrained_preset_without_imagenet_weights_is_not_the_reports_transfer_learning():
    config = {"backbone": "vgg16", "weights": "none"}
    text = run_findings(stored_run("vgg16-frozen", accuracy=0.3, params=14_719_818, config=config), REFERENCE)
    assert "The report's frozen VGG16 on all 10 classes scored 57.68%" in text
    assert "started from random weights, not ImageNet's" in text
    with_weights = run_findings(
        stored_run("vgg16-frozen", params=14_719_818, config={"backbone": "vgg16", "weights": "imagenet"}), REFERENCE
    )
    assert "random weights" not in with_weights


def test_small_budget_shares_stay_visible():
    assert (budget_share(0.054), budget_share(0.006), budget_share(1.2)) == ("5%", "0.6%", "120%")
