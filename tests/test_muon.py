"""Muon: the orthogonalised step for convolution filters, plain SGD for everything else."""

import keras
import numpy as np
import pytest

from lab.config import RunConfig, config_for_preset
from lab.train.muon import Muon, orthogonalize
from lab.train.run import run
from lab.train.schedules import make_optimizer
from tests.synthetic import learnable_cifar10


@pytest.mark.parametrize("shape", [(288, 32), (32, 288), (64, 64)])
def test_orthogonalize_evens_out_the_singular_values(shape):
    rng = np.random.default_rng(0)
    rank = min(shape)
    u, _ = np.linalg.qr(rng.normal(size=(shape[0], rank)))
    v, _ = np.linalg.qr(rng.normal(size=(shape[1], rank)))
    before = np.geomspace(1, 30, rank)  # a few directions dominate, as in a real gradient
    matrix = ((u * before) @ v.T).astype("float32")
    after = np.linalg.svd(keras.ops.convert_to_numpy(orthogonalize(keras.ops.convert_to_tensor(matrix))), compute_uv=False)
    # Three quintic steps do not reach exactly 1; the record's coefficients aim for roughly 0.5-1.5.
    assert after.min() > 0.3 and after.max() < 1.5
    assert after.max() / after.min() < 3  # from 30


def test_orthogonalize_keeps_the_singular_vectors():
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.normal(size=(40, 8)))
    v, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    matrix = (u * np.linspace(1, 3, 8)) @ v.T  # singular values 1..3, spread evenly
    result = keras.ops.convert_to_numpy(orthogonalize(keras.ops.convert_to_tensor(matrix.astype("float32")), steps=10))
    np.testing.assert_allclose(result, u @ v.T, atol=0.35)  # same directions, all stretched to ~1
    assert np.abs(u.T @ result @ v - np.diag(np.diag(u.T @ result @ v))).max() < 1e-4  # nothing mixed in


def _one_step(optimizer, variable, gradient):
    optimizer.build([variable])
    optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
    return keras.ops.convert_to_numpy(variable.value)


def test_a_filter_step_is_normalised_and_orthogonalised():
    rng = np.random.default_rng(2)
    start = rng.normal(size=(3, 3, 4, 8)).astype("float32") * 5
    gradient = rng.normal(size=start.shape).astype("float32")
    after = _one_step(Muon(learning_rate=0.1, filter_learning_rate=0.2, filter_momentum=0.6), keras.Variable(start), gradient)
    # By hand: rescale the kernel to norm sqrt(8), then subtract 0.2 x the orthogonalised Nesterov step (1 + 0.6) g.
    normalised = start * np.sqrt(8) / np.linalg.norm(start)
    step = keras.ops.convert_to_numpy(orthogonalize(keras.ops.convert_to_tensor((1.6 * gradient).reshape(-1, 8))))
    np.testing.assert_allclose(after, normalised - 0.2 * step.reshape(start.shape), rtol=1e-4, atol=1e-5)


def test_other_weights_get_exactly_sgd_with_nesterov():
    rng = np.random.default_rng(3)
    start, gradient = rng.normal(size=(16, 10)).astype("float32"), rng.normal(size=(16, 10)).astype("float32")
    muon = _one_step(Muon(learning_rate=0.1, momentum=0.9), keras.Variable(start), gradient)
    sgd = _one_step(keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True), keras.Variable(start), gradient)
    np.testing.assert_allclose(muon, sgd, rtol=1e-6)


def test_the_filter_step_follows_the_learning_rate_schedule():
    """At the schedule's peak the filters move by filter_learning_rate; at a tenth of it, by a tenth."""
    rng = np.random.default_rng(4)
    start = rng.normal(size=(3, 3, 2, 4)).astype("float32")
    gradient = rng.normal(size=start.shape).astype("float32")

    def moved(learning_rate):
        optimizer = Muon(learning_rate=learning_rate, peak_learning_rate=1.0, filter_learning_rate=0.3)
        normalised = start * 2 / np.linalg.norm(start)  # norm sqrt(4 outputs)
        return np.linalg.norm(_one_step(optimizer, keras.Variable(start), gradient) - normalised)

    assert moved(0.1) == pytest.approx(moved(1.0) / 10, rel=1e-4)


def test_config_survives_a_round_trip():
    optimizer = Muon(learning_rate=0.5, filter_learning_rate=0.12, filter_momentum=0.5, peak_learning_rate=0.5)
    again = Muon.from_config(optimizer.get_config())
    assert (again.filter_learning_rate, again.filter_momentum, again.peak_learning_rate) == (0.12, 0.5, 0.5)


def test_make_optimizer_builds_muon_for_the_config():
    optimizer = make_optimizer(RunConfig(optimizer="muon", learning_rate=0.5, weight_decay=0.01, lr_schedule="onecycle", epochs=2), 10)
    assert isinstance(optimizer, Muon)
    assert optimizer.peak_learning_rate == 0.5 and optimizer.weight_decay == 0.01


@pytest.mark.slow
def test_a_fast_cnn_run_with_muon_learns():
    data = learnable_cifar10()
    config = config_for_preset("fast-cnn", epochs=3, batch_size=64, width=0.25, tta=False, precision="float32")
    assert config.optimizer == "muon"  # the recipe's own optimiser
    result = run(config, data=data)
    assert result.completed
    assert result.metrics["accuracy"] > 0.5  # ten colours; chance is 0.1
