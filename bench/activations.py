"""How much of a fast-cnn training step its batch norm and activation cost, and what fusing saves.

airbench94 uses batch norm + GELU after every convolution. Built from Keras 3's own layers, both
are chains of small operations, each a pass over memory, and GELU needs an error function per
number: on a CPU they were near a third of each step (the profile in docs/BENCHMARKS.md).
`lab/models/fused_layers.py` runs each as one kernel while training. Each variant builds the fast-cnn
preset's network with Keras' layers or the fused ones (`lab.models.scratch.FAST_CNN_FUSED_LAYERS`)
and GELU or ReLU (`FAST_CNN_ACTIVATION`), compiles it as the preset trains it, and times
`train_on_batch` on 1,024 random images: median of 5 steps after one warm-up step (which traces
the step and, for the fused GELU, compiles it with XLA: its time is shown too), one process,
half and full width. Only speed is measured here; accuracy is in the fast recipe's tables.

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


# (layers, activation, fused?): Keras' own layers first, the baseline of the ratio column.
VARIANTS = (
    ("Keras' BatchNormalization", "GELU", "gelu", False),
    ("Keras' BatchNormalization", "ReLU", "relu", False),
    ("fused (the recipe's)", "GELU", "gelu", True),
    ("fused", "ReLU", "relu", True),
)


def step_seconds(activation, width: float, fused: bool) -> tuple[float, float, str]:
    """(median step seconds, warm-up step seconds, precision) for one variant."""
    from lab.models import scratch as architectures
    from lab.train import devices
    from lab.config import config_for_preset
    from lab.models.registry import build_model
    from lab.train.run import compile_model

    config = config_for_preset("fast-cnn", width=width)
    precision = devices.precision_for(config)
    architectures.FAST_CNN_ACTIVATION, architectures.FAST_CNN_FUSED_LAYERS = activation, fused
    try:
        with devices.precision_policy(precision):
            model = build_model(config, 10)
            compile_model(model, config, 10, steps_per_epoch=48)
    finally:
        architectures.FAST_CNN_ACTIVATION, architectures.FAST_CNN_FUSED_LAYERS = "gelu", True
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (BATCH, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, BATCH)
    started = time.perf_counter()
    model.train_on_batch(images, labels)  # warm-up: traces the step (and compiles the fused GELU)
    warm_up = time.perf_counter() - started
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - started)
    return statistics.median(times), warm_up, precision


def main() -> None:
    rows = []
    for width in WIDTHS:
        baseline = None
        for layers_name, activation_name, activation, fused in VARIANTS:
            seconds, warm_up, precision = step_seconds(activation, width, fused)
            baseline = baseline or seconds
            rows.append(
                {
                    "width": width,
                    "layers": layers_name,
                    "activation": activation_name,
                    "precision": precision,
                    "step_s": seconds,
                    "warm_up_s": warm_up,
                    "images_per_s": BATCH / seconds,
                    "ratio": seconds / baseline,
                }
            )
    columns = [
        ("width", "width", ""),
        ("layers", "batch norm + activation", ""),
        ("activation", "activation", ""),
        ("precision", "precision", ""),
        ("step_s", f"s per step of {BATCH}", ".2f"),
        ("warm_up_s", "first step s", ".1f"),
        ("images_per_s", "images/s", ",.0f"),
        ("ratio", "time vs Keras' GELU", ".2f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    body = (
        f"The fast-cnn preset's network and optimiser, one `train_on_batch` step of {BATCH} random images, median of "
        f"{REPEATS} after a warm-up, one process; half and full width. The machine's speed is bimodal (fast recipe's "
        "section), so compare rows of one table, not across days.\n\n" + table
    )
    write_section("fast-cnn step time: Keras' batch norm and GELU, or fused", body, "python -m bench.activations")


if __name__ == "__main__":
    main()
