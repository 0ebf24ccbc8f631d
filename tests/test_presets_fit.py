"""Presets fit the class: a preset chosen under tight limits is brought within them, and every broken limit shows at once.

The lab tests queue through `ask_for_run` (classroom mode, a student), as the Train page's Start does; no
worker starts. The pretrained backbones are switched to weights "none" for the class, since no ImageNet
file is on a test machine (tests/test_preflight.py covers providing one).
"""

from __future__ import annotations

import pytest

from lab.classroom.limits import ClassLimits, LimitError, fit_to_limits, preset_differences, save_limits
from lab.config import PRESETS, PRETRAINED_BACKBONES, config_for_preset
from lab.jobs import launcher, queue
from lab.store.owners import Person
from lab.store.runs import Store
from tests.test_app_classroom import _classroom, open_page, session, student, tiny_data  # noqa: F401 - fixtures

TEACHER = Person("teacher", "Teacher", is_teacher=True)
TIGHT = ClassLimits(max_epochs=1, max_train_images=500, max_input_size=32, weights_none=PRETRAINED_BACKBONES)


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: 0)  # nothing trains
    return Store(tmp_path / "lab_home")


@pytest.mark.parametrize("limits", [TIGHT, ClassLimits(**{**TIGHT.__dict__, "allowed_presets": tuple(PRESETS)})], ids=["any", "presets"])
def test_every_preset_under_tight_limits_starts_without_a_refusal_after_fitting(store, limits):
    save_limits(store, limits, by=TEACHER)
    for number, name in enumerate(PRESETS):
        preset = config_for_preset(name)
        assert limits.problems(preset), name  # the precondition: as shipped, every preset breaks these limits
        fitted, changes = fit_to_limits(preset, limits)
        assert limits.problems(fitted) == [] and fitted.model == name and changes, name
        assert (fitted.epochs, fitted.subset, fitted.input_size) == (1, 500, 32)
        assert preset_differences(fitted, name, limits=limits) == []  # still that preset, as the class runs it
        request = queue.ask_for_run(fitted, owner=Person(f"p-{number}", f"Student {number}"), store=store, classroom=True)
        assert request.outcome == "queued", name
    assert len(store.list_runs()) == len(PRESETS)


def test_fitting_says_in_words_what_it_changed():
    fitted, changes = fit_to_limits(config_for_preset("fast-cnn-full"), TIGHT)
    assert changes == [
        "epochs: 8 → 1 (the class's most)",
        "training images: all 50,000 → 500 (the class's most)",
        "batch size: 1,024 → 256 (a batch cannot hold more images than there are)",
    ]
    assert fitted.batch_size == 256 and fit_to_limits(fitted, TIGHT) == (fitted, [])  # fitting again changes nothing
    _, pretrained_changes = fit_to_limits(config_for_preset("vgg16-frozen"), TIGHT)
    assert "weights: imagenet → none (no ImageNet weights on this server: the backbone starts from random numbers)" in pretrained_changes


def test_every_broken_limit_is_named_at_once():
    config = config_for_preset("vgg16-frozen", weights="none", input_size=64, epochs=5)
    problems = ClassLimits(max_epochs=1, max_train_images=500, max_input_size=32).problems(config)
    assert problems == [
        "the class allows at most 1 epochs (you asked for 5)",
        "the class allows at most 500 training images (you asked for 50,000): set 'Training images' to that or fewer",
        "the class allows an input size of at most 32 pixels (you asked for 64)",
    ]
    with pytest.raises(LimitError) as refused:
        ClassLimits(max_epochs=1, max_train_images=500, max_input_size=32).check(config)
    assert all(problem in str(refused.value) for problem in problems)


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_data")
def test_the_train_page_fits_a_chosen_preset_and_fits_the_settings_on_request():
    save_limits(Store(), TIGHT, by=TEACHER)
    at = open_page(session(student("Ana")), "pages/train.py")
    at.selectbox(key="train_model").set_value("fast-cnn-full").run()
    assert not at.exception
    said = "\n".join(info.value for info in at.info)
    assert "Brought within the class's limits: epochs: 8 → 1" in said and "batch size: 1,024 → 256" in said
    assert not [error.value for error in at.error if error.value.startswith("Class limit")]
    assert not at.button(key="trainbtn_start").disabled

    at.number_input(key="train_epochs").set_value(4).run()
    at.number_input(key="train_subset").set_value(0).run()
    (refusal,) = [error.value for error in at.error if error.value.startswith("Class limit")]
    assert "2 of the class's limits" in refusal and "at most 1 epochs (you asked for 4)" in refusal and "you asked for 50,000" in refusal
    assert at.button(key="trainbtn_start").disabled
    at.button(key="trainbtn_fit").click().run()
    assert not [error.value for error in at.error if error.value.startswith("Class limit")]
    assert (at.number_input(key="train_epochs").value, at.number_input(key="train_subset").value) == (1, 500)
    at.button(key="trainbtn_start").click().run()
    assert not at.exception
    (run,) = Store().list_runs()
    assert (run.model, run.config.epochs, run.config.subset, run.config.batch_size) == ("fast-cnn-full", 1, 500, 256)
