"""Shared test settings: quiet TensorFlow, and a private results folder per test session."""

import os

# Quieten TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

# Imported before any test module imports TensorFlow: lab/__init__.py picks TensorFlow's CPU kernels,
# which TensorFlow reads only once, when it starts.
import lab  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _private_lab_home(tmp_path, monkeypatch):
    """Every test writes runs into its own temporary LAB_HOME, never into ./runs, and workers do not linger."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab_home"))
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    # Workers leave as soon as the queue is empty, so a test never waits for an idle one to go;
    # tests of the warm worker set their own value.
    monkeypatch.setenv("LAB_WORKER_IDLE_SECONDS", "0")


# Two tiers: `pytest -m "not slow"` is the everyday run (unit and page tests), plain `pytest` runs everything (CI).
# Every browser test belongs to the slow tier: it starts a real server and Chromium. The rule lives here, once,
# rather than as a second mark beside each `browser` one, because `browser` marks whole modules and single tests
# in other modules alike, and a new browser test must not land in the everyday run because a second mark was forgotten.
# tryfirst: the mark is added before pytest's own hook selects tests by `-m`.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
