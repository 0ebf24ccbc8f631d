"""Progressive resizing for the fast recipe: the first epochs on shrunk images, the rest at 32x32.

An epoch on 24x24 images costs about 0.6 of a 32x32 one. This trains the fast-cnn preset's network
(built with a free input size: it ends in global max pooling) with the project's own pieces
(compile_model, make_dataset, schedule_callbacks, evaluate_model with TTA) and prints each epoch's
time and the test accuracy. The idea was measured and left out (docs/BENCHMARKS.md, the fast
recipe's notes: +0.1 point at full width in the same ~10 minutes), so it is a script, not a setting.

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.progressive_resizing \
        --width 1.0 --epochs 5 --low-epochs 2 --low-size 24
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--low-epochs", type=int, default=0, help="epochs at the low resolution, first")
    parser.add_argument("--low-size", type=int, default=24)
    args = parser.parse_args()

    import keras
    import tensorflow as tf
    from keras import layers

    from lab.models import scratch as architectures

    from lab.train import devices
    from lab.config import config_for_preset
    from lab.data.cifar10 import load_cifar10, make_dataset, prepare_task
    from lab.evaluate.metrics import evaluate_model
    from lab.models.registry import _head
    from lab.train.schedules import schedule_callbacks
    from lab.train.run import compile_model

    config = config_for_preset("fast-cnn", width=args.width, epochs=args.epochs)
    task = prepare_task(load_cifar10(os.environ.get("CIFAR10_DIR")), config)
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = math.ceil(len(task.x_train) / config.batch_size)
    with devices.precision_policy(devices.precision_for(config)):
        backbone = architectures.fast_cnn_backbone(None, args.width)  # any image size
        images = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
        model = keras.Model(images, _head(backbone(layers.Rescaling(1 / 255, name="rescale")(images)), config, 10))
        architectures.adapt_whitening(model, task.x_train)
        compile_model(model, config, 10, steps_per_epoch)

    def as_float(x, y):
        return tf.cast(x, tf.float32), y

    def shrunk(x, y):
        return tf.image.resize(tf.cast(x, tf.float32), (args.low_size, args.low_size), method="area"), y

    # One stream of batches: low_epochs passes at the low resolution, then 32x32 passes for ever.
    passes = make_dataset(task.x_train, task.y_train, config.batch_size, shuffle=True, augment=True, seed=config.seed)
    stream = passes.map(as_float).repeat()
    if args.low_epochs:
        stream = passes.map(shrunk).repeat(args.low_epochs).concatenate(stream)
    validation = make_dataset(task.x_val, task.y_val, config.batch_size, shuffle=False, augment=False).map(as_float)

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch + 1}: {time.perf_counter() - self.started:.1f} s, val_accuracy {logs['val_accuracy']:.4f}", flush=True)

    started = time.perf_counter()
    callbacks = [EpochTimes(), *schedule_callbacks(config, steps_per_epoch)]
    model.fit(stream, epochs=config.epochs, steps_per_epoch=steps_per_epoch, validation_data=validation, verbose=0, callbacks=callbacks)
    train_seconds = time.perf_counter() - started
    accuracy = evaluate_model(model, task.x_test, task.y_test, task.class_names, tta=True).metrics["accuracy"]
    print(json.dumps({**vars(args), "train_seconds": round(train_seconds, 1), "accuracy": accuracy}))


if __name__ == "__main__":
    main()
