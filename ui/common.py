"""Cached access to the data set and the results store, shared by every page.

`st.cache_resource` keeps one copy of the (read-only) data set arrays and of each
loaded model per server process, so thirty students do not load CIFAR-10 thirty
times; the arrays are memory-mapped, so only the pictures pages show take memory.
Never mutate what these functions return.
"""

from __future__ import annotations

import os

import streamlit as st

from lab.data import cifar10 as lab_data
from lab.data.cache import load_cifar10_mapped, release_pages
from lab.models.files import load_model_file
from lab.store.runs import ModelFolder, RunStore, Store
from lab.system import process_memory
from lab.system.paths import DEFAULT_MODEL_DIR  # a model the project ships, so Predict works before anyone trains one


def data_dir_setting() -> str | None:
    """The folder or archive the app loads CIFAR-10 from (the CIFAR10_DIR setting), if set."""
    return os.environ.get("CIFAR10_DIR") or None


@st.cache_resource(show_spinner="Loading CIFAR-10 ...")
def _load_dataset(data_dir: str | None) -> lab_data.Cifar10:
    # Memory-mapped (lab/data/cache.py): the server keeps in memory only the pictures it shows.
    dataset = load_cifar10_mapped(data_dir)
    _loaded_datasets[data_dir] = dataset  # remembered (the latest per folder), so return_freed_memory can release its pages
    return dataset


def get_dataset() -> lab_data.Cifar10 | None:
    """The CIFAR-10 arrays, or None (after showing what to do) when no copy is available."""
    try:
        return _load_dataset(data_dir_setting())
    except lab_data.DataUnavailableError as error:
        st.warning(f"No CIFAR-10 data: {error}", icon=":material/dataset:")
        return None


def data_problem() -> str | None:
    """Why a training job could not load CIFAR-10 here, or None (found, or Keras may still download it).

    Only looks at file names, never loads the images, so every rerun can afford it.
    """
    status = lab_data.describe_data_source(data_dir_setting())
    return None if status["found"] or status["kind"] == "keras" else status["message"]


def get_store() -> RunStore:
    """The results store (LAB_HOME). Cheap to create: each call opens short SQLite connections."""
    return Store()


@st.cache_resource(show_spinner="Loading the model ...", max_entries=4)
def load_model(run_id: str):
    """A stored model, loaded once per server process (safe_mode on, id validated by the store)."""
    return get_store().load_model(run_id)


@st.cache_resource(show_spinner=False)
def device_summary() -> dict:
    """What this server trains on, and with which versions. Imports TensorFlow once per process."""
    import keras  # TensorFlow loads here, not when the app starts
    import tensorflow as tf

    from lab.train import devices

    gpus = devices.gpu_names()
    return {"device": ", ".join(gpus) if gpus else "CPU", "gpus": gpus, "tensorflow": tf.__version__, "keras": keras.__version__}


@st.cache_resource(show_spinner="Loading the model ...", max_entries=1)
def load_default_model():
    """The model shipped in assets/default_model/model.keras, loaded with Keras safe mode on."""
    return load_model_file(ModelFolder(DEFAULT_MODEL_DIR).model)


def return_freed_memory() -> None:
    """After each page run: drop the data set's pages the run read, and return freed heap memory.

    Pictures are copied out of the memory-mapped data set before they are shown, and the OS maps
    whole megabytes around each one it reads (Explore's class averages read all 150 MB), so the
    mapped pages are released here, once, for every page; they are read again when needed.
    Then the heap blocks the run freed go back to the system (lab/system/process_memory.py says why).
    """
    for dataset in _loaded_datasets.values():
        for array in (dataset.x_train, dataset.x_test):
            release_pages(array)
    process_memory.return_free_heap()


_loaded_datasets: dict[str | None, lab_data.Cifar10] = {}  # what _load_dataset has loaded in this server process
