"""The code behind a run: `train.py` and `notebook.ipynb`, plain Keras with the run's own settings.

Both are made from the same sections (a title, a few sentences, a piece of code): the script joins
them with the sentences as comments; the notebook makes each a text cell and a code cell. They need
only TensorFlow and NumPy: the pieces of this project a run uses (the Muon optimiser, weight
averaging, the whitening layer, the augmentation, the stratified split) are copied in from the
project's own source, so they stay the code that trained the run.

To try a run quickly, the environment variables CIFAR10_SUBSET, CIFAR10_EPOCHS, CIFAR10_BATCH_SIZE
and CIFAR10_TEST_IMAGES shrink it; CIFAR10_DIR reads the data from a folder of the python batches.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import dataclass

from lab.config import CLASS_NAMES, RunConfig
from lab.data import pipeline, tasks
from lab.data.tasks import task_label_map
from lab.evaluate import metrics
from lab.export.network_code import helper_sources, network_code, source_of
from lab.models import registry
from lab.train import muon, schedules

RESULTS_FILE = "results.json"  # what the code writes at the end: parameter count and test accuracy


@dataclass(frozen=True)
class Section:
    """One step of the code: a title, a few sentences that explain it, and its code."""

    title: str
    text: str
    code: str


def code_sections(config: RunConfig, run_id: str = "") -> list[Section]:
    """The steps of training `config`, in order."""
    num_classes = len(config.class_names)
    sections = [
        _settings(config, run_id),
        _data(config),
        _network(config, num_classes),
        _training_setup(config, num_classes),
        _training(config),
        _evaluation(config),
    ]
    if not any("ops." in section.code for section in sections[1:]):  # import only what the code uses
        sections[0] = dataclasses.replace(
            sections[0], code=sections[0].code.replace("from keras import layers, ops", "from keras import layers")
        )
    return sections


def _settings(config: RunConfig, run_id: str) -> Section:
    settings = "{\n" + "".join(f"    {name!r}: {value!r},\n" for name, value in config.to_dict().items()) + "}"
    about = f"run {run_id}" if run_id else "this run"
    return Section(
        "Settings",
        f"These are the settings of {about}, exactly as the app stored them. Change one and train again to see what it does. "
        "To try the code quickly first, set the environment variables CIFAR10_SUBSET (training images), CIFAR10_EPOCHS, "
        "CIFAR10_BATCH_SIZE and CIFAR10_TEST_IMAGES before you run it.",
        f"""import json
import math
import os
import pickle
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

SETTINGS = {settings}

SUBSET = int(os.environ.get("CIFAR10_SUBSET") or 0) or SETTINGS["subset"]
EPOCHS = int(os.environ.get("CIFAR10_EPOCHS") or 0) or SETTINGS["epochs"]
BATCH_SIZE = int(os.environ.get("CIFAR10_BATCH_SIZE") or 0) or SETTINGS["batch_size"]
TEST_IMAGES = int(os.environ.get("CIFAR10_TEST_IMAGES") or 0) or None

# One seed fixes the split, the shuffling, the augmentation and the starting weights.
keras.utils.set_random_seed(SETTINGS["seed"])""",
    )


def _data(config: RunConfig) -> Section:
    label_map = task_label_map(config.task).tolist()
    return Section(
        "The pictures",
        "CIFAR-10 has 60,000 small photos (32x32 pixels) of 10 kinds of things. Keras downloads it the first time; "
        "with CIFAR10_DIR set, the code reads the same files from that folder instead. Then the pictures are sorted into "
        "the task's classes, and some training pictures are kept aside (the validation split) to check the network on "
        "pictures it never learned from.",
        f'''CIFAR10_CLASSES = {list(CLASS_NAMES)!r}
CLASS_NAMES = {list(config.class_names)!r}
# For each CIFAR-10 class, its label in this task ({config.task}); -1 leaves the class out.
LABEL_MAP = np.array({label_map!r})


def load_cifar10():
    """Training and test pictures (N, 32, 32, 3) with their labels 0-9."""
    folder = os.environ.get("CIFAR10_DIR")
    if not folder:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        return x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)

    def read(name):
        with open(Path(folder) / name, "rb") as file:
            batch = pickle.load(file, encoding="bytes")
        # Each row is 1024 red, then 1024 green, then 1024 blue numbers: make it (32, 32, 3).
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, np.asarray(batch[b"labels"], dtype=np.int64)

    parts = [read(f"data_batch_{{number}}") for number in range(1, 6)]
    x_test, y_test = read("test_batch")
    return np.concatenate([images for images, _ in parts]), np.concatenate([labels for _, labels in parts]), x_test, y_test


{source_of(tasks.stratified_split)}


x_all, y_all, x_test, y_test = load_cifar10()
task_labels = LABEL_MAP[y_all]
pool = np.flatnonzero(task_labels >= 0)  # the training pictures of this task's classes
rng = np.random.default_rng(SETTINGS["seed"])
if SUBSET is not None and SUBSET < len(pool):
    chosen, _ = stratified_split(task_labels[pool], SUBSET, rng)  # every class keeps its share
    pool = pool[chosen]
n_val = max(1, round(len(pool) * SETTINGS["val_fraction"]))
val, train = stratified_split(task_labels[pool], n_val, rng)
x_train, y_train = x_all[pool[train]], task_labels[pool[train]]
x_val, y_val = x_all[pool[val]], task_labels[pool[val]]
keep = LABEL_MAP[y_test] >= 0
x_test, y_test = x_test[keep][:TEST_IMAGES], LABEL_MAP[y_test][keep][:TEST_IMAGES]
print(f"{{len(x_train)}} training, {{len(x_val)}} validation and {{len(x_test)}} test pictures")''',
    )


def _network(config: RunConfig, num_classes: int) -> Section:
    helpers = "\n\n\n".join(helper_sources(config))
    whitening = ""
    if config.backbone == "fast-cnn":
        whitening = (
            "\n\n# The whitening layer is fitted to the training pictures (scaled to 0-1, as it sees them) before any step.\n"
            'model.get_layer("backbone").get_layer("whitening").adapt(x_train[:5000].astype("float32") / 255.0)'
        )
    return Section(
        "The network",
        "The network, layer by layer, exactly as the app built it: first the pictures are prepared (scaled, maybe enlarged), "
        "then the backbone finds features, then the head turns them into one probability per class. "
        "The parameter count printed below is the same as the run's.",
        (helpers + "\n\n\n" if helpers else "")
        + network_code(config, num_classes)
        + f"""


model = build_network(){whitening}
model.summary()
print("parameters:", model.count_params())""",
    )


def _optimizer_code(config: RunConfig) -> tuple[str, str]:
    """(helper source, the line that makes `learning_rate` and `optimizer`)."""
    helpers = []
    rate = repr(config.learning_rate)
    total = "EPOCHS * steps_per_epoch"
    if config.lr_schedule == "cosine":
        schedule = f"keras.optimizers.schedules.CosineDecay({rate}, decay_steps={total})"
    elif config.lr_schedule == "onecycle":
        helpers.append(source_of(schedules.OneCycle))
        schedule = f"OneCycle({rate}, {total})"
    elif config.lr_schedule == "linear":
        schedule = f"keras.optimizers.schedules.PolynomialDecay({rate}, decay_steps={total}, end_learning_rate=0.0, power=1.0)"
    else:
        schedule = rate
    decay = repr(config.weight_decay) if config.weight_decay else "None"
    if config.optimizer == "sgd":
        optimizer = f"keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay={decay})"
    elif config.optimizer == "muon":
        helpers.append(
            f"NEWTON_SCHULZ_COEFFICIENTS = {muon.NEWTON_SCHULZ_COEFFICIENTS!r}\nNEWTON_SCHULZ_STEPS = {muon.NEWTON_SCHULZ_STEPS}\n\n"
            + source_of(muon.orthogonalize, muon.Muon)
        )
        optimizer = f"Muon(learning_rate, momentum=0.9, peak_learning_rate={rate}, weight_decay={decay})"
    elif config.optimizer == "adamw":
        optimizer = f"keras.optimizers.AdamW(learning_rate, weight_decay={config.weight_decay!r})"
    else:
        optimizer = "keras.optimizers.Adam(learning_rate)"
    return "\n\n\n".join(helpers), f"learning_rate = {schedule}\noptimizer = {optimizer}"


def _loss_code(config: RunConfig, num_classes: int) -> tuple[str, str]:
    smoothing = config.label_smoothing
    if num_classes == 2:
        return (
            "",
            f'loss = keras.losses.BinaryCrossentropy(label_smoothing={smoothing!r})\naccuracy = keras.metrics.BinaryAccuracy(name="accuracy")',
        )
    accuracy = 'accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")'
    if smoothing > 0:
        return source_of(registry.SparseCategoricalCrossentropyWithSmoothing), (
            f"loss = SparseCategoricalCrossentropyWithSmoothing({num_classes}, {smoothing!r})\n{accuracy}"
        )
    return "", f"loss = keras.losses.SparseCategoricalCrossentropy()\n{accuracy}"


def _training_setup(config: RunConfig, num_classes: int) -> Section:
    optimizer_helpers, optimizer_lines = _optimizer_code(config)
    loss_helpers, loss_lines = _loss_code(config, num_classes)
    helpers = "\n\n\n".join(part for part in (optimizer_helpers, loss_helpers) if part)
    return Section(
        "How it learns",
        f"The optimiser ({config.optimizer}) decides how each step changes the weights; the learning rate ({config.learning_rate}, "
        f"schedule: {config.lr_schedule}) says how big the steps are; the loss measures how wrong the network is"
        + (f", with label smoothing {config.label_smoothing}" if config.label_smoothing else "")
        + ".",
        (helpers + "\n\n\n" if helpers else "")
        + f"""# Every epoch uses only full batches (unless there is not even one), as in the app.
full_batches_only = len(x_train) >= BATCH_SIZE
steps_per_epoch = len(x_train) // BATCH_SIZE if full_batches_only else math.ceil(len(x_train) / BATCH_SIZE)
{optimizer_lines}
{loss_lines}
model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy])""",
    )


def _training(config: RunConfig) -> Section:
    parts, callbacks, sentences = [], [], ["Training shows the network the training pictures, batch by batch, for a number of epochs."]
    if config.augment:
        parts.append(
            f"SHIFT_PIXELS = {pipeline.SHIFT_PIXELS}\nIMAGE_SHAPE = (32, 32, 3)\n\n" + source_of(pipeline._mirror, pipeline.augment_images)
        )
        sentences.append(
            "Each batch is randomly mirrored and shifted (augmentation), so the network sees a slightly new picture every time."
        )
    if config.ema:
        parts.append(source_of(schedules.WeightAveraging))
        callbacks.append("WeightAveraging(total_steps=EPOCHS * steps_per_epoch)")
        sentences.append("Weight averaging keeps a running average of the weights; the network ends as that average.")
    if config.lr_schedule == "plateau":
        callbacks.append('keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6)')
    if config.keep_best:
        callbacks.append(
            'keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=EPOCHS + 1, restore_best_weights=True)'
        )
        sentences.append("At the end, the network goes back to the epoch with the best validation accuracy.")
    if config.fine_labels:
        sentences.append("(The app also trained a second, training-only output on the 10 classes; this code leaves it out.)")
    augment = (
        "\ntrain_data = train_data.map(lambda images, labels: (augment_images(images, tf.random.uniform([2], maxval=2**31, dtype=tf.int64)), labels))"
        if config.augment
        else ""
    )
    code = "\n\n\n".join(parts) + ("\n\n\n" if parts else "")
    code += f"""train_data = (
    tf.data.Dataset.from_tensor_slices((x_train, y_train.astype("int32")))
    .shuffle(len(x_train), seed=SETTINGS["seed"])
    .batch(BATCH_SIZE, drop_remainder=full_batches_only)
){augment}
train_data = train_data.prefetch(tf.data.AUTOTUNE)
val_data = tf.data.Dataset.from_tensor_slices((x_val, y_val.astype("int32"))).batch(BATCH_SIZE)
callbacks = [{", ".join(callbacks)}]
history = model.fit(train_data, validation_data=val_data, epochs=EPOCHS, callbacks=callbacks, verbose=2)"""
    return Section("Training", " ".join(sentences), code)


def _evaluation(config: RunConfig) -> Section:
    tta = ""
    predict = "probabilities = predict_probabilities(model, x_test)"
    if config.tta:
        tta = "\n\n\n" + source_of(metrics.tta_probabilities).replace(
            "predict_probabilities(model, views, batch_size=batch_size)", "predict_probabilities(model, views)"
        ).replace(
            "predict_probabilities(model, views[:, :, ::-1, :], batch_size=batch_size)",
            "predict_probabilities(model, views[:, :, ::-1, :])",
        )
        predict = "probabilities = tta_probabilities(model, x_test)  # six views of each picture, averaged"
    return Section(
        "Testing",
        "The test pictures were never used for training or for choosing settings: the share the network gets right is its accuracy. "
        "The trained network is saved as model.keras, and the figures in results.json.",
        f'''def predict_probabilities(model, images):
    """One probability per class for every picture; a one-output network gives [1 - p, p]."""
    raw = model.predict(images.astype("float32"), batch_size=256, verbose=0)
    return np.concatenate([1.0 - raw, raw], axis=1) if raw.shape[-1] == 1 else raw{tta}


{predict}
test_accuracy = float(np.mean(probabilities.argmax(axis=1) == y_test))
print(f"test accuracy: {{test_accuracy:.4f}} on {{len(y_test)}} pictures")
model.save("model.keras")
Path("{RESULTS_FILE}").write_text(json.dumps({{"parameters": model.count_params(), "test_accuracy": test_accuracy}}))''',
    )


def train_script(config: RunConfig, run_id: str = "") -> str:
    """`train.py`: every section in order, its sentences as comments."""
    lines = [f'"""Train {_describe(config, run_id)} with plain Keras: the code behind the app\'s run.', "", _how_to_run(), '"""', ""]
    for section in code_sections(config, run_id):
        lines += ["", f"# --- {section.title} " + "-" * max(3, 90 - len(section.title)), *_comment(section.text), "", section.code, ""]
    return "\n".join(lines).rstrip() + "\n"


def notebook(config: RunConfig, run_id: str = "") -> str:
    """`notebook.ipynb` (nbformat 4) as JSON text: a text cell and a code cell per section."""
    cells = [_markdown_cell(f"# Train {_describe(config, run_id)} with plain Keras\n\n{_how_to_run()}", "intro")]
    for number, section in enumerate(code_sections(config, run_id), start=1):
        cells += [_markdown_cell(f"## {section.title}\n\n{section.text}", f"text-{number}"), _code_cell(section.code, f"code-{number}")]
    document = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1) + "\n"


def _describe(config: RunConfig, run_id: str) -> str:
    name = f"run {run_id}" if run_id else "a run"
    return f"{name} ({config.backbone} on {config.task}, {config.epochs} epochs)"


def _how_to_run() -> str:
    return (
        "It needs only TensorFlow and NumPy (`pip install tensorflow numpy`) and runs in Jupyter, Colab or as "
        "`python train.py`. On a computer without a graphics card the full run can take much longer than in the app."
    )


def _comment(text: str, width: int = 100) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width)]


def _markdown_cell(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text.splitlines(keepends=True)}


def _code_cell(code: str, cell_id: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": {},
        "outputs": [],
        "source": code.splitlines(keepends=True),
    }
