"""Compiling a model for training: its optimiser, loss, metrics, and how many steps Keras runs per call."""

from __future__ import annotations

import keras

from lab.config import RunConfig
from lab.models.registry import loss_for, metrics_for
from lab.train import fine_labels
from lab.train.schedules import make_optimizer

# Small batches are quick steps, and then the fixed cost of every step (Python calling into
# TensorFlow, callbacks, metric bookkeeping) is a real share of the time, which running several
# steps per call spreads out. Large batches take a second or more per step, so they gain
# nothing, and callbacks would hear about batches (and cancel requests) 8 times less often.
STEPS_PER_EXECUTION = 8
SMALL_BATCH = 256


def steps_per_execution_for(config: RunConfig) -> int:
    """How many training steps Keras runs per call: 8 for small batches, 1 when every step must be seen.

    Weight averaging counts steps in a per-batch callback, so it needs to be called after every one.
    """
    return STEPS_PER_EXECUTION if config.batch_size <= SMALL_BATCH and not config.ema else 1


def compile_model(
    model: keras.Model,
    config: RunConfig,
    num_classes: int,
    steps_per_epoch: int,
    *,
    jit_compile: bool = False,
    steps_per_execution: int = 1,
    with_fine_labels: bool = False,
) -> None:
    """Attach the optimiser, loss and accuracy metric a config asks for.

    `with_fine_labels`: `model` is the trainer `fine_labels.with_fine_label_head` built, and it
    will be fed the 10 CIFAR-10 classes. Every other caller compiles the plain model for its task.
    """
    if with_fine_labels:
        loss, metrics = fine_labels.loss_and_metrics(config)
    else:
        loss, metrics = loss_for(num_classes, config.label_smoothing), metrics_for(num_classes)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
