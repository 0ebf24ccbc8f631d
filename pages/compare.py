"""Compare: every stored run next to the lab report's results, and a close look at one run.

The page is in sections (tabs): the results table, the charts, one run up close (its confusion matrix and
its mistakes) and two runs image by image. Only the open section is drawn, so reading the table never waits
for a model to be evaluated. The Task and Model filters above the sections apply to all of them.
In classroom mode the page opens on the class leaderboard (ui/leaderboard_view.py); every run
stays one click away, and only a run's owner (or the teacher) is offered its Delete button.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lab.classroom.heavy_work import BusyError
from lab.evaluate.metrics import mistakes, most_confused_pairs
from lab.insight import misclassified
from lab.jobs import queue
from lab.report import charts
from lab.report.results_table import reference_rows, results_table
from lab.report.safe_csv import safe_csv
from lab.store.runs import Status, StoreError
from ui import export_view, identity, insight_views, leaderboard_view, results, run_files, tasks
from ui.charts import confusion_summary, confusion_table, curves_summary, curves_table, show_chart
from ui.common import get_dataset, get_store, load_model
from ui.help_texts import CURVES_KEY, METRICS
from ui.router import ensure_router

ensure_router("pages/compare.py")
person = identity.require_person()

VIEWS = {"class": "Class leaderboard", "runs": "Every run"}
SECTIONS = ("Results table", "Charts", "One run: matrix and mistakes", "Two runs, image by image")
KEEP = {"persist_state": "session"}  # a choice survives a visit to another section or page
REPORT_ROWS_NOTE = (
    "Rows ticked **lab report** are the report's own figures: measured on CIFAR-10's original 10,000 test images, after "
    "10 epochs on all 50,000 training images (5 for its one-class run). This lab's runs count the test images of the copy "
    "here (column *data*), so the two are close relatives, not the same exam."
)

store = get_store()
classroom = identity.classroom_on()
if classroom:
    view_name = st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, default="class", required=True, key="compare_view")
    if view_name == "class":
        leaderboard_view.show_leaderboard(store)
        st.stop()
st.title("Compare runs")
try:
    runs = store.list_runs()
    table = results.results_frame(results_table(store))
except StoreError as error:  # LAB_HOME unwritable or the disk full: the lab report's rows need no store
    st.error(f"The results store cannot be read, so only the lab report's results are shown: {error}")
    runs = []
    table = results.results_frame(reference_rows())
completed = {run.run_id: run for run in runs if run.status is Status.COMPLETED}
labels = results.unique_run_labels(completed)


def label(run_id: str) -> str:
    return labels[run_id]


if not completed:
    st.info("No finished runs yet. Train a model and it appears here, next to the lab report's results.", icon=":material/info:")
    st.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")

# ---- the filters, for every section
left, right = st.columns(2)
chosen_tasks = left.multiselect(
    "Task", sorted(table["task"].dropna().unique()), format_func=tasks.task_label, placeholder="All tasks", key="compare_tasks", **KEEP
)
models = right.multiselect("Model", sorted(table["model"].dropna().unique()), placeholder="All models", key="compare_models", **KEEP)
view = table[table["task"].isin(chosen_tasks or table["task"]) & table["model"].isin(models or table["model"])]
ids = [run_id for run_id in completed if run_id in set(view["run_id"])]  # the finished runs the filters keep, newest first


def results_table_section() -> None:
    """The stored runs beside the lab report's rows; downloads; train a row again; every run, with Delete."""
    one_vs_rest = view[view["positive_f1"].notna()]
    columns = results.table_columns(classroom, one_class=not one_vs_rest.empty)  # its class's columns only while such a run is listed
    st.dataframe(view[columns], column_config=results.column_config(view["task"]), hide_index=True, placeholder="–", key="compare_table")
    if view["reference"].any():
        st.caption(REPORT_ROWS_NOTE)
    if not one_vs_rest.empty:  # accuracy alone would rank a model that always says "no" near the top
        tasks.show_imbalance_note(one_vs_rest["task"].iloc[0], one_vs_rest["baseline_accuracy"].iloc[0])
    st.download_button(
        "Download CSV",
        safe_csv(view[columns]),  # owners' names and options stay text in a spreadsheet, never formulas
        file_name="cifar10-lab-results.csv",
        mime="text/csv",
        icon=":material/download:",
        key="compare_csv",
    )
    run_files.lab_report_download([row["run_id"] for row in view.to_dict("records") if not row.get("reference")])

    with st.expander("Train a row again", icon=":material/replay:"):
        rows = view.to_dict("records")
        if rows:
            row = rows[
                st.selectbox(
                    "Row",
                    range(len(rows)),
                    format_func=lambda i: (
                        f"{rows[i]['model']} · {tasks.task_label(rows[i]['task'])} · "
                        + ("lab report" if rows[i].get("reference") else str(rows[i].get("created_at"))[:16])
                    ),
                    key="compare_rerun_row",
                )
            ]
            config = results.rerun_config(row, completed.get(row["run_id"]))
            if st.button(
                "Open its settings on the Train page", disabled=config is None, icon=":material/model_training:", key="compare_rerun"
            ):
                st.session_state["train_prefill"] = config
                st.switch_page("pages/train.py")

    with st.expander(f"All runs ({len(runs)}), including unfinished ones", icon=":material/folder_open:"):
        if runs:
            shown = ("run_id", *(("owner",) if classroom else ()), "status", "model", "task", "created_at", "message")
            listing = pd.DataFrame([{k: values[k] for k in shown} for values in (r.to_dict() for r in runs)])
            listing["task"] = listing["task"].map(tasks.task_label)
            st.dataframe(listing, hide_index=True, key="compare_all_runs")
            # Only the runs this person may delete are offered (their own; every run for the teacher); lab refuses the others too.
            deletable = [r.run_id for r in runs if r.status is not Status.RUNNING and identity.may_manage(person, r)]
            if deletable:
                doomed = st.selectbox("Run to delete", deletable, key="compare_delete_run")
                sure = st.checkbox(f"Yes, delete {doomed} and its saved model", key="compare_delete_confirm")
                if st.button("Delete", type="primary", disabled=not sure, icon=":material/delete:", key="compare_delete"):
                    try:
                        done = queue.delete(doomed, store, by=person)
                    except (PermissionError, ValueError) as error:  # someone else's run, or it started running meanwhile
                        st.error(str(error), icon=":material/lock:")
                    else:
                        st.session_state.pop("compare_delete_confirm", None)
                        st.toast(done.message[:1].upper() + done.message[1:])  # a run classmates follow stays theirs: it says so
                        st.rerun()
            elif classroom:
                st.caption("You can delete your own finished runs here; you have none yet.")
        else:
            st.caption("No runs stored yet.")


def charts_section() -> None:
    """Accuracy against training time for the listed rows, and the learning curves of chosen runs."""
    if view[["accuracy", "train_seconds"]].notna().all(axis=1).any():
        st.subheader("Accuracy against training time")
        plotted = results.in_words(view)
        drawn = plotted[plotted[["accuracy", "train_seconds"]].notna().all(axis=1)]
        best = drawn.loc[drawn["accuracy"].idxmax()]
        summary = (f"{len(drawn)} runs, test accuracy against training time. The most accurate: {best['model']}, "
                   f"{best['accuracy']:.0%} after {best['train_seconds']:,.0f} seconds.")  # fmt: skip
        table = drawn[["model", "task", "accuracy", "train_seconds", "total_params"]].round(4)
        show_chart(charts.accuracy_vs_time_chart(plotted), table, title="Accuracy against training time", summary=summary,
                   title_shown=False, width="stretch")  # fmt: skip
        st.caption(
            "Up and to the left is better: more accurate, sooner. Bigger points have more parameters. Diamonds are the lab "
            "report's runs (CIFAR-10's original 10,000 test images, another computer). Rows without a training time are not drawn."
        )
    if not ids:
        st.caption("Finished runs that the filters above keep show their learning curves here.")
        return
    st.subheader("Learning curves")
    chosen = st.multiselect("Runs", ids, default=ids[:3], format_func=label, key="compare_curves")
    metric = st.segmented_control("Metric", ["accuracy", "loss"], default="accuracy", required=True, key="compare_metric", **KEEP)
    curves = [charts.history_frame(store.load_history(run_id), run=label(run_id)) for run_id in chosen]
    curves = pd.concat(curves) if curves else pd.DataFrame()
    if curves.empty:
        st.caption("Choose runs with a stored history to see their curves.")
    else:
        chart = charts.learning_curves_chart(curves, metric)
        show_chart(
            chart,
            curves_table(curves, metric),
            title=f"{metric.capitalize()} per epoch",
            summary=curves_summary(curves, metric),
            width="stretch",
        )
        st.caption(CURVES_KEY)


def one_run_section() -> None:
    """One run's figures, its confusion matrix (a click opens a cell's images) and its most confident mistakes."""
    if not ids:
        st.caption("No finished run here yet: train one, or widen the filters above.")
        return
    run = completed[st.selectbox("Run", ids, format_func=label, key="compare_run", **KEEP)]
    metrics, names = run.metrics, results.class_names_of(run)
    columns = st.columns(5)
    columns[0].metric("Test accuracy", f"{metrics.get('accuracy') or 0:.1%}", help=METRICS["accuracy"])
    tasks.baseline_metric(columns[1], metrics, names)
    columns[2].metric("Macro F1", f"{metrics.get('f1_macro') or 0:.3f}", help=METRICS["f1_macro"])
    columns[3].metric("Parameters", f"{metrics.get('total_params') or 0:,}", help=METRICS["total_params"])
    columns[4].metric("Training time", f"{run.train_seconds or 0:.0f} s", help=METRICS["train_seconds"])
    tasks.one_class_metrics(metrics, run.task)
    run_files.zip_download(run)
    export_view.export_downloads(run.run_id, "compare")
    if metrics.get("confusion_matrix"):
        matrix = metrics["confusion_matrix"]
        chart = charts.confusion_matrix_chart(matrix, names, clickable=True)
        table, summary = confusion_table(matrix, names), confusion_summary(matrix, names)
        clicked = show_chart(
            chart, table, title="Confusion matrix", summary=summary, width="content", on_select="rerun", key="compare_matrix"
        )
        results.apply_clicked_cell(clicked, names)
        st.caption(
            "Each row is a true class, each column the model's answer; the diagonal counts right answers. Darker = a bigger share of the row. "
            "**Click a cell** to see its images below."
        )
        pairs = most_confused_pairs(metrics["confusion_matrix"], names, k=3)
        st.markdown(
            "**Most confused:** " + "; ".join(f"{p['true']} → {p['predicted']} ({p['share']:.0%} of the {p['true']} images)" for p in pairs)
        )
        per_class = pd.DataFrame(metrics["per_class"]).round(3)
        weakest = per_class.loc[per_class["f1"].idxmin()]
        summary = f"Precision, recall and F1 of each class. The hardest class for this run: {weakest['class']} (F1 {weakest['f1']:.2f})."
        show_chart(charts.per_class_chart(metrics["per_class"]), per_class, title="Each class", summary=summary, width="stretch")

    st.markdown("**Test images this run got wrong**, the most confident mistakes first")
    data = get_dataset()
    if data is not None:
        try:
            x_test, y_test, probabilities = results.test_predictions(data.source, run)
        except BusyError as error:  # the server is evaluating for others: say so, never wait silently
            insight_views.busy_note(error)
        except (StoreError, OSError, ValueError) as error:
            st.warning(f"This run's mistakes cannot be shown: {error}")
        else:
            options = ["any", *names]
            true_column, predicted_column = st.columns(2)
            true_class = true_column.selectbox("True class", options, key="compare_true")
            predicted_class = predicted_column.selectbox("Predicted class", options, key="compare_predicted")
            chosen = [None if name == "any" else names.index(name) for name in (true_class, predicted_class)]
            if None in chosen:
                shown = mistakes(y_test, probabilities, k=24, true_class=chosen[0], predicted_class=chosen[1])
            else:  # one cell of the matrix, right answers included, most confident first
                shown = misclassified.confusion_cell(y_test, probabilities, *chosen)[:24]
            explain = st.toggle("Show where the model looked (Grad-CAM)", key="compare_gradcam")
            insight_views.mistakes_gallery(x_test, y_test, probabilities, shown, names, model=load_model(run.run_id) if explain else None)
        if st.toggle("Show the first layer's filters", key="compare_filters"):
            insight_views.filters_view(load_model(run.run_id))


# ---- the sections: only the open one is drawn (the tab's key remembers which)
table_tab, charts_tab, run_tab, two_tab = st.tabs(SECTIONS, key="compare_section", on_change="rerun")
if table_tab.open:
    with table_tab:
        results_table_section()
if charts_tab.open:
    with charts_tab:
        charts_section()
if run_tab.open:
    with run_tab:
        one_run_section()
if two_tab.open:
    with two_tab:
        if completed:
            insight_views.two_runs_section([completed[run_id] for run_id in ids], get_dataset(), label, results.test_predictions)
        else:
            st.caption("Train two runs of the same task to compare them image by image.")
