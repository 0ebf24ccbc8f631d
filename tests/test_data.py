"""Tests for lab/data/cifar10.py on small synthetic datasets written in the official CIFAR-10 layout.

Every synthetic image carries its own identity in its top-left pixel (the image's index split over
two bytes, then its CIFAR label), so a test can tell exactly which images ended up in which split.
"""

import pickle
import tarfile
import urllib.error

import numpy as np
import pytest

from lab.config import CLASS_NAMES, VEHICLE_CLASSES, RunConfig
from lab.data import cifar10 as data
from lab.data import pipeline, tasks
from lab.data.cifar10 import DataUnavailableError

N_TRAIN, N_TEST = 200, 60  # 20 training and 6 test images per class: not CIFAR's 50,000 / 10,000


def synthetic_arrays(n_train=N_TRAIN, n_test=N_TEST, seed=0):
    """Random uint8 images with labels cycling 0-9, and each image's id and label in pixel (0, 0)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for n, first_id in ((n_train, 0), (n_test, 10_000)):
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        labels = np.arange(n) % 10
        ids = first_id + np.arange(n)
        images[:, 0, 0] = np.stack([ids // 256, ids % 256, labels], axis=1)
        arrays += [images, labels]
    return tuple(arrays)


def image_ids(images):
    return images[:, 0, 0, 0].astype(np.int64) * 256 + images[:, 0, 0, 1]


def original_labels(images):
    return images[:, 0, 0, 2].astype(np.int64)


def synthetic_cifar10(n_train=N_TRAIN, n_test=N_TEST):
    return data.Cifar10(*synthetic_arrays(n_train, n_test), source="synthetic")


@pytest.fixture
def arrays():
    return synthetic_arrays()


@pytest.fixture
def cifar_folder(tmp_path, arrays):
    return data.write_cifar10_folder(tmp_path / "cifar-10-batches-py", *arrays)


def assert_same_data(loaded, arrays):
    x_train, y_train, x_test, y_test = arrays
    np.testing.assert_array_equal(loaded.x_train, x_train)
    np.testing.assert_array_equal(loaded.y_train, y_train)
    np.testing.assert_array_equal(loaded.x_test, x_test)
    np.testing.assert_array_equal(loaded.y_test, y_test)
    assert loaded.x_train.dtype == np.uint8 and loaded.x_train.shape == (N_TRAIN, 32, 32, 3)
    assert loaded.y_train.dtype == np.int64 and loaded.y_test.dtype == np.int64
    assert loaded.x_train.flags.c_contiguous and loaded.x_test.flags.c_contiguous


# ---------------------------------------------------------------- loading


def test_folder_round_trip_is_exact_and_read_only(cifar_folder, arrays):
    loaded = data.load_cifar10(cifar_folder)
    assert_same_data(loaded, arrays)
    assert len(loaded.x_test) == N_TEST  # not 10,000
    assert loaded.source == f"folder {cifar_folder}"
    assert (cifar_folder / "batches.meta").is_file()
    with open(cifar_folder / "batches.meta", "rb") as file:
        assert pickle.load(file, encoding="bytes")[b"label_names"][0] == b"airplane"
    with pytest.raises(ValueError, match="read-only"):
        loaded.x_train[0, 0, 0, 0] = 1


def test_a_folder_containing_the_batches_folder_is_accepted(cifar_folder, arrays):
    assert data.find_data_source(cifar_folder.parent) == ("folder", cifar_folder)
    assert_same_data(data.load_cifar10(str(cifar_folder.parent)), arrays)


def test_official_archive_loads_identically(tmp_path, cifar_folder, arrays):
    archive_folder = tmp_path / "downloads"
    archive_folder.mkdir()
    archive = archive_folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_folder, arcname="cifar-10-batches-py")  # members: cifar-10-batches-py/data_batch_1, ...
    for configured in (archive, archive_folder):  # the file itself, or the folder that holds it
        assert data.find_data_source(configured) == ("archive", archive)
        loaded = data.load_cifar10(configured)
        assert_same_data(loaded, arrays)
        assert loaded.source == f"archive {archive}"
    assert sorted(p.name for p in archive_folder.iterdir()) == ["cifar-10-python.tar.gz"]  # nothing extracted


def test_cifar10_dir_environment_variable_is_honoured(monkeypatch, cifar_folder, arrays, tmp_path):
    monkeypatch.setenv("CIFAR10_DIR", str(cifar_folder))
    assert data.find_data_source() == ("folder", cifar_folder)
    assert_same_data(data.load_cifar10(), arrays)
    # An explicit data_dir (the CLI's --data-dir) wins over the environment.
    with pytest.raises(DataUnavailableError, match="elsewhere"):
        data.load_cifar10(tmp_path / "elsewhere")


def test_missing_folder_says_what_to_download_and_where(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataUnavailableError) as caught:
        data.load_cifar10(missing)
    message = str(caught.value)
    for words in (str(missing), "does not exist", data.DOWNLOAD_URL, "CIFAR10_DIR", "--data-dir"):
        assert words in message
    status = data.describe_data_source(missing)
    assert status["kind"] == "missing" and status["found"] is False and data.DOWNLOAD_URL in status["message"]


def test_incomplete_folder_names_the_missing_files(cifar_folder):
    (cifar_folder / "data_batch_3").unlink()
    (cifar_folder / "test_batch").unlink()
    for configured in (cifar_folder, cifar_folder.parent):  # the batches folder, or the folder around it
        with pytest.raises(DataUnavailableError, match=f"{cifar_folder} lacks data_batch_3, test_batch"):
            data.load_cifar10(configured)


def test_truncated_archive_raises_data_unavailable(tmp_path, cifar_folder):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_folder, arcname="cifar-10-batches-py")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # an interrupted download
    with pytest.raises(DataUnavailableError, match="(not a readable .tar.gz|damaged|lacks)"):
        data.load_cifar10(archive)


def test_corrupt_batch_raises_data_unavailable(cifar_folder):
    (cifar_folder / "data_batch_2").write_bytes(b"\x80\x04 this is not a pickle")
    with pytest.raises(DataUnavailableError, match="data_batch_2 is damaged"):
        data.load_cifar10(cifar_folder)


def test_a_pickle_naming_other_python_objects_is_refused(cifar_folder):
    # A pickle can name any function for the loader to call; the batch reader only allows NumPy arrays.
    with open(cifar_folder / "test_batch", "wb") as file:
        pickle.dump({b"data": len, b"labels": []}, file, protocol=2)
    with pytest.raises(DataUnavailableError, match="unexpected object .*len"):
        data.load_cifar10(cifar_folder)


def test_keras_download_failure_gives_one_clear_message(monkeypatch):
    import keras

    def offline():
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    assert data.find_data_source() == ("keras", None)
    with pytest.raises(DataUnavailableError) as caught:
        data.load_cifar10()
    message = str(caught.value)
    for words in ("download failed", "URLError", data.DOWNLOAD_URL, "CIFAR10_DIR", "--data-dir"):
        assert words in message


def test_keras_download_is_converted_to_the_lab_layout(monkeypatch, arrays):
    import keras

    x_train, y_train, x_test, y_test = arrays

    def keras_style():  # Keras hands back transposed views and (N, 1) uint8 labels
        channel_first = [np.ascontiguousarray(x.transpose(0, 3, 1, 2)) for x in (x_train, x_test)]
        views = [x.transpose(0, 2, 3, 1) for x in channel_first]
        return (views[0], y_train.astype(np.uint8)[:, None]), (views[1], y_test.astype(np.uint8)[:, None])

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", keras_style)
    loaded = data.load_cifar10()
    assert_same_data(loaded, arrays)
    assert loaded.source == "keras download"


def test_describe_data_source_for_each_kind(cifar_folder, monkeypatch, tmp_path):
    status = data.describe_data_source(cifar_folder)
    assert status == {
        "kind": "folder",
        "path": str(cifar_folder),
        "found": True,
        "message": f"CIFAR-10 is read from the folder {cifar_folder}.",
    }
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    status = data.describe_data_source()
    assert status["kind"] == "keras" and status["path"] is None and status["found"] is False
    assert data.DOWNLOAD_URL in status["message"] and "CIFAR10_DIR" in status["message"]
    cached = tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py-target_archive"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert data.describe_data_source()["found"] is True


# ---------------------------------------------------------------- tasks, subsets and splits


@pytest.mark.parametrize("task", ["cifar10", "binary", "pair:cat,dog", "pair:truck,airplane"])
def test_task_labels_follow_each_images_class(task):
    task_data = tasks.prepare_task(synthetic_cifar10(), RunConfig(task=task, batch_size=8))
    label_map = tasks.task_label_map(task)
    for x, y in ((task_data.x_train, task_data.y_train), (task_data.x_val, task_data.y_val), (task_data.x_test, task_data.y_test)):
        np.testing.assert_array_equal(y, label_map[original_labels(x)])
        assert x.dtype == np.uint8 and y.dtype == np.int64
    assert task_data.num_classes == len(task_data.class_names) == (10 if task == "cifar10" else 2)


def test_binary_task_marks_vehicles_1_and_animals_0():
    label_map = tasks.task_label_map("binary")
    for cifar_label, name in enumerate(CLASS_NAMES):
        assert label_map[cifar_label] == (1 if name in VEHICLE_CLASSES else 0), name
    assert tasks.prepare_task(synthetic_cifar10(), RunConfig(task="binary")).class_names == ("animal", "vehicle")


def test_pair_task_keeps_exactly_two_classes_relabelled_in_order():
    task_data = tasks.prepare_task(synthetic_cifar10(), RunConfig(task="pair:dog,cat", batch_size=8))
    assert task_data.class_names == ("dog", "cat")
    kept = np.concatenate([original_labels(x) for x in (task_data.x_train, task_data.x_val)])
    assert sorted(set(kept)) == [3, 5] and len(kept) == 40  # every cat and dog training image, nothing else
    np.testing.assert_array_equal(task_data.y_test, (original_labels(task_data.x_test) == 3).astype(np.int64))  # cat -> 1
    assert len(task_data.y_test) == 12  # the whole test split of those two classes


def test_subset_is_stratified_deterministic_and_seed_dependent():
    cifar = synthetic_cifar10(n_train=1000)
    first = tasks.prepare_task(cifar, RunConfig(subset=205, seed=1))
    again = tasks.prepare_task(cifar, RunConfig(subset=205, seed=1))
    other = tasks.prepare_task(cifar, RunConfig(subset=205, seed=2))
    chosen = np.concatenate([first.y_train, first.y_val])
    assert len(chosen) == 205
    counts = np.bincount(chosen, minlength=10)
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.x_val, again.x_val)
    assert set(image_ids(first.x_train)) != set(image_ids(other.x_train))
    assert len(first.y_test) == N_TEST  # the test split is never subsetted


def test_subset_larger_than_the_task_uses_every_image():
    task_data = tasks.prepare_task(synthetic_cifar10(), RunConfig(task="pair:cat,dog", subset=500, batch_size=8))
    assert len(task_data.y_train) + len(task_data.y_val) == 40


def test_validation_split_is_stratified_and_disjoint_from_training():
    task_data = tasks.prepare_task(synthetic_cifar10(n_train=1000), RunConfig(val_fraction=0.2, seed=3))
    assert np.bincount(task_data.y_val, minlength=10).tolist() == [20] * 10
    assert np.bincount(task_data.y_train, minlength=10).tolist() == [80] * 10
    train_ids, val_ids = set(image_ids(task_data.x_train)), set(image_ids(task_data.x_val))
    assert not train_ids & val_ids and train_ids | val_ids == set(range(1000))


def test_stratified_split_hands_rounding_leftovers_to_distinct_classes():
    labels = np.repeat(np.arange(3), [10, 10, 5])
    first, rest = tasks.stratified_split(labels, 11, np.random.default_rng(0))
    assert len(first) == 11 and sorted(np.concatenate([first, rest]).tolist()) == list(range(25))
    assert np.bincount(labels[first]).tolist() in ([5, 4, 2], [4, 5, 2], [4, 4, 3])  # shares 4.4, 4.4, 2.2


def test_fingerprint_is_stable_and_changes_with_the_data():
    cifar = synthetic_cifar10()
    config = RunConfig(task="binary", batch_size=8)
    fingerprint = tasks.prepare_task(cifar, config).fingerprint
    assert fingerprint == tasks.prepare_task(cifar, config).fingerprint
    assert fingerprint["source"] == "synthetic"
    assert (fingerprint["n_train"], fingerprint["n_val"], fingerprint["n_test"]) == (180, 20, 60)
    assert fingerprint["train_class_counts"] == [108, 72] and len(fingerprint["sha256"]) == 16
    assert tasks.prepare_task(cifar, RunConfig(task="binary", batch_size=8, seed=1)).fingerprint["sha256"] != fingerprint["sha256"]
    x_train = cifar.x_train.copy()
    x_train[7, 5, 5, 1] ^= 1  # one bit of one pixel
    changed = data.Cifar10(x_train, cifar.y_train, cifar.x_test, cifar.y_test, "synthetic")
    assert tasks.prepare_task(changed, config).fingerprint["sha256"] != fingerprint["sha256"]


# ---------------------------------------------------------------- tf.data and augmentation


def test_make_dataset_without_shuffle_yields_the_arrays_in_order(arrays):
    x, y = arrays[0], arrays[1]
    dataset = pipeline.make_dataset(x, y, 64, shuffle=False, augment=False)
    batches = [(images.numpy(), labels.numpy()) for images, labels in dataset]
    assert [len(labels) for _, labels in batches] == [64, 64, 64, 8]
    assert batches[0][0].dtype == np.uint8 and batches[0][1].dtype == np.int32
    np.testing.assert_array_equal(np.concatenate([images for images, _ in batches]), x)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in batches]), y)
    images_spec, labels_spec = dataset.element_spec
    assert tuple(images_spec.shape) == (None, 32, 32, 3) and tuple(labels_spec.shape) == (None,)


def test_make_dataset_shuffles_every_epoch_and_keeps_images_with_labels(arrays):
    x, y = arrays[0], arrays[1]
    dataset = pipeline.make_dataset(x, y, 32, shuffle=True, augment=False, seed=5, drop_remainder=True)
    orders = []
    for _epoch in range(2):
        batches = [(images.numpy(), labels.numpy()) for images, labels in dataset]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        assert len(images) == 192  # drop_remainder: 6 full batches of 32, the last 8 images left out
        np.testing.assert_array_equal(labels, original_labels(images))
        orders.append(image_ids(images))
    assert len(set(orders[0])) == 192 and not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], np.sort(orders[0]))


def test_cached_features_travel_the_same_pipeline_unchanged():
    features = np.random.default_rng(0).standard_normal((70, 512)).astype(np.float16)  # a frozen backbone's outputs
    labels = np.arange(70) % 10
    batches = [
        (rows.numpy(), batch_labels.numpy()) for rows, batch_labels in pipeline.make_dataset(features, labels, 32, shuffle=True, seed=1)
    ]
    assert [len(batch_labels) for _, batch_labels in batches] == [32, 32, 6]  # the last, smaller batch is kept
    rows = np.concatenate([rows for rows, _ in batches])
    assert rows.dtype == np.float16
    order = [int(np.flatnonzero((features == row).all(axis=1))[0]) for row in rows]  # which feature row each one is
    assert sorted(order) == list(range(70)) and order != sorted(order)
    np.testing.assert_array_equal(np.concatenate([batch_labels for _, batch_labels in batches]), labels[order])


def test_in_order_batches_one_array_for_prediction():
    features = np.random.default_rng(0).standard_normal((70, 4, 4, 8)).astype(np.float32)
    batches = [batch.numpy() for batch in pipeline.in_order(features, 32)]
    assert [len(batch) for batch in batches] == [32, 32, 6]
    np.testing.assert_array_equal(np.concatenate(batches), features)


def test_pipelines_run_without_tf_data_autotuning(arrays):
    # Autotuning's background thread made each epoch, validation pass and prediction wait for
    # its next wake-up when Keras dropped the iterator (lab.data.pipeline.steady).
    x, y = arrays[0], arrays[1]
    for dataset in (
        pipeline.make_dataset(x, y, 32, shuffle=True, augment=True),
        pipeline.make_dataset(x, y, 32, shuffle=False),
        pipeline.in_order(x),
    ):
        assert dataset.options().autotune.enabled is False


def test_augmentation_refuses_rows_that_are_not_images():
    features = np.zeros((10, 512), np.float16)
    with pytest.raises(ValueError, match="uint8 images"):
        pipeline.make_dataset(features, np.zeros(10), 5, shuffle=False, augment=True)


def all_flips_and_shifts(image):
    """Every image the augmentation may produce from `image`: 2 flips x 9 x 9 shifts, reflect padding."""
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode="reflect")
    crops = [padded[dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
    return np.stack(crops + [crop[:, ::-1] for crop in crops])


def test_augmentation_is_a_flip_and_shift_of_each_image(arrays):
    x = arrays[0][:32]
    augmented = pipeline.augment_images(x, seed=11).numpy()
    assert augmented.dtype == np.uint8 and augmented.shape == x.shape
    draws = []  # which of the 162 candidates each result is: random images match exactly one
    for original, result in zip(x, augmented, strict=True):
        (match,) = np.flatnonzero((all_flips_and_shifts(original) == result).all(axis=(1, 2, 3)))
        draws.append(divmod(match, 81))  # (flipped, shift number 0-80)
    flips, shifts = zip(*draws, strict=True)
    assert set(flips) == {0, 1} and len(set(shifts)) > 10  # both flip outcomes, many different shifts
    assert (augmented != x).any(axis=(1, 2, 3)).sum() >= 24  # unchanged only when the draw is "no flip, no shift"
    np.testing.assert_array_equal(pipeline.augment_images(x, seed=11).numpy(), augmented)
    assert not np.array_equal(pipeline.augment_images(x, seed=12).numpy(), augmented)


def test_augmentation_preview_draws_different_images(arrays):
    image = arrays[0][0]
    preview = pipeline.augmentation_preview(image, 8, seed=4)
    assert preview.shape == (8, 32, 32, 3) and preview.dtype == np.uint8
    assert len({draw.tobytes() for draw in preview}) == 8
    np.testing.assert_array_equal(preview, pipeline.augmentation_preview(image, 8, seed=4))
    for draw in preview:
        assert (all_flips_and_shifts(image) == draw).all(axis=(1, 2, 3)).any()
    blank = pipeline.augmentation_preview(np.zeros((32, 32, 3), np.uint8), 5, seed=0)
    assert blank.shape == (5, 32, 32, 3) and not blank.any()  # still n images when every draw looks the same


def test_augmented_dataset_stays_uint8_and_redraws_each_epoch(arrays):
    x, y = arrays[0][:64], arrays[1][:64]
    dataset = pipeline.make_dataset(x, y, 16, shuffle=False, augment=True, seed=0)
    epochs = [[(images.numpy(), labels.numpy()) for images, labels in dataset] for _ in range(2)]
    for batches in epochs:
        assert all(images.dtype == np.uint8 and images.shape == (16, 32, 32, 3) for images, _ in batches)
        assert sorted(np.concatenate([labels for _, labels in batches])) == sorted(y)
    first, second = (np.concatenate([images for images, _ in batches]) for batches in epochs)
    assert not np.array_equal(first, second)


def test_a_keras_model_trains_on_the_dataset(arrays):
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    dataset = pipeline.make_dataset(arrays[0], arrays[1], 50, shuffle=True, augment=True, seed=0)
    history = model.fit(dataset, epochs=2, shuffle=False, verbose=0)  # the dataset shuffles itself
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_one_vs_rest_keeps_every_image_and_marks_one_class_in_ten():
    task_data = tasks.prepare_task(synthetic_cifar10(), RunConfig(task="one-vs-rest:cat", batch_size=8))
    assert task_data.class_names == ("not cat", "cat")
    assert list(tasks.task_label_map("one-vs-rest:cat")) == [int(name == "cat") for name in CLASS_NAMES]
    assert len(task_data.y_test) == len(synthetic_cifar10().y_test)  # nobody is left out
    assert np.mean(task_data.y_test) == pytest.approx(0.1)  # the 1:9 imbalance
