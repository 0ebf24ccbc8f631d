"""How much of a fast-cnn training step its activation function costs: GELU, tanh-GELU, ReLU.

airbench94 uses GELU, whose exact form needs an error function per number: on a CPU that is
a sizeable share of each step (the profile in docs/BENCHMARKS.md puts it near a fifth at full
width). Each variant builds the fast-cnn preset's network with the activation swapped
(`lab.architectures.FAST_CNN_ACTIVATION`), compiles it as the preset trains it, and times
`train_on_batch` on 1,024 random images: median of 5 steps after one warm-up step, one
process, half and full width. Only speed is measured here; what ReLU does to accuracy is in
the fast recipe's trials table.

    .venv/bin/python -m bench.activations
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench.harness import markdown_table, write_section

BATCH = 1024
REPEATS = 5
WIDTHS = (0.5, 1.0)


def tanh_gelu(x):
    """GELU's tanh approximation: no error function, a tanh instead."""
    import keras

    return keras.activations.gelu(x, approximate=True)


ACTIVATIONS = {"GELU (the recipe's)": "gelu", "tanh-GELU": tanh_gelu, "ReLU": "relu"}


def step_seconds(activation, width: float) -> tuple[float, str]:
    from lab import architectures, devices
    from lab.config import config_for_preset
    from lab.models import build_model
    from lab.training import compile_model

    config = config_for_preset("fast-cnn", width=width)
    precision = devices.precision_for(config)
    architectures.FAST_CNN_ACTIVATION = activation
    try:
        with devices.precision_policy(precision):
            model = build_model(config, 10)
            compile_model(model, config, 10, steps_per_epoch=48)
    finally:
        architectures.FAST_CNN_ACTIVATION = "gelu"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (BATCH, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, BATCH)
    model.train_on_batch(images, labels)  # warm-up: traces the step
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - started)
    return statistics.median(times), precision


def main() -> None:
    rows = []
    for width in WIDTHS:
        gelu_seconds = None
        for name, activation in ACTIVATIONS.items():
            seconds, precision = step_seconds(activation, width)
            gelu_seconds = gelu_seconds or seconds
            rows.append(
                {
                    "width": width,
                    "activation": name,
                    "precision": precision,
                    "step_s": seconds,
                    "images_per_s": BATCH / seconds,
                    "ratio": seconds / gelu_seconds,
                }
            )
    columns = [
        ("width", "width", ""),
        ("activation", "activation", ""),
        ("precision", "precision", ""),
        ("step_s", f"s per step of {BATCH}", ".2f"),
        ("images_per_s", "images/s", ",.0f"),
        ("ratio", "time vs GELU", ".2f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    body = (
        f"The fast-cnn preset's network and optimiser, one `train_on_batch` step of {BATCH} random images, median of "
        f"{REPEATS} after a warm-up, one process; half and full width. The machine's speed is bimodal (fast recipe's "
        "section), so compare rows of one table, not across days.\n\n" + table
    )
    write_section("fast-cnn step time by activation function", body, "python -m bench.activations")


if __name__ == "__main__":
    main()
