"""The training chain on synthetic data: events, learning, cancellation, the store, the feature cache."""

import numpy as np
import pytest

from lab.config import RunConfig, config_for_preset
from lab.jobs.outcome import train_and_record
from lab.models.pretrained import WeightsUnavailableError
from lab.report.results_table import results_table
from lab.store.records import Status
from lab.store.runs import Store
from lab.train.feature_cache import cache_decision, split_at_features
from lab.train.run import run
from tests.synthetic import learnable_cifar10


@pytest.fixture(scope="module")
def data():
    return learnable_cifar10()


def test_events_arrive_in_order_and_the_model_learns(data):
    events = []
    result = run(RunConfig(epochs=2, batch_size=32, learning_rate=3e-3), events.append, data=data)
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "train_begin" and kinds[-2:] == ["train_end", "evaluation"]
    assert [event["epoch"] for event in events if event["kind"] == "epoch_end"] == [1, 2]
    assert kinds.index("batch_end") < kinds.index("epoch_end")
    # 360 training images / 32: 11 full batches; the last 8 images of a shuffle wait for the next epoch.
    assert events[0]["steps_per_epoch"] == 11
    # Every epoch reports its last step, whatever the throttle, and never counts past it.
    assert [event["step"] for event in events if event["kind"] == "batch_end" and event["epoch"] == 1][-1] == 11
    epoch = next(event for event in events if event["kind"] == "epoch_end")
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate"} <= set(epoch)
    assert result.completed
    assert result.metrics["n_test"] == 100
    assert result.metrics["accuracy"] > 0.5  # ten colours are easy; chance is 0.1
    assert result.metrics["total_params"] == 356_810


def test_a_batch_larger_than_the_training_set_still_trains(data):
    # Training drops each epoch's last, smaller batch, except when it would be the only one.
    events = []
    result = run(RunConfig(epochs=1, batch_size=512), events.append, data=data)
    assert result.completed
    assert events[0]["steps_per_epoch"] == 1  # all 360 training images in one batch
    assert len(result.history["loss"]) == 1


def test_a_cancel_request_stops_training_cleanly(data):
    events = []
    result = run(RunConfig(epochs=50, batch_size=16), events.append, data=data, should_stop=lambda: True)
    assert result.cancelled
    assert len(result.history["loss"]) <= 1
    assert events[-1] == {"kind": "train_end", "status": "cancelled", "train_seconds": pytest.approx(result.train_seconds)}


@pytest.mark.slow
def test_a_stored_run_is_complete_with_its_model(data, tmp_path):
    store = Store(tmp_path)
    result = train_and_record(RunConfig(epochs=1, task="binary"), store, data=data)
    row = store.get_run(result.run_id)
    assert row.status is Status.COMPLETED
    assert row.metrics["total_params"] == 355_649  # one sigmoid unit
    model = store.load_model(result.run_id)
    probabilities = model.predict(data.x_test[:4], verbose=0)
    assert probabilities.shape == (4, 1)
    assert store.run_folder(result.run_id).test_probabilities.exists()


def test_a_cancelled_stored_run_is_marked_cancelled(data, tmp_path):
    store = Store(tmp_path)
    result = train_and_record(RunConfig(epochs=5), store, data=data, should_stop=lambda: True)
    assert store.get_run(result.run_id).status is Status.CANCELLED


@pytest.mark.slow
def test_a_run_stopped_early_with_keep_is_evaluated_saved_and_says_so(data, tmp_path):
    store = Store(tmp_path)
    events = []

    def stop_in_the_second_epoch():  # asked after every call of the training step (8 of 12 batches, then 4)
        return any(event["kind"] == "epoch_end" for event in events)

    config = RunConfig(epochs=5, batch_size=32, lr_schedule="cosine")
    result = train_and_record(config, store, events.append, data=data, should_stop=stop_in_the_second_epoch, keep_when_stopped=lambda: True)
    assert result.completed
    assert len(result.history["loss"]) == 2  # Keras ends the interrupted epoch: it counts
    row = store.get_run(result.run_id)
    assert row.status is Status.COMPLETED
    assert row.metrics["stopped_early"] is True and row.metrics["epochs_completed"] == 2
    assert "during epoch 2 of 5" in row.message and "cosine learning-rate schedule" in row.message
    assert store.load_model(result.run_id).predict(data.x_test[:2], verbose=0).shape == (2, 10)
    (table_row,) = [table_row for table_row in results_table(store) if table_row["run_id"] == result.run_id]
    assert table_row["epochs"] == 2 and "stopped early in epoch 2 of 5" in table_row["options"]


def test_a_run_stopped_without_keep_stays_cancelled(data, tmp_path):
    store = Store(tmp_path)
    result = train_and_record(RunConfig(epochs=5), store, data=data, should_stop=lambda: True, keep_when_stopped=lambda: False)
    assert result.cancelled and store.get_run(result.run_id).status is Status.CANCELLED


def test_a_run_that_cannot_start_is_refused_before_anything_is_stored(data, tmp_path):
    store = Store(tmp_path)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        train_and_record(config_for_preset("vgg16-frozen", weights="/no/such/file.weights.h5"), store, data=data)
    with pytest.raises(ValueError, match="freeze_depth must be from 0 to 6"):
        train_and_record(RunConfig(freeze_depth=7), store, data=data)
    assert store.list_runs() == []


def test_a_run_that_fails_midway_is_marked_failed(data, tmp_path):
    store = Store(tmp_path)

    def broken_cancel_check():
        raise RuntimeError("the cancel flag could not be read")

    with pytest.raises(RuntimeError):
        train_and_record(RunConfig(epochs=1), store, data=data, should_stop=broken_cancel_check)
    (row,) = store.list_runs()
    assert row.status is Status.FAILED and "cancel flag" in row.message


@pytest.mark.parametrize(
    ("overrides", "usable"),
    [
        ({}, True),
        ({"augment": True}, False),
        ({"freeze_depth": 3}, False),
        ({"tta": True}, False),
        ({"task": "binary", "fine_labels": True}, False),
    ],
)
def test_cache_decision(overrides, usable):
    decision, reason = cache_decision(config_for_preset("vgg16-frozen", weights="none", **overrides))
    assert decision is usable and reason


def test_scratch_models_never_use_the_cache():
    assert cache_decision(RunConfig())[0] is False


@pytest.mark.slow
def test_the_cached_head_gives_the_same_predictions_as_the_whole_model(data, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    config = config_for_preset("mobilenetv2-frozen", weights="none", epochs=1, batch_size=32)
    first_events, second_events = [], []
    first = run(config, first_events.append, data=data)
    second = run(config, second_events.append, data=data)
    # One event per split (train, validation, test): computed the first time, read back the second.
    first_cache_events = [event for event in first_events if event["kind"] == "feature_cache"]
    second_cache_events = [event for event in second_events if event["kind"] == "feature_cache"]
    assert [event["from_cache"] for event in first_cache_events] == [False, False, False]
    assert [event["from_cache"] for event in second_cache_events] == [True, True, True]
    assert first.metrics["feature_cache"] is True
    # The head trained on cached features lives inside the full model: both paths agree.
    extractor, head = split_at_features(first.model)
    via_head = head.predict(extractor.predict(data.x_test, verbose=0).astype(np.float16).astype(np.float32), verbose=0)
    via_model = first.model.predict(data.x_test, verbose=0)
    np.testing.assert_allclose(via_head, via_model, atol=2e-3)
    assert second.metrics["accuracy"] == pytest.approx(first.metrics["accuracy"])


@pytest.mark.slow
def test_the_best_validation_epoch_is_kept(data):
    result = run(RunConfig(epochs=3, batch_size=32, learning_rate=3e-3), data=data)
    val_accuracy = result.history["val_accuracy"]
    assert result.metrics["best_epoch"] == 1 + val_accuracy.index(max(val_accuracy))
    assert run(RunConfig(epochs=1, keep_best=False), data=data).metrics["best_epoch"] is None


def test_keras_early_stopping_restores_the_first_epoch_with_the_best_validation_accuracy():
    """keep_best is Keras' EarlyStopping: it never stops the run, and ends on the best epoch's weights (the first, on a tie)."""
    import keras

    from lab.train.callbacks import keep_best_epoch

    class Snapshots(keras.callbacks.Callback):  # each epoch's weights and validation accuracy, as training saw them
        def __init__(self):
            super().__init__()
            self.weights, self.val_accuracy = [], []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append(self.model.get_weights())
            self.val_accuracy.append(logs["val_accuracy"])

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x[:, 0] + 0.8 * rng.normal(size=96) > 0).astype(int) + (x[:, 1] > 0.5).astype(int)  # noisy: accuracy wobbles
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    snapshots, keep_best = Snapshots(), keep_best_epoch(epochs=8)
    history = model.fit(
        x[:64], y[:64], validation_data=(x[64:], y[64:]), epochs=8, batch_size=8, verbose=0, callbacks=[snapshots, keep_best]
    )

    assert len(history.history["loss"]) == 8  # never stopped early
    best = snapshots.val_accuracy.index(max(snapshots.val_accuracy))  # the first epoch with the highest accuracy
    assert best < 7 and snapshots.val_accuracy[-1] == max(snapshots.val_accuracy)  # a tie with the last: the earlier one wins
    assert keep_best.best_epoch == best
    for restored, kept in zip(model.get_weights(), snapshots.weights[best], strict=True):
        np.testing.assert_array_equal(restored, kept)
    assert not np.array_equal(model.get_weights()[0], snapshots.weights[-1][0])  # not simply the last epoch's weights


@pytest.mark.slow
def test_the_fast_recipe_fits_its_whitening_layer_and_learns(data):
    from lab.models.scratch import PatchWhitening

    config = config_for_preset("fast-cnn", epochs=3, batch_size=32, precision="float32")
    result = run(config, data=data)
    whitening = next(layer for layer in result.model.get_layer("backbone").layers if isinstance(layer, PatchWhitening))
    kernel = np.asarray(whitening.kernel.value).reshape(12, 24)
    # Fitted to the data, the kernel is no longer the pass-through it starts as ...
    assert not np.allclose(kernel, np.concatenate([np.eye(12), -np.eye(12)], axis=1))
    # ... and its first half is the negative of its second: each direction with both signs.
    np.testing.assert_allclose(kernel[:, :12], -kernel[:, 12:])
    assert result.metrics["tta"] is True
    assert result.metrics["accuracy"] > 0.5  # ten colours are easy; chance is 0.1


def test_weight_averaging_pulls_the_network_onto_the_running_average():
    import keras

    from lab.train.schedules import WeightAveraging

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    averaging = WeightAveraging(total_steps=10, every=1, final_decay=0.5)
    averaging.set_model(model)
    averaging.on_train_begin()  # the average starts at the weights: 0
    kernel = model.layers[0].kernel
    kernel.assign(np.full((2, 1), 4.0))  # as if one optimiser step moved the weights to 4
    averaging.on_train_batch_end(0)  # step 1 of 10: decay = 0.5 * (1/10)**3 = 0.0005
    expected = 0.0005 * 0.0 + 0.9995 * 4.0
    np.testing.assert_allclose(np.asarray(kernel.value), expected, rtol=1e-6)  # the network now sits on the average
    kernel.assign(np.full((2, 1), 10.0))
    averaging.on_train_end()  # decay 1: back to the average, whatever the last step did
    np.testing.assert_allclose(np.asarray(kernel.value), expected, rtol=1e-6)


@pytest.mark.slow
def test_a_run_trained_in_bfloat16_is_saved_computing_in_float32(data, tmp_path):
    import keras

    store = Store(tmp_path / "lab")
    config = config_for_preset("fast-cnn", epochs=1, batch_size=64, precision="mixed_bfloat16", tta=False)
    result = train_and_record(config, store, data=data)
    assert result.model.get_layer("backbone").get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the run put the global policy back
    saved = store.load_model(result.run_id)
    assert saved.get_layer("backbone").get_layer("block1_conv1").compute_dtype == "float32"
    images = data.x_test[:16]
    np.testing.assert_allclose(saved.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=0.05)


@pytest.mark.slow
def test_a_saved_model_holds_no_optimiser_state(data, tmp_path):
    import zipfile

    import h5py

    store = Store(tmp_path / "lab")
    result = train_and_record(RunConfig(epochs=1, optimizer="adam", precision="float32"), store, data=data)
    archive = zipfile.ZipFile(store.run_dir(result.run_id) / "model.keras")
    with archive, archive.open("model.weights.h5") as weights, h5py.File(weights) as file:
        assert list(file) and "optimizer" not in file  # Adam's moments would double the file
    assert store.load_model(result.run_id).predict(data.x_test[:4], verbose=0).shape == (4, 10)


def test_small_batches_run_several_steps_per_call_unless_every_step_must_be_seen():
    from lab.train.compile import STEPS_PER_EXECUTION, steps_per_execution_for

    assert steps_per_execution_for(RunConfig(batch_size=64)) == STEPS_PER_EXECUTION
    assert steps_per_execution_for(RunConfig(batch_size=1024)) == 1  # a step takes long enough already
    assert steps_per_execution_for(RunConfig(batch_size=64, ema=True)) == 1  # weight averaging counts every step
