"""A frozen VGG16 base with a new head: the notebook's way against the frozen-feature cache.

Naive (the lab report's notebook): float32 arrays normalised in memory, `model.fit` on
numpy arrays with one-hot labels, batch 64, the frozen base recomputed on every epoch.
Ours, twice: a first run that computes the cached features (cold cache), then a second
run that finds them on disk (warm cache). Same data, split, epochs, batch size.
Weights "none" (random initialisation) are fine for timing: the arithmetic is the same.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.frozen_cache --epochs 10 --subset 5000
"""

from __future__ import annotations

import argparse
import os
import tempfile

from bench.harness import markdown_table, run_contender, stopwatch, write_section


def naive(backbone: str, epochs: int, subset: int | None) -> dict:
    import keras
    from keras import layers

    from lab.config import config_for_preset
    from lab.data.cifar10 import load_cifar10
    from lab.data.tasks import prepare_task
    from lab.evaluate.metrics import metrics_from_predictions

    config = config_for_preset(f"{backbone}-frozen", weights="none", epochs=epochs, subset=subset)
    split = prepare_task(load_cifar10(), config)
    application = {
        "vgg16": keras.applications.VGG16,
        "resnet50": keras.applications.ResNet50,
        "mobilenetv2": keras.applications.MobileNetV2,
    }
    preprocess = {
        "vgg16": keras.applications.vgg16,
        "resnet50": keras.applications.resnet50,
        "mobilenetv2": keras.applications.mobilenet_v2,
    }
    # The notebook's way: preprocess every split into whole float32 arrays, one-hot labels.
    x_train, x_val, x_test = (
        preprocess[backbone].preprocess_input(x.astype("float32")) for x in (split.x_train, split.x_val, split.x_test)
    )
    y_train = keras.utils.to_categorical(split.y_train, 10)
    y_val = keras.utils.to_categorical(split.y_val, 10)
    keras.utils.set_random_seed(config.seed)
    base = application[backbone](include_top=False, weights=None, input_shape=(32, 32, 3))
    base.trainable = False
    model = keras.Sequential([base, layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    elapsed = stopwatch()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, validation_data=(x_val, y_val), verbose=0)
    train_seconds = elapsed()
    predicted = model.predict(x_test, batch_size=256, verbose=0).argmax(axis=1)
    accuracy = metrics_from_predictions(split.y_test, predicted, split.class_names)["accuracy"]
    return {"way": "naive: base recomputed every epoch", "train_seconds": train_seconds, "accuracy": accuracy}


def ours(backbone: str, epochs: int, subset: int | None, label: str) -> dict:
    from lab.config import config_for_preset
    from lab.train.run import run

    result = run(config_for_preset(f"{backbone}-frozen", weights="none", epochs=epochs, subset=subset))
    return {"way": label, "train_seconds": result.train_seconds, "accuracy": result.metrics["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="vgg16", choices=("vgg16", "resnet50", "mobilenetv2"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--subset", type=int, default=5000)
    args = parser.parse_args()
    if not os.environ.get("CIFAR10_DIR"):
        raise SystemExit("set CIFAR10_DIR to the CIFAR-10 folder, e.g. ../shared/data/cifar-10-batches-py")
    os.environ["LAB_HOME"] = tempfile.mkdtemp(prefix="bench-cache-")  # a cold cache to start from
    common = {"backbone": args.backbone, "epochs": args.epochs, "subset": args.subset}
    rows = [
        run_contender("bench.frozen_cache", "naive", **common),
        run_contender("bench.frozen_cache", "ours", label="lab, first run (cache cold)", **common),
        run_contender("bench.frozen_cache", "ours", label="lab, cache warm", **common),
    ]
    for row in rows:
        row["speedup"] = rows[0]["train_seconds"] / row["train_seconds"]
    columns = [
        ("way", "way", ""),
        ("train_seconds", "train s", ".1f"),
        ("speedup", "speed-up vs naive", ".1f"),
        ("peak_rss_mb", "peak RSS MB", ".0f"),
        ("accuracy", "test accuracy", ".4f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    note = (
        f"Weights `none` (a random base: ImageNet's arithmetic, so its time; the accuracy means nothing), a stratified subset of "
        f"{args.subset:,} training images, batch 64, seed 0, one run per row in its own process; the cache rows' 'train s' "
        "includes computing or reading the features."
    )
    command = (
        "CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.frozen_cache "
        f"--backbone {args.backbone} --epochs {args.epochs} --subset {args.subset}"
    )
    write_section(f"{args.backbone}-frozen, {args.epochs} epochs: naive vs frozen-feature cache", note + "\n\n" + table, command)


if __name__ == "__main__":
    main()
