"""What one run found, in a few sentences: set against the lab report's figure for the same network, and its budget.

The lab report trained each network on CIFAR-10's 50,000 training images for 10 epochs and measured it on
the original 10,000 test images. A run in this lab usually trains on fewer images for fewer epochs and is
measured on the test images of the copy it read, so a sentence about a run says both: how far its accuracy
is from the report's, and how much training it had compared with the report (its "budget": training
images times epochs). Every sentence is built from stored numbers, never written by hand.
"""

from __future__ import annotations

from lab.config import PRETRAINED_BACKBONES
from lab.report.task_names import task_label
from lab.store.records import Run

# The report's words for its rows, so a student finds the same network in its table.
REPORT_NAMES = {
    "seed-cnn": "CNN from scratch",
    "vgg16-frozen": "frozen VGG16",
    "resnet50-frozen": "frozen ResNet50",
    "mobilenetv2-frozen": "frozen MobileNetV2",
    "vgg16-finetune": "fine-tuned VGG16",
}
SHARED_TEST_IMAGES = 5_000  # the ../shared copy's test batch, JPEG-decoded once (the official one holds 10,000)


def budget(train_images: int | None, epochs: int | None) -> int | None:
    """Training images times epochs: how many pictures the network looked at while learning."""
    return train_images * epochs if train_images and epochs else None


def budget_share(share: float) -> str:
    """A share of the report's budget in words that keep small shares visible: "5%", "0.6%", "120%"."""
    return f"{share:.1%}" if share < 0.01 else f"{share:.0%}"


def task_words(task: str) -> str:
    """A task in words inside a sentence: "all 10 classes", "truck vs the rest" (class names are lower case already)."""
    words = task_label(task)
    return words[:1].lower() + words[1:]


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run_findings(run: Run, reference: dict[tuple[str, str], dict]) -> str:
    """A few sentences on one stored run, set against `reference` (the report's rows by (model, task))."""
    metrics, fingerprint = run.metrics, run.fingerprint
    model, task = run.model, run.task
    accuracy, baseline, n_test = metrics.get("accuracy"), metrics.get("baseline_accuracy"), metrics.get("n_test")
    epochs = metrics.get("epochs_completed") or run.config.epochs
    own_budget = budget(fingerprint.get("n_train"), epochs)
    sentences = [f"{model} on {task_words(task)}: {_share(accuracy)} of {_count(n_test)} test images right"]
    if baseline is not None:
        sentences[0] += f", where always giving the commonest answer scores {_share(baseline)}"

    same_task = (model, task) in reference
    row = reference.get((model, task))
    if row is None:
        sentences.append(f"The report has no {model} run on {task_words(task)}, so there is no figure of its to set this against")
        row = reference.get((model, "cifar10"))  # its budget still says how much training the report gave this network
    elif accuracy is not None and row.get("accuracy") is not None:
        gap = 100 * (accuracy - row["accuracy"])
        where = "above" if gap > 0 else "below"
        name = REPORT_NAMES.get(model, model)
        sentences.append(
            f"The report's {name} on {task_words(task)} scored {_share(row['accuracy'])}: this run is "
            + (f"{abs(gap):.1f} points {where} it" if round(abs(gap), 1) else "level with it")
        )
        if metrics.get("total_params") and row.get("total_params"):
            if metrics["total_params"] == row["total_params"]:
                sentences.append(f"It is the same network size, {metrics['total_params']:,} parameters")
            else:
                sentences.append(
                    f"It has {metrics['total_params']:,} parameters against the report's {row['total_params']:,}: its settings "
                    "make a different network"
                )
        if run.train_seconds and row.get("train_seconds"):
            sentences.append(
                f"Training took {duration(run.train_seconds)} here and {duration(row['train_seconds'])} in the report, on other "
                "computers, so times compare only roughly"
            )
    if same_task and run.config.backbone in PRETRAINED_BACKBONES and run.config.weights == "none":
        sentences.append(
            "It started from random weights, not ImageNet's, so it is not the transfer learning the report measured: "
            "only the network's shape is the same"
        )
    report_budget = budget(row.get("train_images"), row.get("epochs")) if row else None
    if own_budget and report_budget:
        sentences.append(
            f"It trained on {fingerprint['n_train']:,} images for {epochs} epoch{'s' if epochs != 1 else ''}, "
            f"{budget_share(own_budget / report_budget)} of the report's budget ({row['train_images']:,} images for {row['epochs']} epochs)"
        )
        if same_task and own_budget < report_budget / 2 and accuracy is not None and accuracy < (row.get("accuracy") or 0):
            sentences.append("With that much less training, a lower accuracy is expected: more images or epochs close some of the gap")
    if same_task and n_test and row.get("test_images") and n_test != row["test_images"]:
        jpeg = " JPEG-decoded" if n_test == SHARED_TEST_IMAGES else ""
        sentences.append(
            f"Its accuracy counts {n_test:,}{jpeg} test images, the report's CIFAR-10's original {row['test_images']:,}: "
            "different test images move an accuracy by a little, so a gap of about a point says little"
        )
    return ". ".join(sentences) + "."


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
