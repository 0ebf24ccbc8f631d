"""Page tests for the bad days: LAB_HOME cannot be written, a job was killed, a setting is wrong or too big.

The app must say what is wrong and keep serving what it can: Explore still shows the
data, Predict still answers with the shipped model, Train explains why it cannot store
runs, and a run that died shows as "interrupted" on Train and Compare.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from lab.config import CLASS_NAMES, RunConfig
from lab.store.records import Status
from lab.store.runs import Store
from lab.system import hardware
from tests.synthetic import random_cifar10_folder

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(autouse=True)
def _no_data_and_offline(tmp_path, monkeypatch):
    """No CIFAR-10 unless a test asks for it, and never a download attempt."""
    from lab.data import cifar10 as lab_data

    def refuse():
        raise lab_data.DataUnavailableError("offline in tests: " + lab_data.HOW_TO_GET_IT)

    monkeypatch.setattr(lab_data, "_download_with_keras", refuse)
    (tmp_path / "no_cifar").mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "no_cifar"))


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    folder = random_cifar10_folder(tmp_path / "cifar", 100, 20, seed=3)
    monkeypatch.setenv("CIFAR10_DIR", str(folder))


@pytest.fixture
def unwritable_home(tmp_path, monkeypatch):
    """LAB_HOME under a regular file: it can never be created (chmod would not stop root)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("LAB_HOME", str(blocker / "lab_home"))


@pytest.fixture
def shipped_model(tmp_path, monkeypatch):
    """A default model in a folder of its own, as assets/default_model/ would hold it."""
    import keras
    from keras import layers

    import ui.common

    folder = tmp_path / "default_model"
    folder.mkdir()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(10, activation="softmax")]
    )
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"task": "cifar10", "model": "seed-cnn"}))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.7, "class_names": list(CLASS_NAMES)}))
    monkeypatch.setattr(ui.common, "DEFAULT_MODEL_DIR", folder)
    ui.common.load_default_model.clear()
    yield folder
    ui.common.load_default_model.clear()


def app(page: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    if page:
        for key, value in state.items():
            at.session_state[key] = value
        at.switch_page(page).run()
        assert not at.exception, [error.value for error in at.exception]
    return at


def errors(at: AppTest) -> str:
    return "\n".join(str(error.value) for error in at.error)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 160, 40)).save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- LAB_HOME cannot be written


def test_unwritable_lab_home_explore_still_works_and_the_sidebar_says_why(unwritable_home, tiny_data):
    at = app()  # Explore is the first page
    assert at.title[0].value == "Explore CIFAR-10"
    pictures = [html for html in at.html if "<figure" in html.value and "<img" in html.value]
    assert pictures, "Explore shows the data set's pictures without a results store"
    sidebar = "\n".join(str(m.value) for m in at.sidebar.markdown) + "\n".join(str(c.value) for c in at.sidebar.caption)
    assert "cannot be stored" in sidebar and "Set LAB_HOME" in sidebar


def test_unwritable_lab_home_train_says_it_cannot_store_runs(unwritable_home, tiny_data):
    at = app("pages/train.py")
    message = errors(at)
    assert "Training is unavailable because runs cannot be stored" in message
    assert "not-a-folder" in message and "Set LAB_HOME to a folder you can write to" in message
    assert not at.button  # no Start button that could only fail


def test_unwritable_lab_home_compare_still_shows_the_reports_results(unwritable_home):
    at = app("pages/compare.py")
    assert "The results store cannot be read" in errors(at)
    table = at.dataframe[0].value
    assert len(table) == 6 and set(table["model"]) >= {"seed-cnn", "vgg16-finetune"}  # the lab report's rows


def test_unwritable_lab_home_predict_works_with_the_shipped_model(unwritable_home, shipped_model):
    at = app("pages/predict.py")
    assert "The results store cannot be read" in errors(at)
    assert "right about 70% of the time" in at.info[0].value
    at.file_uploader(key="predict_upload").set_value(("leaf.png", png_bytes(), "image/png")).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1  # the top-5 chart
    assert "sure" in "\n".join(str(m.value) for m in at.markdown)


# ---------------------------------------------------------------- a killed job, seen from the pages


def test_a_killed_job_shows_as_interrupted_on_train_and_compare(tiny_data):
    store = Store()
    run_id = store.create_run(RunConfig(), status="running")
    worker = subprocess.Popen(["true"])
    worker.wait()  # the worker is gone, killed with the old server
    with store._write() as connection:
        connection.execute("UPDATE runs SET worker_pid = ? WHERE run_id = ?", (worker.pid, run_id))

    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["run"] = run_id  # the address a student reloads keeps the run id
    at.session_state["train_tab"] = "Current run"
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert store.get_run(run_id).status is Status.FAILED  # the page's recovery noticed at once
    assert "interrupted: the training process stopped unexpectedly" in errors(at)

    at.switch_page("pages/compare.py").run()
    listing = next(frame.value for frame in at.dataframe if "status" in frame.value.columns)
    row = listing.loc[listing["run_id"] == run_id]
    assert row["status"].item() == "failed" and row["message"].item().startswith("interrupted: ")


# ---------------------------------------------------------------- settings that cannot work


@pytest.mark.slow
def test_the_same_class_twice_in_a_pair_task_is_explained_and_start_is_disabled():
    at = app("pages/train.py", train_tab="Settings")
    at.radio(key="train_task").set_value("pair").run()
    at.selectbox(key="train_class_a").set_value("cat")
    at.selectbox(key="train_class_b").set_value("cat").run()
    assert "pair task names two different CIFAR-10 classes" in errors(at)
    assert at.button(key="trainbtn_start").disabled


@pytest.mark.slow
def test_a_run_too_big_for_the_server_is_explained_and_start_is_disabled(monkeypatch, tiny_data):
    monkeypatch.setattr(hardware, "available_memory_mb", lambda *args, **kwargs: 2700.0)  # a small cloud machine
    at = app("pages/train.py", train_tab="Settings")
    assert not at.button(key="trainbtn_start").disabled  # the quick-demo preset fits
    at.selectbox(key="train_backbone").set_value("vgg16").run()
    at.selectbox(key="train_input_size").set_value(224)
    at.number_input(key="train_subset").set_value(0)
    at.number_input(key="train_batch_size").set_value(256).run()
    message = errors(at)
    assert "this run needs about" in message and "2.6 GB free" in message
    assert "input_size (224)" in message and "batch_size (256)" in message and "subset (all)" in message
    assert at.button(key="trainbtn_start").disabled


# ---------------------------------------------------------------- no data set


def test_train_without_the_data_set_says_what_is_missing_before_the_click():
    at = app("pages/train.py", train_tab="Settings")  # CIFAR10_DIR names an empty folder
    warning = "\n".join(str(w.value) for w in at.warning)
    assert "Training needs CIFAR-10 on this server" in warning and "cifar-10-python.tar.gz" in warning
    assert at.button(key="trainbtn_start").disabled


def test_train_with_the_data_set_can_start(tiny_data):
    at = app("pages/train.py", train_tab="Settings")
    assert not any("Training needs CIFAR-10" in str(w.value) for w in at.warning)
    assert not at.button(key="trainbtn_start").disabled
