"""Evaluation: metric values checked against numbers worked out by hand, and real tiny Keras models."""

import json

import numpy as np
import pytest

from lab.evaluate.metrics import Evaluation, as_class_probabilities, evaluate_model, metrics_from_predictions, mistakes, most_confused_pairs

CLASSES = ("cat", "dog", "frog")

# Ten labels over three classes. The confusion matrix, rows = true, columns = predicted:
#   cat  [2, 1, 1]
#   dog  [1, 2, 0]
#   frog [0, 1, 2]
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]


def test_metrics_match_hand_computed_values():
    metrics = metrics_from_predictions(Y_TRUE, Y_PRED, CLASSES)

    # 6 of the 10 answers are right.
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert metrics["n_test"] == 10
    # Precision = correct / predicted as that class (column): cat 2/3, dog 2/4, frog 2/3.
    assert metrics["precision_macro"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    # Recall = correct / truly that class (row): cat 2/4, dog 2/3, frog 2/3.
    assert metrics["recall_macro"] == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    # F1 = 2PR / (P + R): cat 4/7, dog 4/7, frog 2/3.
    assert metrics["f1_macro"] == pytest.approx((4 / 7 + 4 / 7 + 2 / 3) / 3)

    cat, dog, frog = metrics["per_class"]
    assert cat == {"class": "cat", "precision": pytest.approx(2 / 3), "recall": 0.5, "f1": pytest.approx(4 / 7), "support": 4}
    assert dog["precision"] == pytest.approx(0.5) and dog["support"] == 3
    assert frog["f1"] == pytest.approx(2 / 3)


def test_the_baseline_and_the_positive_class_show_what_an_accuracy_hides():
    """One class in ten: a model that always answers "no" scores 90% and never finds the class."""
    y_true = [1] * 10 + [0] * 90
    always_no = metrics_from_predictions(y_true, [0] * 100, ("not cat", "cat"), positive_class=1)
    assert always_no["accuracy"] == pytest.approx(0.9) and always_no["baseline_accuracy"] == pytest.approx(0.9)
    assert (always_no["positive_precision"], always_no["positive_recall"], always_no["positive_f1"]) == (0.0, 0.0, 0.0)
    # Finding 6 of the 10 cats with 2 false alarms: precision 6/8, recall 6/10, F1 2PR/(P+R) = 2/3.
    found = metrics_from_predictions(y_true, [1] * 6 + [0] * 4 + [1] * 2 + [0] * 88, ("not cat", "cat"), positive_class=1)
    assert found["accuracy"] == pytest.approx(0.94)
    assert found["positive_precision"] == pytest.approx(0.75) and found["positive_recall"] == pytest.approx(0.6)
    assert found["positive_f1"] == pytest.approx(2 / 3)
    balanced = metrics_from_predictions(Y_TRUE, Y_PRED, CLASSES)  # 4 cats of 10: always "cat" scores 40%
    assert balanced["baseline_accuracy"] == pytest.approx(0.4) and "positive_f1" not in balanced


def test_metrics_are_plain_json_values():
    metrics = metrics_from_predictions(np.array(Y_TRUE), np.array(Y_PRED), CLASSES)
    assert json.loads(json.dumps(metrics)) == metrics
    assert type(metrics["confusion_matrix"][0][0]) is int
    assert type(metrics["accuracy"]) is float


def test_a_class_missing_from_the_test_split_still_gets_a_row_and_column():
    # No frog at all, in truth or prediction; one cat is called a dog.
    metrics = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1], CLASSES)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert metrics["per_class"][2] == {"class": "frog", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Precision cat 1/1, dog 2/3, frog 0 (zero_division=0): macro averages all three classes.
    assert metrics["precision_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_most_confused_pairs_are_sorted_by_count_with_shares():
    matrix = [[5, 3, 0], [1, 6, 4], [0, 0, 9]]
    pairs = most_confused_pairs(matrix, CLASSES, k=2)
    assert [(pair["true"], pair["predicted"], pair["count"]) for pair in pairs] == [("dog", "frog", 4), ("cat", "dog", 3)]
    assert pairs[0]["share"] == pytest.approx(4 / 11)
    # Only real mistakes are listed: no diagonal, no zero cells.
    assert len(most_confused_pairs(matrix, CLASSES, k=10)) == 3


def test_mistakes_are_ordered_by_confidence_of_the_wrong_answer():
    y_true = [0, 1, 2, 0, 1, 2]
    probabilities = np.array(
        [
            [0.9, 0.05, 0.05],  # right
            [0.6, 0.3, 0.1],  # wrong: says cat at 0.6
            [0.1, 0.85, 0.05],  # wrong: says dog at 0.85
            [0.2, 0.7, 0.1],  # wrong: says dog at 0.7
            [0.1, 0.8, 0.1],  # right
            [0.05, 0.05, 0.9],  # right
        ]
    )
    assert mistakes(y_true, probabilities).tolist() == [2, 3, 1]
    assert mistakes(y_true, probabilities, k=1).tolist() == [2]
    assert mistakes(y_true, probabilities, predicted_class=1).tolist() == [2, 3]
    assert mistakes(y_true, probabilities, true_class=0, predicted_class=1).tolist() == [3]
    assert mistakes(y_true, probabilities, true_class=1, predicted_class=2).tolist() == []


def test_one_sigmoid_column_becomes_two_probabilities():
    probabilities = as_class_probabilities(np.array([[0.25], [0.9]]))
    np.testing.assert_allclose(probabilities, [[0.75, 0.25], [0.1, 0.9]], rtol=1e-6)


def _random_images(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)


def test_evaluate_model_on_a_tiny_softmax_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(3, activation="softmax")])
    images, labels = _random_images(20), np.arange(20) % 3

    evaluation = evaluate_model(model, images, labels, CLASSES, batch_size=8)

    assert isinstance(evaluation, Evaluation)
    assert evaluation.probabilities.shape == (20, 3) and evaluation.probabilities.dtype == np.float32
    np.testing.assert_allclose(evaluation.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(evaluation.predictions, evaluation.probabilities.argmax(axis=1))
    expected_accuracy = float(np.mean(evaluation.predictions == labels))
    assert evaluation.metrics["accuracy"] == pytest.approx(expected_accuracy)
    assert evaluation.metrics["n_test"] == 20
    assert evaluation.metrics["inference_ms_per_image"] > 0
    assert evaluation.metrics["inference_ms_single"] > 0


def test_evaluate_model_with_one_sigmoid_unit_gives_two_columns():
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    images, labels = _random_images(20, seed=1), np.arange(20) % 2

    evaluation = evaluate_model(model, images, labels, ("animal", "vehicle"))

    raw = model.predict(images, verbose=0)[:, 0]
    assert evaluation.probabilities.shape == (20, 2)
    np.testing.assert_allclose(evaluation.probabilities[:, 1], raw, rtol=1e-5)
    np.testing.assert_allclose(evaluation.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert len(evaluation.metrics["confusion_matrix"]) == 2


def test_tta_averages_the_image_its_mirror_and_two_shifted_copies():
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(3, activation="softmax")])
    images, labels = _random_images(12, seed=2), np.arange(12) % 3

    def with_mirror(views):
        return (model.predict(views, verbose=0) + model.predict(views[:, :, ::-1, :].copy(), verbose=0)) / 2

    # Shifted one pixel up-left and down-right, the edge filled by reflection, by hand:
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    up_left, down_right = padded[:, :32, :32].copy(), padded[:, 2:, 2:].copy()
    assert np.array_equal(up_left[:, 1:, 1:], images[:, :31, :31]) and np.array_equal(up_left[:, 0, 1:], images[:, 1, :31])
    expected = 0.5 * with_mirror(images) + 0.25 * (with_mirror(up_left) + with_mirror(down_right))

    evaluation = evaluate_model(model, images, labels, CLASSES, tta=True)

    np.testing.assert_allclose(evaluation.probabilities, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(evaluation.probabilities, with_mirror(images), atol=1e-4)  # the shifts did count
    assert evaluation.metrics["tta"] is True


@pytest.mark.slow
def test_scikit_learn_loads_only_when_metrics_are_computed():
    """Importing the metrics module (as pages do) leaves scikit-learn and SciPy out; computing metrics brings them.

    A fresh process, so that no other test's imports count. (Keras 3.15 imports scikit-learn itself when
    it is installed: a process that loads Keras holds it anyway; lab adds no earlier import of its own.)
    """
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import lab.evaluate.metrics as metrics\n"
        "print('AFTER-IMPORT', sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))\n"
        "metrics.metrics_from_predictions([0, 1, 1], [0, 1, 0], ['cat', 'dog'])\n"
        "print('AFTER-METRICS', 'sklearn' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "AFTER-IMPORT []" in done.stdout
    assert "AFTER-METRICS True" in done.stdout
