"""Taking a model away: its files in the formats other tools open, and the code that trains it (lab/export/).

Every download is made only when its button is clicked (exporting a model takes seconds), as heavy work in the
server's process: it takes a slot first (lab/classroom/heavy_work.py). The code itself is quick to write, so
"Show the code" shows it straight away. lab/export is imported inside the functions: it loads TensorFlow,
which a page that only shows a table does not need.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from lab.classroom import heavy_work
from lab.config import RunConfig
from lab.store.owners import Person
from lab.store.runs import Store
from ui import identity
from ui.common import DEFAULT_MODEL_DIR, get_store

# What each button downloads: (button label, file name ending, MIME type, who it is for).
DOWNLOADS = {
    "zip": ("Everything (zip)", "-export.zip", "application/zip", "All of the below in one zip, with the model card and a README that says how to open each file."),
    "keras": ("Keras", ".keras", "application/octet-stream", "For Keras 3 in any Python: `keras.models.load_model(...)`, to look inside or train further."),
    "saved_model": ("TensorFlow SavedModel", "-saved_model.zip", "application/zip", "For TensorFlow programs, TensorFlow Serving and TensorFlow.js's converter (unzip it first)."),
    "litert": ("LiteRT (phones)", ".tflite", "application/octet-stream", "LiteRT, once called TensorFlow Lite: the format for apps on phones and small boards."),
    "onnx": ("ONNX", ".onnx", "application/octet-stream", "ONNX: opens in ONNX Runtime and many other tools, without TensorFlow."),
}  # fmt: skip
CODE_FILES = {
    "notebook": ("Notebook (.ipynb)", "notebook.ipynb", "application/x-ipynb+json", "Open it in Jupyter or Google Colab."),
    "script": ("Script (train.py)", "train.py", "text/x-python", "Run it with `python train.py`."),
}


def export_bytes(root: str, run_id: str | None, what: str, person: Person | None) -> bytes:
    """One download, made now: the whole zip or one file, of a stored run or (run_id None) of the shipped model."""
    from lab.export import bundle

    with heavy_work.slot(person, "preparing your download", wait_seconds=30), tempfile.TemporaryDirectory(prefix="lab-export-") as folder:
        if run_id is None:
            model, config, card = bundle.folder_model(DEFAULT_MODEL_DIR)
            name, records = "default-model", DEFAULT_MODEL_DIR
        else:
            store = Store(root)
            model = store.load_model(run_id)  # refuses a run that is not completed, or a model file outside the store
            config, card, name, records = store.get_run(run_id).config, bundle.run_card(store, run_id), run_id, store.run_dir(run_id)
        if what == "zip":
            path = bundle.export_model(model, config, name, Path(folder) / f"{name}.zip", card=card, records=records)
        else:
            path = bundle.export_single(model, config, name, what, Path(folder))
        return path.read_bytes()


def export_downloads(run_id: str | None, key: str) -> None:
    """The "Take this model with you" expander: the zip and each format alone, each made when its button is clicked."""
    root, person = str(get_store().root), identity.current_person()  # read now: a download runs after this page run
    name = run_id or "default-model"
    with st.expander("Take this model with you", icon=":material/download:"):
        st.markdown(
            "Download the model to use it outside this app: in your own Python program, in a phone app, or in other tools. "
            "None of these files needs this app to open. Each one takes a few seconds to prepare after you click."
        )
        columns = st.columns(len(DOWNLOADS))
        for column, (what, (label, ending, mime, help_text)) in zip(columns, DOWNLOADS.items(), strict=True):
            column.download_button(
                label,
                data=lambda what=what: export_bytes(root, run_id, what, person),  # made on click only
                file_name=f"{name}{ending}" if what in ("zip", "saved_model") else f"model{ending}",
                mime=mime,
                on_click="ignore",
                help=help_text,
                key=f"{key}_export_{what}",
            )


def show_code(config: RunConfig, run_id: str, key: str) -> None:
    """The "Show the code" expander: the run's train.py on screen, and the notebook and script to download."""
    from lab.export.code import notebook, train_script

    with st.expander("Show the code", icon=":material/code:"):
        st.markdown(
            "This is the Python code that trains this model, with this run's settings, written with Keras "
            "(a library for building neural networks). It runs on its own, in Jupyter, Google Colab or as a script."
        )
        script = train_script(config, run_id)
        left, right, _ = st.columns([1, 1, 2])
        texts = {"notebook": notebook(config, run_id), "script": script}
        for column, (what, (label, file_name, mime, help_text)) in zip((left, right), CODE_FILES.items(), strict=True):
            column.download_button(
                label,
                data=texts[what],
                file_name=file_name,
                mime=mime,
                on_click="ignore",
                help=help_text,
                key=f"{key}_code_{what}",
            )
        st.code(script, language="python", line_numbers=True)
