"""Training a coarse task with the fine labels as a second lesson ("auxiliary supervision").

The binary task asks one question, vehicle or animal?, but every training image also
carries its CIFAR-10 class. A network told only "vehicle" may learn any shortcut that
separates the two groups (blue backgrounds, say); one that must also tell a truck from
an automobile and a cat from a dog has to learn what each object looks like, and those
features answer the coarse question better, on the report's binary task too
(docs/DECISIONS.md, "Binary task (vehicles vs animals)").

How: during training only, a second output, Dense(10, softmax), sits beside the model's
own output on the same features (the input of its `predictions` layer). The trainer
model outputs both side by side, (N, 1 + 10); the loss maps each image's fine label to
its task label for the first part and adds the 10-class cross-entropy of the second.
The saved model is the task's own model, unchanged: the extra output is dropped after
training, so prediction, evaluation and the parameter count are those of the binary model.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from lab.config import CLASS_NAMES, RunConfig
from lab.data.tasks import task_label_map

# How much the 10-class lesson counts next to the task's own loss: the plain sum, which did at
# least as well as half the weight (docs/DECISIONS.md, "Binary task (vehicles vs animals)").
FINE_LABEL_WEIGHT = 1.0
FINE_HEAD_NAME = "fine_label_predictions"


def with_fine_label_head(model: keras.Model) -> keras.Model:
    """A trainer sharing every layer of `model`, whose output is [task probability, 10 class probabilities].

    Training the trainer trains `model` itself (the layers are the same objects); the extra
    Dense(10) exists only in the trainer.
    """
    features = model.get_layer("predictions").input
    # float32 under mixed precision too, like the model's own output layer.
    fine = layers.Dense(len(CLASS_NAMES), activation="softmax", dtype="float32", name=FINE_HEAD_NAME)(features)
    both = layers.Concatenate(name="task_and_fine", dtype="float32")([model.output, fine])
    return keras.Model(model.input, both, name=f"{model.name}_with_fine_labels")


def task_of_fine_label(task_label_map: np.ndarray):
    """Maps a batch of fine labels (0-9) to the task's labels (0/1) inside the graph."""
    label_map = ops.convert_to_tensor(np.asarray(task_label_map, dtype="float32"))

    def to_task(fine_labels):
        return ops.take(label_map, ops.cast(ops.reshape(fine_labels, (-1,)), "int32"))

    return to_task


class FineLabelLoss(keras.losses.Loss):
    """Binary cross-entropy on the task label plus FINE_LABEL_WEIGHT x cross-entropy on the fine label.

    `y_true`: fine labels 0-9; `y_pred`: the trainer's (N, 11) output.
    """

    def __init__(
        self, task_label_map: np.ndarray, weight: float = FINE_LABEL_WEIGHT, label_smoothing: float = 0.0, name: str = "fine_label_loss"
    ):
        super().__init__(name=name)
        self.to_task = task_of_fine_label(task_label_map)
        self.weight = weight
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        task_probability, fine_probabilities = y_pred[:, :1], y_pred[:, 1:]
        task_loss = keras.losses.binary_crossentropy(
            ops.expand_dims(self.to_task(y_true), -1), task_probability, label_smoothing=self.label_smoothing
        )
        fine_loss = keras.losses.sparse_categorical_crossentropy(ops.reshape(y_true, (-1,)), fine_probabilities)
        return task_loss + self.weight * fine_loss


def task_accuracy(task_label_map: np.ndarray) -> keras.metrics.Metric:
    """The task's accuracy from the trainer's output, named "accuracy" like every other run's."""
    to_task = task_of_fine_label(task_label_map)

    def accuracy(y_true, y_pred):
        predicted = ops.cast(y_pred[:, 0] > 0.5, "float32")
        return ops.cast(ops.equal(predicted, to_task(y_true)), "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def loss_and_metrics(config: RunConfig) -> tuple[keras.losses.Loss, list[keras.metrics.Metric]]:
    """What compile() needs to train a `with_fine_label_head` trainer on fine labels."""
    label_map = task_label_map(config.task)
    return FineLabelLoss(label_map, label_smoothing=config.label_smoothing), [task_accuracy(label_map)]
