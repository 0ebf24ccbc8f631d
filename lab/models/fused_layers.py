"""fast-cnn's batch norm and GELU, rewritten so that each runs as one kernel while it trains.

Between two convolutions, fast-cnn normalises (batch norm) and bends (GELU) every number. In
Keras 3 on TensorFlow both are built from many small operations, each a full pass over memory:

- `BatchNormalization` copies its bfloat16 input to float32, computes the mean and the
  variance, then subtracts, divides and shifts in separate steps; its backward pass retraces
  all of them.
- `gelu` is `0.5 * x * erfc(-x / sqrt(2))`: five operations forward, about twice as many
  backward, each reading and writing every number again.

On a CPU those passes are a large share of each training step. Done as one kernel each (below),
the same arithmetic makes a step clearly faster (docs/DECISIONS.md, "Batch norm and GELU fused
while training"); the results are the same up to rounding (tests/test_fused_layers.py).

- `FusedBatchNormalization` calls TensorFlow's fused batch-norm kernel when training
  (`FusedBatchNormV3`: oneDNN on a CPU, cuDNN on a GPU), which computes the statistics and
  normalises in two passes, in the input's own precision (statistics in float32). Outside
  training it is Keras' own layer, using the moving averages.
- `Gelu` is the exact GELU. When training, its forward and its backward pass are each compiled
  by XLA into one loop over the numbers (`tf.function(jit_compile=True)`); outside training,
  it is Keras' `gelu`, so predictions need no compilation.
"""

from __future__ import annotations

import functools
import math

import keras
from keras import layers

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@keras.saving.register_keras_serializable(package="lab")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization, computed by TensorFlow's fused kernel while training.

    Same weights, same moving averages, same results up to rounding; only the training-time
    arithmetic is done in one kernel instead of a dozen. Falls back to Keras' own code for
    anything the fused kernel does not cover (a mask, a channel axis other than the last, a
    non-image input, another backend).
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or not self._fused_kernel_fits(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels], "float32")
        offset = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels], "float32")
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(inputs, self.compute_dtype),
            scale=scale,
            offset=offset,
            mean=tf.zeros([0]),  # empty: training mode computes the batch's own statistics
            variance=tf.zeros([0]),
            epsilon=self.epsilon,
            is_training=True,
            data_format="NHWC",
        )
        # The kernel returns the variance divided by n - 1 (for an unbiased estimate); Keras keeps
        # the variance divided by n in its moving average, so convert to keep the two layers equal.
        numbers_per_channel = tf.cast(tf.size(inputs) // channels, "float32")
        variance = variance * (numbers_per_channel - 1.0) / tf.maximum(numbers_per_channel, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)

    def _fused_kernel_fits(self, inputs, mask) -> bool:
        return keras.backend.backend() == "tensorflow" and mask is None and len(inputs.shape) == 4 and self.axis in (-1, 3)


def _gelu_float32(x):
    import tensorflow as tf

    return 0.5 * x * (1.0 + tf.math.erf(x * SQRT_HALF))


def _gelu_forward(x):
    import tensorflow as tf

    return tf.cast(_gelu_float32(tf.cast(x, "float32")), x.dtype)


def _gelu_backward(x, upstream):
    import tensorflow as tf

    z = tf.cast(x, "float32")
    # d/dz [z * Phi(z)] = Phi(z) + z * phi(z): the normal distribution's CDF plus z times its density.
    slope = 0.5 * (1.0 + tf.math.erf(z * SQRT_HALF)) + z * tf.exp(-0.5 * z * z) * INV_SQRT_2PI
    return tf.cast(tf.cast(upstream, "float32") * slope, x.dtype)


@functools.cache
def _compiled_gelu_passes():
    """The forward and backward passes, each compiled by XLA; built on first use, so importing this module does not import TensorFlow."""
    import tensorflow as tf

    return tf.function(_gelu_forward, jit_compile=True), tf.function(_gelu_backward, jit_compile=True)


def xla_gelu(x):
    """Exact GELU whose forward and backward passes are each one XLA-compiled kernel."""
    import tensorflow as tf

    forward, backward = _compiled_gelu_passes()

    @tf.custom_gradient
    def gelu(inputs):
        return forward(inputs), lambda upstream: backward(inputs, upstream)

    return gelu(x)


@keras.saving.register_keras_serializable(package="lab")
class Gelu(layers.Activation):
    """`Activation("gelu")` whose training passes are compiled by XLA (`xla_gelu`)."""

    def __init__(self, activation="gelu", **kwargs):
        if activation != "gelu":
            raise ValueError(f"Gelu is the GELU activation only; got activation={activation!r}.")
        super().__init__("gelu", **kwargs)

    def call(self, inputs, training=None):
        if training and keras.backend.backend() == "tensorflow":
            return xla_gelu(inputs)
        return super().call(inputs)
