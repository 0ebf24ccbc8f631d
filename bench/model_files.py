"""How big a run's saved model is: the compiled model as trained, or the copy the lab saves.

A float32 run used to save the model it trained, which is compiled: Keras 3's `.keras` file then
also holds the optimiser's state (Adam: two numbers per trainable weight), and has no option to
leave it out. The lab now saves `lab.train.run.inference_copy`: the same layers and weights,
uncompiled. Each network is compiled as its preset trains it and takes one step on random
images, so the optimiser's variables exist, as at the end of a run.

    .venv/bin/python -m bench.model_files
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.harness import markdown_table, write_section

PRESETS = ("seed-cnn", "fast-cnn", "vgg16-finetune")


def sizes(preset: str) -> dict:
    from lab.train import devices
    from lab.config import config_for_preset
    from lab.models.registry import build_model
    from lab.train.run import compile_model, inference_copy

    config = config_for_preset(preset, weights="none", precision="float32")  # random weights: the same file size
    with devices.precision_policy("float32"):
        model = build_model(config, 10)
        compile_model(model, config, 10, steps_per_epoch=10)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.integers(0, 256, (2, 32, 32, 3)).astype("float32"), np.zeros(2))
    with tempfile.TemporaryDirectory() as folder:
        compiled, saved = Path(folder) / "compiled.keras", Path(folder) / "saved.keras"
        model.save(compiled)
        inference_copy(model, config, 10).save(saved)
        return {
            "preset": preset,
            "optimizer": config.optimizer,
            "compiled_mb": compiled.stat().st_size / 1e6,
            "saved_mb": saved.stat().st_size / 1e6,
        }


def main() -> None:
    rows = [sizes(preset) for preset in PRESETS]
    for row in rows:
        row["ratio"] = row["saved_mb"] / row["compiled_mb"]
    columns = [
        ("preset", "preset", ""),
        ("optimizer", "optimizer", ""),
        ("compiled_mb", "compiled model (before) MB", ".1f"),
        ("saved_mb", "inference copy (now) MB", ".1f"),
        ("ratio", "now / before", ".2f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    note = (
        "The `model.keras` a float32 run stores (every run on a CPU without bfloat16; the ImageNet backbones everywhere; "
        "a mixed-precision run already saved a float32 copy). Weights `none` (random: the same file size as ImageNet's), "
        "each preset's own optimiser, one training step first so its state exists."
    )
    write_section("Saved model files: compiled model vs inference copy", note + "\n\n" + table, ".venv/bin/python -m bench.model_files")


if __name__ == "__main__":
    main()
