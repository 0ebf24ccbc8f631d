"""The fused batch norm and GELU compute what Keras' own layers compute, forward and backward."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from lab.models import scratch as architectures
from lab.models.fused_layers import FusedBatchNormalization, Gelu
from lab.train import devices


def _feature_maps(seed: int = 0, shape=(8, 5, 5, 6)) -> np.ndarray:
    # Shifted and stretched, so normalising them actually changes them.
    return (np.random.default_rng(seed).normal(size=shape) * 3.0 + 1.5).astype("float32")


def _outputs_and_gradients(layer, x: np.ndarray, training: bool):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        # A weighted sum, so the output numbers get different upstream gradients.
        weights = tf.cast(tf.reshape(tf.range(tf.size(y)) % 7, tf.shape(y)), "float32")
        loss = tf.reduce_sum(tf.cast(y, "float32") * weights)
    variables = [x, *layer.trainable_variables]
    return y, tape.gradient(loss, variables)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_trains_like_keras_batch_norm(policy):
    x = _feature_maps()
    with devices.precision_policy(policy):
        keras_bn = layers.BatchNormalization(momentum=0.6, epsilon=1e-5, scale=False)
        fused_bn = FusedBatchNormalization(momentum=0.6, epsilon=1e-5, scale=False)
        for layer in (keras_bn, fused_bn):
            layer.build(x.shape)
            layer.beta.assign(np.linspace(-1, 1, 6).astype("float32"))
        expected, expected_grads = _outputs_and_gradients(keras_bn, x, training=True)
        got, got_grads = _outputs_and_gradients(fused_bn, x, training=True)
    tolerance = 1e-4 if policy == "float32" else 3e-2
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(np.float32(got), np.float32(expected), atol=tolerance * 5)
    for want, have in zip(expected_grads, got_grads, strict=True):
        np.testing.assert_allclose(np.float32(have), np.float32(want), atol=tolerance * 5, rtol=tolerance)
    # The moving statistics learn the same batch mean and (divided by n) variance.
    np.testing.assert_allclose(fused_bn.moving_mean.numpy(), keras_bn.moving_mean.numpy(), rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(fused_bn.moving_variance.numpy(), keras_bn.moving_variance.numpy(), rtol=1e-3)


def test_fused_batch_norm_predicts_with_moving_statistics_like_keras():
    x = _feature_maps()
    keras_bn, fused_bn = layers.BatchNormalization(scale=False), FusedBatchNormalization(scale=False)
    for layer in (keras_bn, fused_bn):
        layer.build(x.shape)
        layer.moving_mean.assign(np.arange(6, dtype="float32"))
        layer.moving_variance.assign(np.full(6, 4.0, dtype="float32"))
    np.testing.assert_allclose(fused_bn(x, training=False), keras_bn(x, training=False), atol=1e-6)


def test_fused_batch_norm_falls_back_to_keras_for_inputs_the_kernel_does_not_take():
    x = _feature_maps(shape=(16, 6))  # a flat (batch, features) input: no image grid
    keras_bn, fused_bn = layers.BatchNormalization(), FusedBatchNormalization()
    np.testing.assert_allclose(fused_bn(x, training=True), keras_bn(x, training=True), atol=1e-5)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_gelu_trains_like_keras_gelu(policy):
    x = _feature_maps(seed=1)
    with devices.precision_policy(policy):
        expected, expected_grads = _outputs_and_gradients(layers.Activation("gelu"), x, training=True)
        got, got_grads = _outputs_and_gradients(Gelu(), x, training=True)
    tolerance = 1e-5 if policy == "float32" else 2e-2
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(np.float32(got), np.float32(expected), atol=tolerance, rtol=tolerance)
    np.testing.assert_allclose(np.float32(got_grads[0]), np.float32(expected_grads[0]), atol=tolerance, rtol=tolerance)


def test_gelu_is_keras_gelu_outside_training():
    x = _feature_maps(seed=2)
    np.testing.assert_array_equal(Gelu()(x, training=False), layers.Activation("gelu")(x))


def test_gelu_only_takes_gelu():
    with pytest.raises(ValueError, match="GELU"):
        Gelu("relu")


def test_fast_cnn_with_fused_layers_saves_and_loads(tmp_path):
    backbone = architectures.fast_cnn_backbone(32, 0.25)
    types = {type(layer).__name__ for layer in backbone.layers}
    assert {"FusedBatchNormalization", "Gelu"} <= types
    path = tmp_path / "fast.keras"
    backbone.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3)).astype("float32") / 255
    np.testing.assert_allclose(loaded(x, training=False), backbone(x, training=False), atol=1e-6)


def test_the_layer_view_counts_fused_batch_norm_layers_as_batch_norm():
    from lab.config import config_for_preset
    from lab.insight.freezing import freezing_facts, freezing_summary
    from lab.models.registry import build_model

    config = config_for_preset("fast-cnn", width=0.25)
    model = build_model(config, 10)
    assert freezing_facts(model, config)["batchnorm_layers"] == 6  # two per block, three blocks
    assert "6 BatchNorm layers" in freezing_summary(model, config)
