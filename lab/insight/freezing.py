"""Frozen or fine-tuned? A plain-language note, worked out from the model itself.

`freezing_facts` counts what learns and what stays fixed, layer by layer, and
estimates what freezing saves; `freezing_summary` turns those facts into a few
sentences for the Train page or the command line: first one in plain words
(`plain_sentence`), then the exact counts and costs. Nothing is written per preset:
change the freeze depth and the numbers follow.

The cost estimate counts multiply-adds. Every training step runs the images
forward through the whole network. The backward pass then runs from the loss down
to the lowest layer that learns, and no further: below it, no weight needs a
gradient. Each layer it passes costs about one forward pass to send the gradient
on to the layer below, and one more to work out its own weights' gradient, so
training every layer costs about three forward passes per step.
"""

from __future__ import annotations

import keras
import numpy as np

from lab.config import OPTIMIZER_STATE, RunConfig
from lab.models.pretrained import InferenceModeBackbone
from lab.models.registry import count_params, describe_layers
from lab.train.feature_cache import cache_decision

BYTES_PER_NUMBER = 4  # float32
# What the optimiser's state per learning parameter (lab/config.OPTIMIZER_STATE) is, in words.
OPTIMIZER_STATE_WORDS = {
    "adam": "Adam's two running averages (of the gradient and of its square)",
    "adamw": "AdamW's two running averages (of the gradient and of its square)",
    "sgd": "SGD's momentum (a running average of the gradient)",
    "muon": "Muon's momentum (a running average of the gradient)",
}


def freezing_facts(model: keras.Model, config: RunConfig) -> dict:
    """The numbers behind freezing_summary, as plain values."""
    counts = count_params(model)
    rows = describe_layers(model)
    backbone = [row for row in rows if row["part"] == "backbone"]
    profile = compute_profile(model)
    forward = sum(macs for macs, _ in profile)
    statistics = _batchnorm_statistics(model)
    numbers_per_parameter = 1 + OPTIMIZER_STATE[config.optimizer] + (1 if config.ema else 0)  # gradient + state (+ average)
    return {
        **counts,
        "trainable_share": counts["trainable_params"] / max(counts["total_params"], 1),
        "frozen_backbone_layers": [row for row in backbone if not row["trainable"]],
        "learning_backbone_layers": [row for row in backbone if row["trainable"]],
        "learning_head_layers": [row["name"] for row in rows if row["part"] == "head" and row["trainable_params"] > 0],
        "forward_macs": forward,
        "step_cost_share": training_step_macs(profile) / max(3 * forward, 1),
        "everything_learns": all(learns for macs, learns in profile if macs > 0),
        "numbers_per_parameter": numbers_per_parameter,
        "training_state_bytes": numbers_per_parameter * BYTES_PER_NUMBER * counts["trainable_params"],
        "training_state_bytes_all": numbers_per_parameter * BYTES_PER_NUMBER * (counts["total_params"] - statistics),
        "batchnorm_statistics": statistics,
        # isinstance, so subclasses count too (fast-cnn's FusedBatchNormalization, lab/models/fused_layers.py).
        "batchnorm_layers": sum(isinstance(layer, keras.layers.BatchNormalization) for layer in _backbone_layers(model)),
        # From the model when it holds loaded weights; from the config when it was built without them to save time.
        "starts_pretrained": any(isinstance(layer, InferenceModeBackbone) for layer in model.layers)
        or (config.is_pretrained and config.weights != "none"),
        "feature_cache": cache_decision(config)[0],
    }


def freezing_summary(model: keras.Model, config: RunConfig) -> str:
    """A few sentences on what learns, what stays fixed, and what that costs, one per line.

    `model` may be built with weights "none" (quicker, and works offline): the counts
    and costs do not depend on the weights' values; `config` says where they will come from.
    """
    facts = freezing_facts(model, config)
    lines = [
        plain_sentence(facts, config),
        _counts(facts),
        _which_layers(facts),
        _cost(facts, config),
        _memory(facts, config),
        _batchnorm(facts),
        _random_start(facts, config),
    ]
    return "\n".join(line for line in lines if line)


def plain_sentence(facts: dict, config: RunConfig) -> str:
    """What learns, in one sentence a student reads first: no counts, no jargon until the term in brackets."""
    frozen, learning = facts["frozen_backbone_layers"], facts["learning_backbone_layers"]
    pretrained = facts["starts_pretrained"]
    if not frozen:
        if pretrained:
            return (
                "Every layer learns: the network starts from what it learned on ImageNet's photos and adjusts all of it "
                "to these pictures (fine-tuning the whole network)."
            )
        return "Every layer of this network learns from these pictures, starting from random numbers (training from scratch)."
    if not learning:
        if pretrained:
            return (
                "Only the small part on top learns; the big part, which already knows ImageNet's photos, stays as it is, "
                "so training is quick (a frozen backbone)."
            )
        return (
            "Only the small part on top learns, and the big part stays as it is, but it holds random numbers "
            "(weights none), so it has little to offer: a frozen backbone pays off with ImageNet weights."
        )
    start = "what it learned on ImageNet's photos" if pretrained else "its random starting numbers"
    return (
        f"The backbone's first {len(frozen)} layers stay as they are; the {len(learning)} above them and the part on top "
        f"learn, adjusting {start} to these pictures (fine-tuning)."
    )


def _counts(facts: dict) -> str:
    learning, total, fixed = facts["trainable_params"], facts["total_params"], facts["non_trainable_params"]
    if fixed == 0:
        return f"All {total:,} parameters learn; none stay fixed."
    text = f"{learning:,} of {total:,} parameters learn ({facts['trainable_share']:.2%}); the other {fixed:,} stay fixed"
    if facts["batchnorm_statistics"] == fixed:
        return f"{learning:,} of {total:,} parameters learn; the other {fixed:,} are BatchNorm's running means and variances, which are averaged, never learned."
    if facts["batchnorm_statistics"]:
        text += f" ({facts['batchnorm_statistics']:,} of them BatchNorm's running means and variances, which are averaged, never learned)"
    return text + "."


def _span(rows: list[dict]) -> str:
    if len(rows) == 1:
        return f"layer {rows[0]['index']} ({rows[0]['name']})"
    return f"layers {rows[0]['index']}-{rows[-1]['index']} ({rows[0]['name']} to {rows[-1]['name']})"


def _which_layers(facts: dict) -> str:
    frozen, learning = facts["frozen_backbone_layers"], facts["learning_backbone_layers"]
    head = ", ".join(facts["learning_head_layers"]) or "none"
    if frozen and not learning:
        return f"The whole backbone is frozen, {_span(frozen)}; only the head learns ({head})."
    if learning and not frozen:
        return f"Every layer learns: the backbone's {_span(learning)} and the head ({head})."
    if not frozen and not learning:
        return f"The head learns ({head})."
    stay = "stays" if len(frozen) == 1 else "stay"
    learn = "learns" if len(learning) == 1 else "learn"
    return f"Backbone {_span(frozen)} {stay} frozen; {_span(learning)} {learn}, and so does the head ({head})."


def _cost(facts: dict, config: RunConfig) -> str:
    forward = f"about {facts['forward_macs'] / 1e6:,.1f} million multiply-adds per image"
    if facts["everything_learns"]:
        return (
            f"Every layer learns, so each step runs forward through the network ({forward}) and the backward pass "
            "back through all of it, about twice the forward work: three forward passes' worth in all."
        )
    text = (
        f"Each step still runs forward through every layer ({forward}), but the backward pass stops at the lowest layer "
        f"that learns, so a step costs roughly {facts['step_cost_share']:.0%} of training every layer."
    )
    if facts["feature_cache"]:
        text += " Better still, the frozen backbone's outputs are computed once and cached, so after that only the head runs."
    return text


def _memory(facts: dict, config: RunConfig) -> str:
    kept = f"its gradient and {OPTIMIZER_STATE_WORDS[config.optimizer]}"
    if config.ema:
        kept += ", and an averaged copy of itself (weight averaging)"
    text = (
        f"While training, each learning parameter also needs {kept}: {facts['numbers_per_parameter']} x 4 bytes x "
        f"{facts['trainable_params']:,} = {_bytes(facts['training_state_bytes'])}"
    )
    if facts["training_state_bytes_all"] > facts["training_state_bytes"]:
        text += f", against {_bytes(facts['training_state_bytes_all'])} if every weight learned"
    return text + " (the images' activations kept for the backward pass come on top)."


def _batchnorm(facts: dict) -> str:
    count = facts["batchnorm_layers"]
    if not count:
        return ""
    if facts["starts_pretrained"]:
        return (
            f"The backbone's {count} BatchNorm layers always run in inference mode: they keep ImageNet's mean and variance "
            "of each channel, even in the layers that learn (there only their scale and shift change)."
        )
    if facts["frozen_backbone_layers"]:
        return (
            f"Of the backbone's {count} BatchNorm layers, the frozen ones run in inference mode with the statistics they hold; "
            "the ones that learn normalise each training batch by its own mean and variance."
        )
    return f"The backbone's {count} BatchNorm layers normalise each training batch by its own mean and variance."


def _random_start(facts: dict, config: RunConfig) -> str:
    if config.is_pretrained and config.weights == "none" and facts["frozen_backbone_layers"]:
        return (
            "The backbone starts from random numbers (weights none), so its frozen layers compute random features "
            "for the head to learn from: freezing pays off with ImageNet weights."
        )
    return ""


def _bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count:,.0f} bytes"


# ---------------------------------------------------------------- counting multiply-adds


def compute_profile(model: keras.Model, parent_trainable: bool = True) -> list[tuple[int, bool]]:
    """(multiply-adds per image, learns?) for every layer, nested models opened up, input side first.

    A layer's multiply-adds are its kernels' sizes times the positions it applies them
    at: a 3x3 convolution from 32 to 64 channels over a 30x30 output does
    3*3*32*64 * 900. Biases, normalisation and attention's score matrix are left out.
    """
    profile = []
    for layer in model.layers:
        learns = parent_trainable and layer.trainable
        if isinstance(layer, keras.Model):
            profile.extend(compute_profile(layer, learns))
            continue
        kernels = [weight for weight in layer.weights if len(weight.shape) >= 2]
        has_trainable_kernel = learns and any(len(weight.shape) >= 2 for weight in layer.trainable_weights)
        profile.append((_kernel_size(kernels) * _positions(layer), has_trainable_kernel))
    return profile


def _kernel_size(weights) -> int:
    return int(sum(np.prod(weight.shape, dtype=np.int64) for weight in weights))


def _positions(layer) -> int:
    try:
        shape = layer.output.shape[1:-1]  # everything but the batch and the channels
    except (AttributeError, ValueError):
        return 1
    return int(np.prod([size or 1 for size in shape], dtype=np.int64))


def training_step_macs(profile: list[tuple[int, bool]]) -> int:
    """Multiply-adds of one training step per image: forward everywhere, backward down to the lowest learning layer."""
    forward = sum(macs for macs, _ in profile)
    learning = [index for index, (_, learns) in enumerate(profile) if learns]
    if not learning:
        return forward
    backward = 0
    for index in range(learning[0], len(profile)):
        macs, learns = profile[index]
        if index > learning[0]:
            backward += macs  # passing the gradient down to the layer below
        if learns:
            backward += macs  # this layer's own weight gradients
    return forward + backward


def _backbone_layers(model: keras.Model) -> list:
    """The layers of the model's nested backbone (none when it has no layer called "backbone")."""
    return next((layer.layers for layer in model.layers if layer.name == "backbone"), [])


def _batchnorm_statistics(model: keras.Model) -> int:
    """How many numbers BatchNorm's running means and variances hold: fixed, but never frozen by choice."""
    return sum(
        int(np.prod(weight.shape)) for weight in model.non_trainable_weights if weight.path.endswith(("moving_mean", "moving_variance"))
    )
