"""The sidebar every page shares: the mode (single-user or classroom, who you are and Leave), what the server
trains on, whether the data is there, how many results there are, and in classroom mode the teacher password.
Server folders and library versions mean nothing on a projected screen, so they wait in a "Details" expander.

Everything here is cheap on a rerun: the device probe is cached once per server process,
the data-set status only looks at file names (it never loads the images), and the run
counts are one small SQLite query (redrawn every few seconds while a run is queued or training).
"""

from __future__ import annotations

import streamlit as st

from lab.data.cifar10 import describe_data_source
from lab.jobs.ray import cluster
from lab.store.runs import NOT_ANSWERING, Status, StoreError
from ui import identity
from ui.common import data_dir_setting, device_summary, get_store
from ui.live_region import live_panel


def render_sidebar() -> None:
    with st.sidebar:
        identity.sidebar_mode()
        _device()
        _dataset()
        _results()
        identity.sidebar_teacher()
        _details()


def _device() -> None:
    info = device_summary()
    icon = ":material/memory:" if info["gpus"] else ":material/computer:"
    st.markdown(f"{icon} **Device:** {info['device']}")
    try:
        cluster_state = cluster.status_line(get_store().root)
    except StoreError:  # the results folder itself is unusable: _results() says so
        cluster_state = None
    if cluster_state is not None:
        healthy, line = cluster_state
        st.markdown(
            f"{':material/hub:' if healthy else ':material/cloud_off:'} **Jobs:** {'Ray cluster' if healthy else cluster.trouble_word(get_store().root)}"
        )
        if not healthy:  # what to do about it belongs in view; a healthy cluster's addresses go under Details
            st.caption(line)


def _dataset() -> None:
    status = describe_data_source(data_dir_setting())
    if status["found"]:
        st.markdown(":material/check_circle: **CIFAR-10:** found")
    elif status["kind"] == "keras":
        st.markdown(":material/cloud_download: **CIFAR-10:** downloads on first use")
        with st.expander("Offline? How to get it"):
            st.caption(status["message"])
    else:
        st.markdown(":material/error: **CIFAR-10:** not found")
        with st.expander("How to get it", expanded=True):
            st.caption(status["message"])


# While a run is queued or training, the run counts change with no click to redraw them.
RESULTS_POLL_SECONDS = 3
ACTIVE_STATUSES = (Status.RUNNING, Status.QUEUED)


def _results() -> None:
    # A fragment redraws only itself: every few seconds while anything is queued or running, so the
    # line goes from "1 queued" to "1 running" to one more run without the page being reloaded.
    # Asking only for those runs keeps this to a query of a row or two on every page's rerun.
    # A database that does not answer is polled too, so the line clears by itself once it is back.
    busy, problem = _stored_runs(status=ACTIVE_STATUSES)
    live_panel(_results_line, every=RESULTS_POLL_SECONDS if busy or problem.startswith(NOT_ANSWERING) else None, name="results")()


def _results_line() -> None:
    runs, problem = _stored_runs()
    if problem.startswith(NOT_ANSWERING):  # PostgreSQL store (lab/store/postgres.py): the server is down or unreachable
        st.markdown(":material/cloud_off: **Results:** the database is not answering")
        st.caption(problem)
        return
    if problem:
        st.markdown(":material/error: **Results:** cannot be stored")
        st.caption(problem)
        return
    counts = {status: sum(run.status is status for run in runs) for status in ACTIVE_STATUSES}
    busy = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    st.markdown(f":material/folder: **Results:** {len(runs)} run{'s' if len(runs) != 1 else ''}" + (f" ({busy})" if busy else ""))


def _details() -> None:
    """Where things live and which versions run: for the teacher or an administrator, folded away."""
    info = device_summary()
    with st.expander("Details", icon=":material/info:"):
        st.caption(f"TensorFlow {info['tensorflow']} · Keras {info['keras']}")
        status = describe_data_source(data_dir_setting())
        if status["found"]:
            st.caption(status["message"])
        try:
            st.caption(f"Results stored in {get_store().where}")  # a database's address, never its password
            cluster_state = cluster.status_line(get_store().root)
        except StoreError:
            cluster_state = None
        if cluster_state is not None and cluster_state[0]:
            st.caption(cluster_state[1])


def _stored_runs(status: tuple[str, ...] | None = None) -> tuple[list[dict], str]:
    """The stored runs (all, or those in `status`; one SQLite query) and "", or no runs and why the results folder cannot be used."""
    try:
        return get_store().list_runs(status), ""
    except StoreError as error:
        return [], str(error)
