"""Muon: momentum SGD whose steps for convolution filters are "orthogonalised".

Plain SGD moves a layer's weights along the gradient. For a convolution, the gradient (seen
as a matrix: one column per output channel) is usually dominated by a few directions, so a
step mostly strengthens what the layer already does and barely touches the rest. Muon
(Keller Jordan, 2024; the optimiser of the CIFAR-10 speed record `airbench94_muon`) replaces the matrix by the nearest one whose singular values are all about 1:
every direction the gradient points to gets a step of the same size. A few Newton-Schulz
iterations (matrix products only) compute that replacement cheaply.

Only 4-D kernels (convolutions) are treated this way; biases, batch norm shifts and the
classifier keep plain SGD with Nesterov momentum, with the optimiser's learning rate. Each
filter tensor is also rescaled to a fixed norm before its step, so its size cannot drift and
weight decay is not needed for it.

Ours, not `keras.optimizers.Muon`: Keras' orthogonalises only 2-D weights and gives every
other one, convolution filters included, AdamW steps; the speed record's recipe needs Muon
steps on the 4-D filters, SGD with Nesterov momentum for the rest, and the filter rescaling.
"""

from __future__ import annotations

import keras
from keras import ops

# The quintic Newton-Schulz iteration's coefficients from the speed record: chosen to push small
# singular values up as fast as possible; the result has singular values between ~0.5 and ~1.5,
# which trains as well as an exact orthogonalisation.
NEWTON_SCHULZ_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_STEPS = 3


def orthogonalize(matrix, steps: int = NEWTON_SCHULZ_STEPS):
    """The matrix with the same singular vectors as `matrix` and singular values near 1."""
    a, b, c = NEWTON_SCHULZ_COEFFICIENTS
    x = matrix / (ops.sqrt(ops.sum(ops.square(matrix))) + 1e-7)  # every singular value <= 1
    wide = matrix.shape[0] <= matrix.shape[1]
    if not wide:
        x = ops.transpose(x)  # iterate on the smaller Gram matrix x @ x.T
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
    return x if wide else ops.transpose(x)


@keras.saving.register_keras_serializable(package="lab")
class Muon(keras.optimizers.SGD):
    """SGD + Nesterov for most weights; orthogonalised momentum steps for convolution filters.

    `filter_learning_rate` is the filters' step when the schedule is at `peak_learning_rate`;
    it follows the same schedule as `learning_rate` (scaled by the current rate / the peak).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum: float = 0.9,
        filter_learning_rate: float = 0.24,
        filter_momentum: float = 0.6,
        peak_learning_rate: float | None = None,
        nesterov: bool = True,
        name: str = "muon",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, name=name, **kwargs)
        self.filter_learning_rate = filter_learning_rate
        self.filter_momentum = filter_momentum
        self.peak_learning_rate = float(peak_learning_rate if peak_learning_rate is not None else learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        if len(variable.shape) != 4:
            return super().update_step(gradient, variable, learning_rate)
        schedule = ops.cast(learning_rate, variable.dtype) / self.peak_learning_rate
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        self.assign(velocity, velocity * self.filter_momentum + gradient)
        step = gradient + self.filter_momentum * velocity  # Nesterov: look one step ahead
        outputs = variable.shape[-1]
        # Keep every filter tensor at norm sqrt(outputs): on average, each output channel has norm 1.
        self.assign(variable, variable * (outputs**0.5 / (ops.sqrt(ops.sum(ops.square(variable))) + 1e-12)))
        # A Keras kernel is (height, width, inputs, outputs): one column per output channel.
        direction = orthogonalize(ops.reshape(step, (-1, outputs)))
        self.assign_sub(variable, self.filter_learning_rate * schedule * ops.reshape(direction, variable.shape))

    def get_config(self):
        return {
            **super().get_config(),
            "filter_learning_rate": self.filter_learning_rate,
            "filter_momentum": self.filter_momentum,
            "peak_learning_rate": self.peak_learning_rate,
        }
