"""The Train page's view of one run: live progress while it is queued or training, its results after.

While the run is active, an `st.fragment` re-runs every 1.5 s and reads the store
(a handful of small queries: the run's row, its milestone events, its latest batch).
When the run finishes, the fragment reruns the whole page once, and the finished
run is drawn by a fragment without a timer, so an idle page polls nothing.
In classroom mode the current run is the person's own, its Cancel and Stop buttons are drawn
only for those `lab` lets use them (its owner, the teacher), and a queued run says when it should start.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from lab.config import task_class_names
from lab.jobs import launcher, queue, resume
from lab.jobs.progress import Progress, format_seconds, read_progress, time_left_words
from lab.jobs.ray import cluster
from lab.report import charts
from lab.store.owners import Person
from lab.store.runs import Run, RunStore, Status
from ui import export_view, identity, tasks
from ui.charts import confusion_summary, confusion_table, curves_summary, curves_table, show_chart
from ui.common import data_dir_setting, device_summary, get_store
from ui.help_texts import BATCH_CURVE_KEY, METRICS, ONE_RUN_CURVES_KEY
from ui.live_region import announce, live_panel

RUN_KEY = "train_run_id"  # the run this session started last
POLL_SECONDS = 1.5
STATUS_ICONS = {Status.QUEUED: ":material/schedule:", Status.RUNNING: ":material/sync:", Status.COMPLETED: ":material/check_circle:"}
STATUS_ICONS |= {Status.FAILED: ":material/error:", Status.CANCELLED: ":material/cancel:"}
MAX_BATCH_POINTS = 600  # points the batch-by-batch curve draws at most (a long run's are thinned evenly)


def current_run(store: RunStore, person: Person | None = None, classroom: bool = False) -> Run | None:
    """The run to show: this session's latest, else the one in the URL, else the newest active run.

    The store, not the browser, knows about jobs, so a refreshed page finds its job again.
    In classroom mode only `person`'s own runs (started or followed) count, never someone else's.
    """
    if classroom:
        return _own_current_run(store, person)
    for run_id in (st.session_state.get(RUN_KEY), st.query_params.get("run")):
        if run_id:
            try:
                run = store.get_run(run_id)
            except ValueError:  # a hand-edited URL: not a valid run id
                run = None
            if run is not None:
                return run
    active = queue.active_runs(store)
    if not active:
        return None
    remember(active[-1].run_id)  # so this session still shows it once it has finished
    return active[-1]


def _own_current_run(store: RunStore, person: Person | None) -> Run | None:
    """The run this session asked for last when it is still the person's, else the person's newest."""
    if person is None:
        return None
    own = store.runs_of(person.id)
    wanted = st.session_state.get(RUN_KEY) or st.query_params.get("run")
    run = next((run for run in own if run.run_id == wanted), own[0] if own else None)
    if run is not None and run.run_id != wanted:
        remember(run.run_id)
    return run


def remember(run_id: str) -> None:
    st.session_state[RUN_KEY] = run_id
    st.query_params["run"] = run_id


def show_run(run: Run, person: Person | None = None) -> None:
    """The run's panel; its Cancel and Stop buttons only for `person` when they may use them (the owner, the teacher)."""
    live = run.status.is_active
    live_panel(_run_panel, every=POLL_SECONDS if live else None, name="run")(run.run_id, live, person)


def _run_panel(run_id: str, live: bool, person: Person | None) -> None:
    store = get_store()
    run = store.get_run(run_id)
    if run is None:
        st.info("This run was deleted.", icon=":material/delete:")
        return
    active = run.status.is_active
    if live and not active:
        st.rerun()  # it just finished: redraw the page once, without the timer
    config = run.config
    # The task in words: "one-vs-rest:truck: completed" would turn ":truck:" into an emoji shortcode.
    task_words = tasks.task_label(run.task)
    st.subheader(f"{STATUS_ICONS.get(run.status, '')} {run.model} on {task_words[:1].lower()}{task_words[1:]}: {run.status}")
    st.caption(f"{config.backbone} · {config.epochs} epoch(s) · batch {config.batch_size}")
    if person is not None and not identity.is_mine(person, run) and identity.classroom_on():
        st.caption(f":material/group: Started by {run.owner_name or 'another student'}; it counts as yours too.")
    progress = read_progress(store, run)
    if active:
        _live(store, run, progress, person)
    elif run.status is Status.COMPLETED:
        if run.message:  # e.g. stopped early on request
            st.info(run.message, icon=":material/info:")
        _results(store, run)
    else:
        (st.error if run.status is Status.FAILED else st.warning)(run.message or run.status)
        if run.status is Status.FAILED:
            _resume_offer(store, run, person)
        _curves(store, run_id, progress)
        _details(run)


def _resume_offer(store: RunStore, run: Run, person: Person | None) -> None:
    """A failed run that saved a checkpoint can continue from its last finished epoch, as the same run."""
    run_id = run.run_id
    follows = person is not None and person.id in store.follower_ids(run_id)
    if not (identity.may_manage(person, run) or follows):
        return  # only its owner, a classmate who follows it, or the teacher may resume it (lab refuses anyone else too)
    if not resume.can_resume(run_id, store, by=person):
        st.caption(resume.resume_refusal(run_id, store) or "")
        return
    if st.button(
        "Resume this run",
        key="trainbtn_resume",
        icon=":material/play_arrow:",
        help="Continues from the last finished epoch: same settings, same place in the learning-rate schedule.",
    ):
        try:
            line = resume.resume(run_id, store, by=person, data_dir=data_dir_setting(), classroom=identity.classroom_on())
        except (PermissionError, ValueError) as error:  # someone else's run, or it was resumed a moment ago
            st.error(str(error), icon=":material/error:")
        else:
            st.toast(line, icon=":material/play_arrow:")
            remember(run_id)
            st.rerun()  # the whole page: the run is live again, and its panel polls


def _live(store: RunStore, run: Run, progress: Progress, person: Person | None) -> None:
    run_id = run.run_id
    if run.status is Status.QUEUED:
        launcher.ensure_workers(store, data_dir_setting())  # starts a worker if the last one died meanwhile (no write)
        cluster_state = cluster.status_line(store.root)
        if cluster_state is not None and not cluster_state[0]:  # the Ray cluster does not answer: say why the run waits
            st.warning(cluster_state[1], icon=":material/cloud_off:")
        st.info(_waiting_line(store, run_id), icon=":material/schedule:")
    elif progress.phase == "starting":
        st.progress(0.0, text="Loading the data and building the model ...")
        announce("Training is starting.")
    elif progress.phase == "features":
        st.progress(0.0, text="Running the frozen backbone once over every image (its outputs are cached; then only the head trains) ...")
    elif progress.phase == "training":
        text = f"Epoch {progress.epoch}/{progress.epochs} · step {progress.step}/{progress.steps_per_epoch} · "
        text += f"{format_seconds(progress.elapsed_seconds)} so far · {time_left_words(progress)}"
        st.progress(progress.fraction, text=text)
        announce(f"Training, epoch {progress.epoch} of {progress.epochs}.")  # once per epoch, not every batch
    else:
        words = "Training done: measuring on the test images ..." if progress.phase == "evaluating" else "Saving the model ..."
        st.progress(1.0, text=words)
        announce(words)
    if (restarted := resume.resumed_by_itself_sentence(progress.resumed_by_itself, run.config.epochs)) is not None:  # a Ray worker failed
        st.info(restarted, icon=":material/restart_alt:")
    if run.status is Status.RUNNING and (placed := store.latest_event(run_id, "placed")):  # a run on a Ray cluster
        ran_on = placed["ran_on"]
        where = f"Ray node {ran_on.get('node_address')} ({ran_on.get('node_id', '')[:8]})"
        if ran_on.get("worker_count", 1) > 1:  # one model trained by several workers at once
            where = f"{ran_on['worker_count']} Ray workers at once, led from {where}"
        st.caption(f":material/hub: Training on {where}")
    if run.keep_when_stopped:
        st.warning("Stopping after the current batch, then measuring and saving the model as it is ...", icon=":material/hourglass_top:")
    elif run.cancel_requested:
        st.warning("Stopping after the current batch ...", icon=":material/hourglass_top:")
    elif identity.may_manage(person, run):  # someone else's run can be watched, not stopped (lab refuses it too)
        # A running run can also stop early and keep what it has learned: it is evaluated and appears in Compare.
        keep_column, cancel_column = st.columns(2) if run.status is Status.RUNNING else (None, st.container())
        keep = keep_column is not None and keep_column.button(
            "Stop now and keep the model",
            key="trainbtn_stop_keep",
            icon=":material/save:",
            help="Ends training after the current batch, then measures the model on the test images and saves it, "
            "as a run of fewer epochs.",
            width="stretch",
        )
        cancel = cancel_column.button(
            "Cancel this run",
            key="trainbtn_cancel",
            icon=":material/stop_circle:",
            help="Ends training and keeps nothing.",
            width="stretch" if keep_column is not None else "content",
        )
        if keep or cancel:
            try:
                done = queue.cancel(run_id, store, keep_model=keep, by=person)
            except PermissionError as error:  # lab's own check: the run is someone else's
                st.error(str(error), icon=":material/lock:")
            else:
                st.toast(done.message[:1].upper() + done.message[1:], icon=":material/group:" if "classmate" in done.message else None)
                after = store.get_run(run_id)  # None once deleted
                still_mine = after is not None and after.owner_id == person.id
                # A run classmates follow goes on for them and leaves this page: redraw the whole page, not just this panel.
                st.rerun(scope="fragment" if still_mine else "app")
    _curves(store, run_id, progress)
    _details(run)


def _details(run: Run) -> None:
    """The run's id and where it was trained: for the teacher and the command line, not for the projector."""
    with st.expander("Details", icon=":material/info:"):
        st.caption(f"Run id: {run.run_id} (python -m lab runs lists it; the address of this page keeps it).")


def _waiting_line(store: RunStore, run_id: str) -> str:
    """Where a queued run stands: its place in the (fair) queue, and in classroom mode roughly when it starts."""
    position = queue.queue_position(run_id, store)
    if not position:
        return "Starting ..."
    line = f"Waiting for a free worker: number {position} in the queue."
    if not identity.classroom_on():  # one user knows what they queued: the page stays as it was
        return line
    seconds = queue.seconds_until_start(run_id, store, device=device_summary()["device"])
    if seconds is not None:
        line += " It should start " + ("any moment now." if seconds < 1 else f"in about {format_seconds(seconds)}.")
    return line


def _curves(store: RunStore, run_id: str, progress: Progress) -> None:
    """While training, the loss batch by batch; and once an epoch has ended, loss and accuracy per epoch."""
    if progress.phase == "training":
        _batch_curve(pd.DataFrame(store.events(run_id, kinds="batch_end")), progress.steps_per_epoch or 1)
    if progress.epoch_events:
        _curve_pair(charts.history_frame(progress.epoch_events))


def _batch_curve(batches: pd.DataFrame, steps_per_epoch: int) -> None:
    """The training loss as the batches go by, across every epoch so far (one line per epoch: its average restarts)."""
    if batches.empty or not batches["loss"].notna().any():
        return
    batches = batches.assign(step_in_run=(batches["epoch"] - 1) * steps_per_epoch + batches["step"])
    if len(batches) > MAX_BATCH_POINTS:
        batches = batches.iloc[:: -(-len(batches) // MAX_BATCH_POINTS)]
    chart = (
        alt.Chart(batches[["epoch", "step_in_run", "loss"]])
        .mark_line(point=True, color=charts.SPLIT_COLOURS["train"])
        .encode(
            x=alt.X("step_in_run:Q", title="training step", axis=alt.Axis(format="d")),
            y=alt.Y("loss:Q", title="training loss", scale=alt.Scale(zero=False)),
            detail="epoch:N",
            tooltip=["epoch:Q", alt.Tooltip("step_in_run:Q", title="step"), alt.Tooltip("loss:Q", format=".3f")],
        )
    )
    first, last = batches["loss"].dropna().iloc[0], batches["loss"].dropna().iloc[-1]
    summary = f"The training loss after each batch, {len(batches)} points: from {first:.3f} to {last:.3f} so far. {BATCH_CURVE_KEY}"
    table = batches[["epoch", "step_in_run", "loss"]].rename(columns={"step_in_run": "training step"}).round(4)
    show_chart(chart.properties(height=220), table, title="Loss, batch by batch", summary=summary, width="stretch")


def _curve_pair(frame: pd.DataFrame) -> None:
    left, right = st.columns(2)
    for where, metric in ((left, "accuracy"), (right, "loss")):
        chart = charts.learning_curves_chart(frame, metric)
        show_chart(chart, curves_table(frame, metric), title=metric.capitalize(), summary=curves_summary(frame, metric), where=where)
    st.caption(ONE_RUN_CURVES_KEY)


def _results(store: RunStore, run: Run) -> None:
    metrics = run.metrics
    names = list(metrics.get("class_names") or task_class_names(run.task))
    # Two rows, so each figure keeps room for its whole label and value: how good, then how big and how long.
    columns = st.columns(5)
    columns[0].metric("Test accuracy", _percent(metrics.get("accuracy")), help=METRICS["accuracy"])
    tasks.baseline_metric(columns[1], metrics, names)  # beside the accuracy: what a model that learned nothing scores
    for column, (label, key) in zip(
        columns[2:5], [("Precision", "precision_macro"), ("Recall", "recall_macro"), ("F1 score", "f1_macro")], strict=True
    ):
        column.metric(label, _percent(metrics.get(key)), help=METRICS[key])
    size_column, time_column, _ = st.columns([1.4, 1, 2.6])
    learning = f" {metrics.get('trainable_params', 0):,} of them learn; the others stay as they were."
    size_column.metric("Parameters", f"{metrics.get('total_params', 0):,}", help=METRICS["total_params"] + learning)
    time_column.metric("Training time", format_seconds(run.train_seconds), help=METRICS["train_seconds"])
    kept = f" The weights of epoch {metrics['best_epoch']} (best validation accuracy) were kept." if metrics.get("best_epoch") else ""
    st.caption(
        f"Measured on {metrics.get('n_test', '?')} test images never used for training; {tasks.baseline_words(metrics, names)}.{kept}"
    )
    tasks.one_class_metrics(metrics, run.task)
    history = store.load_history(run.run_id)
    if history:
        _curve_pair(charts.history_frame(history))
    if metrics.get("confusion_matrix"):
        matrix = metrics["confusion_matrix"]
        summary = "Rows are the true classes; darker cells hold more of that row's images. " + confusion_summary(matrix, names)
        show_chart(charts.confusion_matrix_chart(matrix, names), confusion_table(matrix, names), title="Confusion matrix", summary=summary)
    export_view.show_code(run.config, run.run_id, key=f"run_{run.run_id}")
    st.page_link("pages/compare.py", label="Open in Compare", icon=":material/leaderboard:")
    _details(run)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
