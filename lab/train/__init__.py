"""One training run: compile, callbacks, schedules, the frozen-feature cache, the hardware it uses, estimates."""
