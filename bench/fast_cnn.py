"""The fast from-scratch recipe on the full training set: fast-cnn, its full-width and its quick variants.

Each preset trains once with `lab.train.run.run`, in its own process, on the full training set
(2% held out for validation), and is tested with its test-time augmentation on. With
`--precision-check`, the quick variant is also trained in float32, to show what bfloat16
(chosen automatically on a CPU that has it, see lab/train/devices.py) buys. With `--optimizer-check`,
each preset is also trained as it was before Muon (SGD for every weight, 10 and 4 epochs), so
the table shows what the optimiser buys, side by side.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.fast_cnn
"""

from __future__ import annotations

import argparse
import os
import time

from bench.harness import markdown_table, run_contender, write_section

# The targets on a 2-core CPU: (test accuracy, training seconds). fast-cnn-full is the
# recipe for a GPU (its target there, 94% in 15 s, needs one).
TARGETS = {"fast-cnn": (0.90, 600), "fast-cnn-quick": (0.80, 120)}
# The recipes before Muon (lab/train/muon.py): SGD for every weight needed more epochs. fast-cnn-full
# came after Muon, so it has no SGD recipe to compare with.
SGD_EPOCHS = {"fast-cnn": 10, "fast-cnn-quick": 4}
ALL_PRESETS = "fast-cnn-quick,fast-cnn,fast-cnn-full"


def train_preset(preset: str, precision: str = "auto", epochs: int | None = None, optimizer: str | None = None) -> dict:
    from lab.config import config_for_preset
    from lab.jobs.outcome import train_and_record
    from lab.store.runs import Store
    from lab.train import devices

    overrides = {"precision": precision} | ({"epochs": epochs} if epochs else {}) | ({"optimizer": optimizer} if optimizer else {})
    epoch_seconds = []

    def on_event(event):
        if event.get("kind") == "epoch_end":
            epoch_seconds.append(event["seconds"])

    # Stored in LAB_HOME, so the fast-cnn run can become the default model:
    # `python -m lab default-model --from-run RUN_ID` (the run id is printed below the table).
    started = time.perf_counter()
    result = train_and_record(config_for_preset(preset, **overrides), Store(), on_event)
    total_seconds = time.perf_counter() - started
    return {
        "preset": preset,
        "run_id": result.run_id,
        "precision": devices.precision_for(result.config),  # an explicit precision is returned as it is
        "optimizer": result.config.optimizer,
        "epochs": result.config.epochs,
        "train_seconds": result.train_seconds,
        # The fastest and the slowest epoch: a shared CPU runs some epochs slower than others, and the spread shows it.
        "epoch_seconds": f"{min(epoch_seconds):.0f}-{max(epoch_seconds):.0f}" if epoch_seconds else "-",
        "other_seconds": total_seconds - result.train_seconds,
        "accuracy": result.metrics["accuracy"],
        "params": result.metrics["total_params"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", default=ALL_PRESETS)
    parser.add_argument("--precision-check", action="store_true", help="also train the quick variant in float32")
    parser.add_argument("--optimizer-check", action="store_true", help="also train each preset with SGD, as before Muon")
    args = parser.parse_args()
    if not os.environ.get("CIFAR10_DIR"):
        raise SystemExit("set CIFAR10_DIR to the CIFAR-10 folder, e.g. ../shared/data/cifar-10-batches-py")
    rows = []
    for preset in args.presets.split(","):
        rows.append(run_contender("bench.fast_cnn", "train_preset", preset=preset))
        if args.optimizer_check and preset in SGD_EPOCHS:
            rows.append(run_contender("bench.fast_cnn", "train_preset", preset=preset, optimizer="sgd", epochs=SGD_EPOCHS[preset]))
    if args.precision_check:
        rows.append(run_contender("bench.fast_cnn", "train_preset", preset="fast-cnn-quick", precision="float32"))
    for row in rows:
        target_accuracy, target_seconds = TARGETS.get(row["preset"], (None, None))
        row["target"] = f"≥ {target_accuracy:.0%} in ≤ {target_seconds} s" if target_accuracy else "-"
        row["met"] = "yes" if target_accuracy and row["accuracy"] >= target_accuracy and row["train_seconds"] <= target_seconds else "no"
    columns = [
        ("preset", "preset", ""),
        ("precision", "precision", ""),
        ("optimizer", "optimizer", ""),
        ("epochs", "epochs", ""),
        ("train_seconds", "train s", ".0f"),
        ("epoch_seconds", "one epoch s", ""),
        ("other_seconds", "other s", ".0f"),
        ("accuracy", "test accuracy (TTA)", ".4f"),
        ("target", "target", ""),
        ("met", "met", ""),
        ("peak_rss_mb", "peak RSS MB", ".0f"),
        ("params", "params", ","),
    ]
    table = markdown_table(rows, columns)
    print(table)
    for row in rows:
        print(f"{row['preset']} ({row['precision']}, {row['optimizer']}): run {row['run_id']}")
    note = (
        "Full training set (49,000 train / 1,000 validation), seed 0, one run per row in its own process; 'one epoch s' is the "
        "fastest and the slowest epoch, 'other s' the rest of the run (split, whitening fit, six-view TTA evaluation, saving)."
    )
    flags = [flag for flag, on in (("--precision-check", args.precision_check), ("--optimizer-check", args.optimizer_check)) if on]
    if args.presets != ALL_PRESETS:
        flags.append(f"--presets {args.presets}")
    command = " ".join(["CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.fast_cnn", *flags])
    # A CPU with bfloat16 instructions trains these several times faster than one without: one table for each kind.
    write_section("The fast from-scratch recipe (fast-cnn, fast-cnn-full, fast-cnn-quick)", note + "\n\n" + table, command, per_cpu=True)


if __name__ == "__main__":
    main()
