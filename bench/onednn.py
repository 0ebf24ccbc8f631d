"""TensorFlow's oneDNN kernels on a CPU without AVX-512: off (TensorFlow's default there) or on (the project's).

TensorFlow for x86 ships two sets of CPU kernels: Eigen's, and Intel's oneDNN library, which
picks a kernel for the instructions the CPU has (AVX2, AVX-512, AMX) and fuses convolution,
batch norm and pooling steps. TensorFlow switches oneDNN on by default only on CPUs with
AVX-512 VNNI, AVX512-BF16 or AMX; on the AVX2 CPUs of most laptops it stays off unless
`TF_ENABLE_ONEDNN_OPTS=1`, which `lab/__init__.py` now sets (unless the user chose). This
script runs each workload twice, in a fresh process with the variable at 0 and at 1, on the
same machine, one after the other:

- a training step of fast-cnn (half and three-quarter width, batch 1,024) and of seed-cnn (batch 64),
  median of 5 after warm-up (`lab.train.estimate.measure_step_seconds`, which the Train page's time estimate uses);
- VGG16's forward pass on a batch of 256 (the frozen-feature cache's work; random weights);
- one upload classified by the shipped default model (`lab.evaluate.predict.predict_image`, p50 of 100).

On a CPU where TensorFlow already turns oneDNN on, both columns measure the same thing.

    .venv/bin/python -m bench.onednn
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.harness import markdown_table, run_contender, write_section

# (label, what to time, keyword arguments)
WORKLOADS = (
    ("fast-cnn, half width: training step, batch 1,024", "step", {"preset": "fast-cnn", "width": 0.5}),
    ("fast-cnn, three-quarter width (the preset): training step, batch 1,024", "step", {"preset": "fast-cnn", "width": 0.75}),
    ("seed-cnn: training step, batch 64", "step", {"preset": "seed-cnn"}),
    ("vgg16-frozen: forward pass, batch 256 (feature cache)", "step", {"preset": "vgg16-frozen", "weights": "none"}),
    ("Predict: one 32x32 PNG, default model (p50 of 100)", "predict", {}),
)


def step_seconds(preset: str, **overrides) -> dict:
    """Median seconds of one step of `preset` (forward only where the run would use cached features)."""
    from lab.train import devices
    from lab.config import config_for_preset
    from lab.train.estimate import measure_step_seconds

    config = config_for_preset(preset, **overrides)
    return {"seconds": measure_step_seconds(config, steps=5), "precision": devices.precision_for(config)}


def predict_seconds(repeats: int = 100) -> dict:
    """p50 seconds of `predict_image` on one 32x32 PNG with the shipped default model (bench.predict_latency's loop)."""
    from PIL import Image

    from bench.predict_latency import _encoded, measure
    from lab.cli.commands import DEFAULT_MODEL_DIR
    from lab.evaluate.predict import read_model_card
    from lab.store.files import load_keras_model

    model = load_keras_model(DEFAULT_MODEL_DIR / "model.keras")
    class_names = read_model_card(DEFAULT_MODEL_DIR)["class_names"]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    return {"seconds": measure(model, _encoded(image, "PNG"), class_names, repeats)["p50_ms"] / 1000, "precision": "float32"}


def measure(kind: str, onednn: str, **kwargs) -> dict:
    function = "step_seconds" if kind == "step" else "predict_seconds"
    return run_contender("bench.onednn", function, extra_env={"TF_ENABLE_ONEDNN_OPTS": onednn}, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    rows = []
    for label, kind, kwargs in WORKLOADS:
        off, on = measure(kind, "0", **kwargs), measure(kind, "1", **kwargs)
        unit = 1000 if kind == "predict" else 1
        rows.append(
            {
                "workload": label,
                "precision": on["precision"],
                "off": off["seconds"] * unit,
                "on": on["seconds"] * unit,
                "speed-up": off["seconds"] / on["seconds"],
                "unit": "ms" if kind == "predict" else "s",
                "peak_off": off["peak_rss_mb"],
                "peak_on": on["peak_rss_mb"],
            }
        )
        print(rows[-1], flush=True)
    columns = [
        ("workload", "workload", ""),
        ("precision", "precision", ""),
        ("unit", "unit", ""),
        ("off", "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", ".3f"),
        ("on", "oneDNN on (=1, the project's default)", ".3f"),
        ("speed-up", "speed-up", ".2f"),
        ("peak_off", "peak RSS MB off", ".0f"),
        ("peak_on", "peak RSS MB on", ".0f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    body = (
        "Each cell is its own process, the two settings back to back; training steps are the "
        "median of 5 after a warm-up on random images (weights `none` for VGG16), the prediction the p50 of 100 "
        "calls after one. Peak RSS is the whole process's, loading included.\n\n" + table
    )
    write_section("TensorFlow's oneDNN kernels on a CPU without AVX-512", body, "python -m bench.onednn")


if __name__ == "__main__":
    main()
