"""Shared test settings: quiet TensorFlow, and a private results folder per test session."""

import os

# Quieten TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_lab_home(tmp_path, monkeypatch):
    """Every test writes runs into its own temporary LAB_HOME, never into ./runs."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab_home"))
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
