"""The report's small CNN, 10 epochs on the full training set: the notebook's way against ours.

Naive (what the lab report's notebook did): float32 arrays normalised in memory, one-hot
labels, `model.fit` on numpy arrays, batch 64. Ours: `lab.train.run.run` (uint8 arrays,
a tf.data pipeline, normalisation inside the model, and bfloat16 maths on a CPU that has
it: lab/train/devices.py). Same architecture, data, split, epochs, batch size.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.seed_cnn --epochs 10
"""

from __future__ import annotations

import argparse
import os

from bench.harness import markdown_table, run_contender, stopwatch, write_section


def naive(epochs: int, subset: int | None, task: str = "cifar10") -> dict:
    import keras
    from keras import layers

    from lab.config import config_for_preset
    from lab.data.cifar10 import load_cifar10
    from lab.data.tasks import prepare_task
    from lab.evaluate.metrics import metrics_from_predictions

    config = config_for_preset("seed-cnn", epochs=epochs, subset=subset, task=task)
    split = prepare_task(load_cifar10(), config)
    # The notebook's way: whole float32 copies of every split, one-hot labels.
    x_train, x_val, x_test = (x.astype("float32") / 255.0 for x in (split.x_train, split.x_val, split.x_test))
    y_train = keras.utils.to_categorical(split.y_train, split.num_classes)
    y_val = keras.utils.to_categorical(split.y_val, split.num_classes)
    keras.utils.set_random_seed(config.seed)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(split.num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    elapsed = stopwatch()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, validation_data=(x_val, y_val), verbose=0)
    train_seconds = elapsed()
    predicted = model.predict(x_test, batch_size=256, verbose=0).argmax(axis=1)
    metrics = metrics_from_predictions(split.y_test, predicted, split.class_names)
    return {
        "way": "naive (float32 arrays, model.fit on numpy)",
        "train_seconds": train_seconds,
        "accuracy": metrics["accuracy"],
        "params": model.count_params(),
    }


def ours(epochs: int, subset: int | None, task: str = "cifar10") -> dict:
    from lab.config import config_for_preset
    from lab.train import devices
    from lab.train.run import run

    config = config_for_preset("seed-cnn", epochs=epochs, subset=subset, task=task)
    precision = devices.precision_for(config)  # what "auto" picks on this machine
    result = run(config)
    return {
        "way": f"lab (uint8 + tf.data, normalise in model, {precision})",
        "train_seconds": result.train_seconds,
        "accuracy": result.metrics["accuracy"],
        "params": result.metrics["total_params"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--subset", type=int)
    parser.add_argument("--task", default="cifar10")
    args = parser.parse_args()
    if not os.environ.get("CIFAR10_DIR"):
        raise SystemExit("set CIFAR10_DIR to the CIFAR-10 folder, e.g. ../shared/data/cifar-10-batches-py")
    rows = [run_contender("bench.seed_cnn", way, epochs=args.epochs, subset=args.subset, task=args.task) for way in ("naive", "ours")]
    for row in rows:
        row["epoch_seconds"] = row["train_seconds"] / args.epochs
    naive_row, ours_row = rows
    ours_row["time_ratio"] = ours_row["train_seconds"] / naive_row["train_seconds"]
    ours_row["memory_ratio"] = ours_row["peak_rss_mb"] / naive_row["peak_rss_mb"]
    columns = [
        ("way", "way", ""),
        ("train_seconds", "train s", ".1f"),
        ("epoch_seconds", "s / epoch", ".1f"),
        ("time_ratio", "time vs naive", ".2f"),
        ("peak_rss_mb", "peak RSS MB", ".0f"),
        ("memory_ratio", "memory vs naive", ".2f"),
        ("accuracy", "test accuracy", ".4f"),
        ("params", "params", ","),
    ]
    table = markdown_table(rows, columns)
    print(table)
    training_set = f"a {args.subset:,}-image subset" if args.subset else "the full training set (45,000 train / 5,000 validation)"
    note = (
        f"`seed-cnn` on task `{args.task}`, {args.epochs} epochs on {training_set}, seed 0, one run per way, each in its own process. "
        "Ours keeps the best validation epoch's weights (`keep_best`), the notebook its last epoch's."
    )
    command = (
        f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.seed_cnn --epochs {args.epochs}"
        + (f" --subset {args.subset}" if args.subset else "")
        + ("" if args.task == "cifar10" else f" --task {args.task}")
    )
    write_section(f"seed-cnn, {args.task}, {args.epochs} epochs: naive vs lab", note + "\n\n" + table, command, per_cpu=True)


if __name__ == "__main__":
    main()
