"""Latency of classifying one uploaded image with the default model, decoding included: the naive way against ours.

Ours is what the Predict page does for one upload: `lab.evaluate.predict.predict_image`
(decode the bytes defensively, resize to 32x32, run Keras' traced prediction step through
`predict_on_batch`, top-5). The naive way takes the same decoding and resizing and calls the
model eagerly, as most examples do, which dispatches each layer from Python. Measured for a
small PNG (a CIFAR-sized test image) and a phone-sized JPEG, after one warm-up call; loading
the model is excluded (the app loads it once per server).

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


def naive_predict_image(model, data: bytes, class_names, k: int = 5) -> list[tuple[str, float]]:
    """The same upload classified with the model called eagerly: decode, resize, `model(...)`, top-k."""
    from lab.evaluate.predict import decode_image, to_model_input

    image = to_model_input(decode_image(data), model.input_shape[1])
    scores = np.asarray(model(image[np.newaxis].astype(np.float32), training=False), dtype=np.float64)[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(str(class_names[index]), float(scores[index] / scores.sum())) for index in order]


def measure(model, data: bytes, class_names, repeats: int, eager: bool = False) -> dict:
    from lab.evaluate.predict import predict_image

    classify = naive_predict_image if eager else predict_image
    classify(model, data, class_names)  # warm-up: the first call builds, and for ours traces, the prediction
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classify(model, data, class_names)
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
    from lab.store.run_folder import ModelFolder

    shipped = ModelFolder(DEFAULT_MODEL_DIR)
    model = load_keras_model(shipped.model)
    card = read_model_card(shipped)
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
        for way, eager in (("naive: model called eagerly", True), ("lab: `predict_on_batch`, a traced graph", False)):
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
        f"The shipped default model (`assets/default_model`: `{card['model']}`, {card['accuracy']:.2%} test accuracy), "
        f"{args.repeats} calls per row after one warm-up, one process, decoding and resizing included."
    )
    write_section(
        "Predict: one uploaded image with the default model",
        note + "\n\n" + table,
        f"CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.predict_latency --repeats {args.repeats}",
    )


if __name__ == "__main__":
    main()
