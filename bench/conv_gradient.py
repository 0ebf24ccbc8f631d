"""Can a convolution's weight gradient be computed faster as plain matrix products?

At full width, a fast-cnn training step spends more time on the gradient of the convolution
filters than on the forward pass (docs/BENCHMARKS.md, "The fast recipe"): oneDNN runs it with
an older kernel than the forward pass gets. For a 3x3 convolution with "same" padding, that
gradient is a sum over every image and pixel of (input patch) x (output gradient), so it can
also be written as matrix products, which oneDNN runs with its fastest kernels:

- "nine shifts": for each of the 9 kernel positions, the padded input shifted by that offset,
  as a (pixels, inputs) matrix, times the output gradient as a (pixels, outputs) matrix;
- "one im2col": the 9 shifted inputs side by side (pixels, 9 x inputs), one product.

Each of the network's six 3x3 convolutions is timed the three ways (bfloat16, batch 1024,
median of 5 after one warm-up, each in a compiled tf.function), with its forward pass for
scale. The results agree to bfloat16's precision (checked before timing).

    .venv/bin/python -m bench.conv_gradient
"""

from __future__ import annotations

import statistics
import time

from bench.harness import markdown_table, write_section

BATCH = 1024
REPEATS = 5


def conv_shapes(width: float = 1.0) -> list[dict]:
    """(name, side, inputs, outputs) of each 3x3 convolution of fast-cnn at `width`, as the model builds it."""
    import keras

    from lab.models.scratch import fast_cnn_backbone

    model = fast_cnn_backbone(32, width)
    return [
        {"layer": layer.name, "side": layer.input.shape[1], "inputs": layer.input.shape[-1], "outputs": layer.filters}
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3)
    ]


def gradient_functions():
    import tensorflow as tf

    def shifted_inputs(x):
        side = x.shape[1]
        padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return [padded[:, dy : dy + side, dx : dx + side, :] for dy in range(3) for dx in range(3)]

    @tf.function
    def tensorflow_native(x, grad, kernel):
        return tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(kernel), out_backprop=grad, strides=[1, 1, 1, 1], padding="SAME"
        )

    @tf.function
    def nine_shifts(x, grad, kernel):
        inputs, outputs = x.shape[-1], grad.shape[-1]
        grad_matrix = tf.reshape(grad, [-1, outputs])
        products = [tf.matmul(tf.reshape(s, [-1, inputs]), grad_matrix, transpose_a=True) for s in shifted_inputs(x)]
        return tf.reshape(tf.stack(products), [3, 3, inputs, outputs])

    @tf.function
    def one_im2col(x, grad, kernel):
        inputs, outputs = x.shape[-1], grad.shape[-1]
        patches = tf.reshape(tf.concat(shifted_inputs(x), axis=-1), [-1, 9 * inputs])
        return tf.reshape(tf.matmul(patches, tf.reshape(grad, [-1, outputs]), transpose_a=True), [3, 3, inputs, outputs])

    @tf.function
    def forward(x, grad, kernel):
        return tf.nn.conv2d(x, kernel, 1, "SAME")

    return {"forward_ms": forward, "native_ms": tensorflow_native, "shifts_ms": nine_shifts, "im2col_ms": one_im2col}


def median_ms(function, *arguments) -> float:
    function(*arguments)  # warm-up: traces the graph
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        function(*arguments).numpy()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(shape: dict, functions: dict) -> dict:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    side, inputs, outputs = shape["side"], shape["inputs"], shape["outputs"]

    def random(*dims):
        return tf.cast(rng.normal(size=dims).astype("float32"), tf.bfloat16)

    x, grad, kernel = random(BATCH, side, side, inputs), random(BATCH, side, side, outputs), random(3, 3, inputs, outputs)
    reference = tf.cast(functions["native_ms"](x, grad, kernel), tf.float32)
    for name in ("shifts_ms", "im2col_ms"):
        difference = tf.reduce_max(tf.abs(tf.cast(functions[name](x, grad, kernel), tf.float32) - reference))
        assert float(difference) <= 0.02 * float(tf.reduce_max(tf.abs(reference))), f"{name} disagrees on {shape['layer']}"
    return {**shape, **{name: median_ms(function, x, grad, kernel) for name, function in functions.items()}}


def main() -> None:
    shapes = conv_shapes()  # layer sizes only: the same under every number format
    functions = gradient_functions()
    rows = [measure(shape, functions) for shape in shapes]
    for row in rows:
        row["best_ms"] = min(row["native_ms"], row["shifts_ms"], row["im2col_ms"])
    total = {"layer": "all six"} | {
        key: sum(row[key] for row in rows) for key in ("forward_ms", "native_ms", "shifts_ms", "im2col_ms", "best_ms")
    }
    columns = [
        ("layer", "convolution", ""),
        ("side", "pixels per side", ""),
        ("inputs", "in", ""),
        ("outputs", "out", ""),
        ("forward_ms", "forward ms", ".0f"),
        ("native_ms", "weight gradient: TensorFlow ms", ".0f"),
        ("shifts_ms", "nine shifts ms", ".0f"),
        ("im2col_ms", "one im2col ms", ".0f"),
        ("best_ms", "best of three ms", ".0f"),
    ]
    table = markdown_table([*rows, total], columns)
    print(table)
    saving = 1 - total["best_ms"] / total["native_ms"]
    winners = [row["layer"] for row in rows if row["best_ms"] < row["native_ms"]]
    body = (
        f"fast-cnn at full width (airbench94's channels), batch {BATCH}, bfloat16; median of {REPEATS} calls after a warm-up, "
        "one process. Every column but 'forward' computes the same filter gradient.\n\n"
        f"{table}\n\n"
        f"Matrix products are faster for {', '.join(winners) or 'no layer'}; taking the fastest way for each layer would "
        f"save {saving:.0%} of the weight gradient's time, {(total['native_ms'] - total['best_ms']) / 1000:.2f} s per step "
        "(a full-width step takes ~2.8 s, section above). The products need the nine shifted copies of the input, and "
        "copying them costs about what the faster kernel saves on the large layers."
    )
    write_section("Convolution weight gradients: TensorFlow's kernel or matrix products", body, "python -m bench.conv_gradient")


if __name__ == "__main__":
    main()
