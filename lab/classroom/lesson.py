"""The guided lesson as data: the lab report's study walked through in steps, and the teacher's choices for it.

Six steps follow the report: look at the data; train a CNN from scratch; borrow a frozen pretrained
backbone; fine-tune it; compare the runs and find the mistakes; predict a new picture and see
where the network looked (Grad-CAM). Each step has a goal in one plain sentence (then the exact
term), the page to look at, one or two questions, and for a training step the settings it
prefills: a preset plus a few overrides, brought within the class's limits.

The teacher chooses which steps are on and can rewrite the questions: a `Lesson` kept in the
store's settings, which only the teacher may save. Whether the pretrained steps start from
ImageNet weights or from random ones is the class's pre-flight switch (lab/classroom/preflight.py),
which `fit_to_limits` applies like any other limit.
What each student answered and trained is kept per person (lab/classroom/lesson_progress.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lab.classroom.limits import ClassLimits, fit_to_limits, load_limits
from lab.config import RunConfig, config_for_preset
from lab.store.interface import RunStore
from lab.store.owners import Person, check_teacher

LESSON_KEY = "lesson"
QUESTION_MAX_CHARS = 300
MOST_QUESTIONS = 3
# What a lesson step trains unless the teacher's limits say less: long enough to see a network learn,
# short enough for a class sharing one server.
LESSON_EPOCHS = 3
LESSON_IMAGES = 10_000


@dataclass(frozen=True)
class Step:
    """One step of the lesson. `preset` is None for a step that trains nothing (it is about looking)."""

    id: str
    title: str
    goal: str  # one sentence a 15-year-old follows
    term: str  # then the exact term
    look_at: str  # the page to open, a path under pages/
    look_label: str  # what to look at there, in words
    questions: tuple[str, ...]
    preset: str | None = None
    overrides: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def trains(self) -> bool:
        return self.preset is not None


def _overrides(**values: Any) -> MappingProxyType:
    return MappingProxyType(values)


STEPS: tuple[Step, ...] = (
    Step(
        "data",
        "The data",
        "Look at the pictures the computer will learn from: ten kinds of things, each picture only 32 by 32 dots.",
        "The data set: CIFAR-10, 60,000 labelled 32x32 colour images in 10 classes, split into training, validation and test images.",
        "pages/explore.py",
        "Explore: the Samples and Class balance tabs",
        (
            "Which two classes do you think the computer will mix up most often, and why?",
            "Why must the test pictures never be used for training?",
        ),
    ),
    Step(
        "scratch",
        "A CNN from scratch",
        "Train a small network that starts knowing nothing and learns from these pictures alone.",
        "A convolutional neural network (CNN) trained from random initial weights: 3 convolution layers and 2 dense layers.",
        "pages/compare.py",
        "Compare: your run beside the report's 'seed-cnn' row, and the accuracy curves here",
        (
            "How did the validation accuracy change from one epoch to the next?",
            "The report's network reached 71.91% after 10 epochs on 50,000 pictures. Why might yours score differently?",
        ),
        preset="seed-cnn",
        overrides=_overrides(epochs=LESSON_EPOCHS, subset=LESSON_IMAGES),
    ),
    Step(
        "frozen",
        "A frozen pretrained backbone",
        "Borrow a big network that already learned to see from a million photos, keep it as it is, and teach only a new last layer.",
        "Transfer learning with a frozen pretrained backbone (VGG16, ImageNet weights): feature extraction, only the new head trains.",
        "pages/compare.py",
        "Compare: your frozen VGG16 beside your CNN from scratch, and its parameters (how many learn?)",
        ("Your frozen network has far more parameters than your CNN. Did it score better or worse, and why might that be?",),
        preset="vgg16-frozen",
        overrides=_overrides(epochs=LESSON_EPOCHS, subset=LESSON_IMAGES),
    ),
    Step(
        "finetune",
        "Fine-tuning",
        "Let the last blocks of the borrowed network learn too, slowly, so that they adapt to these small pictures.",
        "Fine-tuning: unfreezing the top layers of a pretrained backbone and training them with a small learning rate (1e-4).",
        "pages/compare.py",
        "Compare: fine-tuned against frozen, and the training time of each",
        (
            "Did fine-tuning beat the frozen backbone? What did it cost in training time?",
            "Why does fine-tuning use a learning rate ten times smaller than the CNN from scratch?",
        ),
        preset="vgg16-finetune",
        overrides=_overrides(epochs=LESSON_EPOCHS, subset=LESSON_IMAGES),
    ),
    Step(
        "compare",
        "Comparing and finding mistakes",
        "Put your networks side by side and look at the pictures the best one gets wrong.",
        "Model comparison on the test set: accuracy, precision, recall and F1, the confusion matrix and misclassified examples.",
        "pages/compare.py",
        "Compare: the results table, then one run's confusion matrix (click a cell to see its pictures)",
        (
            "Which of your networks did best, and how far was it from the report's figure for the same network?",
            "Which two classes did your best network confuse most? What do those pictures have in common?",
        ),
    ),
    Step(
        "predict",
        "Predicting and Grad-CAM",
        "Give your network a new picture and see which part of it the network looked at to decide.",
        "Inference on a new image, and Grad-CAM: a heat map of the regions that raised the score of the predicted class.",
        "pages/predict.py",
        "Predict: upload a picture, choose one of your runs, and open Grad-CAM",
        (
            "What did your network answer for your picture, and how sure was it?",
            "Where did the Grad-CAM map say the network looked: at the object or at the background?",
        ),
    ),
)
STEP_IDS: tuple[str, ...] = tuple(step.id for step in STEPS)
STEPS_BY_ID = {step.id: step for step in STEPS}


class LessonError(ValueError):
    """A lesson setting, a step or an answer the lesson cannot take; the message says which and why."""


@dataclass(frozen=True)
class Lesson:
    """The teacher's choices: which steps are on (kept in the lesson's order) and their questions."""

    steps_on: tuple[str, ...] = STEP_IDS
    questions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a step's own questions unless rewritten here

    def __post_init__(self) -> None:
        unknown = [step_id for step_id in (*self.steps_on, *self.questions) if step_id not in STEPS_BY_ID]
        if unknown:
            raise LessonError(f"the lesson has no step {unknown[0]!r}; its steps are: {', '.join(STEP_IDS)}.")
        if not self.steps_on:
            raise LessonError("turn on at least one step of the lesson.")
        for step_id, questions in self.questions.items():
            if not 1 <= len(questions) <= MOST_QUESTIONS:
                raise LessonError(f"step '{STEPS_BY_ID[step_id].title}' needs from 1 to {MOST_QUESTIONS} questions.")
            for question in questions:
                if not isinstance(question, str) or not question.strip() or len(question) > QUESTION_MAX_CHARS:
                    raise LessonError(f"each question needs some words, at most {QUESTION_MAX_CHARS} characters.")

    def steps(self) -> list[Step]:
        """The steps that are on, in the lesson's order, each with the teacher's questions."""
        chosen = [STEPS_BY_ID[step_id] for step_id in STEP_IDS if step_id in self.steps_on]
        return [dataclasses.replace(step, questions=tuple(self.questions.get(step.id, step.questions))) for step in chosen]

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps_on": list(self.steps_on),
            "questions": {step_id: list(questions) for step_id, questions in self.questions.items()},
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Lesson:
        values = values or {}
        return cls(
            steps_on=tuple(step_id for step_id in values.get("steps_on", STEP_IDS) if step_id in STEPS_BY_ID) or STEP_IDS,
            questions={key: tuple(value) for key, value in (values.get("questions") or {}).items() if key in STEPS_BY_ID},
        )


def load_lesson(store: RunStore) -> Lesson:
    """The teacher's lesson (every step on, the steps' own questions, until the teacher saves one)."""
    try:
        return Lesson.from_dict(store.get_setting(LESSON_KEY))
    except (LessonError, TypeError):  # a stored value this version cannot read: the lesson as shipped
        return Lesson()


def save_lesson(store: RunStore, lesson: Lesson, *, by: Person) -> None:
    """Keep the teacher's lesson; only the teacher may (NotTheTeacherError, a PermissionError, for anyone else)."""
    check_teacher(by, "change the lesson")
    store.set_setting(LESSON_KEY, lesson.to_dict())


def step_config(step: Step, limits: ClassLimits) -> tuple[RunConfig, list[str]]:
    """The settings a training step prefills, brought within the class's limits, and what fitting changed (in words).

    Its preset and overrides, then `limits.fit_to_limits`: epochs, images and input size down to the
    limits, and weights "none" for a backbone the teacher switched. Raises LessonError for a step that
    trains nothing, and LimitError (naming the limit) when the limits refuse it even so (a preset the
    teacher did not allow).
    """
    if step.preset is None:
        raise LessonError(f"step '{step.title}' trains nothing: it is about looking.")
    config, changes = fit_to_limits(config_for_preset(step.preset, **step.overrides), limits)
    limits.check(config)
    return config, changes


def class_step_config(store: RunStore, step: Step) -> tuple[RunConfig, list[str]]:
    """`step_config` under the store's class limits."""
    return step_config(step, load_limits(store))
