"""Evaluation: how good is a trained model, and where does it go wrong?

`evaluate_model` runs a model over the test images and returns an `Evaluation`:
the metrics (accuracy, macro precision / recall / F1, a per-class table and the
confusion matrix, all as plain Python numbers so they can be stored as JSON),
the predicted probabilities and the predicted labels.

`most_confused_pairs` and `mistakes` answer the questions the Compare page asks:
which classes does the model mix up, and which wrong answers was it most sure of?
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lab.data.pipeline import in_order

# How many times `inference_ms_single` predicts one image; the median is reported.
SINGLE_IMAGE_REPEATS = 5


@dataclass
class Evaluation:
    """The outcome of evaluating one model on one test split."""

    metrics: dict  # JSON-ready numbers: see metrics_from_predictions, plus inference timings
    probabilities: np.ndarray  # (N, num_classes) float32; each row sums to 1
    predictions: np.ndarray  # (N,) int: the most probable class of each image


def evaluate_model(
    model,
    x_test: np.ndarray,
    y_test: np.ndarray,
    class_names: Sequence[str],
    *,
    batch_size: int = 256,
    tta: bool = False,
    positive_class: int | None = None,
) -> Evaluation:
    """Predict every test image with `model` and measure how often it is right.

    `x_test` holds raw uint8 images: the model normalises inside, so no float32
    copy of the test set is ever made. With `tta=True` (test-time augmentation)
    each image is also seen mirrored and shifted by a pixel, and the answers are
    averaged (see `tta_probabilities`): usually a little more accuracy for six
    times the inference time.
    """
    started = time.perf_counter()
    if tta:
        probabilities = tta_probabilities(model, x_test, batch_size=batch_size)
    else:
        probabilities = predict_probabilities(model, x_test, batch_size=batch_size)
    prediction_seconds = time.perf_counter() - started

    predictions = probabilities.argmax(axis=1).astype(np.int64)
    metrics = metrics_from_predictions(y_test, predictions, class_names, positive_class=positive_class)
    metrics["tta"] = bool(tta)
    metrics["inference_ms_per_image"] = float(prediction_seconds / max(len(x_test), 1) * 1000.0)
    if len(x_test):
        metrics["inference_ms_single"] = single_image_latency_ms(model, x_test[:1])
    return Evaluation(metrics=metrics, probabilities=probabilities, predictions=predictions)


def tta_probabilities(model, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Test-time augmentation as the CIFAR-10 speed record does it: six views of each image.

    Half the weight goes to the image and its mirror; the other half to two copies shifted
    one pixel diagonally (up-left and down-right, edges reflected), each also mirrored. The
    views are uint8, like the images: mirroring is a view of the same memory, and each
    shifted copy costs as much as the test set in uint8 (15 MB for 5,000 images).
    """

    def image_and_mirror(views: np.ndarray) -> np.ndarray:
        return (
            predict_probabilities(model, views, batch_size=batch_size)
            + predict_probabilities(model, views[:, :, ::-1, :], batch_size=batch_size)
        ) / 2

    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    height, width = images.shape[1:3]
    shifted = [padded[:, :height, :width], padded[:, 2 : height + 2, 2 : width + 2]]
    return 0.5 * image_and_mirror(images) + 0.25 * sum(image_and_mirror(np.ascontiguousarray(view)) for view in shifted)


def predict_probabilities(model, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, num_classes) float32 for a batch of uint8 images.

    A binary model ends in ONE sigmoid unit that gives p = P(class 1); it is
    turned into the two columns [1 - p, p] so every caller sees the same shape.
    """
    raw = np.asarray(model.predict(in_order(images, batch_size), verbose=0), dtype=np.float32)
    return as_class_probabilities(raw)


def as_class_probabilities(raw: np.ndarray) -> np.ndarray:
    """Turn a model's output into (N, num_classes) probabilities; one sigmoid column becomes two."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim == 1 or raw.shape[-1] == 1:
        positive = raw.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)
    return raw


def single_image_latency_ms(model, one_image: np.ndarray, repeats: int = SINGLE_IMAGE_REPEATS) -> float:
    """Median milliseconds to classify one image, as the Predict page does.

    The first call is a warm-up (it may build or trace the model), so it is not
    counted; the median ignores the odd slow call caused by the machine.
    """
    model.predict_on_batch(one_image)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_on_batch(one_image)  # Keras' traced prediction step; returns NumPy, so it waits for the result
        timings.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(timings))


def metrics_from_predictions(
    y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str], *, positive_class: int | None = None
) -> dict:
    """Accuracy, macro precision / recall / F1, per-class table and confusion matrix, and the baseline.

    `baseline_accuracy` is what always answering the commonest test class would score: on a task
    where one class in ten is positive, 90% accuracy can mean the model learned nothing. With a
    `positive_class` (a one-vs-rest task), `positive_precision`, `positive_recall` and `positive_f1`
    say how well the model finds that class, which accuracy hides.

    Every class of the task gets a row and a column of the confusion matrix and a
    line of the per-class table, even one missing from this test split. A class
    the model never predicts has precision 0 rather than an error
    (`zero_division=0`). Macro averages weigh every class equally, so a model
    that ignores one class is penalised even when that class is rare.
    """
    # Imported here, not at the top: scikit-learn brings SciPy, which the server need not hold just to show a page.
    from sklearn import metrics as sk_metrics

    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    y_pred = np.asarray(y_pred).astype(np.int64).reshape(-1)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    matrix = sk_metrics.confusion_matrix(y_true, y_pred, labels=labels)
    per_class = [
        {
            "class": str(name),
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "f1": float(f1[index]),
            "support": int(support[index]),
        }
        for index, name in enumerate(class_names)
    ]
    metrics = {
        "accuracy": float(sk_metrics.accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "per_class": per_class,
        "confusion_matrix": [[int(count) for count in row] for row in matrix],
        "class_names": [str(name) for name in class_names],
        "n_test": int(len(y_true)),
    }
    metrics["baseline_accuracy"] = float(np.bincount(y_true, minlength=len(class_names)).max() / len(y_true)) if len(y_true) else 0.0
    if positive_class is not None:
        positive = per_class[positive_class]
        metrics.update(positive_precision=positive["precision"], positive_recall=positive["recall"], positive_f1=positive["f1"])
    return metrics


def most_confused_pairs(confusion_matrix: Sequence[Sequence[int]], class_names: Sequence[str], k: int = 5) -> list[dict]:
    """The `k` most frequent mistakes, as (true class, predicted class, count), largest first.

    `share` is the fraction of that true class's images that went to the wrong
    class, so "cat -> dog: 0.18" reads "18% of the cats were called dogs".
    """
    matrix = np.asarray(confusion_matrix, dtype=np.int64)
    row_totals = matrix.sum(axis=1)
    pairs = [
        {
            "true": str(class_names[true_index]),
            "predicted": str(class_names[predicted_index]),
            "true_index": true_index,
            "predicted_index": predicted_index,
            "count": int(matrix[true_index, predicted_index]),
            "share": float(matrix[true_index, predicted_index] / row_totals[true_index]),
        }
        for true_index in range(matrix.shape[0])
        for predicted_index in range(matrix.shape[1])
        if true_index != predicted_index and matrix[true_index, predicted_index] > 0
    ]
    # Sorting is stable, so equal counts keep the confusion matrix's reading order.
    pairs.sort(key=lambda pair: pair["count"], reverse=True)
    return pairs[:k]


def mistakes(
    y_true: Sequence[int], probabilities: np.ndarray, k: int | None = 16, true_class: int | None = None, predicted_class: int | None = None
) -> np.ndarray:
    """Indices of misclassified images, the most confidently wrong first.

    Confidence is the probability the model gave its (wrong) answer. Narrow the
    search with `true_class` and / or `predicted_class` (class indices), which
    is what clicking a cell of the confusion matrix does. `k=None` returns all.
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    wrong = predicted != y_true
    if true_class is not None:
        wrong &= y_true == true_class
    if predicted_class is not None:
        wrong &= predicted == predicted_class
    candidates = np.flatnonzero(wrong)
    confidence = probabilities[candidates, predicted[candidates]]
    # A stable sort on the negated confidence: descending, ties in image order.
    ordered = candidates[np.argsort(-confidence, kind="stable")]
    return ordered if k is None else ordered[:k]
