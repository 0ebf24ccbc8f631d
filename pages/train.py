"""Train: choose a task, a network and how to train it, start a job, and watch it learn.

The page only draws widgets. Training runs in a background job (lab/jobs/worker.py), so
it survives page changes and browser refreshes; this page reads its progress
from the results store. Two tabs: the settings of a new run, and the current run
(opened by Start, and on arrival while a job is active). Only the open tab is drawn,
so nothing polls the store while the settings are on screen.
In classroom mode the current run is the student's own latest (started or followed), never
someone else's; Start trains the student's own run (the form starts from a seed of their own), and
a classmate's run with the same settings is used only when the student chooses it (a copy). The
form lists every class limit the settings break at once, with a button that fits them.
"""

import streamlit as st

from lab.classroom import preflight
from lab.classroom.limits import LimitError, load_limits
from lab.config import RunConfig
from lab.jobs import queue
from lab.store.runs import Status, StoreError
from ui import identity, insight_views, model_view, run_view, train_form
from ui.common import data_dir_setting, data_problem, get_dataset, get_store
from ui.help_texts import SETTINGS
from ui.router import ensure_router

ensure_router("pages/train.py")
person = identity.require_person()

SETTINGS_TAB, RUN_TAB = "Settings", "Current run"
REFUSAL_KEY, OUTCOME_KEY = "train_refusal", "train_outcome"  # what Start's callback has to say, drawn by the page


def start() -> None:
    """The Start button's callback. It runs before the page is drawn, so it can open the run tab,
    and it reads the widgets' newest values (a number typed just before the click included).

    In classroom mode the request may be answered by a run someone already trained (or is
    training) with the same settings, or refused by the class's limits (a LimitError naming the limit).
    """
    owner = identity.current_person()  # read now: the session may have become the teacher since the page was drawn
    if owner is None:
        return
    try:
        config = train_form.config_from_state(st.session_state)
        model_view.check_memory(config, get_store())
        reuse = bool(st.session_state.get(train_form.REUSE_KEY))  # a classmate's run with these settings, chosen as a copy
        request = queue.ask_for_run(
            config, owner=owner, store=get_store(), data_dir=data_dir_setting(), classroom=identity.classroom_on(), reuse=reuse
        )
    except ValueError as error:  # a bad setting, too big for memory, beyond the class's limits, or not ready on this server
        if isinstance(error, LimitError):  # the form cannot know this one in advance: a full queue
            st.session_state[REFUSAL_KEY] = f"Class limit: {error}"
        elif isinstance(error, preflight.NotReadyError):  # the teacher removed a weights file since the form was drawn
            st.session_state[REFUSAL_KEY] = str(error)
        st.toast(str(error), icon=":material/error:")
        return
    st.session_state[train_form.REUSE_KEY] = False  # the next Start trains the student's own run again
    run_view.remember(request.run_id)
    st.session_state["train_tab"] = RUN_TAB
    if request.outcome == "queued":
        first = (request.message[:1].upper() + request.message[1:]).rstrip(".") if reuse else "Training job queued"  # none to copy
        st.toast(f"{first}: it keeps running if you change page or close the tab.", icon=":material/rocket_launch:")
    else:  # the same settings on the same data: that run's result is yours (a copy when a classmate's), nothing is trained twice
        st.session_state[OUTCOME_KEY] = request.message[:1].upper() + request.message[1:] + "."


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
classroom = identity.classroom_on()
# A student's form: the class's limits (the teacher's are not limited), and a seed of their own, so Start trains their own network.
student_limits = load_limits(store) if classroom and not person.is_teacher else None
train_form.init_state(student_limits, own_seed=queue.student_seed(person.id) if classroom else None)
run = run_view.current_run(store, person, classroom)
if "train_tab" not in st.session_state:
    st.session_state["train_tab"] = RUN_TAB if run and run.status.is_active else SETTINGS_TAB
settings_tab, run_tab = st.tabs([SETTINGS_TAB, RUN_TAB], key="train_tab", on_change="rerun")

if settings_tab.open:
    with settings_tab:
        task_column, model_column, training_column = st.columns([1, 1.2, 1.2], gap="large")
        with task_column:
            st.subheader("Task and data")
            train_form.task_inputs()
        with model_column:
            st.subheader("Network")
            train_form.model_inputs(model_view.layer_count, student_limits)
        with training_column:
            st.subheader("Training")
            train_form.training_inputs()

        config: RunConfig | None = None
        try:
            config = train_form.config_from_state(st.session_state)
            if student_limits is not None and (problems := student_limits.problems(config)):
                # Every limit the settings break, at once, before the click (the queue checks them too).
                several = f"the settings break {len(problems)} of the class's limits:\n" + "\n".join(
                    f"- {problem}." for problem in problems
                )
                raise LimitError(several if len(problems) > 1 else f"{problems[0]}.")
            if classroom:  # what this server lacks for the run (a weights file), as the class would run it
                class_limits = student_limits or load_limits(store)
                class_config = preflight.prepare_for_class(config, class_limits)
                if refusal := preflight.weights_refusal(class_config):
                    raise preflight.NotReadyError(refusal[:1].upper() + refusal[1:])
                if config.backbone in class_limits.weights_none and class_config.weights == "none":
                    st.info(f"The teacher switched {config.backbone} to weights “none” for the class. {preflight.WEIGHTS_NONE_NOTE}")
            model_view.check_memory(config, store)  # before anything is built: VGG16 at 224 pixels may not fit
            model_view.show_layers(config)
        except LimitError as error:
            st.error(f"Class limit: {error}", icon=":material/block:")
            st.button(
                "Fit to the class limits",
                key="trainbtn_fit",
                icon=":material/tune:",
                on_click=train_form.fit_to_class_limits,
                args=(student_limits,),
                help="Brings epochs, training images and input size down to the class's limits, and says what changed.",
            )
            config = None
        except ValueError as error:  # a setting RunConfig or the model registry refuses, explained
            st.error(str(error), icon=":material/error:")
            config = None
        if config is not None:
            model_view.weights_hint(config)
            model_view.show_estimate(config, store.list_runs(status=Status.COMPLETED))
            insight_views.freezing_note(config)
            # The sweep needs the data set in this server, so it is loaded only when asked for.
            finder = st.toggle("Find a learning rate: a short sweep on 2,000 images", key="train_lr_finder", help=SETTINGS["lr_finder"])
            if finder and (data := get_dataset()):
                insight_views.lr_finder_panel(config, data, key="train_lr", on_use=use_learning_rate)
        if missing_data := data_problem():  # a job would fail at once: say so now, not after the click
            st.warning(f"Training needs CIFAR-10 on this server. {missing_data}", icon=":material/dataset:")
        if refusal := st.session_state.pop(REFUSAL_KEY, None):
            st.error(refusal, icon=":material/block:")
        if classroom and not person.is_teacher:
            train_form.reuse_choice()
        st.button(
            "Start training",
            type="primary",
            disabled=config is None or bool(missing_data),
            icon=":material/play_arrow:",
            key="trainbtn_start",
            help=SETTINGS["start"],
            on_click=start,
        )

if run_tab.open:
    with run_tab:
        if outcome := st.session_state.pop(OUTCOME_KEY, None):
            st.success(outcome, icon=":material/recycling:")
        if run is None:
            st.info("No run yet: choose settings and press **Start training**.", icon=":material/info:")
        else:
            run_view.show_run(run, person)
