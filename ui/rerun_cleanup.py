"""What the server does after every script run: none of Streamlit's full garbage collections.

Every run of a script (a page, and each redraw of a live panel for every student who watches a
run) ends with Streamlit's clean-up, and by default that clean-up does two full garbage collections:

1. `runner.postScriptGC`: a `gc.collect()` after each run. It is switched off in
   .streamlit/config.toml.
2. `keras.backend.clear_session()`, called whenever Keras has been imported, which also ends in a
   `gc.collect()`, and empties TensorFlow's kernel cache, so the next prediction sets up again.

A full collection walks every Python object in the process, and with TensorFlow loaded there are a
great many: a noticeable part of a second each time, on the same CPUs that draw every student's
page. In a classroom the collections took most of the server's time, and pages opened slowly
exactly when the class was training (docs/DECISIONS.md, "The server runs no full garbage
collection after each run").

The app needs neither. Python still collects garbage by itself, as every program does; the memory
the runs free goes back to the system (ui.common.return_freed_memory); training happens in worker
processes. What Keras keeps between runs (the counters that number unnamed layers) is harmless, and
Keras keeps it per thread. Clearing it from one student's thread, on the other hand, cleared it for
every thread at once, under any other student who was building a network at that moment.

`keep_keras_between_runs` replaces Streamlit's clean-up function with one that still closes
matplotlib's figures, as Streamlit's does, and leaves Keras alone. The function is Streamlit's
private code, so when a Streamlit version renames it, this does nothing rather than fail, and a
test (tests/test_rerun_cleanup.py) says so.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

_CLEAN_UP = "_clean_problem_modules"  # Streamlit's clean-up after each script run
STREAMLIT_CLEAN_UP = getattr(script_runner, _CLEAN_UP, None)  # Streamlit's own, kept so a test can put it back


def keep_keras_between_runs() -> bool:
    """Make Streamlit's after-run clean-up leave Keras alone. Returns whether Streamlit's clean-up was found."""
    current = getattr(script_runner, _CLEAN_UP, None)
    if current is None:
        return False
    if current is not _close_matplotlib_figures:
        setattr(script_runner, _CLEAN_UP, _close_matplotlib_figures)
    return True


def _close_matplotlib_figures() -> None:
    """The rest of Streamlit's clean-up: figures that pyplot keeps open between runs are closed."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
