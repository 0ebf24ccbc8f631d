"""Every control a student meets is explained where it is: the Train page's widgets all carry help text."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lab.store.runs import Store
from ui.help_texts import METRICS, SETTINGS

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
# The widget kinds the Train page uses; each has a `help` field in AppTest.
WIDGET_KINDS = ("button", "number_input", "radio", "select_slider", "selectbox", "slider", "toggle", "checkbox", "multiselect")


def train_page() -> AppTest:
    Store()  # conftest points LAB_HOME at a fresh folder
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def widgets_without_help(at: AppTest) -> list[str]:
    """The Train page's widgets (outside the sidebar) whose help is empty, by label."""
    missing = []
    for kind in WIDGET_KINDS:
        for widget in at.main.get(kind):
            if not (widget.help or "").strip():
                missing.append(f"{kind} {widget.label!r}")
    return missing


def widget_count(at: AppTest) -> int:
    return sum(len(at.main.get(kind)) for kind in WIDGET_KINDS)


@pytest.mark.slow
def test_every_train_setting_has_plain_help():
    at = train_page()
    shown = widget_count(at)
    assert shown >= 20  # the default form: task, data, network and training settings (the precondition)
    assert widgets_without_help(at) == []
    # Settings that appear only for some choices: a two-class task, a pretrained backbone that fine-tunes
    # (freeze depth) with a dense head (dropout), the fast network's width, the binary task's fine labels.
    at.radio(key="train_task").set_value("pair").run()
    at.selectbox(key="train_model").set_value("mobilenetv2-frozen").run()
    at.toggle(key="train_freeze_all").set_value(False).run()
    at.selectbox(key="train_head").set_value("dense256").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {widget.label for kind in WIDGET_KINDS for widget in at.main.get(kind)}
    assert {"First class", "Second class", "Freeze depth (layers)", "Dropout"} <= labels
    assert widgets_without_help(at) == []
    at.selectbox(key="train_backbone").set_value("fast-cnn").run()
    at.radio(key="train_task").set_value("binary").run()
    labels = {widget.label for kind in WIDGET_KINDS for widget in at.main.get(kind)}
    assert any(label.startswith("Width") for label in labels) and any("fine labels" in label for label in labels)
    assert widgets_without_help(at) == []


@pytest.mark.parametrize("name", ["batch_size", "epochs", "learning_rate", "backbone", "freeze_all", "weight_decay", "label_smoothing"])
def test_help_starts_in_plain_words_then_names_the_term(name):
    text = SETTINGS[name]
    first_sentence = text.split(". ")[0]
    term = name.replace("_", " ").replace("freeze all", "frozen backbone")
    assert term in text.lower()  # the exact term is named ...
    assert not first_sentence.lower().startswith(term)  # ... after a plain explanation, not as the opening word
    assert "gradient" not in first_sentence  # no jargon in the first sentence


def test_batch_size_help_is_about_pictures_not_gradient_steps():
    assert SETTINGS["batch_size"].startswith("How many pictures the network looks at before it adjusts itself once")
    assert "ImageNet" in SETTINGS["weights"] and "already trained" in SETTINGS["weights"]
    assert all(word in SETTINGS["lr_schedule"] for word in ("constant", "cosine", "linear", "onecycle", "plateau"))
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro"} <= set(METRICS)
