"""Learning-rate schedules and optimisers, chosen by name from a RunConfig.

A schedule is a function of the training step. "constant" keeps the rate fixed;
"cosine" glides it down to zero along half a cosine; "onecycle" warms up linearly
for the first 20% of training and then decays linearly to zero (the shape the
CIFAR-10 speed records used with SGD); "linear" starts at the peak and decays
linearly to zero (the record's Muon version: no warm-up, so a short run spends
no steps at a small rate); "plateau" halves it whenever the validation loss
stops improving, which needs a callback rather than a schedule.
"""

from __future__ import annotations

import keras

from lab.config import RunConfig
from lab.train.muon import Muon


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


# Schedules planned over the whole run: the rate comes down to its end only at the last planned step.
DECAYING_SCHEDULES = ("cosine", "onecycle", "linear")


def learning_rate_for(config: RunConfig, steps_per_epoch: int):
    """A float (constant, plateau) or a LearningRateSchedule (cosine, onecycle, linear)."""
    total_steps = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total_steps)
    if config.lr_schedule == "onecycle":
        return OneCycle(config.learning_rate, total_steps)
    if config.lr_schedule == "linear":
        # A polynomial of power 1 is a straight line: from the peak at step 0 to 0 at the last step.
        return keras.optimizers.schedules.PolynomialDecay(config.learning_rate, decay_steps=total_steps, end_learning_rate=0.0, power=1.0)
    return config.learning_rate


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimiser named by the config, driven by its learning-rate schedule."""
    learning_rate = learning_rate_for(config, steps_per_epoch)
    if config.optimizer == "sgd":
        # Nesterov momentum is the usual partner of SGD on CIFAR-10.
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)
    if config.optimizer == "muon":
        # Convolution filters take orthogonalised steps of their own size (lab/train/muon.py); the other
        # weights get SGD as above. Both follow the schedule.
        return Muon(learning_rate, momentum=0.9, peak_learning_rate=config.learning_rate, weight_decay=config.weight_decay or None)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(learning_rate)


class WeightAveraging(keras.callbacks.Callback):
    """Weight averaging as the CIFAR-10 speed record does it ("lookahead").

    Every `every` steps the callback updates a running average of all the weights,
    `average = d * average + (1 - d) * weights`, and then puts the network back onto the
    average. `d` grows from 0 to 0.95**5 along (step / total_steps)**3: early on the network
    roams freely; near the end, when the learning rate is small, each update moves it only a
    little towards where it just went, which smooths out the noise of the last steps. Batch
    norm's running statistics are averaged too, so they always match the averaged weights.
    At the end of training the network keeps the average.

    Ours, not Keras' optimizer EMA (`use_ema=True`): that one averages only the trainable weights,
    with a fixed momentum, so batch norm's statistics would no longer match the averaged weights.
    """

    def __init__(self, total_steps: int, every: int = 5, final_decay: float = 0.95**5):
        super().__init__()
        self.total_steps = max(1, int(total_steps))
        self.every = every
        self.final_decay = final_decay
        self.step = 0
        self.averages: list = []

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        # Every floating-point weight: kernels, biases and batch norm's moving statistics.
        self.weights = [weight for weight in self.model.weights if "float" in str(weight.dtype)]
        self.averages = [tf.Variable(weight.value, trainable=False) for weight in self.weights]
        self.step = 0
        # One compiled graph updates every weight in place: no copies through NumPy, no Python loop per step.
        self._pull = tf.function(self._pull_towards_average)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self._pull_with(self.final_decay * min(1.0, self.step / self.total_steps) ** 3)

    def on_train_end(self, logs=None):
        if self.averages:
            self._pull_with(1.0)  # decay 1: the network becomes the average

    def _pull_with(self, decay: float) -> None:
        # A tensor, not a Python float: tf.function would trace a new graph for every new float.
        self._pull(keras.ops.convert_to_tensor(decay, "float32"))

    def _pull_towards_average(self, decay) -> None:
        for average, weight in zip(self.averages, self.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * weight.value)
            weight.assign(average)


def schedule_callbacks(config: RunConfig, steps_per_epoch: int = 1) -> list[keras.callbacks.Callback]:
    """Callbacks a run needs besides the optimiser: reduce-on-plateau and weight averaging."""
    callbacks: list[keras.callbacks.Callback] = []
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6, verbose=0))
    if config.ema:
        callbacks.append(WeightAveraging(total_steps=config.epochs * steps_per_epoch))
    return callbacks
