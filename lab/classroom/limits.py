"""The class's limits and challenge, set by the teacher and kept in the store.

Limits bound what a student may queue, so that thirty students share one small server:
epochs, training images, input size, which presets, and how many runs one student may have
waiting. Class-wide caps bound what everyone together may add: runs waiting in total, and new
people allowed to queue their first run per minute (so that many tabs with many names cannot
fill the queue). Limits count people: an identity is one browser's, or with login the account.
Each refusal names the limit and the student's value; `problems` lists every limit a run breaks at
once, and `fit_to_limits` brings a run within them, saying in words what it changed. The teacher may
also switch some pretrained backbones to start from random numbers (`weights_none`) when their
ImageNet weights are not on the server (lab/classroom/preflight.py). The challenge is a task plus
a budget (training seconds, parameters): the leaderboard then ranks only the runs that meet it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lab.config import INPUT_SIZES, PRESETS, PRETRAINED_BACKBONES, RunConfig, config_for_preset
from lab.store.interface import RunStore
from lab.store.owners import Person, check_teacher
from lab.store.runs import QueueCaps

LIMITS_KEY = "class_limits"
CHALLENGE_KEY = "class_challenge"
DEFAULT_QUEUED_PER_STUDENT = 2
# For a class of about thirty: more waiting runs than one each, fewer than everyone's two at once;
# and the whole class may arrive within one minute, but not three classes' worth of names.
DEFAULT_WAITING_TOTAL = 40
DEFAULT_NEW_STUDENTS_PER_MINUTE = 30
CIFAR10_TRAIN_IMAGES = 50_000  # what a run without a subset trains on (before the validation split)


class LimitError(ValueError):
    """A run the class's limits do not allow; the message names the limit."""


@dataclass(frozen=True)
class ClassLimits:
    """What one student may queue, and what the whole class may have waiting. None means no limit."""

    max_epochs: int | None = None
    max_train_images: int | None = None
    max_input_size: int | None = None
    allowed_presets: tuple[str, ...] | None = None
    max_queued_per_student: int = DEFAULT_QUEUED_PER_STUDENT
    max_waiting_total: int | None = DEFAULT_WAITING_TOTAL
    max_new_students_per_minute: int | None = DEFAULT_NEW_STUDENTS_PER_MINUTE
    # Pretrained backbones the teacher switched to weights "none" (their ImageNet file is not on the server):
    # runs of them start from random numbers instead of failing (lab/classroom/preflight.py).
    weights_none: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_epochs", "max_train_images", "max_input_size", "max_waiting_total", "max_new_students_per_minute"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1, or no limit; got {value!r}.")
        if not isinstance(self.max_queued_per_student, int) or self.max_queued_per_student < 1:
            raise ValueError(f"max_queued_per_student must be at least 1; got {self.max_queued_per_student!r}.")
        if self.allowed_presets is not None:
            unknown = [name for name in self.allowed_presets if name not in PRESETS and name != "custom"]
            if unknown or not self.allowed_presets:
                raise ValueError(f"allowed presets must be some of: {', '.join(PRESETS)}, custom; got {list(self.allowed_presets)}.")
        unknown = [name for name in self.weights_none if name not in PRETRAINED_BACKBONES]
        if unknown:
            raise ValueError(f"weights_none names pretrained backbones ({', '.join(PRETRAINED_BACKBONES)}); got {unknown}.")

    def check(self, config: RunConfig) -> None:
        """Raise LimitError when `config` asks for more than the class allows; its message names every limit it breaks.

        The allowed presets are checked on the whole configuration (`preset_differences`), not on
        its label alone: a modified client sending a preset's name with another network is refused.
        """
        problems = self.problems(config)
        if problems:
            raise LimitError("; ".join(problems))

    def problems(self, config: RunConfig) -> list[str]:
        """Every limit `config` breaks, each in a sentence naming the limit and the student's value; empty when it fits."""
        found = []
        if self.allowed_presets is not None and "custom" not in self.allowed_presets:
            if config.model not in self.allowed_presets:
                found.append(f"the class allows only these models: {', '.join(self.allowed_presets)} (you chose {config.model})")
            elif changed := preset_differences(config, config.model, limits=self):
                found.append(
                    f"the class allows only these models: {', '.join(self.allowed_presets)}, as they are; your {config.model} "
                    f"has a different {', '.join(changed)}. Choose the preset again to reset them, or ask the teacher to allow custom"
                )
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            found.append(f"the class allows at most {self.max_epochs} epochs (you asked for {config.epochs})")
        images = config.subset or CIFAR10_TRAIN_IMAGES
        if self.max_train_images is not None and images > self.max_train_images:
            found.append(
                f"the class allows at most {self.max_train_images:,} training images (you asked for {images:,}): "
                "set 'Training images' to that or fewer"
            )
        if self.max_input_size is not None and config.input_size > self.max_input_size:
            found.append(f"the class allows an input size of at most {self.max_input_size} pixels (you asked for {config.input_size})")
        return found

    def caps(self) -> QueueCaps:
        """The queue's caps for one student's request (checked by the store, in the transaction that queues)."""
        return QueueCaps(self.max_queued_per_student, self.max_waiting_total, self.max_new_students_per_minute)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["allowed_presets"] = list(self.allowed_presets) if self.allowed_presets is not None else None
        values["weights_none"] = list(self.weights_none)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ClassLimits:
        values = {key: value for key, value in (values or {}).items() if key in {field.name for field in dataclasses.fields(cls)}}
        if values.get("allowed_presets") is not None:
            values["allowed_presets"] = tuple(values["allowed_presets"])
        values["weights_none"] = tuple(values.get("weights_none") or ())
        return cls(**values)


@dataclass(frozen=True)
class Challenge:
    """A task and a budget: only runs on that task within the budget take part in the ranking."""

    task: str
    max_train_seconds: float | None = None
    max_params: int | None = None

    def why_not(self, row: dict) -> str | None:
        """Why a results row does not meet the challenge, or None when it does."""
        if row.get("task") != self.task:
            return f"another task ({row.get('task')}, not {self.task})"
        seconds = row.get("train_seconds")
        if self.max_train_seconds is not None and (seconds is None or seconds > self.max_train_seconds):
            return f"trained {seconds or 0:.0f} s, over the {self.max_train_seconds:.0f} s limit"
        params = row.get("total_params")
        if self.max_params is not None and (params is None or params > self.max_params):
            return f"{params or 0:,} parameters, over the {self.max_params:,} limit"
        return None

    def describe(self) -> str:
        budget = []
        if self.max_train_seconds is not None:
            budget.append(f"at most {self.max_train_seconds:.0f} s of training")
        if self.max_params is not None:
            budget.append(f"at most {self.max_params:,} parameters")
        return f"{self.task}" + (f", {' and '.join(budget)}" if budget else "")


# The settings a student may change and still run a preset, as the Train form lets them without
# switching to "custom": which task and images to learn from, for how long, and how the weights
# learn. How long is bounded by the other limits (epochs, training images). Every other field is
# the preset's own: the network (backbone, head, freezing, input size, weights, dropout, width)
# and what sets the cost of each image (batch size, number format, test-time augmentation), so
# that a preset the teacher allows costs what the teacher expects per image.
PRESET_FREE_FIELDS = frozenset(
    {
        "task", "subset", "val_fraction", "seed", "epochs", "optimizer", "learning_rate", "weight_decay", "lr_schedule",
        "label_smoothing", "augment", "ema", "keep_best", "fine_labels",
    }
)  # fmt: skip


def preset_differences(config: RunConfig, preset: str, *, limits: ClassLimits | None = None) -> list[str]:
    """The fields of `config` that differ from preset `preset`'s, apart from PRESET_FREE_FIELDS; empty when it is that preset.

    A run counts as preset P only when it carries P's name and every other field is P's. Under
    `limits`, P is the class's version of it: P fitted to the limits (`fit_to_limits`) for the run's
    own training images, so a batch lowered to fit a small subset, or the weights the teacher
    switched to "none", are still P.
    """
    if preset not in PRESETS:
        return ["model"]
    reference = config_for_preset(preset).to_dict()
    if limits is not None:
        reference.update(subset=config.subset, val_fraction=config.val_fraction)  # free fields: the batch must fit these
        _fit_values(reference, limits)
    return [
        field.name
        for field in dataclasses.fields(RunConfig)
        if field.name not in PRESET_FREE_FIELDS and getattr(config, field.name) != reference[field.name]
    ]


def fit_to_limits(config: RunConfig, limits: ClassLimits) -> tuple[RunConfig, list[str]]:
    """`config` brought within the class's limits, and what changed, each in a few words ("epochs: 10 → 3 (the class's most)").

    Epochs, training images and input size come down to the limits; a batch larger than the training
    images left becomes the largest power of two that fits; a backbone the teacher switched to weights
    "none" starts from random numbers. Nothing else changes, so a preset stays that preset (for the class).
    """
    values = config.to_dict()
    changes = _fit_values(values, limits)
    return (RunConfig.from_dict(values), changes) if changes else (config, [])


def _fit_values(values: dict[str, Any], limits: ClassLimits) -> list[str]:
    """Fit a config's fields (a dict, changed in place) to `limits`; returns what changed, in words."""
    changes = []

    def change(name: str, label: str, new: Any, why: str) -> None:
        changes.append(f"{label}: {_shown(values[name])} → {_shown(new)} ({why})")
        values[name] = new

    if limits.max_epochs is not None and values["epochs"] > limits.max_epochs:
        change("epochs", "epochs", limits.max_epochs, "the class's most")
    if limits.max_train_images is not None and (values["subset"] or CIFAR10_TRAIN_IMAGES) > limits.max_train_images:
        change("subset", "training images", limits.max_train_images, "the class's most")
    if limits.max_input_size is not None and values["input_size"] > limits.max_input_size:
        allowed = max((size for size in INPUT_SIZES if size <= limits.max_input_size), default=INPUT_SIZES[0])
        change("input_size", "input size", allowed, "the class's largest")
    if values["subset"] is not None:
        train_images = int(values["subset"] * (1 - values["val_fraction"]))
        if values["batch_size"] > train_images >= 1:
            change("batch_size", "batch size", 2 ** (train_images.bit_length() - 1), "a batch cannot hold more images than there are")
    if values["backbone"] in limits.weights_none and values["weights"] == "imagenet":
        change("weights", "weights", "none", "no ImageNet weights on this server: the backbone starts from random numbers")
    return changes


def _shown(value: Any) -> str:
    return "all 50,000" if value is None else f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def load_limits(store: RunStore) -> ClassLimits:
    """The class's limits (the defaults until the teacher saves some)."""
    return ClassLimits.from_dict(store.get_setting(LIMITS_KEY))


def save_limits(store: RunStore, limits: ClassLimits, *, by: Person) -> None:
    """Keep the class's limits; only the teacher may (NotTheTeacherError, a PermissionError, for anyone else)."""
    check_teacher(by, "set the class's limits")
    store.set_setting(LIMITS_KEY, limits.to_dict())


def load_challenge(store: RunStore) -> Challenge | None:
    values = store.get_setting(CHALLENGE_KEY)
    return Challenge(**values) if values else None


def save_challenge(store: RunStore, challenge: Challenge | None, *, by: Person) -> None:
    """Set (or with None, remove) the class's challenge; only the teacher may."""
    check_teacher(by, "set the class's challenge")
    store.set_setting(CHALLENGE_KEY, dataclasses.asdict(challenge) if challenge is not None else None)
