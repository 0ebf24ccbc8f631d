"""Learning-rate schedules and optimisers, chosen by name from a RunConfig.

A schedule is a function of the training step. "constant" keeps the rate fixed;
"cosine" glides it down to zero along half a cosine; "onecycle" warms up linearly
for the first 20% of training and then decays linearly to zero (the shape the
CIFAR-10 speed records use); "plateau" halves it whenever the validation loss
stops improving, which needs a callback rather than a schedule.
"""

from __future__ import annotations

import keras

from lab.config import RunConfig


@keras.saving.register_keras_serializable(package="lab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from peak/10 to the peak, then linear decay to zero."""

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_fraction: float = 0.2):
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = max(1, int(total_steps))
        self.warmup_fraction = warmup_fraction

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup_steps = max(1.0, self.warmup_fraction * self.total_steps)
        start = self.peak_learning_rate / 10.0
        rising = start + (self.peak_learning_rate - start) * step / warmup_steps
        falling = self.peak_learning_rate * (self.total_steps - step) / max(1.0, self.total_steps - warmup_steps)
        return keras.ops.maximum(0.0, keras.ops.where(step < warmup_steps, rising, falling))

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction}


def learning_rate_for(config: RunConfig, steps_per_epoch: int):
    """A float (constant, plateau) or a LearningRateSchedule (cosine, onecycle)."""
    total_steps = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total_steps)
    if config.lr_schedule == "onecycle":
        return OneCycle(config.learning_rate, total_steps)
    return config.learning_rate


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimiser named by the config, driven by its learning-rate schedule."""
    learning_rate = learning_rate_for(config, steps_per_epoch)
    # Weight averaging: the optimiser keeps a moving average of the weights, and fit copies it
    # into the model at the end of training; the average generalises a little better.
    averaging = {"use_ema": config.ema, "ema_momentum": 0.99}
    if config.optimizer == "sgd":
        # Nesterov momentum is the usual partner of SGD on CIFAR-10.
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None, **averaging)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay, **averaging)
    return keras.optimizers.Adam(learning_rate, **averaging)


def schedule_callbacks(config: RunConfig) -> list[keras.callbacks.Callback]:
    """Callbacks a schedule needs: reduce-on-plateau watches the validation loss each epoch."""
    if config.lr_schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6, verbose=0)]
    return []
