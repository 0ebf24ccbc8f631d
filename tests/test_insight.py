"""Seeing inside the model: Grad-CAM, activations, filters, the confusion cell query, two-run
comparison, the learning-rate finder, the freezing note and the `gradcam` / `lr-find` commands."""

import dataclasses
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image

from lab.cli.main import main
from lab.config import RunConfig, config_for_preset
from lab.data.cifar10 import write_cifar10_folder
from lab.insight.activations import activation_grid, activation_maps, first_layer_filters
from lab.insight.freezing import freezing_facts, freezing_summary, plain_sentence
from lab.insight.gradcam import coarse_sentence, gradcam
from lab.insight.heatmaps import EVERYWHERE, colour_bar, inferno, overlay, overlay_on_picture, where_it_looked, where_sentence
from lab.insight.layer_taps import conv_layers
from lab.insight.lr_finder import LearningRateSweep, lr_find, moving_average, smooth_both_ways, suggest_learning_rate
from lab.insight.misclassified import compare_per_class, confusion_cell, disagreements, per_class_accuracy
from lab.jobs.outcome import train_and_record
from lab.models.pretrained import InferenceModeBackbone
from lab.models.registry import build_backbone, build_model
from lab.store.runs import Store
from lab.train.compile import compile_model
from tests.synthetic import learnable_cifar10

CORNER = 8  # pixels per side of the patch that decides the corner task's label


def corner_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random noise everywhere; class 1 images also have a pure red 8x8 patch in the top-left corner."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1, :CORNER, :CORNER] = (255, 0, 0)
    return images, labels


@pytest.fixture(scope="module")
def corner_model():
    """The seed CNN (one sigmoid unit) trained until it reads the corner: 400 images, 4 epochs, ~3 s."""
    x, y = corner_task(400, seed=0)
    config = config_for_preset("seed-cnn", task="binary")
    keras.utils.set_random_seed(0)
    model = build_model(config, 2)
    compile_model(model, config, 2, steps_per_epoch=13)
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    return model


# ---------------------------------------------------------------- Grad-CAM


@pytest.mark.slow
def test_heatmap_has_the_images_shape_and_values_in_0_1(corner_model):
    image = corner_task(2, seed=5)[0][1]
    result = gradcam(corner_model, image)
    assert result.heatmap.shape == (32, 32) and result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() == pytest.approx(1.0)
    assert (result.method, result.layer, result.grid) == ("grad-cam", "conv3", (4, 4))
    assert gradcam(corner_model, image, size=(48, 64)).heatmap.shape == (48, 64)


def test_the_heatmap_of_the_corner_task_lies_in_the_corner(corner_model):
    x_test, y_test = corner_task(40, seed=100)
    positives = x_test[y_test == 1]
    probabilities = corner_model.predict(x_test, verbose=0).reshape(-1)
    assert np.mean((probabilities > 0.5) == y_test) > 0.95  # it learned the task, so the test means something
    shares = []
    for image in positives:
        heatmap = gradcam(corner_model, image, class_index=1).heatmap
        shares.append(heatmap[:16, :16].sum() / heatmap.sum())  # the top-left quarter holds the patch
    # A heatmap spread evenly would put 25% of its mass in each quarter.
    assert np.mean(shares) > 0.6 and min(shares) > 0.4
    # Said in words on the page: where the bright part is, and why it is a blob (the seed CNN's last map is 4x4).
    result = gradcam(corner_model, positives[0], class_index=1)
    assert where_it_looked(result.heatmap) == "the top-left corner"
    assert where_sentence(result.heatmap, "patch") == "Looking for 'patch', the model looked mostly at the top-left corner of the picture."
    assert result.coarse.shape == (4, 4) and "4x4 grid" in coarse_sentence(result)


def test_a_one_sigmoid_model_explains_either_class(corner_model):
    image = corner_task(2, seed=7)[0][1]
    p = float(corner_model.predict(image[np.newaxis], verbose=0)[0, 0])
    for class_index, probability in ((1, p), (0, 1 - p)):
        result = gradcam(corner_model, image, class_index)
        assert result.class_index == class_index
        assert result.probability == pytest.approx(probability, abs=1e-5)
    assert gradcam(corner_model, image).class_index == int(p > 0.5)
    with pytest.raises(ValueError, match="class_index"):
        gradcam(corner_model, image, 2)
    with pytest.raises(ValueError, match="to_model_input"):
        gradcam(corner_model, np.zeros((64, 64, 3), np.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("input_size", [32, 64])
def test_gradcam_looks_inside_a_pretrained_backbone(input_size):
    config = config_for_preset("mobilenetv2-frozen", weights="none", input_size=input_size)
    model = build_model(config, 10)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = gradcam(model, image)
    assert result.heatmap.shape == (32, 32)
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    assert min(result.grid) >= 2  # at 32 pixels the last block is 1x1, so an earlier 2x2 one is used
    # The re-wired model computes exactly what the model itself does.
    np.testing.assert_allclose(result.probabilities, np.asarray(model(image[np.newaxis].astype("float32")))[0], atol=1e-5)


@pytest.mark.slow
def test_gradcam_looks_inside_an_inference_mode_backbone(tmp_path):
    weights = tmp_path / "mobilenetv2.weights.h5"
    build_backbone("mobilenetv2", 32).save_weights(weights)
    model = build_model(config_for_preset("mobilenetv2-frozen", weights=str(weights)), 10)
    assert isinstance(model.get_layer("backbone"), InferenceModeBackbone)
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = gradcam(model, image, class_index=3)
    assert result.heatmap.shape == (32, 32) and result.class_index == 3
    np.testing.assert_allclose(result.probabilities, np.asarray(model(image[np.newaxis].astype("float32")))[0], atol=1e-5)


def test_a_vit_uses_its_token_grid_and_a_dense_model_falls_back_to_saliency():
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    vit = build_model(RunConfig(model="custom", backbone="vit-tiny"), 10)
    result = gradcam(vit, image)
    assert (result.method, result.layer, result.grid, result.heatmap.shape) == ("grad-cam on tokens", "encoder_norm", (8, 8), (32, 32))

    inputs = keras.Input((32, 32, 3))
    dense_only = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(layers.Rescaling(1 / 255)(inputs))))
    result = gradcam(dense_only, image)
    assert result.method == "saliency" and result.layer is None and "saliency" in result.note
    assert result.heatmap.shape == (32, 32) and result.heatmap.max() == pytest.approx(1.0)


def test_overlay_colours_the_picture_at_the_heatmaps_size():
    assert inferno(np.array([0.0, 1.0])).tolist() == [[0, 0, 4], [252, 255, 164]]  # near black to pale yellow
    brightness = inferno(np.linspace(0, 1, 50)).astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(brightness) > 0)  # one scale: brighter always means "counted more" (no rainbow bands)
    image = np.full((32, 32, 3), 200, np.uint8)
    heatmap = np.linspace(0, 1, 96 * 96, dtype=np.float32).reshape(96, 96)
    drawn = overlay(image, heatmap)
    assert drawn.shape == (96, 96, 3) and drawn.dtype == np.uint8
    assert drawn[0, 0].sum() < drawn[-1, -1].sum()  # dark where cold, bright where hot
    assert colour_bar(100, 10).shape == (10, 100, 3)


def test_the_heatmap_lies_over_the_picture_as_uploaded():
    """A 4x4 map stretched smoothly over a 300 x 200 photo, or over its centre square when the model saw only that."""
    photo = np.full((200, 300, 3), 180, np.uint8)
    coarse = np.zeros((4, 4), np.float32)
    coarse[0, 3] = 1.0  # the top-right cell
    drawn = overlay_on_picture(photo, coarse)
    assert drawn.shape == (200, 300, 3)
    assert drawn[10, 290].sum() > drawn[190, 10].sum()  # bright at the top right, dark at the bottom left
    assert len(np.unique(drawn[:, :, 0])) > 20  # smooth, not 16 flat squares
    cropped = overlay_on_picture(photo, coarse, crop=True)  # the model saw the centre 200 x 200 square only
    assert cropped[100, 10].sum() < drawn[100, 10].sum()  # the unseen left edge is dimmed
    assert cropped[10, 240].sum() > cropped[190, 60].sum()  # the map's top right is the square's top right


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ((1, 1), "the centre"),
        ((0, 0), "the top-left corner"),
        ((0, 2), "the top-right corner"),
        ((2, 1), "the bottom"),
        ((1, 0), "the left side"),
    ],
)
def test_where_the_model_looked_in_words(cells, words):
    heatmap = np.zeros((3, 3), np.float32)
    heatmap[cells] = 1.0
    assert where_it_looked(heatmap) == words
    assert where_it_looked(np.zeros((8, 8))) is None  # no evidence at all: no place to name
    assert where_it_looked(np.ones((8, 8))) == EVERYWHERE
    assert "all over the picture" in where_sentence(np.ones((8, 8)), "cat")


# ---------------------------------------------------------------- activations and filters


def test_activation_maps_and_their_grid_have_the_layers_channels(corner_model):
    assert conv_layers(corner_model) == ["conv1", "conv2", "conv3"]
    image = corner_task(2, seed=3)[0][0]
    maps = activation_maps(corner_model, image, "conv1")
    assert maps.shape == (30, 30, 32)  # a 3x3 "valid" convolution with 32 filters
    grid = activation_grid(maps, columns=8)
    assert grid.shape == (4 * 31 - 1, 8 * 31 - 1)  # 32 tiles of 30x30, 4 rows of 8, 1-pixel gaps
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    assert activation_maps(corner_model, image, "conv3").shape[-1] == 128
    assert activation_grid(maps, columns=8, max_channels=8).shape == (30, 8 * 31 - 1)
    with pytest.raises(ValueError, match="conv1, conv2, conv3"):
        activation_maps(corner_model, image, "no_such_layer")


def test_first_layer_filters_are_small_rgb_pictures(corner_model):
    filters = first_layer_filters(corner_model)
    assert filters.shape == (32, 3, 3, 3)
    assert filters.min() == pytest.approx(0.0) and filters.max() == pytest.approx(1.0)


# ---------------------------------------------------------------- confusion cell and two runs


def one_hot(predicted, num_classes=3, confidence=None):
    probabilities = np.full((len(predicted), num_classes), 0.0)
    probabilities[np.arange(len(predicted)), predicted] = 1.0 if confidence is None else confidence
    return probabilities


def test_confusion_cell_returns_exactly_that_pair_most_confident_first():
    y_true = np.array([0, 0, 1, 0, 2, 0, 1])
    probabilities = np.array(
        [[0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.9, 0.0], [0.0, 0.6, 0.4], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1]]
    )
    assert confusion_cell(y_true, probabilities, 0, 1).tolist() == [3, 0, 5]  # true 0, called 1: 0.9, 0.7, 0.6
    assert confusion_cell(y_true, probabilities, 1, 1).tolist() == [2]
    assert confusion_cell(y_true, probabilities, 0, 0).tolist() == [1]
    assert confusion_cell(y_true, probabilities, 2, 0).tolist() == []
    every_cell = sorted(i for t in range(3) for p in range(3) for i in confusion_cell(y_true, probabilities, t, p))
    assert every_cell == list(range(len(y_true)))  # the nine cells split the images exactly


def test_disagreements_and_per_class_accuracy_are_exact():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    probs_a = one_hot([0, 1, 0, 1, 1, 2], confidence=np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]))
    probs_b = one_hot([0, 2, 2, 1, 0, 2], confidence=np.array([0.9, 0.55, 0.7, 0.6, 0.95, 0.4]))
    split = disagreements(y_true, probs_a, probs_b)
    assert split["a_right_b_wrong"].tolist() == [4, 1]  # b's mistakes: image 4 at 0.95, image 1 at 0.55
    assert split["b_right_a_wrong"].tolist() == [2]
    assert (split["both_right"], split["both_wrong"]) == (2, 1)
    np.testing.assert_allclose(per_class_accuracy(y_true, probs_a), [0.5, 1.0, 0.5])
    rows = compare_per_class(y_true, probs_a, probs_b, ["x", "y", "z"])
    assert [(row["accuracy_a"], row["accuracy_b"], row["support"]) for row in rows] == [(0.5, 0.5, 2), (1.0, 0.0, 2), (0.5, 1.0, 2)]
    with pytest.raises(ValueError, match="same test images"):
        disagreements(y_true, probs_a, probs_b[:3])


# ---------------------------------------------------------------- learning-rate finder


def test_suggestion_is_the_steepest_descent_or_a_tenth_of_the_lowest_loss():
    rates = np.geomspace(1e-5, 1, 11)
    falling_then_rising = np.array([2.3, 2.3, 2.29, 2.2, 1.9, 1.4, 1.2, 1.1, 1.5, 3.0, 9.0])
    assert suggest_learning_rate(rates, falling_then_rising) == (pytest.approx(rates[4]), "steepest descent of the smoothed loss")
    only_rising = np.linspace(1.0, 5.0, 11)
    assert suggest_learning_rate(rates, only_rising)[0] == pytest.approx(rates[0] / 10)


def test_smoothing_both_ways_does_not_shift_the_curve():
    v_shape = np.abs(np.arange(101) - 50).astype(float)  # lowest at batch 50
    assert np.argmin(moving_average(v_shape)) >= 55  # a forward average trails the curve
    assert np.argmin(smooth_both_ways(v_shape)) == 50


def test_the_sweep_recovers_each_batchs_loss_and_stops_when_it_explodes():
    batch_losses = [2.0, 2.0, 1.5, 1.0, 1.0, 60.0, 1.0]
    sweep = LearningRateSweep(np.geomspace(1e-3, 1, len(batch_losses)))
    model = SimpleNamespace(optimizer=SimpleNamespace(learning_rate=keras.Variable(0.0)), stop_training=False)
    sweep.set_model(model)
    for batch in range(len(batch_losses)):
        sweep.on_train_batch_begin(batch)
        assert float(model.optimizer.learning_rate) == pytest.approx(sweep.learning_rates[batch])
        # Keras logs the mean loss of the epoch so far, not the batch's own.
        sweep.on_train_batch_end(batch, {"loss": np.mean(batch_losses[: batch + 1])})
        if model.stop_training:
            break
    assert sweep.raw_losses == pytest.approx(batch_losses[:6])
    assert model.stop_training and sweep.stopped_early  # 60 lifts the average past 4x its lowest value


def test_lr_find_sweeps_and_suggests_a_rate_inside_the_sweep():
    events = []
    curve = lr_find(
        RunConfig(batch_size=32),
        learnable_cifar10(n_train=200, n_test=20),
        min_lr=1e-4,
        max_lr=1.0,
        steps=12,
        subset=None,
        on_event=events.append,
    )
    assert 5 <= len(curve["learning_rates"]) == len(curve["losses"]) == len(curve["raw_losses"]) <= 12
    assert np.all(np.diff(curve["learning_rates"]) > 0) and curve["learning_rates"][0] == pytest.approx(1e-4)
    assert 1e-4 <= curve["suggestion"] <= 1.0
    assert events[0]["kind"] == "lr_step" and events[0]["learning_rate"] == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="min_lr"):
        lr_find(RunConfig(), learnable_cifar10(n_train=100, n_test=10), min_lr=1.0, max_lr=0.1)


def test_lr_find_in_mixed_precision_leaves_the_global_policy_as_it_was():
    # The sweep builds its model as the run would (bfloat16 here); the next model built in this
    # process (another student's run, a prediction) must not inherit that.
    before = keras.mixed_precision.dtype_policy().name
    lr_find(RunConfig(batch_size=32, precision="mixed_bfloat16"), learnable_cifar10(n_train=100, n_test=10), steps=5, subset=None)
    assert keras.mixed_precision.dtype_policy().name == before


# ---------------------------------------------------------------- frozen versus fine-tuned


def test_freezing_summary_counts_what_learns():
    frozen_config = config_for_preset("vgg16-frozen", weights="none")
    frozen = freezing_facts(build_model(frozen_config, 10), frozen_config)
    finetune_config = config_for_preset("vgg16-finetune", weights="none")
    finetune_model = build_model(finetune_config, 10)
    finetune = freezing_facts(finetune_model, finetune_config)
    assert (frozen["trainable_params"], finetune["trainable_params"]) == (5_130, 13_113_098)
    assert frozen["training_state_bytes"] == 3 * 4 * 5_130  # Adam: gradient + 2 running averages per parameter
    assert frozen["step_cost_share"] < 0.35 < finetune["step_cost_share"] < 1.0  # the backward pass stops sooner when frozen
    text = freezing_summary(finetune_model, finetune_config)
    assert "13,113,098 of 14,848,586 parameters learn" in text and "layers 11-18" in text
    assert "random" in text  # weights none: the frozen layers hold random numbers
    assert "ImageNet's mean and variance" not in text  # VGG16 has no BatchNorm


def test_the_freezing_note_opens_with_one_plain_sentence():
    """The first line says what learns in plain words; the exact terms (multiply-adds, Adam) come after it."""
    scratch = RunConfig(epochs=1)
    scratch_text = freezing_summary(build_model(scratch, 10), scratch)
    first, *details = scratch_text.splitlines()
    assert first.startswith("Every layer of this network learns") and first.endswith("(training from scratch).")
    assert "multiply-adds" in scratch_text and "multiply" not in first and "Adam" not in first
    assert details  # the detail is still there, below
    frozen = config_for_preset("mobilenetv2-frozen", weights="none")
    model = build_model(frozen, 10)  # random weights: quick and offline; the config says where they come from
    imagenet = dataclasses.replace(frozen, weights="imagenet")
    assert plain_sentence(freezing_facts(model, imagenet), imagenet).startswith("Only the small part on top learns; the big part")
    assert "random numbers" in plain_sentence(freezing_facts(model, frozen), frozen)  # weights none: the frozen part is noise
    partly = dataclasses.replace(imagenet, freeze_depth=30)
    sentence = plain_sentence(freezing_facts(build_model(dataclasses.replace(partly, weights="none"), 10), partly), partly)
    assert sentence.startswith("The backbone's first 30 layers stay as they are") and "(fine-tuning)" in sentence


# ---------------------------------------------------------------- command line


@pytest.fixture
def stored_run(tmp_path):
    """A completed seed-CNN run in the test's own LAB_HOME, and one test picture as a PNG file."""
    data = learnable_cifar10(n_train=200, n_test=20)
    result = train_and_record(RunConfig(epochs=1, batch_size=32), Store(), data=data)
    picture = tmp_path / "picture.png"
    Image.fromarray(data.x_test[3]).resize((80, 60)).save(picture)
    return result.run_id, picture


@pytest.mark.slow
def test_cli_gradcam_writes_a_png_of_the_asked_size(stored_run, tmp_path, capsys):
    run_id, picture = stored_run
    out = tmp_path / "heatmap.png"
    assert main(["gradcam", run_id, str(picture), "--out", str(out), "--size", "96", "--class", "cat"]) == 0
    with Image.open(out) as written:
        assert (written.format, written.size, written.mode) == ("PNG", (96, 96), "RGB")
    printed = capsys.readouterr().out
    assert "top class:" in printed and "heatmap for cat" in printed
    assert main(["gradcam", run_id, str(picture), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "grad-cam" and summary["layer"] == "conv3"
    assert main(["gradcam", run_id, str(picture), "--out", str(out), "--class", "unicorn"]) == 2
    assert "not one of this run's classes" in capsys.readouterr().err


def test_cli_lr_find_prints_the_suggestion(tmp_path, capsys):
    data = learnable_cifar10(n_train=200, n_test=20)
    folder = write_cifar10_folder(tmp_path / "cifar", data.x_train, data.y_train, data.x_test, data.y_test)
    arguments = ["lr-find", "--model", "seed-cnn", "--data-dir", str(folder), "--subset", "100", "--batch-size", "16", "--steps", "8"]
    assert main([*arguments, "--json"]) == 0
    curve = json.loads(capsys.readouterr().out)
    assert 1e-6 <= curve["suggestion"] <= 1.0 and len(curve["losses"]) == len(curve["learning_rates"])
    assert curve["n_train"] == 90  # the 100-image subset less its 10% validation split
