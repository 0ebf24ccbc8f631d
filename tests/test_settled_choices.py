"""Choices settled by a measurement (docs/DECISIONS.md) that no other test guards: each test fails if its choice is undone.

Each test names its decision and the DECISIONS.md entry that holds the question, the figure and the commit.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from lab.config import CLASS_NAMES, config_for_preset
from lab.evaluate.metrics import evaluate_model
from lab.evaluate.predict import probabilities
from lab.models.registry import loss_for
from lab.train.feature_cache import cached_features
from lab.train.schedules import learning_rate_for

FAST_PRESETS = ("fast-cnn", "fast-cnn-full", "fast-cnn-quick")


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(10, activation="softmax")])


def random_images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def predict_inputs(monkeypatch) -> list:
    """Whatever every `model.predict` call is handed, in order."""
    seen = []
    original = keras.Model.predict

    def recording_predict(self, x, *args, **kwargs):
        seen.append(x)
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", recording_predict)
    return seen


def test_evaluation_and_the_feature_cache_predict_through_pipelines_without_autotuning(predict_inputs):
    """Decision: tf.data's autotuning stays off, predictions included (DECISIONS.md, "tf.data autotuning: off in every pipeline").

    Handed a NumPy array, Keras builds its own autotuned pipeline, whose tuning thread made the
    end of every prediction wait; the project hands `model.predict` its own pipeline instead.
    """
    images = random_images(40)
    evaluate_model(tiny_model(), images, np.arange(40) % 10, CLASS_NAMES)
    cached_features(tiny_model(), config_for_preset("vgg16-frozen", weights="none"), images)
    assert len(predict_inputs) == 2
    for handed in predict_inputs:
        assert isinstance(handed, tf.data.Dataset)
        assert handed.options().autotune.enabled is False


def test_test_time_augmentation_averages_six_views(predict_inputs):
    """Decision: six TTA views, not all eighteen 1-pixel shifts (DECISIONS.md, "Test-time augmentation: six views").

    The image and its mirror, and each shifted one pixel diagonally both ways: 18 views cost three
    times the evaluation and did not add accuracy on the stored models they were tried on.
    """
    images = random_images(12)
    evaluation = evaluate_model(tiny_model(), images, np.arange(12) % 10, CLASS_NAMES, tta=True)
    assert len(predict_inputs) == 6
    assert evaluation.metrics["tta"] is True and evaluation.probabilities.shape == (12, 10)


def test_an_upload_is_classified_by_the_traced_prediction_step_never_an_eager_call(monkeypatch):
    """Decision: the Predict page runs `predict_on_batch` (DECISIONS.md, "Prediction through predict_on_batch").

    Calling the model eagerly dispatches every layer from Python on each upload; Keras' traced
    prediction step is built once per batch size and reused.
    """
    model = tiny_model()
    batches_predicted, eager_calls = [], []
    original_predict_on_batch, original_call = keras.Model.predict_on_batch, keras.Sequential.__call__

    def counting_predict_on_batch(self, x):
        batches_predicted.append(len(x))
        return original_predict_on_batch(self, x)

    def noting_eager_calls(self, *args, **kwargs):
        if tf.executing_eagerly():
            eager_calls.append(args)
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict_on_batch", counting_predict_on_batch)
    monkeypatch.setattr(keras.Sequential, "__call__", noting_eager_calls)
    answers = probabilities(model, random_images(7), batch_size=3)
    assert answers.shape == (7, 10)
    np.testing.assert_allclose(answers.sum(axis=1), 1.0)
    assert batches_predicted == [3, 3, 1]
    assert eager_calls == []


@pytest.mark.parametrize("preset", FAST_PRESETS)
def test_the_fast_recipes_decay_the_learning_rate_linearly_from_the_peak(preset):
    """Decision: the linear schedule, no warm-up (DECISIONS.md, "Learning-rate schedule: linear decay from the peak").

    A run of a few epochs cannot spare one-cycle's warm-up steps at a tenth of the rate.
    """
    config = config_for_preset(preset)
    steps_per_epoch = 10
    total_steps = config.epochs * steps_per_epoch
    rate = learning_rate_for(config, steps_per_epoch)
    rates = [float(rate(step)) for step in (0, total_steps // 2, total_steps)]
    expected_middle = config.learning_rate * (1 - (total_steps // 2) / total_steps)
    assert rates == pytest.approx([config.learning_rate, expected_middle, 0.0])


@pytest.mark.parametrize("preset", FAST_PRESETS)
def test_the_fast_recipes_train_with_label_smoothing_0_2(preset):
    """Decision: label smoothing stays at the record's 0.2 (DECISIONS.md, "Label smoothing: 0.2 kept").

    With smoothing the loss is lowest for a prediction a little short of certain (0.82 on the
    right class, 0.02 on each other one), not for a certain one.
    """
    config = config_for_preset(preset)
    assert config.label_smoothing == pytest.approx(0.2)
    loss = loss_for(10, config.label_smoothing)
    label = np.array([3])
    hedged = np.full((1, 10), 0.02, dtype=np.float32)
    hedged[0, 3] = 0.82
    certain = np.full((1, 10), 1e-6, dtype=np.float32)
    certain[0, 3] = 1 - 9e-6
    assert float(loss(label, hedged)) < float(loss(label, certain))
