"""tf.data's autotuning on (TensorFlow's default) or off (the project's pipelines, lab.data.pipeline.steady).

An autotuned tf.data iterator has a background thread that re-tunes the pipeline after 10 ms,
20 ms, 40 ms, ... of running (doubling each time). When Keras drops such an iterator, at
the end of every epoch, validation pass and prediction, the next step can wait for that thread's
current sleep to run out. This script times, in one process, alternating the two ways round by
round so that both see the machine in the same state:

- `model.fit`: seed-cnn, 4 epochs of 8,192 random uint8 images with 1,024 for validation, batch 64,
  on `lab.data.pipeline.make_dataset` with autotuning on and off; and the time the first call of each
  epoch takes (a normal call runs 8 steps in ~0.25 s on a 2-core CPU);
- `model.predict` of 20,000 images: given the NumPy array (Keras builds its own autotuned pipeline)
  or `lab.data.pipeline.in_order` (not autotuned).

Random pixels: the arithmetic, and so the time, is the same as on CIFAR-10's.

    .venv/bin/python -m bench.tf_data_autotune --rounds 4
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import numpy as np

from bench.harness import markdown_table, write_section

EPOCHS, TRAIN_IMAGES, VAL_IMAGES, PREDICT_IMAGES, BATCH = 4, 8192, 1024, 20000, 64


def _pipeline(autotuned: bool, arrays, **options):
    """`make_dataset(*arrays, BATCH, **options)`, or the same pipeline as TensorFlow runs it by default (autotuned)."""
    from lab.data import pipeline

    if not autotuned:
        return pipeline.make_dataset(*arrays, BATCH, **options)
    with mock.patch.object(pipeline, "steady", lambda dataset: dataset):  # make_dataset as it was before steady
        return pipeline.make_dataset(*arrays, BATCH, **options)


def _seed_cnn():
    from lab.train import devices
    from lab.config import config_for_preset
    from lab.models.registry import build_model
    from lab.train.run import compile_model, steps_per_execution_for

    config = config_for_preset("seed-cnn")
    with devices.precision_policy(devices.precision_for(config)):
        model = build_model(config, 10)
        compile_model(model, config, 10, TRAIN_IMAGES // BATCH, steps_per_execution=steps_per_execution_for(config))
    return model, devices.precision_for(config)


def _first_call_timer():
    """A Keras callback that records, in `.first_calls`, the seconds from each epoch's start to the end of its first call."""
    import keras  # imported here, like TensorFlow everywhere in bench/, so --help stays instant

    class FirstCallTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.first_calls: list[float] = []
            self.epoch_started, self.waiting = 0.0, False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started, self.waiting = time.perf_counter(), True

        def on_train_batch_end(self, batch, logs=None):
            if self.waiting:  # the first call (steps_per_execution steps) of this epoch has just ended
                self.first_calls.append(time.perf_counter() - self.epoch_started)
                self.waiting = False

    return FirstCallTimer()


def measure(rounds: int) -> list[dict]:
    from lab.data.pipeline import in_order

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(TRAIN_IMAGES + VAL_IMAGES, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=len(x)).astype(np.int32)
    x_predict = rng.integers(0, 256, size=(PREDICT_IMAGES, 32, 32, 3), dtype=np.uint8)
    train, val = (x[:TRAIN_IMAGES], y[:TRAIN_IMAGES]), (x[TRAIN_IMAGES:], y[TRAIN_IMAGES:])
    ways = ("on", "off")
    fits = {way: {"seconds": [], "first_calls": []} for way in ways}
    predicts = {way: [] for way in ways}
    models = {}
    for way in ways:
        model, precision = _seed_cnn()
        autotuned = way == "on"
        data = _pipeline(autotuned, train, shuffle=True, drop_remainder=True), _pipeline(autotuned, val, shuffle=False)
        model.fit(data[0], validation_data=data[1], epochs=1, verbose=0, shuffle=False)  # traces the steps
        model.predict(x_predict[:BATCH], verbose=0)
        models[way] = (model, data)
    for _ in range(rounds):
        for way in ways:
            model, (train_data, val_data) = models[way]
            timer = _first_call_timer()
            started = time.perf_counter()
            model.fit(train_data, validation_data=val_data, epochs=EPOCHS, verbose=0, shuffle=False, callbacks=[timer])
            fits[way]["seconds"].append(time.perf_counter() - started)
            fits[way]["first_calls"].extend(timer.first_calls)
            started = time.perf_counter()
            model.predict(x_predict if way == "on" else in_order(x_predict, 256), batch_size=256, verbose=0)
            predicts[way].append(time.perf_counter() - started)
    rows = []
    for way, label in (("on", "autotuned (TensorFlow's default)"), ("off", "not autotuned (lab.data.pipeline.steady)")):
        rows.append(
            {
                "way": label,
                "fit_median": statistics.median(fits[way]["seconds"]),
                "fit_max": max(fits[way]["seconds"]),
                "first_median": statistics.median(fits[way]["first_calls"]),
                "first_max": max(fits[way]["first_calls"]),
                "predict_median": statistics.median(predicts[way]),
                "predict_max": max(predicts[way]),
                "precision": precision,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    rows = measure(args.rounds)
    columns = [
        ("way", "tf.data pipeline", ""),
        ("fit_median", "fit s (median)", ".2f"),
        ("fit_max", "fit s (worst)", ".2f"),
        ("first_median", "epoch's first call s (median)", ".2f"),
        ("first_max", "epoch's first call s (worst)", ".2f"),
        ("predict_median", "predict 20,000 s (median)", ".2f"),
        ("predict_max", "predict 20,000 s (worst)", ".2f"),
    ]
    table = markdown_table(rows, columns)
    print(table)
    note = (
        f"seed-cnn ({rows[0]['precision']}), `model.fit` for {EPOCHS} epochs of {TRAIN_IMAGES:,} random uint8 images "
        f"(batch {BATCH}, 8 steps per call) with {VAL_IMAGES:,} for validation, then `model.predict` of {PREDICT_IMAGES:,} "
        f"images in batches of 256; {args.rounds} rounds, the two ways alternating, one process; first calls: "
        f"{EPOCHS} per fit, {EPOCHS * args.rounds} per way (a call without a wait takes ~0.25 s here). Autotuned "
        "prediction is Keras' own pipeline around the NumPy array; not autotuned is `lab.data.pipeline.in_order`."
    )
    write_section(
        "tf.data autotuning: on or off", note + "\n\n" + table, f"python -m bench.tf_data_autotune --rounds {args.rounds}", per_cpu=True
    )


if __name__ == "__main__":
    main()
