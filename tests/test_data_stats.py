"""lab.data.stats (what the Explore page shows) and lab.report.charts (the Altair charts every page and the lab report draw)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab.config import CLASS_NAMES, VEHICLE_CLASSES
from lab.data import stats as data_stats
from lab.report import charts


@pytest.fixture
def images_and_labels():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, size=97)
    images = rng.integers(0, 256, size=(97, 32, 32, 3), dtype=np.uint8)
    return images, labels


def test_class_stats_match_a_direct_computation(images_and_labels, monkeypatch):
    images, labels = images_and_labels
    monkeypatch.setattr(data_stats, "CHUNK_IMAGES", 10)  # several chunks, the last one partial
    stats = data_stats.class_stats(images, labels)
    assert stats.counts.tolist() == np.bincount(labels, minlength=10).tolist()
    for label in range(10):
        members = images[labels == label].astype(np.float64)
        np.testing.assert_allclose(stats.mean_images[label], members.mean(axis=0))
        np.testing.assert_allclose(stats.channel_squares[label], (members**2).sum(axis=(0, 1, 2)))


def test_binary_task_mean_image_weighs_classes_by_their_counts(images_and_labels):
    images, labels = images_and_labels
    means = data_stats.task_mean_images(data_stats.class_stats(images, labels), "binary")
    vehicles = np.isin(labels, [CLASS_NAMES.index(name) for name in VEHICLE_CLASSES])
    assert means.shape == (2, 32, 32, 3) and means.dtype == np.uint8
    np.testing.assert_allclose(means[1], np.rint(images[vehicles].astype(np.float64).mean(axis=0)), atol=1)
    np.testing.assert_allclose(means[0], np.rint(images[~vehicles].astype(np.float64).mean(axis=0)), atol=1)


def test_pixel_statistics_of_a_pair_task(images_and_labels):
    images, labels = images_and_labels
    rows = data_stats.pixel_statistics(data_stats.class_stats(images, labels), "pair:cat,dog")
    chosen = images[np.isin(labels, [3, 5])].reshape(-1, 3).astype(np.float64)
    assert [row["channel"] for row in rows] == ["red", "green", "blue"]
    np.testing.assert_allclose([row["mean (0-255)"] for row in rows], chosen.mean(axis=0))
    np.testing.assert_allclose([row["std (0-255)"] for row in rows], chosen.std(axis=0))
    np.testing.assert_allclose([row["std (0-1)"] for row in rows], chosen.std(axis=0) / 255)


def test_class_balance_rows():
    y_train, y_test = np.array([0, 1, 1, 3, 9, 9, 9]), np.array([3, 5])
    rows = data_stats.class_balance(y_train, y_test, "binary")
    assert rows == [
        {"class": "animal", "split": "train", "images": 1},
        {"class": "vehicle", "split": "train", "images": 6},
        {"class": "animal", "split": "test", "images": 2},
        {"class": "vehicle", "split": "test", "images": 0},
    ]
    assert data_stats.task_class_counts(y_train, "pair:truck,cat") == [3, 1]


def test_sample_indices_are_stable_per_class_and_never_repeat(images_and_labels):
    _, labels = images_and_labels
    cats = data_stats.sample_indices(labels, ["cat"], 4, seed=1)["cat"]
    both = data_stats.sample_indices(labels, ["dog", "cat"], 4, seed=1)
    assert both["cat"] == cats  # adding a class does not reshuffle the others
    assert len(set(cats)) == len(cats) == 4 and all(labels[i] == 3 for i in cats)
    assert data_stats.sample_indices(labels, ["cat"], 4, seed=2)["cat"] != cats
    available = int((labels == 3).sum())
    assert len(data_stats.sample_indices(labels, ["cat"], 1000, seed=0)["cat"]) == available


def test_task_classes_of():
    assert data_stats.task_classes_of("binary")["cat"] == "animal"
    assert data_stats.task_classes_of("binary")["truck"] == "vehicle"
    assert data_stats.task_classes_of("pair:dog,cat") == {"cat": "cat", "dog": "dog"}
    assert list(data_stats.task_classes_of("cifar10")) == list(CLASS_NAMES)


# ---------------------------------------------------------------- charts


def test_history_frame_reads_a_keras_history_and_epoch_events_alike():
    history = {
        "loss": [1.0, 0.5],
        "accuracy": [0.4, 0.6],
        "val_loss": [1.1, 0.7],
        "val_accuracy": [0.35, None],
        "learning_rate": [0.1, 0.1],
    }
    events = [{"kind": "epoch_end", "epoch": epoch + 1, **{k: v[epoch] for k, v in history.items()}} for epoch in range(2)]
    from_history, from_events = charts.history_frame(history, run="a"), charts.history_frame(events, run="a")
    pd.testing.assert_frame_equal(from_history, from_events)
    assert len(from_history) == 7  # 8 values, less the missing validation accuracy; learning rate is not plotted
    assert set(from_history["split"]) == {"train", "validation"} and from_history["epoch"].min() == 1


def test_confusion_frame_shares_sum_to_one_per_row():
    frame = charts.confusion_frame([[3, 1], [0, 0]], ["cat", "dog"])
    assert frame.groupby("true")["share"].sum().to_dict() == {"cat": 1.0, "dog": 0.0}  # an empty row stays 0
    assert frame.loc[(frame["true"] == "cat") & (frame["predicted"] == "dog"), "count"].item() == 1


def test_every_chart_builds_a_valid_vega_lite_spec():
    per_class = [{"class": "cat", "precision": 0.5, "recall": 0.4, "f1": 0.44, "support": 10}]
    curves = pd.concat([charts.history_frame({"accuracy": [0.1, 0.2], "val_accuracy": [0.1, 0.15]}, run=name) for name in "ab"])
    results = pd.DataFrame(
        [
            {
                "model": "m",
                "task": "cifar10",
                "options": "augment",
                "accuracy": 0.7,
                "train_seconds": 30.0,
                "total_params": 1000,
                "reference": False,
            }
        ]
    )
    built = [
        charts.class_balance_chart(pd.DataFrame([{"class": "cat", "split": "train", "images": 5}])),
        charts.top_k_chart([("cat", 0.7), ("dog", 0.3)]),
        charts.confusion_matrix_chart([[3, 1], [2, 4]], ["cat", "dog"]),
        charts.per_class_chart(per_class),
        charts.learning_curves_chart(curves, "accuracy"),
        charts.accuracy_vs_time_chart(results),
    ]
    for chart in built:
        assert chart.to_dict()  # Altair validates the spec against the Vega-Lite schema here
