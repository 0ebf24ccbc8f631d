"""Latency of classifying one uploaded image with the default model, decoding included.

Each call is what the Predict page does for one upload: `lab.evaluate.predict.predict_image`
(decode the bytes defensively, resize to 32x32, run the model, top-5). Measured for a
small PNG (a CIFAR-sized test image) and a phone-sized JPEG, after one warm-up call;
loading the model is excluded (the app loads it once per server). Each is measured twice:
with the model called eagerly (the way before) and with `predict_on_batch` (the way now).

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.predict_latency --repeats 200
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image, ImageFilter

from bench.harness import markdown_table, write_section


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def eager_probabilities(model, images_uint8):
    """The model called eagerly, as lab.evaluate.predict.probabilities did until 2026-11-25 (the 'before' rows)."""
    images = np.asarray(images_uint8)[np.newaxis] if np.ndim(images_uint8) == 3 else np.asarray(images_uint8)
    raw = np.asarray(model(images.astype(np.float32), training=False), dtype=np.float64)
    return raw / raw.sum(axis=1, keepdims=True)


def measure(model, data: bytes, class_names, repeats: int, eager: bool = False) -> dict:
    from unittest import mock

    from lab.evaluate import predict
    from lab.evaluate.predict import predict_image

    if eager:
        with mock.patch.object(predict, "probabilities", eager_probabilities):
            return measure(model, data, class_names, repeats)
    predict_image(model, data, class_names)  # warm-up: the first call traces the model
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_image(model, data, class_names)
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(timings, 50)), "p95_ms": float(np.percentile(timings, 95)), "max_ms": float(np.max(timings))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    from lab.cli.commands import DEFAULT_MODEL_DIR
    from lab.data.cifar10 import load_cifar10
    from lab.evaluate.predict import read_model_card
    from lab.store.files import load_keras_model

    model = load_keras_model(DEFAULT_MODEL_DIR / "model.keras")
    card = read_model_card(DEFAULT_MODEL_DIR)
    class_names = card["class_names"]
    test_image = Image.fromarray(load_cifar10().x_test[0])
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, size=(768, 1024, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3))
    uploads = {
        "32x32 PNG (a CIFAR-10 test image)": _encoded(test_image, "PNG"),
        "1024x768 JPEG (phone-photo size)": _encoded(photo, "JPEG", quality=90),
    }
    rows = []
    for label, data in uploads.items():
        for way, eager in (("model called eagerly (before)", True), ("`predict_on_batch`: a traced graph (now)", False)):
            rows.append({"upload": label, "way": way, "bytes": len(data), **measure(model, data, class_names, args.repeats, eager)})
    table = markdown_table(
        rows,
        [
            ("upload", "upload", ""),
            ("way", "model call", ""),
            ("bytes", "bytes", ","),
            ("p50_ms", "p50 ms", ".1f"),
            ("p95_ms", "p95 ms", ".1f"),
            ("max_ms", "max ms", ".1f"),
        ],
    )
    print(table)
    note = (
        f"`lab.evaluate.predict.predict_image` (decode + checks + resize + model + top-5) with the shipped default model "
        f"(`assets/default_model`: `{card['model']}`, {card['accuracy']:.2%} test accuracy), {args.repeats} calls each after one warm-up, one process, model loaded once beforehand. "
        "Calling a Keras model eagerly dispatches each of its layers from Python; `predict_on_batch` runs the "
        "prediction step Keras traced into a graph once (per batch size), which is what `lab.evaluate.predict` does now."
    )
    write_section(
        "Predict: one uploaded image with the default model",
        note + "\n\n" + table,
        f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.predict_latency --repeats {args.repeats}",
    )


if __name__ == "__main__":
    main()
