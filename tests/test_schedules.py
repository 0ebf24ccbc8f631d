"""The learning-rate schedules: each one's shape at the start, the middle and the end of training."""

import pytest

from lab.config import LR_SCHEDULES, RunConfig
from lab.train.schedules import learning_rate_for


def rates(schedule: str, steps: list[int], total_steps: int = 100) -> list[float]:
    rate = learning_rate_for(RunConfig(lr_schedule=schedule, learning_rate=0.5, epochs=total_steps // 10), steps_per_epoch=10)
    return [float(rate(step)) if callable(rate) else float(rate) for step in steps]


def test_linear_starts_at_the_peak_and_falls_in_a_straight_line_to_zero():
    assert rates("linear", [0, 25, 50, 100]) == pytest.approx([0.5, 0.375, 0.25, 0.0])


def test_onecycle_warms_up_from_a_tenth_for_a_fifth_of_training_then_falls_to_zero():
    assert rates("onecycle", [0, 10, 20, 60, 100]) == pytest.approx([0.05, 0.275, 0.5, 0.25, 0.0])


def test_constant_and_plateau_keep_the_rate_and_cosine_glides_to_zero():
    assert rates("constant", [0, 100]) == rates("plateau", [0, 100]) == [0.5, 0.5]  # plateau lowers it from a callback
    assert rates("cosine", [0, 50, 100]) == pytest.approx([0.5, 0.25, 0.0], abs=1e-6)


def test_every_schedule_the_config_accepts_has_a_rate():
    for schedule in LR_SCHEDULES:
        assert rates(schedule, [0])[0] > 0
