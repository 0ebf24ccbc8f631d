"""The server's after-run clean-up (ui/rerun_cleanup.py): no full garbage collection after each script run.

Streamlit calls `keras.backend.clear_session()` after every run once Keras is imported, and that runs
a full garbage collection each time: on a classroom server, most of its CPU. These tests run a script
through Streamlit's own script runner and count the calls, with Streamlit's clean-up and with ours.
"""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from ui import rerun_cleanup

ROOT = Path(__file__).resolve().parent.parent


def _page() -> None:
    import streamlit as st

    st.write("a page")


@pytest.fixture
def clear_session_calls(monkeypatch):
    """How many times `keras.backend.clear_session` is called (without clearing anything)."""
    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: calls.append(1))
    # Each test starts from Streamlit's own clean-up (an app test earlier in this process may have replaced it), and
    # whatever it does to the clean-up is undone afterwards.
    monkeypatch.setattr(script_runner, "_clean_problem_modules", rerun_cleanup.STREAMLIT_CLEAN_UP)
    return calls


def test_streamlit_clears_keras_after_every_run_unless_told_not_to(clear_session_calls):
    AppTest.from_function(_page).run()
    assert clear_session_calls, "Streamlit no longer clears Keras after a run: ui/rerun_cleanup.py can go"
    clear_session_calls.clear()

    assert rerun_cleanup.keep_keras_between_runs()
    app = AppTest.from_function(_page).run()
    app.run()
    assert not app.exception
    assert clear_session_calls == []


def test_matplotlib_figures_are_still_closed_after_a_run(clear_session_calls, monkeypatch):
    closed = []
    fake_pyplot = types.SimpleNamespace(close=lambda which: closed.append(which))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", fake_pyplot)
    rerun_cleanup.keep_keras_between_runs()
    AppTest.from_function(_page).run()
    assert closed == ["all"]


def test_a_streamlit_without_that_clean_up_is_left_as_it_is(clear_session_calls, monkeypatch):
    monkeypatch.delattr(script_runner, "_clean_problem_modules")
    assert rerun_cleanup.keep_keras_between_runs() is False
    assert not hasattr(script_runner, "_clean_problem_modules")


def test_the_app_itself_asks_for_it(clear_session_calls, monkeypatch, tmp_path):
    """The entry point installs it on its first run, and the project's Streamlit settings switch off the other collection."""
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False

    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab_home"))
    monkeypatch.delenv("LAB_TEACHER_PASSWORD", raising=False)
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not app.exception
    app.run()
    assert clear_session_calls == []
