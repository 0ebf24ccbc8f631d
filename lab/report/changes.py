"""What a run changed from its recipe, in a few words: "augment, batch 32, fine labels".

Two rows of the results table that both say "seed-cnn · binary" can differ in a dozen
settings; this names the ones that differ from the preset the run started from, so a
student sees at a glance why one did better. A "custom" run is compared with the
preset of the same backbone it is closest to.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lab.config import PRESETS, RunConfig, config_for_preset

# Shown elsewhere in the results table (task, epochs, data) or naming the row itself (model).
NOT_LISTED = ("task", "model", "epochs", "subset")
# How each on/off setting reads when on, and when off.
SWITCHES = {
    "augment": ("augment", "no augment"),
    "tta": ("TTA", "no TTA"),
    "ema": ("weight averaging", "no weight averaging"),
    "keep_best": ("best epoch's weights", "last epoch's weights"),
    "fine_labels": ("fine labels", "no fine labels"),
}


def describe_change(name: str, value: Any) -> str:
    """One setting's value in a few words: ("batch_size", 32) -> "batch 32"."""
    if name in SWITCHES:
        on, off = SWITCHES[name]
        return on if value else off
    if name == "freeze_depth":
        return "whole backbone frozen" if value is None else f"{value} layers frozen"
    formats = {
        "backbone": "{}",
        "head": "{} head",
        "input_size": "{} px input",
        "weights": "weights {}",
        "dropout": "dropout {:g}",
        "width": "width {:g}",
        "batch_size": "batch {}",
        "optimizer": "{}",
        "learning_rate": "lr {:g}",
        "weight_decay": "weight decay {:g}",
        "lr_schedule": "{} schedule",
        "label_smoothing": "label smoothing {:g}",
        "val_fraction": "{:.0%} validation",
        "seed": "seed {}",
        "precision": "{}",
    }
    if value is None:
        return f"{name} default"
    return formats.get(name, name.replace("_", " ") + " {}").format(value)


def differences(config: RunConfig, recipe: RunConfig) -> list[str]:
    """The settings of `config` that differ from `recipe`, described, in RunConfig's field order."""
    changed = []
    for field in dataclasses.fields(RunConfig):
        value = getattr(config, field.name)
        if field.name not in NOT_LISTED and value != getattr(recipe, field.name):
            changed.append(describe_change(field.name, value))
    return changed


def changes_summary(config_values: RunConfig | dict) -> str:
    """A stored run's config (a RunConfig, or a dict) -> "augment, batch 32, fine labels"; "" when it is its preset as is.

    The run is compared with the preset it started from, on its own task; a custom run with the
    preset of its backbone that it differs from least (or RunConfig's defaults when there is none).
    """
    try:
        config = config_values if isinstance(config_values, RunConfig) else RunConfig.from_dict(config_values)
    except (TypeError, ValueError):
        return ""  # a config this version cannot read: the row still shows, without the summary
    names = [config.model] if config.model in PRESETS else [n for n, p in PRESETS.items() if p["fields"].get("backbone") == config.backbone]
    recipes = []
    for name in names:
        try:
            recipes.append(config_for_preset(name, task=config.task))
        except ValueError:  # a preset that cannot take this task
            continue
    candidates = [differences(config, recipe) for recipe in recipes or [RunConfig(task=config.task)]]
    return ", ".join(min(candidates, key=len))
