"""Progress from job events, duration estimates, and the Train page's freeze-depth view of a network."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lab.config import RunConfig, config_for_preset
from lab.jobs.progress import WORKING_IT_OUT, format_seconds, summarize, time_left_words
from lab.models.registry import build_model, count_params, describe_layers
from lab.store.records import Run, Status
from lab.train import estimate
from ui.model_view import frozen_rows

BEGIN = {"kind": "train_begin", "epochs": 2, "steps_per_epoch": 10}
EPOCH_1 = {"kind": "epoch_end", "epoch": 1, "seconds": 10.0, "loss": 2.0, "accuracy": 0.3, "val_loss": 1.9, "val_accuracy": 0.35}


def test_progress_in_the_middle_of_the_second_epoch():
    batch = {"kind": "batch_end", "epoch": 2, "step": 5, "steps": 10, "epoch_seconds": 5.0}
    progress = summarize("running", 2, [BEGIN, EPOCH_1], batch)
    assert progress.phase == "training"
    assert (progress.epoch, progress.step, progress.steps_per_epoch) == (2, 5, 10)
    assert progress.fraction == pytest.approx(15 / 20)
    assert progress.elapsed_seconds == pytest.approx(15.0)
    assert progress.eta_seconds == pytest.approx(5.0)  # 15 s for 75%: 5 s for the last 25%
    assert progress.epoch_events == [EPOCH_1]


def test_progress_ignores_a_batch_event_older_than_the_last_epoch():
    stale = {"kind": "batch_end", "epoch": 1, "step": 10, "steps": 10, "epoch_seconds": 9.0}
    progress = summarize("running", 2, [BEGIN, EPOCH_1], stale)
    assert (progress.epoch, progress.step, progress.fraction, progress.elapsed_seconds) == (1, 10, 0.5, 10.0)


@pytest.mark.parametrize(
    ("status", "events", "phase"),
    [
        ("queued", [], "waiting"),
        ("running", [], "starting"),
        ("running", [BEGIN], "training"),
        ("running", [{**BEGIN, "feature_cache": True}], "features"),
        ("running", [BEGIN, EPOCH_1, {"kind": "train_end", "status": "completed"}], "evaluating"),
        ("running", [BEGIN, EPOCH_1, {"kind": "train_end"}, {"kind": "evaluation", "accuracy": 0.4}], "saving"),
        ("completed", [BEGIN, EPOCH_1], "finished"),
    ],
)
def test_progress_phase(status, events, phase):
    progress = summarize(status, 2, events)
    assert progress.phase == phase
    assert progress.eta_seconds is None  # no batch yet, or not training: no guess


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 0.2, 4.4, 59.6, 200, 3725)] == [
        "?",
        "under 1 s",
        "4 s",
        "1 min 00 s",
        "3 min 20 s",
        "1 h 02 min",
    ]


def batch(epoch: int, step: int, epoch_seconds: float) -> dict:
    return {"kind": "batch_end", "epoch": epoch, "step": step, "steps": 10, "epoch_seconds": epoch_seconds}


def test_time_left_is_worked_out_before_it_is_guessed():
    """Never "about ? left": no pace before a few steps, then the pace of the steps after the slow first one."""
    just_begun = summarize("running", 2, [BEGIN])
    assert (just_begun.phase, just_begun.eta_seconds, time_left_words(just_begun)) == ("training", None, WORKING_IT_OUT)
    first = batch(1, 1, 8.0)  # the first step builds the graph: 8 s for one step
    one_step = summarize("running", 2, [BEGIN], first, first)
    assert one_step.eta_seconds is None and time_left_words(one_step) == WORKING_IT_OUT
    # Steps 2 to 6 took 2 s in all (0.4 s each): 14 steps to go take 5.6 s, not the 10/6 s x 14 the first step would make it.
    six_steps = summarize("running", 2, [BEGIN], batch(1, 6, 10.0), first)
    assert six_steps.eta_seconds == pytest.approx(14 * 0.4)
    assert time_left_words(six_steps) == "less than a minute left"


def test_time_left_in_later_epochs_uses_the_whole_pace_and_reads_in_minutes():
    begin = {**BEGIN, "epochs": 10, "steps_per_epoch": 100}
    epochs = [{**EPOCH_1, "epoch": n, "seconds": 60.0} for n in (1, 2)]  # a minute per epoch of 100 steps
    progress = summarize("running", 10, [begin, *epochs], {**batch(3, 50, 30.0), "steps": 100}, batch(1, 1, 5.0))
    assert progress.eta_seconds == pytest.approx(7.5 * 60)  # 750 steps to go at 0.6 s each
    assert time_left_words(progress) == "about 8 min left"
    long_run = summarize("running", 200, [{**begin, "epochs": 200}, *epochs], {**batch(3, 50, 30.0), "steps": 100})
    assert time_left_words(long_run) == "about 3 h 18 min left"  # 19,750 steps at 0.6 s: 197.5 min
    assert time_left_words(summarize("completed", 10, [begin, *epochs])) == ""  # not training: nothing to say


def test_split_sizes_follow_the_task_and_the_subset():
    assert estimate.split_sizes(config_for_preset("quick-demo", subset=5000)) == (4500, 500)
    assert estimate.split_sizes(RunConfig(task="pair:cat,dog")) == (9000, 1000)
    assert estimate.split_sizes(RunConfig(task="binary", val_fraction=0.2)) == (40000, 10000)


def past_run(config: RunConfig, train_seconds: float, epochs: int, n_train: int, device: str = "CPU") -> Run:
    """A completed run as the store returns it."""
    return Run(
        run_id="past",
        status=Status.COMPLETED,
        config=config,
        model=config.model,
        task=config.task,
        owner_id="local",
        owner_name="",
        created_at="",
        updated_at="",
        metrics={"epochs_completed": epochs},
        fingerprint={"n_train": n_train},
        train_seconds=train_seconds,
        environment={"device": device},
    )


def test_estimate_from_past_runs_scales_by_images_and_epochs():
    config = config_for_preset("quick-demo", subset=5000, epochs=6)  # 4,500 training images
    same = past_run(config_for_preset("quick-demo", epochs=3, subset=1000), train_seconds=2.0, epochs=2, n_train=900)
    other_network = past_run(RunConfig(model="custom", backbone="fast-cnn"), train_seconds=1.0, epochs=1, n_train=10)
    other_device = past_run(config, train_seconds=1.0, epochs=1, n_train=4500, device="NVIDIA H100")
    guess = estimate.from_past_runs([other_network, other_device, same], config, device="CPU")
    assert guess.seconds == pytest.approx(2.0 / (2 * 900) * 4500 * 6)
    assert "1 past run" in guess.source
    assert estimate.from_past_runs([other_network], config) is None


def test_a_run_stopped_early_does_not_set_the_pace():
    config = config_for_preset("quick-demo", subset=5000)
    finished = past_run(config, train_seconds=10.0, epochs=3, n_train=4500)
    stopped = past_run(config, train_seconds=9.0, epochs=1, n_train=4500)  # most of its 9 s went into an unfinished epoch
    stopped.metrics["stopped_early"] = True
    guess = estimate.from_past_runs([stopped, finished], config, device="CPU")
    assert guess.seconds == pytest.approx(10.0 / (3 * 4500) * 4500 * 3) and "1 past run" in guess.source
    assert estimate.from_past_runs([stopped], config, device="CPU") is None


def test_estimate_from_past_runs_compares_width_and_the_precision_really_used():
    config = config_for_preset("fast-cnn", width=None)  # width None: the default half width; precision "auto"
    half = past_run(config_for_preset("fast-cnn", width=0.5), train_seconds=100.0, epochs=1, n_train=1000)
    full = past_run(config_for_preset("fast-cnn", width=1.0), train_seconds=400.0, epochs=1, n_train=1000)
    for run, used in ((half, "mixed_bfloat16"), (full, "mixed_bfloat16")):
        run.environment["precision"] = used
    guess = estimate.from_past_runs([full, half], config, precision="mixed_bfloat16")
    assert guess.seconds == pytest.approx(100.0 / 1000 * estimate.split_sizes(config)[0] * config.epochs)  # the half-width run only
    # An "auto" run that resolved to float32 elsewhere says nothing about a bfloat16 run here.
    assert estimate.from_past_runs([half], config, precision="float32") is None


def test_estimate_from_step_time_counts_training_and_validation_batches():
    config = config_for_preset("quick-demo", subset=5000)  # 4,500 + 500 images, batch 64, 3 epochs
    guess = estimate.from_step_time(0.1, config)
    # 70 full training batches (the last 20 images wait for the next epoch), 8 validation batches at a third of the cost.
    assert guess.seconds == pytest.approx(0.1 * (4500 // 64 + math.ceil(500 / 64) / 3) * 3)


def test_measure_step_seconds_times_a_real_training_step():
    seconds = estimate.measure_step_seconds(config_for_preset("seed-cnn", batch_size=8), steps=2)
    assert 0 < seconds < 5


@pytest.mark.parametrize(("backbone", "depths"), [("vgg16", (0, 5, 12, None)), ("mobilenetv2", (0, 30, None))])
def test_frozen_rows_match_a_network_built_with_that_freeze_depth(backbone, depths):
    """The Train page builds a network once and re-marks frozen layers per slider position: same numbers as a rebuild."""
    unfrozen = describe_layers(build_model(RunConfig(model="custom", backbone=backbone, freeze_depth=0, head="dense256"), 10))
    for depth in depths:
        built = build_model(RunConfig(model="custom", backbone=backbone, freeze_depth=depth, head="dense256"), 10)
        rows = frozen_rows(unfrozen, depth)
        assert [row["trainable"] for row in rows] == [row["trainable"] for row in describe_layers(built)]
        assert sum(row["trainable_params"] for row in rows) == count_params(built)["trainable_params"]
        assert sum(row["params"] for row in rows) == count_params(built)["total_params"]


def test_a_cached_frozen_backbone_is_estimated_as_one_forward_pass():
    frozen = config_for_preset("vgg16-frozen", weights="none", subset=5000, epochs=10)  # 4,500 + 500 images
    assert estimate.uses_feature_cache(frozen)
    guess = estimate.from_step_time(0.1, frozen)
    assert guess.seconds == pytest.approx(0.1 * math.ceil(5000 / estimate.FEATURE_BATCH))  # once over the images, whatever the epochs
    assert "forward pass" in guess.source
    augmented = dataclasses.replace(frozen, augment=True)  # new images every epoch: nothing to cache
    assert not estimate.uses_feature_cache(augmented)
    assert estimate.from_step_time(0.1, augmented).seconds > 5 * guess.seconds  # ten epochs of full steps
