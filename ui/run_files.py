"""A model's files for people: its model card on Predict, its zip on Compare, the shipped model's metrics.

The card is the MODEL_CARD.md training writes into each completed run's folder (and the one
shipped beside the default model); runs stored before cards existed have none, and say so.
The zip is exactly what `python -m lab export` writes (`Store.export_run`), built only when
the button is clicked, so a page showing a 60 MB fine-tuned VGG16 does not zip it on every rerun.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import streamlit as st

from lab.classroom import heavy_work
from lab.store.runs import ModelFolder, Run, Status, Store
from ui import identity
from ui.common import DEFAULT_MODEL_DIR, get_store

NO_CARD = (
    "This run was stored before the lab wrote model cards, so it has none. Its settings and results are on the "
    "Compare page; train it again (Compare's **Train a row again**) for a run with a card."
)


def card_text(run_id: str | None) -> str | None:
    """The model card of a stored run, or of the shipped default model when `run_id` is None; None when there is none."""
    path = ModelFolder(DEFAULT_MODEL_DIR).model_card if run_id is None else get_store().run_folder(run_id).model_card
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def show_card(run_id: str | None) -> None:
    """The "About this model" expander: the card with its headings two levels down, so they sit under the page's own."""
    with st.expander("About this model", icon=":material/description:"):
        text = card_text(run_id)
        if text is None:
            st.info(NO_CARD, icon=":material/description:")
        else:
            st.markdown(re.sub(r"^(#{1,4}) ", r"\1## ", text, flags=re.MULTILINE))


def report_bytes(root: str, among: set[str], suffix: str) -> bytes:
    """The lab report (lab/report) of the best run of each preset and task among `among`, as HTML or PDF."""
    from lab.report.lab_report import build_report
    from lab.report.writers import write_report

    # Rendering every chart is heavy work in the server's process: it takes a slot (lab/classroom/heavy_work.py).
    with (
        heavy_work.slot(identity.current_person(), "the lab report", wait_seconds=30),
        tempfile.TemporaryDirectory(prefix="lab-report-") as folder,
    ):
        return write_report(build_report(Store(root), among=among), Path(folder) / f"lab-report{suffix}").read_bytes()


def lab_report_download(run_ids: list[str]) -> None:
    """Buttons that download the lab report (HTML or PDF) of the listed runs: the best of each preset and task among them."""
    if not run_ids:
        st.caption("The lab report needs at least one completed run in the table.")
        return
    root = str(get_store().root)
    left, right, _ = st.columns([1, 1, 2])
    for column, suffix, mime, icon in (
        (left, ".html", "text/html", ":material/article:"),
        (right, ".pdf", "application/pdf", ":material/picture_as_pdf:"),
    ):
        column.download_button(
            f"Download lab report ({suffix[1:].upper()})",
            data=lambda suffix=suffix: report_bytes(root, set(run_ids), suffix),  # built on click only: it renders every chart
            file_name=f"cifar10-lab-report{suffix}",
            mime=mime,
            on_click="ignore",
            icon=icon,
            help="The write-up to hand in: data, models, hyperparameters, results beside the report's, curves, confusion "
            "matrices, findings and next steps, for the best run of each preset and task in the table.",
            key=f"compare_lab_report{suffix}",
        )


def zip_bytes(run_id: str, root: str) -> bytes:
    """The run's zip, as `python -m lab export` writes it (`Store.export_run`), read back from a temporary file."""
    with tempfile.TemporaryDirectory(prefix="lab-export-") as folder:
        return Store(root).export_run(run_id, Path(folder) / f"{run_id}.zip").read_bytes()


def zip_download(run: Run) -> None:
    """A button that downloads the run's zip (model, card, config, history, metrics); a line instead when it has no files."""
    store = get_store()
    run_id = run.run_id
    if run.status is not Status.COMPLETED or not store.run_dir(run_id).is_dir():
        st.caption(f"Run {run_id} has no saved files to download: only a completed run keeps its model.")
        return
    root = str(store.root)  # read now: the download runs on another thread, after this page run
    st.download_button(
        "Download this run's records (zip)",
        data=lambda: zip_bytes(run_id, root),  # built on click only
        file_name=f"{run_id}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/folder_zip:",
        help='The run as this app stores it: its model, model card, settings, history and figures. To open the model elsewhere, use "Take this model with you" below.',
        key="compare_run_zip",
    )
