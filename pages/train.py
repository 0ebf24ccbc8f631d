"""Train: choose a task, a network and how to train it, start a job, and watch it learn.

The page only draws widgets. Training runs in a background job (lab/jobs/worker.py), so
it survives page changes and browser refreshes; this page reads its progress
from the results store. Two tabs: the settings of a new run, and the current run
(opened by Start, and on arrival while a job is active). Only the open tab is drawn,
so nothing polls the store while the settings are on screen.
"""

import streamlit as st

from lab.config import RunConfig
from lab.jobs import queue
from lab.store.runs import StoreError
from ui import insight_views, model_view, run_view, train_form
from ui.common import data_dir_setting, data_problem, get_dataset, get_store
from ui.router import ensure_router

ensure_router("pages/train.py")

SETTINGS_TAB, RUN_TAB = "Settings", "Current run"


def start() -> None:
    """The Start button's callback. It runs before the page is drawn, so it can open the run tab,
    and it reads the widgets' newest values (a number typed just before the click included)."""
    try:
        config = train_form.config_from_state(st.session_state)
        model_view.check_memory(config, get_store())
    except ValueError as error:
        st.toast(str(error), icon=":material/error:")
        return
    run_view.remember(queue.submit(config, store=get_store(), data_dir=data_dir_setting()))
    st.session_state["train_tab"] = RUN_TAB
    st.toast("Training job queued: it keeps running if you change page or close the tab.", icon=":material/rocket_launch:")


def use_learning_rate(learning_rate: float) -> None:
    """The LR finder's "use it" button: put its suggestion into the form."""
    st.session_state["train_learning_rate"] = float(learning_rate)


st.title("Train a model")
store = get_store()
try:
    queue.recover(store, data_dir_setting())  # marks runs whose worker died; restarts queued work after a server restart
except StoreError as error:  # LAB_HOME cannot be written (or the disk is full): nowhere to keep a run
    st.error(f"Training is unavailable because runs cannot be stored: {error}", icon=":material/error:")
    st.stop()
train_form.init_state()
run = run_view.current_run(store)
if "train_tab" not in st.session_state:
    st.session_state["train_tab"] = RUN_TAB if run and run["status"] in queue.ACTIVE_STATUSES else SETTINGS_TAB
settings_tab, run_tab = st.tabs([SETTINGS_TAB, RUN_TAB], key="train_tab", on_change="rerun")

if settings_tab.open:
    with settings_tab:
        task_column, model_column, training_column = st.columns([1, 1.2, 1.2], gap="large")
        with task_column:
            st.subheader("Task and data")
            train_form.task_inputs()
        with model_column:
            st.subheader("Network")
            train_form.model_inputs(model_view.layer_count)
        with training_column:
            st.subheader("Training")
            train_form.training_inputs()

        config: RunConfig | None = None
        try:
            config = train_form.config_from_state(st.session_state)
            model_view.check_memory(config, store)  # before anything is built: VGG16 at 224 pixels may not fit
            model_view.show_layers(config)
        except ValueError as error:  # a setting RunConfig or the model registry refuses, explained
            st.error(str(error), icon=":material/error:")
            config = None
        if config is not None:
            model_view.weights_hint(config)
            model_view.show_estimate(config, store.list_runs(status="completed"))
            insight_views.freezing_note(config)
            # The sweep needs the data set in this server, so it is loaded only when asked for.
            if st.toggle("Find a learning rate: a short sweep on 2,000 images", key="train_lr_finder") and (data := get_dataset()):
                insight_views.lr_finder_panel(config, data, key="train_lr", on_use=use_learning_rate)
        if missing_data := data_problem():  # a job would fail at once: say so now, not after the click
            st.warning(f"Training needs CIFAR-10 on this server. {missing_data}", icon=":material/dataset:")
        st.button(
            "Start training",
            type="primary",
            disabled=config is None or bool(missing_data),
            icon=":material/play_arrow:",
            key="trainbtn_start",
            on_click=start,
        )

if run_tab.open:
    with run_tab:
        if run is None:
            st.info("No run yet: choose settings and press **Start training**.", icon=":material/info:")
        else:
            run_view.show_run(run)
