"""Fine labels as a second lesson for the binary task: the loss, the metric, the trainer, a whole run."""

import numpy as np
import pytest

from lab.config import CLASS_NAMES, VEHICLE_CLASSES, config_for_preset
from lab.data.tasks import prepare_task, task_label_map
from lab.jobs.outcome import train_and_record
from lab.models.registry import build_model
from lab.store.runs import Store
from lab.train import fine_labels
from lab.train import run as training
from tests.synthetic import learnable_cifar10

BINARY = task_label_map("binary")  # 1 for the four vehicle classes, 0 for the six animals


@pytest.fixture(scope="module")
def data():
    return learnable_cifar10()


def test_the_loss_adds_the_ten_class_lesson_to_the_binary_one():
    fine = np.array([1, 3])  # an automobile (vehicle) and a cat (animal)
    task_probability = np.array([0.8, 0.3])
    fine_probabilities = np.full((2, 10), 0.05)
    fine_probabilities[0, 1], fine_probabilities[1, 3] = 0.55, 0.55
    y_pred = np.concatenate([task_probability[:, None], fine_probabilities], axis=1).astype("float32")
    # By hand: -log p for the right answer, for each lesson.
    binary = -np.log([0.8, 1 - 0.3])
    ten_class = -np.log([0.55, 0.55])
    for weight in (0.0, 1.0, 0.5):
        loss = fine_labels.FineLabelLoss(BINARY, weight=weight)(fine, y_pred)
        assert float(loss) == pytest.approx(np.mean(binary + weight * ten_class), rel=1e-5)


def test_the_accuracy_judges_the_binary_answer_only():
    fine = np.array([0, 9, 5, 6])  # airplane, truck (vehicles); dog, frog (animals)
    y_pred = np.zeros((4, 11), "float32")
    y_pred[:, 0] = [0.9, 0.2, 0.1, 0.7]  # right, wrong, right, wrong
    y_pred[:, 1] = 1.0  # every fine guess says "airplane": the accuracy must not care
    metric = fine_labels.task_accuracy(BINARY)
    metric.update_state(fine, y_pred)
    assert metric.name == "accuracy" and float(metric.result()) == pytest.approx(0.5)


def test_the_trainer_shares_the_model_s_layers_and_adds_one_output():
    model = build_model(config_for_preset("seed-cnn", task="binary"), 2)
    trainer = fine_labels.with_fine_label_head(model)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    both = trainer.predict(images, verbose=0)
    assert both.shape == (3, 11)
    np.testing.assert_allclose(both[:, :1], model.predict(images, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(both[:, 1:].sum(axis=1), 1.0, rtol=1e-5)  # ten class probabilities
    # Only the 10-unit head is new: 128 features x 10 + 10 biases.
    assert trainer.count_params() - model.count_params() == 128 * 10 + 10
    assert fine_labels.FINE_HEAD_NAME not in [layer.name for layer in model.layers]


def test_each_image_keeps_its_cifar10_class_beside_the_task_label(data):
    task = prepare_task(data, config_for_preset("seed-cnn", task="binary"))
    np.testing.assert_array_equal(BINARY[task.y_train_fine], task.y_train)
    np.testing.assert_array_equal(BINARY[task.y_val_fine], task.y_val)
    assert set(np.unique(task.y_train_fine)) == set(range(len(CLASS_NAMES)))


@pytest.mark.slow
def test_a_fine_label_run_trains_on_the_ten_classes_and_saves_the_binary_model(data, tmp_path, monkeypatch):
    fed_labels = []
    real_make_dataset = training.make_dataset

    def recording_make_dataset(x, y, *args, **kwargs):
        fed_labels.append(np.asarray(y))
        return real_make_dataset(x, y, *args, **kwargs)

    monkeypatch.setattr(training, "make_dataset", recording_make_dataset)
    config = config_for_preset("seed-cnn", task="binary", epochs=2, batch_size=32, learning_rate=3e-3, fine_labels=True)
    store = Store(tmp_path)
    result = train_and_record(config, store, data=data)
    # Training and validation batches carried the ten CIFAR-10 classes, not the 0/1 task labels.
    train_labels, val_labels = fed_labels
    assert set(np.unique(train_labels)) == set(range(10))
    assert len(np.unique(val_labels)) > 2  # 40 images, split by the binary label: most classes, not just 0 and 1
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(result.history)
    assert result.metrics["accuracy"] > 0.8  # the colours tell vehicles from animals easily; chance is 0.6
    # What is stored is the binary model itself: one sigmoid unit, the report's parameter count.
    saved = store.load_model(result.run_id)
    assert saved.count_params() == 355_649 == store.get_run(result.run_id).metrics["total_params"]
    assert saved.predict(data.x_test[:2], verbose=0).shape == (2, 1)


def test_fine_labels_need_a_task_that_groups_the_classes():
    with pytest.raises(ValueError, match="only applies to the binary task"):
        config_for_preset("seed-cnn", task="cifar10", fine_labels=True)
    with pytest.raises(ValueError, match="only applies to the binary task"):
        config_for_preset("seed-cnn", task="pair:cat,dog", fine_labels=True)
    assert len(VEHICLE_CLASSES) == int(BINARY.sum())


def test_the_step_timer_times_the_plain_model():
    """The duration estimate leaves the extra 10-unit output out rather than fail on it."""
    from lab.train.estimate import measure_step_seconds

    assert measure_step_seconds(config_for_preset("seed-cnn", task="binary", batch_size=8, fine_labels=True), steps=1) > 0
