"""A model card: what a trained model is for and not for, what it learned from, and how well it does.

Every completed run's folder holds one (lab/store/run_folder.py names the file; so does assets/default_model/): a
reader who finds the model file alone, in an export zip or on a classmate's laptop, learns from
it what the model can answer, on which data it was measured, what always answering the commonest
class would score, and where it fails. Written from plain dicts (the run's config, metrics,
environment and data fingerprint), so it needs no model and no TensorFlow.
"""

from __future__ import annotations

from typing import Any

from lab.config import RunConfig, positive_class, task_class_names

SHARED_COPY_NOTE = (
    "If this is the copy of CIFAR-10 in the project's `../shared` folder: its pixels went through JPEG once and its "
    "test batch holds 5,000 images, not 10,000, so figures differ a little from published CIFAR-10 results."
)
TASK_WORDS = {"cifar10": "which of the ten CIFAR-10 classes a picture shows", "binary": "whether a picture shows a vehicle or an animal"}


def task_words(task: str) -> str:
    """The question a task's model answers, in words."""
    if task in TASK_WORDS:
        return TASK_WORDS[task]
    first, second = task_class_names(task)
    if positive_class(task) is not None:
        return f"whether a picture shows a {second} or something else"
    return f"whether a picture shows a {first} or a {second}"


def model_card(
    config: dict[str, Any], metrics: dict[str, Any], environment: dict[str, Any], fingerprint: dict[str, Any], *, run_id: str = ""
) -> str:
    """The card as Markdown."""
    run_config = RunConfig.from_dict(config)
    metrics = {**metrics, "baseline_accuracy": metrics.get("baseline_accuracy", _baseline_from(metrics.get("confusion_matrix")))}
    names = list(metrics.get("class_names") or run_config.class_names)
    lines = [f"# Model card: {run_config.model} on {run_config.task}" + (f" ({run_id})" if run_id else ""), ""]
    lines += [
        "## What it is for",
        f"It answers {task_words(run_config.task)}: one of {', '.join(names)}. It was trained in CIFAR-10 Lab to learn and",
        "to compare how image classifiers are trained; it is a teaching model, not a tool to rely on.",
        "",
        "## What it is not for",
        "It knows 32x32 pictures of its task's classes and nothing else: shown anything else (a face, a chair, a drawing),",
        "it still answers one of its classes, often with confidence. It has not been checked for fairness, robustness",
        "or safety, and should not make decisions about people or things that matter.",
        "",
        "## Training data",
        f"- Source: {fingerprint.get('source') or 'CIFAR-10'}; {_count(fingerprint.get('n_train'))} training, "
        f"{_count(fingerprint.get('n_val'))} validation and {_count(metrics.get('n_test') or fingerprint.get('n_test'))} test images.",
        f"- {SHARED_COPY_NOTE}",
        "",
        "## How well it does (on the test images, never used for training)",
        f"- Accuracy: {_share(metrics.get('accuracy'))}; macro precision {_share(metrics.get('precision_macro'))}, "
        f"recall {_share(metrics.get('recall_macro'))}, F1 {_share(metrics.get('f1_macro'))}.",
        f"- Baseline: always answering the commonest class scores {_share(metrics.get('baseline_accuracy'))}. "
        "An accuracy near the baseline means the model learned little.",
        *_class_lines(metrics, names),
        "",
        "## Limitations",
        "- It sees 32x32 pixels: a larger picture is shrunk first, and small or off-centre objects are lost.",
        '- Its classes are the only answers it has; it cannot say "none of these".',
        "- One run with one seed: another seed moves accuracy by a point or so.",
        "",
        "## How it was trained",
        f"- Network: {run_config.backbone} ({_count(metrics.get('total_params'))} parameters, {_count(metrics.get('trainable_params'))} trained), "
        f"{metrics.get('epochs_completed', run_config.epochs)} epochs, batch {run_config.batch_size}, {run_config.optimizer} at "
        f"learning rate {run_config.learning_rate:g}, schedule {run_config.lr_schedule}.",
        f"- Environment: {environment.get('device', 'unknown device')}, TensorFlow {environment.get('tensorflow', '?')}, "
        f"Keras {environment.get('keras', '?')}, precision {environment.get('precision', run_config.precision)}.",
        "",
        "Every setting (the config, which reproduces the run):",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in run_config.to_dict().items()],
        "",
    ]
    return "\n".join(lines)


def _class_lines(metrics: dict[str, Any], names: list[str]) -> list[str]:
    """How well it finds the positive class (a two-class task), and the per-class table with its weakest class."""
    lines = []
    if metrics.get("positive_f1") is not None:
        found = names[1]
        lines.append(
            f"- Finding {found}: precision {_share(metrics.get('positive_precision'))} (of its '{found}' answers, how many are right), "
            f"recall {_share(metrics.get('positive_recall'))} (of the {found} pictures, how many it finds), F1 {_share(metrics['positive_f1'])}."
        )
    per_class = metrics.get("per_class") or []
    if per_class:
        lines += ["", "| class | precision | recall | F1 | test images |", "|---|---|---|---|---|"]
        lines += [
            f"| {row['class']} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |" for row in per_class
        ]
        weakest = min(per_class, key=lambda row: row["f1"])
        lines += ["", f"Weakest class: {weakest['class']} (F1 {weakest['f1']:.3f})."]
    return lines


def _baseline_from(confusion_matrix: list[list[int]] | None) -> float | None:
    """The commonest true class's share of the test images (a row of the confusion matrix per true class)."""
    if not confusion_matrix:
        return None
    rows = [sum(row) for row in confusion_matrix]
    return max(rows) / sum(rows) if sum(rows) else None


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
