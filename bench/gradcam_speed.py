"""Latency of one Grad-CAM heatmap: the lab's cached, compiled gradient function against the naive way.

Naive (what most Grad-CAM recipes do): build the two-output model again for every
picture and run the GradientTape eagerly. Ours: `lab.insight.gradcam.gradcam`, which builds
the two-output model and a `tf.function` once per model and reuses them. Both explain
the same model's top class for the same test images, one image per call, heatmap at
32x32. The first call (building and tracing) is reported apart; p50 / p95 are over
`--repeats` calls after it, cycling through 10 test images.

The models: the seed CNN trained for `--epochs` epoch on a stratified `--subset` of the
real training images (CIFAR10_DIR), and, for comparison, MobileNetV2 at 32 pixels with
random weights (Grad-CAM's cost does not depend on the weights' values).

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.gradcam_speed --repeats 50
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.harness import markdown_table, run_contender, write_section

IMAGES = 10  # distinct test images the timed calls cycle through


def _model_and_images(preset: str, epochs: int, subset: int):
    from lab.config import config_for_preset
    from lab.data.cifar10 import load_cifar10
    from lab.models.registry import build_model
    from lab.train.run import run

    data = load_cifar10()
    if preset == "seed-cnn":
        result = run(config_for_preset("seed-cnn", epochs=epochs, subset=subset), data=data)
        return (
            result.model,
            data.x_test[:IMAGES],
            f"trained {epochs} epoch on a {subset:,}-image real subset (test accuracy {result.metrics['accuracy']:.2f})",
        )
    config = config_for_preset(preset, weights="none")
    return build_model(config, 10), data.x_test[:IMAGES], "random weights"


def _time_calls(explain, images: np.ndarray, repeats: int) -> dict:
    started = time.perf_counter()
    explain(images[0])  # the first call builds (and, for ours, traces) everything
    first_ms = (time.perf_counter() - started) * 1000
    timings = []
    for call in range(repeats):
        started = time.perf_counter()
        explain(images[call % len(images)])
        timings.append((time.perf_counter() - started) * 1000)
    return {"first_ms": first_ms, "p50_ms": float(np.percentile(timings, 50)), "p95_ms": float(np.percentile(timings, 95))}


def ours(preset: str, epochs: int, subset: int, repeats: int) -> dict:
    from lab.insight.gradcam import gradcam

    model, images, how = _model_and_images(preset, epochs, subset)
    figures = _time_calls(lambda image: gradcam(model, image), images, repeats)
    return {"model": preset, "weights": how, "way": "lab (built once, tf.function)", "layer": gradcam(model, images[0]).layer, **figures}


def naive(preset: str, epochs: int, subset: int, repeats: int) -> dict:
    import tensorflow as tf

    from lab.insight.gradcam import _normalise, _resize, class_scores, gradcam_layer
    from lab.insight.layer_taps import output_layer, tap_model

    model, images, how = _model_and_images(preset, epochs, subset)
    info = gradcam_layer(model)

    def explain(image):
        probe = tap_model(model, info.path, before_output=True)  # rebuilt for every picture
        with tf.GradientTape() as tape:
            features, last_input = probe(image[np.newaxis].astype("float32"), training=False)
            scores, probabilities = class_scores(output_layer(model), last_input)
            score = scores[0, int(np.argmax(probabilities[0]))]
        gradients = tape.gradient(score, features).numpy()[0]
        weighted = np.maximum((features.numpy()[0] * gradients.mean(axis=(0, 1))).sum(axis=-1), 0)
        return _normalise(_resize(weighted, (32, 32)))

    figures = _time_calls(explain, images, repeats)
    return {"model": preset, "weights": how, "way": "naive (rebuilt per call, eager)", "layer": info.name, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=5000)
    args = parser.parse_args()
    if not os.environ.get("CIFAR10_DIR"):
        raise SystemExit("set CIFAR10_DIR to the CIFAR-10 folder, e.g. ../shared/data/cifar-10-batches-py")
    rows = []
    for preset in ("seed-cnn", "mobilenetv2-frozen"):
        for way in ("naive", "ours"):
            rows.append(
                run_contender("bench.gradcam_speed", way, preset=preset, epochs=args.epochs, subset=args.subset, repeats=args.repeats)
            )
            print(rows[-1])
    columns = [
        ("model", "model", ""),
        ("weights", "weights", ""),
        ("layer", "layer", ""),
        ("way", "way", ""),
        ("first_ms", "first call ms", ".0f"),
        ("p50_ms", "p50 ms", ".1f"),
        ("p95_ms", "p95 ms", ".1f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    note = (
        f"One 32x32 image per call, the model's top class, heatmap at 32x32; p50 / p95 over {args.repeats} calls after the first, "
        f"cycling through {IMAGES} test images; each row in its own process."
    )
    command = f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.gradcam_speed --repeats {args.repeats}"
    if (args.epochs, args.subset) != (1, 5000):
        command += f" --epochs {args.epochs} --subset {args.subset}"
    write_section("Grad-CAM latency per image", note + "\n\n" + table, command)


if __name__ == "__main__":
    main()
