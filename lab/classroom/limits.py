"""The class's limits and challenge, set by the teacher and kept in the store.

Limits bound what a student may queue, so that thirty students share one small server:
epochs, training images, input size, which presets, and how many runs one student may have
waiting. Each refusal names the limit and the student's value. The challenge is a task plus
a budget (training seconds, parameters): the leaderboard then ranks only the runs that meet it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lab.config import PRESETS, RunConfig
from lab.store.owners import Person, check_teacher
from lab.store.runs import Store

LIMITS_KEY = "class_limits"
CHALLENGE_KEY = "class_challenge"
DEFAULT_QUEUED_PER_STUDENT = 2
CIFAR10_TRAIN_IMAGES = 50_000  # what a run without a subset trains on (before the validation split)


class LimitError(ValueError):
    """A run the class's limits do not allow; the message names the limit."""


@dataclass(frozen=True)
class ClassLimits:
    """What one student may queue. None means no limit."""

    max_epochs: int | None = None
    max_train_images: int | None = None
    max_input_size: int | None = None
    allowed_presets: tuple[str, ...] | None = None
    max_queued_per_student: int = DEFAULT_QUEUED_PER_STUDENT

    def __post_init__(self) -> None:
        for name in ("max_epochs", "max_train_images", "max_input_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1, or no limit; got {value!r}.")
        if not isinstance(self.max_queued_per_student, int) or self.max_queued_per_student < 1:
            raise ValueError(f"max_queued_per_student must be at least 1; got {self.max_queued_per_student!r}.")
        if self.allowed_presets is not None:
            unknown = [name for name in self.allowed_presets if name not in PRESETS and name != "custom"]
            if unknown or not self.allowed_presets:
                raise ValueError(f"allowed presets must be some of: {', '.join(PRESETS)}, custom; got {list(self.allowed_presets)}.")

    def check(self, config: RunConfig) -> None:
        """Raise LimitError, naming the limit, when `config` asks for more than the class allows."""
        if self.allowed_presets is not None and config.model not in self.allowed_presets:
            raise LimitError(f"the class allows only these models: {', '.join(self.allowed_presets)} (you chose {config.model}).")
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            raise LimitError(f"the class allows at most {self.max_epochs} epochs (you asked for {config.epochs}).")
        images = config.subset or CIFAR10_TRAIN_IMAGES
        if self.max_train_images is not None and images > self.max_train_images:
            raise LimitError(
                f"the class allows at most {self.max_train_images:,} training images (you asked for {images:,}): "
                "set 'Training images' to that or fewer."
            )
        if self.max_input_size is not None and config.input_size > self.max_input_size:
            raise LimitError(f"the class allows an input size of at most {self.max_input_size} pixels (you asked for {config.input_size}).")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["allowed_presets"] = list(self.allowed_presets) if self.allowed_presets is not None else None
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ClassLimits:
        values = {key: value for key, value in (values or {}).items() if key in {field.name for field in dataclasses.fields(cls)}}
        if values.get("allowed_presets") is not None:
            values["allowed_presets"] = tuple(values["allowed_presets"])
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


def load_limits(store: Store) -> ClassLimits:
    """The class's limits (the defaults until the teacher saves some)."""
    return ClassLimits.from_dict(store.get_setting(LIMITS_KEY))


def save_limits(store: Store, limits: ClassLimits, *, by: Person) -> None:
    """Keep the class's limits; only the teacher may (NotTheTeacherError, a PermissionError, for anyone else)."""
    check_teacher(by, "set the class's limits")
    store.set_setting(LIMITS_KEY, limits.to_dict())


def load_challenge(store: Store) -> Challenge | None:
    values = store.get_setting(CHALLENGE_KEY)
    return Challenge(**values) if values else None


def save_challenge(store: Store, challenge: Challenge | None, *, by: Person) -> None:
    """Set (or with None, remove) the class's challenge; only the teacher may."""
    check_teacher(by, "set the class's challenge")
    store.set_setting(CHALLENGE_KEY, dataclasses.asdict(challenge) if challenge is not None else None)
