"""RunConfig: presets resolve, and every bad setting is refused with a message naming it."""

import dataclasses

import pytest

from lab.config import PRESETS, RunConfig, config_for_preset, task_class_names


def test_defaults_are_the_reports_small_cnn():
    config = RunConfig()
    assert (config.backbone, config.weights, config.freeze_depth, config.input_size) == ("seed-cnn", "none", 0, 32)


def test_every_preset_builds_a_valid_config():
    for name in PRESETS:
        assert config_for_preset(name).model == name


def test_finetune_preset_matches_the_report():
    config = config_for_preset("vgg16-finetune")
    assert (config.backbone, config.freeze_depth, config.head, config.learning_rate) == ("vgg16", 11, "dense256", 1e-4)


def test_overrides_apply_on_top_of_a_preset():
    config = config_for_preset("vgg16-frozen", weights="none", epochs=3)
    assert (config.weights, config.epochs, config.freeze_depth) == ("none", 3, None)


def test_replace_revalidates():
    with pytest.raises(ValueError, match="epochs"):
        dataclasses.replace(RunConfig(), epochs=0)


def test_round_trip_through_a_dict_ignores_unknown_keys():
    config = config_for_preset("resnet50-frozen", weights="none")
    assert RunConfig.from_dict({**config.to_dict(), "from_a_future_version": 1}) == config


@pytest.mark.parametrize(
    ("fields", "named_setting"),
    [
        ({"epochs": -1}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"freeze_depth": -2}, "freeze_depth"),
        ({"input_size": 33}, "input_size"),
        ({"task": "pair:cat,unicorn"}, "pair"),
        ({"task": "pair:cat,cat"}, "pair"),
        ({"task": "pair:cat"}, "pair"),
        ({"task": "mnist"}, "task"),
        ({"backbone": "alexnet"}, "backbone"),
        ({"model": "not-a-preset"}, "model"),
        ({"optimizer": "rmsprop2"}, "optimizer"),
        ({"optimizer": "muon", "backbone": "vgg16", "weights": "imagenet", "freeze_depth": 15}, "optimizer 'muon'"),
        ({"lr_schedule": "sometimes"}, "lr_schedule"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 0.7}, "val_fraction"),
        ({"subset": 5}, "subset"),
        ({"subset": 200, "batch_size": 512}, "batch_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"label_smoothing": 0.9}, "label_smoothing"),
        ({"seed": -1}, "seed"),
        ({"weights": "imagenet"}, "weights"),  # seed-cnn has no ImageNet weights
        ({"backbone": "vgg16", "weights": "weights.txt"}, "weights"),
        ({"precision": "float8"}, "precision"),
        ({"width": 1.0}, "width"),  # seed-cnn has one shape
        ({"backbone": "fast-cnn", "width": 0.0}, "width"),
        ({"backbone": "fast-cnn", "width": 3.0}, "width"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(fields, named_setting):
    with pytest.raises(ValueError, match=named_setting):
        RunConfig(**fields)


def test_task_class_names():
    assert len(task_class_names("cifar10")) == 10
    assert task_class_names("binary") == ("animal", "vehicle")
    assert task_class_names("pair: Cat , dog") == ("cat", "dog")
    assert task_class_names("one-vs-rest:Cat") == ("not cat", "cat")  # label 1 is the class the task looks for


def test_one_vs_rest_names_one_known_class_and_may_learn_the_fine_labels():
    from lab.config import groups_every_class, positive_class

    with pytest.raises(ValueError, match="one-vs-rest task names one CIFAR-10 class"):
        RunConfig(task="one-vs-rest:unicorn")
    assert groups_every_class("one-vs-rest:cat") and groups_every_class("binary") and not groups_every_class("pair:cat,dog")
    assert positive_class("one-vs-rest:cat") == 1 and positive_class("binary") is None
    RunConfig(task="one-vs-rest:ship", fine_labels=True)  # its two labels group all ten classes, as binary's do
