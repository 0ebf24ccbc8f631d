"""Tests for the model registry: parameter counts, freezing, weights, saving, preprocessing.

Building VGG16 or ResNet50 takes a second or two on a laptop CPU, so each preset
is built once per test module (`preset_model`) and tests only read those models.
No test touches the network: ImageNet downloads are monkeypatched, and every
test points KERAS_HOME at its own temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from lab.config import RunConfig, config_for_preset
from lab.models import registry as models
from lab.models.pretrained import WeightsUnavailableError
from lab.models.registry import (
    SparseCategoricalCrossentropyWithSmoothing,
    apply_freeze_depth,
    backbone_layer_count,
    build_backbone,
    build_model,
    count_params,
    describe_layers,
    loss_for,
    metrics_for,
)
from lab.models.scratch import FAST_CNN_WIDTH_MULTIPLIER, fast_cnn_backbone

# The lab report's parameter counts at 32x32 with random weights: (preset, task) -> (total, trainable).
PRESET_PARAMS = {
    ("seed-cnn", "cifar10"): (356_810, 356_810),
    ("seed-cnn", "binary"): (355_649, 355_649),
    ("vgg16-frozen", "cifar10"): (14_719_818, 5_130),
    ("resnet50-frozen", "cifar10"): (23_608_202, 20_490),
    ("mobilenetv2-frozen", "cifar10"): (2_270_794, 12_810),
    ("vgg16-finetune", "cifar10"): (14_848_586, 13_113_098),
}


def images(count: int = 2, seed: int = 0) -> np.ndarray:
    """A batch of random CIFAR-sized uint8 pictures."""
    return np.random.default_rng(seed).integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)


def predict(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    """Call the model directly: for a few images this skips model.predict's graph tracing."""
    return np.asarray(model(batch, training=False))


def custom(backbone: str, **fields) -> RunConfig:
    return RunConfig(model="custom", backbone=backbone, **fields)


@pytest.fixture(autouse=True)
def _private_keras_home(tmp_path, monkeypatch):
    """Weight lookups and (failed) downloads happen in a temporary folder, never in ~/.keras."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture
def offline(monkeypatch):
    """Make every ImageNet download fail at once, the way it fails without internet; record the attempts."""
    attempts = []

    def fail(fname=None, origin=None, **kwargs):
        attempts.append({"fname": fname, "origin": origin, **kwargs})
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", fail)
    return attempts


@pytest.fixture(scope="module")
def preset_model():
    """preset_model(name, task="cifar10"): that preset with random weights, built once per module."""
    built = {}

    def get(name: str, task: str = "cifar10") -> keras.Model:
        if (name, task) not in built:
            config = config_for_preset(name, task=task, weights="none")
            built[name, task] = build_model(config, len(config.class_names))
        return built[name, task]

    return get


def weights_equal(left: keras.Model, right: keras.Model) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(left.get_weights(), right.get_weights(), strict=True))


# ---------------------------------------------------------------- parameter counts and outputs


@pytest.mark.parametrize(("preset", "task"), list(PRESET_PARAMS))
def test_preset_parameter_counts_match_the_lab_report(preset_model, preset, task):
    total, trainable = PRESET_PARAMS[preset, task]
    assert count_params(preset_model(preset, task)) == {
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
    }


def test_count_params_agrees_with_keras(preset_model):
    model = preset_model("resnet50-frozen")
    assert count_params(model)["total_params"] == model.count_params()


def test_seed_cnn_is_rescaling_then_a_nested_conv_backbone_then_the_head(preset_model):
    model = preset_model("seed-cnn")
    assert [layer.name for layer in model.layers] == ["image", "rescale", "backbone", "flatten", "dense128", "predictions"]
    backbone = model.get_layer("backbone")
    assert [type(layer).__name__ for layer in backbone.layers] == [
        "InputLayer",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
    ]


def test_softmax_output_sums_to_one_for_uint8_and_float_input(preset_model):
    model = preset_model("seed-cnn")
    batch = images(4)
    from_uint8 = model.predict(batch, verbose=0)
    assert from_uint8.shape == (4, 10)
    np.testing.assert_allclose(from_uint8.sum(axis=1), 1.0, rtol=1e-5)
    # The model casts to float32 itself, so the dtype of the pixels does not matter.
    np.testing.assert_allclose(predict(model, batch.astype(np.float32)), from_uint8, rtol=1e-6)


def test_two_classes_get_one_sigmoid_unit(preset_model):
    model = preset_model("seed-cnn", "binary")
    output = model.get_layer("predictions")
    assert output.units == 1
    assert output.activation.__name__ == "sigmoid"
    probabilities = predict(model, images(3))
    assert probabilities.shape == (3, 1)
    assert np.all((probabilities > 0) & (probabilities < 1))


def test_num_classes_below_two_is_refused_and_numpy_integers_are_accepted():
    with pytest.raises(ValueError, match="num_classes"):
        build_model(custom("seed-cnn"), 1)
    assert build_model(custom("seed-cnn"), np.int64(3)).get_layer("predictions").units == 3


@pytest.mark.parametrize("backbone", ["vit-tiny", "fast-cnn", "efficientnetb0"])
def test_other_backbones_build_and_classify_a_uint8_batch(backbone):
    model = build_model(custom(backbone), 10)
    probabilities = predict(model, images(2))
    assert probabilities.shape == (2, 10)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert isinstance(model.get_layer("backbone"), keras.Model)
    # Only ImageNet-style weights need EfficientNet's extra input scaling (see the test further down).
    assert "efficientnet_imagenet_fix" not in [layer.name for layer in model.layers]


def test_fast_cnn_width_follows_the_multiplier():
    assert fast_cnn_backbone().get_layer("block3_conv2").filters == 256 * FAST_CNN_WIDTH_MULTIPLIER
    assert fast_cnn_backbone(width_multiplier=1.0).get_layer("block3_conv2").filters == 256


def test_a_run_s_width_builds_the_fast_cnn_it_names():
    half = build_model(config_for_preset("fast-cnn", width=None), 10)  # no width: a custom network's default, half
    preset = build_model(config_for_preset("fast-cnn"), 10)
    full = build_model(config_for_preset("fast-cnn", width=1.0), 10)
    assert half.count_params() == 498_690
    assert preset.count_params() == 1_114_210  # three-quarter width: the preset, what the shipped model uses
    assert preset.get_layer("backbone").get_layer("block1_conv1").filters == 48
    assert full.get_layer("backbone").get_layer("block1_conv1").filters == 64  # airbench94's own channels
    assert full.count_params() > 3.9 * half.count_params()  # parameters grow with the width squared


def test_upscaling_happens_inside_the_model():
    small = build_model(custom("seed-cnn"), 10)
    large = build_model(custom("seed-cnn", input_size=64), 10)
    assert "upscale" not in [layer.name for layer in small.layers]
    upscale = large.get_layer("upscale")
    assert isinstance(upscale, keras.layers.Resizing)
    assert tuple(upscale.output.shape) == (None, 64, 64, 3)
    assert large.input_shape == (None, 32, 32, 3)  # it still takes CIFAR-sized pictures
    assert large.get_layer("backbone").input_shape == (None, 64, 64, 3)
    assert predict(large, images(2)).shape == (2, 10)


def test_input_sizes_a_backbone_cannot_handle_are_refused():
    with pytest.raises(ValueError, match="at least 32 pixels"):
        backbone_layer_count("vgg16", 16)
    with pytest.raises(ValueError, match="multiple of the ViT patch size"):
        build_backbone("vit-tiny", 30)


# ---------------------------------------------------------------- freeze depth


def trainable_flags(model: keras.Model) -> list[bool]:
    return [row["trainable"] for row in describe_layers(model) if row["part"] == "backbone"]


def test_vgg16_finetune_freezes_input_and_blocks_1_to_3(preset_model):
    backbone = preset_model("vgg16-finetune").get_layer("backbone")
    frozen = [layer.name for layer in backbone.layers if not layer.trainable]
    assert frozen[-1] == "block3_pool" and len(frozen) == 11
    assert all(layer.trainable for layer in backbone.layers[11:])
    assert backbone.layers[11].name == "block4_conv1"


def test_freeze_depth_zero_trains_everything_and_none_freezes_the_whole_backbone():
    everything = build_model(custom("seed-cnn", freeze_depth=0), 10)
    head_only = build_model(custom("seed-cnn", freeze_depth=None), 10)
    assert all(trainable_flags(everything))
    assert not head_only.get_layer("backbone").trainable
    assert not any(trainable_flags(head_only))
    # Only Dense 128 (2048*128 + 128) and the output (128*10 + 10) still learn.
    assert count_params(head_only)["trainable_params"] == 262_272 + 1_290


def test_freeze_depth_counts_layers_from_the_input_up():
    model = build_model(custom("seed-cnn", freeze_depth=3), 10)
    # Layers 0-2 (input, conv1, pool1) are frozen; conv2 onwards learns.
    assert trainable_flags(model) == [False, False, False, True, True, True]
    assert count_params(model)["trainable_params"] == 356_810 - 896


def test_freeze_depth_equal_to_the_layer_count_freezes_like_all():
    layer_count = backbone_layer_count("seed-cnn")
    every_layer = build_model(custom("seed-cnn", freeze_depth=layer_count), 10)
    assert count_params(every_layer) == count_params(build_model(custom("seed-cnn", freeze_depth=None), 10))


def test_freeze_depth_beyond_the_backbone_names_the_setting_and_the_range():
    with pytest.raises(ValueError, match=r"freeze_depth must be from 0 to 6 .*'all'; got 7"):
        build_model(custom("seed-cnn", freeze_depth=7), 10)


def test_apply_freeze_depth_can_refreeze_a_backbone_at_another_depth():
    backbone = build_backbone("seed-cnn")
    apply_freeze_depth(backbone, None)
    apply_freeze_depth(backbone, 2)
    assert [layer.trainable for layer in backbone.layers] == [False, False, True, True, True, True]


def test_backbone_layer_count_matches_the_built_backbone_and_is_cached(preset_model):
    assert backbone_layer_count("vgg16") == len(preset_model("vgg16-frozen").get_layer("backbone").layers) == 19
    assert backbone_layer_count("seed-cnn") == 6
    hits = backbone_layer_count.cache_info().hits
    backbone_layer_count("vgg16")
    assert backbone_layer_count.cache_info().hits == hits + 1


# ---------------------------------------------------------------- BatchNorm while fine-tuning


def one_training_step(model: keras.Model, num_classes: int = 10) -> None:
    # run_eagerly skips tracing the training graph: seconds saved for one step of ResNet50.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss_for(num_classes), metrics=metrics_for(num_classes), run_eagerly=True)
    model.fit(images(8), np.arange(8) % num_classes, batch_size=8, epochs=1, verbose=0)


def snapshot(backbone: keras.Model, layer_name: str, weight_name: str) -> np.ndarray:
    return next(np.array(w) for w in backbone.get_layer(layer_name).weights if w.name == weight_name)


@pytest.mark.slow
def test_pretrained_batchnorm_stays_in_inference_mode_in_the_unfrozen_part(tmp_path):
    # ResNet50 with "pre-trained" weights from a file (random numbers stand in for ImageNet).
    # Not MobileNetV2: with random weights its activations fade to ~1e-12 by the last
    # block, too small for a training step to change anything measurable.
    weights_file = tmp_path / "resnet50.weights.h5"
    source = build_backbone("resnet50")
    source.save_weights(weights_file)
    freeze_depth = [layer.name for layer in source.layers].index("conv5_block3_1_conv")
    model = build_model(custom("resnet50", weights=str(weights_file), freeze_depth=freeze_depth), 10)
    backbone = model.get_layer("backbone")
    watched = {
        "unfrozen BN moving_mean": ("conv5_block3_3_bn", "moving_mean"),
        "unfrozen BN beta": ("conv5_block3_3_bn", "beta"),
        "unfrozen conv kernel": ("conv5_block3_3_conv", "kernel"),
        "frozen conv kernel": ("conv5_block2_3_conv", "kernel"),
    }
    before = {label: snapshot(backbone, *where) for label, where in watched.items()}
    one_training_step(model)
    changed = {label: not np.array_equal(before[label], snapshot(backbone, *where)) for label, where in watched.items()}
    assert changed == {
        "unfrozen BN moving_mean": False,  # inference mode: ImageNet's statistics are kept
        "unfrozen BN beta": True,  # but its shift still learns, like any unfrozen weight
        "unfrozen conv kernel": True,
        "frozen conv kernel": False,
    }


def test_batchnorm_of_a_network_trained_from_scratch_updates_its_statistics():
    model = build_model(custom("fast-cnn"), 10)
    backbone = model.get_layer("backbone")
    before = snapshot(backbone, "block1_bn1", "moving_mean")
    one_training_step(model)
    assert not np.array_equal(before, snapshot(backbone, "block1_bn1", "moving_mean"))


# ---------------------------------------------------------------- weights files and offline use


@pytest.fixture(scope="module")
def vgg16_weights_file(tmp_path_factory):
    """A random VGG16 backbone and the .weights.h5 file it was saved to."""
    backbone = build_backbone("vgg16")
    path = tmp_path_factory.mktemp("weights") / "vgg16.weights.h5"
    backbone.save_weights(path)
    return backbone, path


def test_a_local_weights_file_is_loaded_into_the_backbone(vgg16_weights_file, offline):
    saved, path = vgg16_weights_file
    model = build_model(config_for_preset("vgg16-finetune", weights=str(path)), 10)
    assert weights_equal(model.get_layer("backbone"), saved)
    assert offline == []  # a local file needs no download


def test_a_missing_weights_file_is_reported(tmp_path):
    missing = tmp_path / "nowhere" / "vgg16.weights.h5"
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        build_model(custom("vgg16", weights=str(missing)), 10)


def test_a_weights_file_for_another_network_is_refused(tmp_path):
    path = tmp_path / "seed.weights.h5"
    build_backbone("seed-cnn").save_weights(path)
    with pytest.raises(ValueError, match="does not fit the vgg16 backbone"):
        build_model(custom("vgg16", weights=str(path)), 10)


@pytest.mark.parametrize(
    ("backbone", "input_size", "file_name"),
    [
        ("vgg16", 32, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("resnet50", 32, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("mobilenetv2", 32, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
        ("mobilenetv2", 128, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"),
        ("efficientnetb0", 32, "efficientnetb0_notop.h5"),
    ],
)
def test_offline_imagenet_weights_fail_early_with_instructions(offline, monkeypatch, backbone, input_size, file_name):
    default_cache = Path.home() / ".keras" / "models"
    existed_before = default_cache.exists()

    def must_not_build(*args, **kwargs):
        raise AssertionError("the backbone was built before the missing weights were reported")

    monkeypatch.setattr(models, "build_backbone", must_not_build)
    with pytest.raises(WeightsUnavailableError) as caught:
        build_model(custom(backbone, weights="imagenet", input_size=input_size), 10)
    message = str(caught.value)
    url = offline[0]["origin"]
    assert offline[0]["fname"] == file_name and url.endswith("/" + file_name) and url.startswith("https://storage.googleapis.com/")
    for expected in (file_name, url, "~/.keras/models/", "--weights none", '"none"', "Name or service not known"):
        assert expected in message
    assert default_cache.exists() == existed_before  # nothing written to the real Keras cache


def test_cached_imagenet_file_works_offline(tmp_path, offline):
    # A student copied the download into the Keras cache; Keras's own .h5 format, as ImageNet files are.
    source = build_backbone("mobilenetv2")
    cache = tmp_path / "keras_home" / "models"
    cache.mkdir(parents=True)
    source.save(cache / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    model = build_model(config_for_preset("mobilenetv2-frozen"), 10)
    assert offline == []
    assert weights_equal(model.get_layer("backbone"), source)


# ---------------------------------------------------------------- preprocessing inside the model


def test_caffe_and_tf_preprocessing_match_keras_preprocess_input(preset_model):
    pixels = images(2).astype(np.float32)
    caffe = preset_model("vgg16-frozen").get_layer("caffe_preprocess")
    np.testing.assert_allclose(caffe(pixels), keras.applications.vgg16.preprocess_input(pixels.copy()), atol=1e-4)
    assert preset_model("resnet50-frozen").get_layer("caffe_preprocess") is not None
    tf_mode = preset_model("mobilenetv2-frozen").get_layer("tf_preprocess")
    np.testing.assert_allclose(tf_mode(pixels), keras.applications.mobilenet_v2.preprocess_input(pixels.copy()), atol=1e-5)


@pytest.fixture(scope="module")
def efficientnet_imagenet_like(tmp_path_factory):
    """An EfficientNetB0 weights file in Keras's ImageNet format, with ImageNet's normalisation statistics."""
    backbone = build_backbone("efficientnetb0")
    normalization = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign([0.229, 0.224, 0.225])
    normalization.finalize_state()
    path = tmp_path_factory.mktemp("efficientnet") / "efficientnetb0_notop.h5"
    backbone.save(path)
    model = build_model(custom("efficientnetb0", weights=str(path), freeze_depth=None), 10)
    return path, model


@pytest.mark.slow
def test_pretrained_efficientnet_sees_what_keras_imagenet_model_sees(efficientnet_imagenet_like, monkeypatch):
    path, model = efficientnet_imagenet_like
    # Keras's own ImageNet EfficientNet, made to "download" our file instead.
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", lambda *args, **kwargs: str(path))
    reference = keras.applications.EfficientNetB0(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    features = keras.Model(model.inputs, model.get_layer("global_average_pool").input)
    pixels = images(2)
    np.testing.assert_allclose(features(pixels), reference(pixels.astype(np.float32)), rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- saving and reloading


def assert_round_trip(model: keras.Model, path: Path) -> keras.Model:
    """Save, reload in safe mode, and check the reloaded model predicts the same; return it."""
    model.save(path)
    reloaded = keras.models.load_model(path)  # safe_mode=True is the default
    batch = images(3, seed=1)
    np.testing.assert_allclose(predict(reloaded, batch), predict(model, batch), rtol=1e-6, atol=1e-7)
    assert count_params(reloaded) == count_params(model)
    assert "Lambda" not in {type(layer).__name__ for layer in reloaded.layers}
    return reloaded


@pytest.mark.parametrize(("preset", "task"), [("seed-cnn", "cifar10"), ("seed-cnn", "binary"), ("vgg16-frozen", "cifar10")])
def test_presets_reload_with_safe_mode_and_predict_the_same(preset_model, tmp_path, preset, task):
    assert_round_trip(preset_model(preset, task), tmp_path / "model.keras")


@pytest.mark.parametrize("backbone", ["vit-tiny", "fast-cnn"])
def test_scratch_networks_with_custom_layers_reload_with_safe_mode(tmp_path, backbone):
    assert_round_trip(build_model(custom(backbone, input_size=64 if backbone == "vit-tiny" else 32), 10), tmp_path / "model.keras")


@pytest.mark.slow
def test_pretrained_efficientnet_reloads_with_safe_mode(efficientnet_imagenet_like, tmp_path):
    # Covers the per-channel Rescaling fix and the InferenceModeBackbone class.
    model = efficientnet_imagenet_like[1]
    reloaded = assert_round_trip(model, tmp_path / "model.keras")
    assert type(reloaded.get_layer("backbone")).__name__ == "InferenceModeBackbone"


def test_a_compiled_model_with_label_smoothing_trains_and_reloads(tmp_path):
    model = build_model(custom("seed-cnn"), 10)
    model.compile(optimizer="adam", loss=loss_for(10, label_smoothing=0.1), metrics=metrics_for(10), run_eagerly=True)
    history = model.fit(images(16), np.arange(16) % 10, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(reloaded.loss, SparseCategoricalCrossentropyWithSmoothing)
    assert reloaded.loss.label_smoothing == 0.1


# ---------------------------------------------------------------- describing a model


@pytest.mark.parametrize(("preset", "task"), [("seed-cnn", "cifar10"), ("vgg16-finetune", "cifar10"), ("resnet50-frozen", "cifar10")])
def test_describe_layers_adds_up_to_count_params(preset_model, preset, task):
    model = preset_model(preset, task)
    rows = describe_layers(model)
    counts = count_params(model)
    assert sum(row["params"] for row in rows) == counts["total_params"]
    assert sum(row["trainable_params"] for row in rows) == counts["trainable_params"]
    backbone_rows = [row for row in rows if row["part"] == "backbone"]
    assert [row["index"] for row in backbone_rows] == list(range(len(model.get_layer("backbone").layers)))
    parts = [row["part"] for row in rows]
    assert parts == sorted(parts, key=["preprocessing", "backbone", "head"].index)
    assert rows[-1]["name"] == "predictions" and rows[-1]["output_shape"] == "(None, 10)"


def test_describe_layers_reports_freezing_and_shapes(preset_model):
    rows = describe_layers(preset_model("vgg16-finetune"))
    by_name = {row["name"]: row for row in rows}
    assert by_name["block3_conv3"] == {
        "name": "block3_conv3",
        "type": "Conv2D",
        "output_shape": "(None, 8, 8, 256)",
        "params": 3 * 3 * 256 * 256 + 256,
        "trainable_params": 0,
        "trainable": False,
        "part": "backbone",
        "index": 9,
    }
    assert by_name["block4_conv1"]["trainable"] and by_name["block4_conv1"]["index"] == 11
    assert by_name["dense256"]["part"] == "head" and by_name["caffe_preprocess"]["part"] == "preprocessing"


# ---------------------------------------------------------------- losses, metrics, precision


def test_loss_and_metric_match_the_output_kind():
    assert isinstance(loss_for(2), keras.losses.BinaryCrossentropy)
    assert isinstance(loss_for(10), keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(loss_for(10, 0.1), SparseCategoricalCrossentropyWithSmoothing)
    assert [type(metric) for metric in metrics_for(2)] == [keras.metrics.BinaryAccuracy]
    assert [type(metric) for metric in metrics_for(10)] == [keras.metrics.SparseCategoricalAccuracy]
    assert all(metric.name == "accuracy" for metric in metrics_for(2) + metrics_for(10))
    # The config is saved as JSON with a compiled model, so NumPy numbers must not leak into it.
    assert json.loads(json.dumps(loss_for(np.int64(10), np.float64(0.1)).get_config()))["num_classes"] == 10


def test_label_smoothing_loss_computed_by_hand():
    # Smoothing 0.3 over 3 classes: targets become 0.7 + 0.1 for the true class and 0.1 for the others.
    loss = loss_for(3, label_smoothing=0.3)
    expected = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    assert float(loss(np.array([0]), np.array([[0.7, 0.2, 0.1]]))) == pytest.approx(expected, rel=1e-5)


def test_binary_model_learns_from_integer_labels():
    """One sigmoid unit, labels 0 and 1 as plain integers: it must learn a split a glance can see."""
    labels = np.arange(32) % 2
    rng = np.random.default_rng(0)
    # Class 1 is bright, class 0 is dark, with noise: separable, but not by one fixed pixel.
    pictures = np.where(labels[:, None, None, None] == 1, 170, 40) + rng.integers(0, 60, size=(32, 32, 32, 3))
    pictures = pictures.astype(np.uint8)
    model = build_model(config_for_preset("seed-cnn", task="binary"), 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss_for(2), metrics=metrics_for(2))
    history = model.fit(pictures, labels, epochs=8, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and history.history["loss"][-1] < history.history["loss"][0]
    probabilities = model.predict(pictures, verbose=0)
    assert probabilities.shape == (32, 1)
    by_hand = float(np.mean((probabilities[:, 0] > 0.5) == labels))
    assert by_hand >= 0.9  # chance is 0.5
    # Keras' accuracy for one sigmoid unit and integer labels is the same fraction, counted by hand.
    assert model.evaluate(pictures, labels, verbose=0, return_dict=True)["accuracy"] == pytest.approx(by_hand)


@pytest.mark.parametrize("backbone", ["vit-tiny", "fast-cnn"])
def test_mixed_precision_models_still_output_float32_probabilities(backbone):
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model(custom(backbone), 10)
    finally:
        keras.config.set_dtype_policy(previous)
    probabilities = model(images(2), training=False)
    assert probabilities.dtype == "float32"
    np.testing.assert_allclose(np.asarray(probabilities).sum(axis=1), 1.0, rtol=1e-3)
