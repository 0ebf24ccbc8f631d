"""The Teacher page's parts: the class's queue, any run's buttons, the class's limits and challenge, its results, a fresh start,
and the tries at the teacher password.

Every action passes the teacher (`by=`) to `lab`, which checks it: the page is listed only for a
session that gave the teacher password, and `lab` would refuse a student anyway.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from lab.classroom import identities, preflight
from lab.classroom import teacher as teacher_sign_in
from lab.classroom.limits import Challenge, ClassLimits, load_challenge, load_limits, save_challenge, save_limits
from lab.config import CLASS_NAMES, INPUT_SIZES, ONE_VS_REST, PRESETS
from lab.jobs import queue
from lab.jobs.progress import format_seconds
from lab.report.results_table import RESULT_COLUMNS, results_table
from lab.report.safe_csv import safe_csv
from lab.store.owners import Person
from lab.store.runs import RunStore, Status, Store
from ui.common import data_dir_setting, device_summary
from ui.leaderboard_view import refresh_now
from ui.live_region import live_panel
from ui.tasks import task_label

QUEUE_REFRESH_SECONDS = 5
ATTEMPTS_SHOWN = 200  # the newest tries at the teacher password listed on the page
# The tasks a challenge can name before anyone has trained them: the standard two and every class against the rest.
STANDARD_TASKS = ("cifar10", "binary", *(f"{ONE_VS_REST}{name}" for name in CLASS_NAMES))


# ---------------------------------------------------------------- pre-flight: what this server has for the lesson

# The size of each ImageNet file (without the classifier top), to say when it is too big for the page's upload limit.
WEIGHTS_FILE_MB = {"vgg16": 59, "resnet50": 95, "mobilenetv2": 10, "efficientnetb0": 17}


def preflight_view(store: RunStore, teacher: Person) -> None:
    """The data found and each pretrained backbone's ImageNet weights; a missing file can be uploaded, or its backbone switched to "none"."""
    data = preflight.data_status(data_dir_setting())
    if data["found"]:
        st.success(f"**The data:** {data['message']}", icon=":material/dataset:")
    else:
        st.warning(f"**The data:** {data['message']}", icon=":material/dataset:")
    limits = load_limits(store)
    for row in preflight.weights_status(limits):
        _backbone_weights(store, teacher, row)


def _backbone_weights(store: RunStore, teacher: Person, row: preflight.BackboneWeights) -> None:
    used_by = f" (used by {', '.join(row.presets)})" if row.presets else " (no preset uses it; custom runs may)"
    if row.found is not None:
        st.markdown(f":material/check_circle: **{row.backbone}**{used_by}: ImageNet weights found, `{row.file_name}`.")
        if row.switched_to_none:  # switched before the file came: the teacher may switch back
            _weights_none_toggle(store, teacher, row)
        return
    if row.switched_to_none:
        state = "missing; the class trains it from random numbers (weights “none”)"
    else:
        state = "missing, so students are not offered its presets"
    st.markdown(f":material/error: **{row.backbone}**{used_by}: ImageNet weights {state}.")
    with st.container(border=True):
        biggest = int(st.get_option("server.maxUploadSize"))
        fits = WEIGHTS_FILE_MB[row.backbone] <= biggest
        st.caption(
            f"Keras looks for the file `{row.file_name}` in the folder `{row.folder}`. "
            + (
                "Provide it here (checked before it is kept), or copy it into that folder on the server."
                if fits
                else "Copy it into that folder on the server."
            )
        )
        if not fits:
            # The server refuses any upload above server.maxUploadSize whatever a widget says, so no uploader is offered.
            st.caption(
                f"This file is about {WEIGHTS_FILE_MB[row.backbone]} MB, more than this server accepts through a page "
                f"({biggest} MB, `server.maxUploadSize` in .streamlit/config.toml): copy it into the folder instead, or raise that setting."
            )
            _weights_none_toggle(store, teacher, row)
            return
        upload = st.file_uploader(f"The {row.backbone} weights file (.h5)", type=["h5"], key=f"teacher_weights_upload_{row.backbone}")
        if st.button(
            "Check and install it", key=f"teacher_weights_install_{row.backbone}", disabled=upload is None, icon=":material/upload:"
        ):
            try:
                with st.spinner(f"Checking that it loads into {row.backbone} ..."):
                    kept = preflight.install_weights_file(row.backbone, upload.name, upload.getvalue(), by=teacher)
            except (PermissionError, ValueError) as error:  # not the file Keras expects (said in a sentence), or not the teacher
                st.error(str(error), icon=":material/block:")
            else:
                st.success(f"Installed as {kept.name}: the {row.backbone} presets are offered to students now.", icon=":material/check:")
                st.rerun()
        _weights_none_toggle(store, teacher, row)


def _weights_none_toggle(store: RunStore, teacher: Person, row: preflight.BackboneWeights) -> None:
    """The class's switch of one backbone to weights "none", with what it changes in plain words."""
    switched = st.toggle(
        f"Use weights “none” for {row.backbone} in this class",
        value=row.switched_to_none,
        key=f"teacher_weights_none_{row.backbone}",
        help=preflight.WEIGHTS_NONE_NOTE,
    )
    if switched != row.switched_to_none:
        try:
            preflight.switch_weights_none(store, row.backbone, switched, by=teacher)
        except (PermissionError, ValueError) as error:
            st.error(str(error))
        else:
            st.rerun()
    if switched:
        st.caption(f"What changes: {preflight.WEIGHTS_NONE_NOTE}")


# ---------------------------------------------------------------- the queue


def queue_view(store: RunStore) -> None:
    """The runs training now and those waiting, in the order they will start; redraws itself."""
    live_panel(_queue_panel, every=QUEUE_REFRESH_SECONDS, name="queue")(str(store.root))


def _queue_panel(root: str) -> None:
    store = Store(root)
    rows = queue_rows(store)
    if not rows:
        st.info("Nothing is training or waiting.", icon=":material/check_circle:")
        return
    waiting = Counter(row["student"] for row in rows if row["status"] == Status.QUEUED)
    if waiting:
        st.markdown("**Waiting:** " + ", ".join(f"{name} ({count})" for name, count in waiting.items()))
    st.table(pd.DataFrame(rows), hide_index=True)  # plain text, large enough to read across the room


def queue_rows(store: RunStore) -> list[dict]:
    """Running runs first, then the queued ones in the fair order (round robin across students); every cell text."""
    device = device_summary()["device"]
    placed = []
    for run in queue.active_runs(store):
        place = queue.queue_position(run.run_id, store) if run.status is Status.QUEUED else None
        starts = queue.seconds_until_start(run.run_id, store, device=device) if place else None
        row = {
            "place": "training" if run.status is Status.RUNNING else str(place or "starting"),
            "student": run.owner_name or run.owner_id,
            "status": run.status.value,  # plain text in a table cell
            "model": run.model,
            "task": task_label(run.task),
            "starts in": "now" if run.status is Status.RUNNING else format_seconds(starts),
            "run_id": run.run_id,
        }
        placed.append((place or 0, row))
    return [row for _, row in sorted(placed, key=lambda pair: pair[0])]


# ---------------------------------------------------------------- one run


def manage_run(store: RunStore, teacher: Person) -> None:
    """Cancel, stop or delete any student's run."""
    runs = store.list_runs()
    if not runs:
        st.caption("No runs stored yet.")
        return
    by_id = {run.run_id: run for run in runs}
    run_id = st.selectbox(
        "Run",
        list(by_id),
        format_func=lambda rid: f"{by_id[rid].owner or '?'} · {by_id[rid].model} · {by_id[rid].status} · {rid}",
        key="teacher_run",
    )
    run = by_id[run_id]
    cancel_column, keep_column, delete_column = st.columns(3)
    active = run.status.is_active
    try:
        if cancel_column.button("Cancel it", disabled=not active, icon=":material/stop_circle:", key="teacher_cancel"):
            queue.cancel(run_id, store, by=teacher)
            st.toast(f"Cancelling {run_id}.")
            st.rerun()
        if keep_column.button(
            "Stop it and keep the model", disabled=run.status is not Status.RUNNING, icon=":material/save:", key="teacher_keep"
        ):
            queue.cancel(run_id, store, keep_model=True, by=teacher)
            st.toast(f"Stopping {run_id}; its model is kept.")
            st.rerun()
        if delete_column.button("Delete it", disabled=run.status is Status.RUNNING, icon=":material/delete:", key="teacher_delete"):
            queue.delete(run_id, store, by=teacher)
            refresh_now()
            st.toast(f"Deleted {run_id}.")
            st.rerun()
    except (PermissionError, ValueError) as error:  # lab's checks: not the teacher after all, or it started meanwhile
        st.error(str(error))


# ---------------------------------------------------------------- limits and challenge


def limits_form(store: RunStore, teacher: Person) -> None:
    """What each student may queue, and what the whole class may have waiting; the Train form and the queue enforce it, naming the limit."""
    limits = load_limits(store)
    with st.form("teacher_limits_form", border=True):
        left, right = st.columns(2)
        epochs = left.number_input("Most epochs (0 = no limit)", 0, 1000, limits.max_epochs or 0, key="teacher_max_epochs")
        images = right.number_input(
            "Most training images (0 = no limit)", 0, 50_000, limits.max_train_images or 0, step=1000, key="teacher_max_images"
        )
        sizes = [0, *INPUT_SIZES]
        size = left.selectbox(
            "Largest input size",
            sizes,
            index=sizes.index(limits.max_input_size or 0),
            format_func=lambda size: "no limit" if size == 0 else f"{size} pixels",
            key="teacher_max_input",
        )
        per_student = right.number_input("Queued runs per student", 1, 50, limits.max_queued_per_student, key="teacher_max_queued")
        waiting_total = left.number_input(
            "Runs waiting in the whole class (0 = no limit)",
            0,
            1000,
            limits.max_waiting_total or 0,
            key="teacher_max_waiting_total",
            help="Counts everyone's queued runs together, so many tabs with many names cannot fill the queue.",
        )
        newcomers = right.number_input(
            "New students per minute (0 = no limit)",
            0,
            1000,
            limits.max_new_students_per_minute or 0,
            key="teacher_max_new_per_minute",
            help="How many people may start their first run within one minute: a whole class arriving, not a flood of made-up names.",
        )
        presets = st.multiselect(
            "Presets allowed (none chosen = every one)",
            [*PRESETS, "custom"],
            default=list(limits.allowed_presets or []),
            key="teacher_presets",
        )
        if st.form_submit_button("Save the limits", type="primary", icon=":material/save:"):
            try:
                chosen = ClassLimits(
                    max_epochs=int(epochs) or None,
                    max_train_images=int(images) or None,
                    max_input_size=int(size) or None,
                    allowed_presets=tuple(presets) or None,
                    max_queued_per_student=int(per_student),
                    max_waiting_total=int(waiting_total) or None,
                    max_new_students_per_minute=int(newcomers) or None,
                    weights_none=load_limits(store).weights_none,  # set in the pre-flight above, kept as it is
                )
                save_limits(store, chosen, by=teacher)
            except (PermissionError, ValueError) as error:  # a bad value, or lab's check: not the teacher after all
                st.error(str(error))
            else:
                st.success("Limits saved: they apply to the next run anyone starts.", icon=":material/check:")


def challenge_form(store: RunStore, teacher: Person) -> None:
    """A task and a budget: the leaderboard then ranks only the runs that meet it."""
    current = load_challenge(store)
    if current is not None:
        st.markdown(f"**Now:** {task_label(current.task)} ({current.describe()})")
    tasks = list(
        dict.fromkeys(
            [*STANDARD_TASKS, *(run.task for run in store.list_runs(status=Status.COMPLETED)), *([current.task] if current else [])]
        )
    )
    with st.form("teacher_challenge_form", border=True):
        task = st.selectbox(
            "Task", tasks, index=tasks.index(current.task) if current else 0, format_func=task_label, key="teacher_challenge_task"
        )
        left, right = st.columns(2)
        seconds = left.number_input(
            "Most training seconds (0 = no limit)",
            0,
            100_000,
            int(current.max_train_seconds or 0) if current else 0,
            key="teacher_challenge_seconds",
        )
        params = right.number_input(
            "Most parameters (0 = no limit)",
            0,
            500_000_000,
            (current.max_params or 0) if current else 0,
            step=10_000,
            key="teacher_challenge_params",
        )
        if st.form_submit_button("Set the challenge", type="primary", icon=":material/flag:"):
            save_challenge(store, Challenge(task, max_train_seconds=float(seconds) or None, max_params=int(params) or None), by=teacher)
            refresh_now()
            st.rerun()
    if current is not None and st.button("Remove the challenge", icon=":material/flag_circle:", key="teacher_challenge_remove"):
        save_challenge(store, None, by=teacher)
        refresh_now()
        st.rerun()


# ---------------------------------------------------------------- results and a fresh start


def class_results_csv(store: RunStore) -> str:
    """The class's completed runs (not the lab report's rows) as CSV, with their owners; formula-like cells neutralised."""
    rows = [row for row in results_table(store) if not row.get("reference")]
    return safe_csv(pd.DataFrame(rows, columns=list(RESULT_COLUMNS)))  # a name like "=HYPERLINK(...)" stays text in a spreadsheet


def clear_class(store: RunStore, teacher: Person) -> None:
    """Cancel every active run and delete every run, behind a confirmation."""
    sure = st.checkbox("Yes, cancel every queued and running run, and delete every run of the class", key="teacher_clear_confirm")
    if not st.button("Clear the class's runs", type="primary", disabled=not sure, icon=":material/delete_sweep:", key="teacher_clear"):
        return
    deleted, stopping = 0, 0
    for run in store.list_runs():
        if run.status.is_active:
            queue.cancel(run.run_id, store, by=teacher)  # a queued run is cancelled at once; a running one after its batch
        if store.get_run(run.run_id).status is Status.RUNNING:
            stopping += 1
            continue
        queue.delete(run.run_id, store, by=teacher)
        deleted += 1
    st.session_state.pop("teacher_clear_confirm", None)
    refresh_now()
    later = f" {stopping} running run(s) stop after their current batch: clear again then to delete them." if stopping else ""
    st.success(f"Deleted {deleted} run(s).{later}", icon=":material/check:")


# ---------------------------------------------------------------- tries at the teacher password


def sign_in_attempts(store: RunStore) -> None:
    """Every try at the teacher password, newest first: when, from which identity, accepted or not; and the lock, if any."""
    locked = teacher_sign_in.locked_until(store)
    if locked is not None:
        st.warning(teacher_sign_in.locked_sentence(locked), icon=":material/lock_clock:")
    rows = [
        {
            "when": row["at"].astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            "who": row["person_name"] or "someone who had not joined",
            "identity": row["person_id"] or "",
            "outcome": row["outcome"],
        }
        for row in teacher_sign_in.attempts(store, limit=ATTEMPTS_SHOWN)
    ]
    if not rows:
        st.caption("Nobody has tried the teacher password yet.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


# ---------------------------------------------------------------- names that read the same


def shared_names(store: RunStore) -> None:
    """Students whose names read the same ("Ana" and "Аna" with a Cyrillic А): nothing at all while every name is told apart.

    Joining refuses a name that reads like one in the class, so this lists only names that joined at
    the very same moment, or before names were compared.
    """
    groups = identities.people_sharing_a_name(store)
    if not groups:
        return
    st.subheader("Names that read the same")
    st.warning(
        "These identities have names that look the same on screen, so the leaderboard cannot tell them apart. "
        "Ask the students which is which: one of them can leave and join again with an initial (earlier runs keep the old name).",
        icon=":material/group:",
    )
    rows = [
        {"name": person["name"], "identity": person["person_id"], "joined": person["created_at"][:16].replace("T", " ") + " UTC"}
        for group in groups
        for person in group
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
