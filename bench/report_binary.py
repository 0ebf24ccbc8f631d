"""The lab report's binary row: which "one class vs the rest" task its log describes, fitted on all ten logged figures.

The report's binary run trained a small CNN with one sigmoid unit on all 50,000 training images
(782 steps of 64), Adam, 5 epochs, no augmentation, with the test set as its "validation" data:
its log holds ten figures, the mean training accuracy of each epoch and the test accuracy after
each epoch (the last one, 0.9598, is the test accuracy of its results table). A task where one
class in ten is the positive one fits those numbers (always answering "no" scores 90%).

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.report_binary --screen
    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.report_binary --study

The network and training loop here are the report's own, written in plain Keras (not the app's
trainer, which always holds some training images out for validation): Conv2D 32-64-128 with max
pooling, Dense 128, one sigmoid unit; pixels divided by 255; Adam 1e-3; batch 64; Keras's own
shuffling; the test set evaluated after every epoch.

`--screen` trains it once (seed 0) on each of the ten one-vs-rest tasks and on vehicles vs animals;
`--study` does the same, then seeds 1 and 2 of the closest few. Both rank the tasks by their
distance from the report's log: the mean gap over its ten figures, in points. `--results FILE`
keeps every finished run in a JSON-lines file and skips runs already there, so a long study can
stop and go on. Each writes its own section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from bench.harness import markdown_table, stopwatch, write_section

# The report's log, epochs 1-5: the mean training accuracy of each epoch ("accuracy") and the
# test set's accuracy after it (logged as "val_accuracy": the report validated on the test set).
REPORT_TRAINING_ACCURACY = (0.9066, 0.9483, 0.9572, 0.9626, 0.9673)
REPORT_TEST_ACCURACY = (0.9466, 0.9558, 0.9446, 0.9629, 0.9598)
REPORT_EPOCHS = len(REPORT_TRAINING_ACCURACY)
REPORT_BATCH_SIZE = 64  # 782 steps per epoch over 50,000 images
REPORT_PARAMETERS = 355_649  # its model summary's trainable parameters
STUDY_FINALISTS = 3  # how many of the closest tasks get two more seeds in --study
STUDY_SEEDS = (0, 1, 2)


def report_network():
    """The report's binary network, layer by layer as its model summary lists them."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )


def task_labels(task: str, labels):
    """CIFAR-10 labels 0-9 turned into the task's 0/1 labels (one class vs the rest, or vehicles vs animals)."""
    from lab.data.tasks import task_label_map

    return task_label_map(task)[labels].astype("float32")


def train_once(data, task: str, seed: int, epochs: int = REPORT_EPOCHS) -> dict:
    """One run of the report's recipe; its ten figures (training and test accuracy per epoch) and its distance."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)  # initial weights and Keras's per-epoch shuffle
    model = report_network()
    assert model.count_params() == REPORT_PARAMETERS, model.count_params()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    x_train = np.asarray(data.x_train, dtype="float32") / 255.0
    x_test = np.asarray(data.x_test, dtype="float32") / 255.0
    y_train, y_test = task_labels(task, data.y_train), task_labels(task, data.y_test)
    elapsed = stopwatch()
    history = model.fit(x_train, y_train, batch_size=REPORT_BATCH_SIZE, epochs=epochs, validation_data=(x_test, y_test), verbose=0).history
    row = {
        "task": task,
        "seed": seed,
        "training_accuracy": [round(value, 4) for value in history["accuracy"]],
        "test_accuracy": [round(value, 4) for value in history["val_accuracy"]],
        "baseline_accuracy": round(float(max(y_test.mean(), 1 - y_test.mean())), 4),
        "seconds": elapsed(),
    }
    row["distance"] = distance_from_report(row)
    return row


def distance_from_report(row: dict) -> float:
    """The mean gap between a run's ten figures and the report's, in points (0.5 = half a point per figure on average)."""
    gaps = [abs(mine - report) for mine, report in zip(row["training_accuracy"], REPORT_TRAINING_ACCURACY, strict=True)]
    gaps += [abs(mine - report) for mine, report in zip(row["test_accuracy"], REPORT_TEST_ACCURACY, strict=True)]
    return 100 * statistics.mean(gaps)


def all_tasks() -> list[str]:
    from lab.config import CLASS_NAMES, ONE_VS_REST

    return [f"{ONE_VS_REST}{name}" for name in CLASS_NAMES] + ["binary"]


class Results:
    """Finished runs, one JSON line each, so a long study can stop and go on without training a run twice."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self.rows = (
            [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()] if self.path and self.path.exists() else []
        )

    def get(self, data, task: str, seed: int) -> dict:
        for row in self.rows:
            if row["task"] == task and row["seed"] == seed:
                return row
        row = train_once(data(), task, seed)
        print(
            f"{task:<26} seed {seed}  train {row['training_accuracy']}  test {row['test_accuracy']}  distance {row['distance']:.2f}",
            flush=True,
        )
        self.rows.append(row)
        if self.path:
            with self.path.open("a") as file:
                file.write(json.dumps(row) + "\n")
        return row


def by_task(rows: list[dict]) -> list[dict]:
    """One line per task: each of the ten figures averaged over its seeds, ranked by distance from the report."""
    summary = []
    for task in dict.fromkeys(row["task"] for row in rows):
        runs = [row for row in rows if row["task"] == task]
        mean = {
            key: [statistics.mean(values) for values in zip(*(run[key] for run in runs), strict=True)]
            for key in ("training_accuracy", "test_accuracy")
        }
        summary.append(
            {
                "task": task,
                "seeds": len(runs),
                "training": " ".join(f"{value:.4f}" for value in mean["training_accuracy"]),
                "test": " ".join(f"{value:.4f}" for value in mean["test_accuracy"]),
                "distance": statistics.mean(run["distance"] for run in runs),
                "distance_spread": statistics.stdev(run["distance"] for run in runs) if len(runs) > 1 else None,
                "seconds": statistics.mean(run["seconds"] for run in runs),
            }
        )
    return sorted(summary, key=lambda row: row["distance"])


def report_line() -> dict:
    return {
        "task": "the report",
        "seeds": "-",
        "training": " ".join(f"{value:.4f}" for value in REPORT_TRAINING_ACCURACY),
        "test": " ".join(f"{value:.4f}" for value in REPORT_TEST_ACCURACY),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screen", action="store_true", help="seed 0 of each one-vs-rest task and of vehicles vs animals")
    parser.add_argument("--study", action="store_true", help="the screen, then seeds 1 and 2 of the closest tasks")
    parser.add_argument("--task", help="one task only (with --seeds), e.g. one-vs-rest:truck")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--results", help="a JSON-lines file that keeps finished runs (read first, appended to)")
    args = parser.parse_args()

    import lab  # noqa: F401 - TensorFlow's CPU kernels, chosen before TensorFlow starts
    from lab.data.cifar10 import load_cifar10

    loaded = []

    def data():  # loaded on the first run that needs it: a table from saved results needs no data
        if not loaded:
            loaded.append(load_cifar10(os.environ.get("CIFAR10_DIR")))
        return loaded[0]

    results = Results(args.results)
    command = "CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.report_binary"
    if args.task:
        seeds = [int(seed) for seed in args.seeds.split(",")]
        rows = [results.get(data, args.task, seed) for seed in seeds]
        name, command = (
            f"The study's binary row ({args.task}), the report's ten figures",
            f"{command} --task {args.task} --seeds {args.seeds}",
        )
    else:
        rows = [results.get(data, task, 0) for task in all_tasks()]
        name, command = "The report's binary task: which one-vs-rest class, on ten figures", f"{command} --screen"
        if args.study:
            for task in [row["task"] for row in by_task(rows)[:STUDY_FINALISTS]]:
                rows += [results.get(data, task, seed) for seed in STUDY_SEEDS[1:]]
            command = command.replace("--screen", "--study")
    columns = [
        ("task", "task", ""),
        ("seeds", "seeds", ""),
        ("training", "training accuracy, epochs 1-5", ""),
        ("test", "test accuracy after epochs 1-5", ""),
        ("distance", "distance (points, mean of ten gaps)", ".2f"),
        ("distance_spread", "spread over seeds (sd)", ".2f"),
        ("seconds", "seconds per run", ".0f"),
    ]
    body = (
        "The report's recipe (its network, all 50,000 training images, batch 64, Adam, 5 epochs, the test set after each "
        "epoch) per task, each figure averaged over the seeds; distance: the mean gap from the report's ten figures, in points. "
        "Data: the `../shared` copy (JPEG once, 5,000 test images).\n\n" + markdown_table([report_line(), *by_task(rows)], columns)
    )
    write_section(name, body, command, per_cpu=True)


if __name__ == "__main__":
    main()
