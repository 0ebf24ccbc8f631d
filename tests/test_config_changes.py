"""The results table's "changed from the preset" column: which settings a run changed, in a few words."""

from lab.config import FAST_RECIPE, RunConfig, config_for_preset
from lab.report.changes import changes_summary, describe_change


def test_a_preset_run_as_it_is_changes_nothing():
    assert changes_summary(config_for_preset("seed-cnn", task="binary", epochs=5, subset=2000).to_dict()) == ""
    assert changes_summary(config_for_preset("fast-cnn").to_dict()) == ""


def test_the_binary_recipe_lists_every_setting_it_changed_in_field_order():
    config = config_for_preset(
        "seed-cnn", task="binary", epochs=5, fine_labels=True, augment=True, tta=True, ema=True, keep_best=False,
        lr_schedule="onecycle", learning_rate=2e-3, batch_size=32, val_fraction=0.02,
    )  # fmt: skip
    assert changes_summary(config.to_dict()) == (
        "batch 32, lr 0.002, onecycle schedule, augment, TTA, weight averaging, last epoch's weights, fine labels, 2% validation"
    )


def test_a_custom_run_is_compared_with_the_closest_preset_of_its_backbone():
    narrower = RunConfig(model="custom", width=0.5, **FAST_RECIPE)
    assert changes_summary(narrower.to_dict()) == "width 0.5"  # the fast recipe's presets, not seed-cnn's defaults
    full = RunConfig(model="custom", width=1.0, **FAST_RECIPE)
    assert changes_summary(full.to_dict()) == ""  # exactly fast-cnn-full's recipe
    unfrozen = config_for_preset("vgg16-frozen", weights="none", freeze_depth=15, model="custom")
    assert changes_summary(unfrozen.to_dict()) == "15 layers frozen, weights none"
    assert changes_summary(RunConfig(model="custom", backbone="vit-tiny").to_dict()) == "vit-tiny"  # no preset of its own


def test_settings_read_as_words():
    assert describe_change("freeze_depth", None) == "whole backbone frozen"
    assert describe_change("augment", False) == "no augment"
    assert describe_change("input_size", 96) == "96 px input"


def test_a_config_this_version_cannot_read_gives_no_summary_rather_than_an_error():
    assert changes_summary({"epochs": -3}) == ""
