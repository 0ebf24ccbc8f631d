"""Where a model errs: the test images behind a confusion-matrix cell, and where two runs disagree.

- `confusion_cell`: the test images behind one cell of the confusion matrix.
- `disagreements` / `compare_per_class`: where two runs differ, image by image and class by class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lab.evaluate.metrics import as_class_probabilities

# ---------------------------------------------------------------- the confusion matrix, cell by cell


def confusion_cell(y_true: Sequence[int], probabilities: np.ndarray, true_class: int, predicted_class: int) -> np.ndarray:
    """Indices of the images of class `true_class` the model labelled `predicted_class`: one cell of the confusion matrix.

    Sorted by the probability given to `predicted_class`, highest first: off the
    diagonal that is the most confident mistakes first, on it the surest right answers.
    (evaluation.mistakes answers the same question for off-diagonal cells only.)
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probabilities = as_class_probabilities(probabilities)
    predicted = probabilities.argmax(axis=1)
    in_cell = np.flatnonzero((y_true == true_class) & (predicted == predicted_class))
    # A stable sort on the negated probability: descending, ties in image order.
    return in_cell[np.argsort(-probabilities[in_cell, predicted_class], kind="stable")]


# ---------------------------------------------------------------- two runs side by side


def disagreements(y_true: Sequence[int], probs_a: np.ndarray, probs_b: np.ndarray) -> dict[str, np.ndarray | int]:
    """Where two runs on the same test images differ.

    a_right_b_wrong / b_right_a_wrong: image indices, the wrong run's most confident
    mistakes first. both_right / both_wrong: how many images the runs agree on.
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probs_a, probs_b = as_class_probabilities(probs_a), as_class_probabilities(probs_b)
    if not len(y_true) == len(probs_a) == len(probs_b):
        raise ValueError(
            f"both runs must be scored on the same test images: got {len(y_true)} labels, {len(probs_a)} and {len(probs_b)} predictions."
        )
    right_a = probs_a.argmax(axis=1) == y_true
    right_b = probs_b.argmax(axis=1) == y_true
    return {
        "a_right_b_wrong": _most_confident_first(np.flatnonzero(right_a & ~right_b), probs_b),
        "b_right_a_wrong": _most_confident_first(np.flatnonzero(right_b & ~right_a), probs_a),
        "both_right": int(np.sum(right_a & right_b)),
        "both_wrong": int(np.sum(~right_a & ~right_b)),
    }


def _most_confident_first(indices: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    confidence = probabilities[indices].max(axis=1)  # the probability of the (wrong) answer given
    return indices[np.argsort(-confidence, kind="stable")]


def per_class_accuracy(y_true: Sequence[int], probabilities: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """For each class, the share of its test images the model got right (its recall); NaN for a class with no images."""
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probabilities = as_class_probabilities(probabilities)
    num_classes = num_classes or probabilities.shape[1]
    right = probabilities.argmax(axis=1) == y_true
    totals = np.bincount(y_true, minlength=num_classes).astype(np.float64)
    correct = np.bincount(y_true[right], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, correct / totals, np.nan)


def compare_per_class(y_true: Sequence[int], probs_a: np.ndarray, probs_b: np.ndarray, class_names: Sequence[str]) -> list[dict]:
    """One row per class: accuracy_a, accuracy_b, difference (b - a) and support (test images of the class)."""
    accuracy_a = per_class_accuracy(y_true, probs_a, len(class_names))
    accuracy_b = per_class_accuracy(y_true, probs_b, len(class_names))
    support = np.bincount(np.asarray(y_true, dtype=np.int64).reshape(-1), minlength=len(class_names))
    return [
        {
            "class": str(name),
            "accuracy_a": float(accuracy_a[index]),
            "accuracy_b": float(accuracy_b[index]),
            "difference": float(accuracy_b[index] - accuracy_a[index]),
            "support": int(support[index]),
        }
        for index, name in enumerate(class_names)
    ]
