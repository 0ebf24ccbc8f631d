"""The Train page's settings form: widgets in, one validated RunConfig out.

Every widget has a `train_...` key and keeps its value for the whole session
(`persist_state="session"`), so visiting Compare and coming back does not reset it.
Values flow one way: a preset or a prefilled config (Compare's "re-run" button puts
one in `st.session_state["train_prefill"]`) is written into the widgets' keys with
`apply_config`, and `config_from_state` reads them back into a RunConfig, whose own
validation produces the error messages.

In classroom mode the form starts from the student's own seed (so their Start trains their own
network), offers only the presets the class allows and this server can run (lab/classroom/preflight.py),
and brings a chosen preset within the class's limits, saying what it changed; "Fit to the class
limits" does the same for any settings.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from lab.classroom.limits import ClassLimits, fit_to_limits
from lab.classroom.preflight import preset_refusal
from lab.config import (
    CLASS_NAMES,
    DEFAULT_FAST_CNN_WIDTH,
    HEADS,
    INPUT_SIZES,
    LR_SCHEDULES,
    ONE_VS_REST,
    OPTIMIZERS,
    PRECISIONS,
    PRESETS,
    PRETRAINED_BACKBONES,
    SCRATCH_BACKBONES,
    WEIGHT_CHOICES,
    RunConfig,
    config_for_preset,
    groups_every_class,
)
from ui.help_texts import ONLY_PRETRAINED, SETTINGS
from ui.tasks import DEFAULT_ONE_CLASS, TASK_KINDS, one_class_of, task_kind

PREFILL_KEY = "train_prefill"
FIT_NOTE_KEY = "train_fit_note"  # (preset, what fitting it to the class's limits changed), shown under the preset
REUSE_KEY = "train_reuse"  # the student chose a classmate's run with the same settings instead of training
REUSE_LABEL = "Use a classmate's run with these very settings instead of training (it counts as a copy)"
REUSE_HELP = (
    "Off: Start trains your own network and you watch it learn. On: if a classmate has already trained (or is training) "
    "exactly these settings, the seed included, you get their result instead; the leaderboard lists it as "
    "“same as NAME's”, not ranked. If nobody has, your own run is trained."
)
DEFAULT_PRESET = "quick-demo"  # the classroom default: a visible result in about a minute
PERSIST = {"persist_state": "session"}
FAST_CNN_WIDTH_CHOICES = (0.25, 0.5, 0.75, 1.0)
# RunConfig fields with a widget of their own that holds the value as is (key "train_<field>").
PLAIN_FIELDS = (
    "backbone", "head", "input_size", "dropout", "epochs", "batch_size", "optimizer", "learning_rate", "weight_decay",
    "lr_schedule", "label_smoothing", "augment", "tta", "ema", "keep_best", "val_fraction", "seed", "precision",
)  # fmt: skip


def apply_config(config: RunConfig) -> None:
    """Write a config's values into the form's widget keys (call before the widgets are drawn)."""
    state = st.session_state
    kind = task_kind(config.task)
    state["train_task"] = kind
    if kind == "pair":
        state["train_class_a"], state["train_class_b"] = config.class_names
    elif kind == "one-vs-rest":
        state["train_one_class"] = one_class_of(config.task)
    state["train_model"] = config.model
    for name in (*PLAIN_FIELDS, "weights"):
        state[f"train_{name}"] = getattr(config, name)
    state["train_freeze_all"] = config.freeze_depth is None
    state["train_freeze_depth"] = config.freeze_depth or 0
    state["train_subset"] = config.subset or 0
    state["train_width"] = config.width or DEFAULT_FAST_CNN_WIDTH
    state["train_fine_labels"] = config.fine_labels


def init_state(limits: ClassLimits | None = None, own_seed: int | None = None) -> None:
    """First visit: the default preset (with `own_seed`, a student's own; within `limits`). After Compare's "re-run": that run's config."""
    prefill = st.session_state.pop(PREFILL_KEY, None)
    if prefill is not None:
        try:
            apply_config(prefill if isinstance(prefill, RunConfig) else RunConfig.from_dict(dict(prefill)))
            st.toast("Settings loaded from the chosen run.", icon=":material/replay:")
        except (TypeError, ValueError) as error:
            st.warning(f"Could not load those settings: {error}")
    if "train_model" not in st.session_state:
        _apply_fitted(config_for_preset(DEFAULT_PRESET, seed=own_seed or 0), limits)
    st.session_state.setdefault("train_class_a", "cat")
    st.session_state.setdefault("train_class_b", "dog")
    st.session_state.setdefault("train_one_class", DEFAULT_ONE_CLASS)


def _load_preset(limits: ClassLimits | None = None) -> None:
    """A new preset replaces the model and training settings; the task and the seed stay as chosen; within `limits`."""
    name = st.session_state["train_model"]
    if name == "custom":
        return
    seed = int(st.session_state.get("train_seed", 0))
    try:
        config = config_for_preset(name, task=task_from_state(st.session_state), seed=seed)
    except ValueError:  # the task as chosen is not valid (the same class twice): start from the preset's own
        config = config_for_preset(name, seed=seed)
    _apply_fitted(config, limits)


def _apply_fitted(config: RunConfig, limits: ClassLimits | None) -> None:
    """Write `config` into the form, brought within `limits` first; what that changed is kept to be shown."""
    changes: list[str] = []
    if limits is not None:
        config, changes = fit_to_limits(config, limits)
    apply_config(config)
    st.session_state[FIT_NOTE_KEY] = (config.model, changes)


def fit_to_class_limits(limits: ClassLimits) -> None:
    """The "Fit to the class limits" button's callback: the form's settings brought within them, and what changed said."""
    try:
        config = config_from_state(st.session_state)
    except ValueError:  # settings RunConfig refuses: the form already says why
        return
    _apply_fitted(config, limits)


def offered_presets(limits: ClassLimits | None) -> list[str]:
    """The presets (and "custom") the Preset box offers: under class limits, those this server can run as the class runs them.

    A preset the class does not allow is still listed: choosing it says so, naming the presets allowed.
    """
    if limits is None:
        return [*PRESETS, "custom"]
    return [*(name for name in PRESETS if preset_refusal(name, limits) is None), "custom"]


def _mark_custom() -> None:
    """Changing the network itself makes the run a custom one (its row in Compare says so)."""
    st.session_state["train_model"] = "custom"


def task_from_state(state) -> str:
    kind = state.get("train_task", "cifar10")
    if kind == "pair":
        return f"pair:{state.get('train_class_a', 'cat')},{state.get('train_class_b', 'dog')}"
    if kind == "one-vs-rest":
        return ONE_VS_REST + state.get("train_one_class", DEFAULT_ONE_CLASS)
    return kind


def config_from_state(state) -> RunConfig:
    """The RunConfig the widgets describe; ValueError (a message for the student) when they do not fit."""
    pretrained = state["train_backbone"] in PRETRAINED_BACKBONES
    values: dict[str, Any] = {
        "task": task_from_state(state),
        "model": state["train_model"],
        "freeze_depth": (None if state["train_freeze_all"] else int(state["train_freeze_depth"])) if pretrained else 0,
        "weights": state["train_weights"] if pretrained else "none",
        "subset": int(state["train_subset"]) or None,
    }
    values.update({name: state[f"train_{name}"] for name in PLAIN_FIELDS})
    if not pretrained:
        values["head"] = "linear"  # from-scratch networks bring their own head; keep the stored config plain
    if state["train_backbone"] == "fast-cnn" and state.get("train_width", DEFAULT_FAST_CNN_WIDTH) != DEFAULT_FAST_CNN_WIDTH:
        values["width"] = float(state["train_width"])  # the default stays None, as in the presets
    # Only a task whose two answers group the ten classes has finer labels; elsewhere the switch is hidden and ignored.
    values["fine_labels"] = groups_every_class(values["task"]) and bool(state.get("train_fine_labels", False))
    return RunConfig(**values)


def task_inputs() -> None:
    st.radio("Task", list(TASK_KINDS), format_func=TASK_KINDS.get, key="train_task", horizontal=True, help=SETTINGS["task"], **PERSIST)
    if st.session_state["train_task"] == "pair":
        left, right = st.columns(2)
        left.selectbox("First class", CLASS_NAMES, key="train_class_a", help=SETTINGS["class_a"], **PERSIST)
        right.selectbox("Second class", CLASS_NAMES, key="train_class_b", help=SETTINGS["class_b"], **PERSIST)
    elif st.session_state["train_task"] == "one-vs-rest":
        st.selectbox(
            "The one class",
            CLASS_NAMES,
            key="train_one_class",
            help=SETTINGS["one_class"],
            **PERSIST,
        )
    st.number_input(
        "Training images (0 = all)", min_value=0, max_value=50_000, step=1000, key="train_subset", help=SETTINGS["subset"], **PERSIST
    )
    st.slider(
        "Validation share",
        0.01,
        0.45,
        step=0.01,  # the fast recipe holds out 2%
        key="train_val_fraction",
        help=SETTINGS["val_fraction"],
        **PERSIST,
    )
    st.number_input("Seed", min_value=0, max_value=2**31 - 1, key="train_seed", help=SETTINGS["seed"], **PERSIST)


def model_inputs(layer_count, limits: ClassLimits | None = None) -> None:
    """Preset and network. `layer_count(backbone, input_size)` gives the freeze slider's range; `limits`: a student's class limits."""
    names = offered_presets(limits)
    if st.session_state.get("train_model") not in names:  # loaded from a run: shown as it is, and the page says what stops it
        names.append(st.session_state["train_model"])
    st.selectbox("Preset", names, key="train_model", on_change=_load_preset, args=(limits,), help=SETTINGS["preset"], **PERSIST)
    model = st.session_state["train_model"]
    st.caption(PRESETS[model]["description"] if model in PRESETS else "Your own combination of backbone, head and freezing.")
    fitted_model, changes = st.session_state.get(FIT_NOTE_KEY) or (None, [])
    if changes and fitted_model == model:
        st.info("Brought within the class's limits: " + "; ".join(changes) + ".", icon=":material/tune:")
    left, right = st.columns(2)
    left.selectbox(
        "Backbone",
        [*SCRATCH_BACKBONES, *PRETRAINED_BACKBONES],
        key="train_backbone",
        on_change=_mark_custom,
        help=SETTINGS["backbone"],
        **PERSIST,
    )
    right.selectbox(
        "Input size (pixels)",
        INPUT_SIZES,
        key="train_input_size",
        on_change=_mark_custom,
        help=SETTINGS["input_size"],
        **PERSIST,
    )
    pretrained = st.session_state["train_backbone"] in PRETRAINED_BACKBONES
    scratch_note = "" if pretrained else f" {ONLY_PRETRAINED}"
    weights = list(dict.fromkeys([*WEIGHT_CHOICES, st.session_state.get("train_weights", "none")]))
    left.selectbox(
        "Weights",
        weights,
        key="train_weights",
        on_change=_mark_custom,
        disabled=not pretrained,
        help=SETTINGS["weights"] + scratch_note,
        **PERSIST,
    )
    right.selectbox(
        "Head", HEADS, key="train_head", on_change=_mark_custom, disabled=not pretrained, help=SETTINGS["head"] + scratch_note, **PERSIST
    )
    if st.session_state["train_head"] == "dense256" and pretrained:
        st.slider("Dropout", 0.0, 0.9, step=0.05, key="train_dropout", on_change=_mark_custom, help=SETTINGS["dropout"], **PERSIST)
    if st.session_state["train_backbone"] == "fast-cnn":
        st.select_slider(
            "Width (channels, relative to the speed record's network)",
            sorted({*FAST_CNN_WIDTH_CHOICES, st.session_state.get("train_width", DEFAULT_FAST_CNN_WIDTH)}),
            key="train_width",
            on_change=_mark_custom,
            help=SETTINGS["width"],
            **PERSIST,
        )
    freeze_all = st.toggle(
        "Freeze the whole backbone",
        key="train_freeze_all",
        on_change=_mark_custom,
        disabled=not pretrained,
        help=SETTINGS["freeze_all"] + scratch_note,
        **PERSIST,
    )
    if pretrained and not freeze_all:
        most = layer_count(st.session_state["train_backbone"], st.session_state["train_input_size"])
        st.session_state["train_freeze_depth"] = min(int(st.session_state.get("train_freeze_depth", 0)), most)
        help_text = SETTINGS["freeze_depth"]
        st.slider("Freeze depth (layers)", 0, most, key="train_freeze_depth", on_change=_mark_custom, help=help_text, **PERSIST)


def training_inputs() -> None:
    left, right = st.columns(2)
    left.number_input("Epochs", min_value=1, max_value=1000, key="train_epochs", help=SETTINGS["epochs"], **PERSIST)
    right.number_input("Batch size", min_value=1, max_value=4096, key="train_batch_size", help=SETTINGS["batch_size"], **PERSIST)
    left.selectbox("Optimizer", OPTIMIZERS, key="train_optimizer", help=SETTINGS["optimizer"], **PERSIST)
    right.number_input(
        "Learning rate",
        min_value=1e-7,
        max_value=10.0,
        step=1e-4,
        format="%g",
        key="train_learning_rate",
        help=SETTINGS["learning_rate"],
        **PERSIST,
    )
    left.selectbox("Learning-rate schedule", LR_SCHEDULES, key="train_lr_schedule", help=SETTINGS["lr_schedule"], **PERSIST)
    st.toggle("Augmentation", key="train_augment", help=SETTINGS["augment"], **PERSIST)
    if groups_every_class(task_from_state(st.session_state)):
        st.toggle(
            "Also learn the 10 classes (fine labels)",
            key="train_fine_labels",
            help=SETTINGS["fine_labels"],
            **PERSIST,
        )
    with st.expander("More options"):
        decay_help = SETTINGS["weight_decay"]
        st.number_input(
            "Weight decay", min_value=0.0, max_value=0.99, step=1e-4, format="%g", key="train_weight_decay", help=decay_help, **PERSIST
        )
        st.slider("Label smoothing", 0.0, 0.45, step=0.05, key="train_label_smoothing", help=SETTINGS["label_smoothing"], **PERSIST)
        tta_label = "Test-time augmentation (average over the mirror image and 1-pixel shifts)"
        st.toggle(tta_label, key="train_tta", help=SETTINGS["tta"], **PERSIST)
        st.toggle("Weight averaging (test an average of the last steps' weights)", key="train_ema", help=SETTINGS["ema"], **PERSIST)
        st.toggle("Keep the best epoch's weights (by validation accuracy)", key="train_keep_best", help=SETTINGS["keep_best"], **PERSIST)
        st.selectbox("Number format", PRECISIONS, key="train_precision", help=SETTINGS["precision"], **PERSIST)


def reuse_choice() -> None:
    """Classroom mode: the choice of a classmate's run with the same settings instead of training one's own (off by default)."""
    st.toggle(REUSE_LABEL, key=REUSE_KEY, help=REUSE_HELP)
