"""What the commands print: JSON, the results table, a run's summary, and live training progress on the terminal."""

from __future__ import annotations

import json
import sys
from typing import Any

from lab.config import RunConfig, positive_class

# The keys every metrics JSON carries, in the report's order.
RESULT_KEYS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params", "trainable_params", "train_seconds", "n_test")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


class TerminalProgress:
    """Prints training events on stderr: a live bar on a terminal, one line per epoch otherwise."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr  # looked up now: sys.stderr may have been replaced
        self.width = width
        self.live = self.stream.isatty()
        self.epochs = 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "train_begin":
            self.epochs = event["epochs"]
            resumed = f", continuing after epoch {event['resumed_from_epoch']}" if event.get("resumed_from_epoch") else ""
            self._line(f"training on {event['n_train']} images, validating on {event['n_val']}, {self.epochs} epochs{resumed}")
        elif kind == "batch_end" and self.live:
            done = event["step"] / event["steps"]
            bar = "=" * int(done * self.width)
            eta = event["epoch_seconds"] / done - event["epoch_seconds"]
            text = f"epoch {event['epoch']}/{self.epochs} [{bar:<{self.width}}] {event['step']}/{event['steps']} loss {event['loss']:.3f} acc {event['accuracy']:.3f} eta {eta:.0f}s"
            self.stream.write("\r" + text)
            self.stream.flush()
        elif kind == "epoch_end":
            if self.live:
                self.stream.write("\r")
            self._line(
                f"epoch {event['epoch']}/{self.epochs}: loss {event['loss']:.3f} acc {event['accuracy']:.3f} "
                f"val_loss {event['val_loss']:.3f} val_acc {event['val_accuracy']:.3f} ({event['seconds']:.1f}s)"
            )
        elif kind == "evaluation":
            self._line(f"test accuracy {event['accuracy']:.4f} on {event['n_test']} images (macro F1 {event['f1_macro']:.4f})")

    def _line(self, text: str) -> None:
        self.stream.write(text.ljust(110) + "\n" if self.live else text + "\n")
        self.stream.flush()


def summarise(run_id: str | None, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """The JSON object `train` and `evaluate` print."""
    summary = {"run_id": run_id, "model": config.model, "backbone": config.backbone, "task": config.task, "epochs": config.epochs}
    summary.update({key: metrics.get(key) for key in RESULT_KEYS})
    summary["non_trainable_params"] = metrics.get("non_trainable_params")
    # What always answering the commonest class scores, and, for a one-vs-rest task, how well the model
    # finds its one class: the figures that show whether an accuracy means anything.
    summary["baseline_accuracy"] = metrics.get("baseline_accuracy")
    if positive_class(config.task) is not None:
        summary.update({key: metrics.get(key) for key in ("positive_precision", "positive_recall", "positive_f1")})
    summary["inference_ms_per_image"] = metrics.get("inference_ms_per_image")
    return summary


def format_cell(value, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def print_table(rows: list[dict[str, Any]], with_report: bool = False) -> None:
    """The report's columns: model, accuracy %, macro precision, recall, F1, parameters, training time."""
    header = f"{'model':<20}{'task':<22}{'acc %':>8}{'base %':>8}{'prec':>8}{'recall':>8}{'F1':>8}{'params':>14}{'time s':>9}"
    print(header + (f"{'report acc %':>14}" if with_report else ""))
    for row in rows:
        accuracy = None if row.get("accuracy") is None else 100 * row["accuracy"]
        baseline = None if row.get("baseline_accuracy") is None else 100 * row["baseline_accuracy"]
        line = (
            f"{row['model']:<20}{row['task']:<22}{format_cell(accuracy, '.2f'):>8}{format_cell(baseline, '.2f'):>8}{format_cell(row.get('precision_macro'), '.4f'):>8}"
            f"{format_cell(row.get('recall_macro'), '.4f'):>8}{format_cell(row.get('f1_macro'), '.4f'):>8}{format_cell(row.get('total_params'), ','):>14}"
            f"{format_cell(row.get('train_seconds'), '.1f'):>9}"
        )
        if with_report:
            report = row.get("report_accuracy")
            line += f"{format_cell(None if report is None else 100 * report, '.2f'):>14}"
        print(line)
    for row in rows:
        if row.get("positive_f1") is not None:
            found = row["task"].split(":")[-1]
            print(
                f"{row['task']}: always answering 'not {found}' scores {format_cell(row.get('baseline_accuracy'), '.1%')}; the model finds "
                f"{format_cell(row.get('positive_recall'), '.1%')} of the {found}s, and {format_cell(row.get('positive_precision'), '.1%')} "
                f"of its '{found}' answers are right (F1 {format_cell(row['positive_f1'], '.3f')})."
            )
    if rows and rows[0].get("run_id"):
        print("run ids: " + ", ".join(str(row["run_id"]) for row in rows))


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """One run's summary: the JSON object (`--json`) or a one-row results table."""
    if as_json:
        print_json(summary)
    else:
        print_table([summary])
