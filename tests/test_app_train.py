"""Page tests (Streamlit AppTest): every page renders with and without data; the Train page runs a real job."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lab.config import RunConfig, config_for_preset
from lab.data import cifar10 as lab_data
from lab.jobs import launcher
from lab.jobs.progress import RESUMED_BY_ITSELF
from lab.store.records import Status
from lab.store.runs import Store
from tests.synthetic import random_cifar10_folder

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ("pages/explore.py", "pages/train.py", "pages/compare.py", "pages/predict.py")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """AppTest runs the app in this process: make sure no page can reach for the Keras download."""

    def refuse():
        raise lab_data.DataUnavailableError("offline in tests: " + lab_data.HOW_TO_GET_IT)

    monkeypatch.setattr(lab_data, "_download_with_keras", refuse)


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> str:
    return str(random_cifar10_folder(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", 200, 100, seed=1))


@pytest.fixture
def store(monkeypatch):
    yield Store()  # conftest points LAB_HOME at a fresh folder
    jobs_left = launcher.live_workers(Store())
    assert not jobs_left, f"workers left running: {jobs_left}"


def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    return at


def texts(at: AppTest) -> str:
    return "\n".join([str(m.value) for m in at.markdown] + [str(m.value) for m in at.caption] + [str(e.value) for e in at.error])


@pytest.mark.slow
@pytest.mark.parametrize("data_dir", [None, "/no/such/cifar"])
def test_every_page_renders_without_a_dataset(monkeypatch, store, data_dir):
    if data_dir:
        monkeypatch.setenv("CIFAR10_DIR", data_dir)
    at = app()
    sidebar = "\n".join(str(m.value) for m in at.sidebar.markdown)
    assert "CIFAR-10" in sidebar and ("not found" in sidebar or "downloads on first use" in sidebar)
    assert "0 runs" in sidebar
    for page in PAGES:
        open_page(at, page)


def test_every_page_renders_with_a_tiny_dataset(monkeypatch, store, tiny_cifar):
    monkeypatch.setenv("CIFAR10_DIR", tiny_cifar)
    at = app()
    assert "found" in "\n".join(str(m.value) for m in at.sidebar.markdown)
    for page in PAGES:
        open_page(at, page)


def test_train_form_builds_the_config_and_explains_bad_settings(store):
    at = open_page(app(), "pages/train.py")
    assert at.selectbox(key="train_model").value == "quick-demo"
    assert "356,810 parameters" in texts(at)  # the seed CNN's size, from the layer view
    assert "About" in texts(at)  # the duration estimate (timed step, seed-cnn)
    at.number_input(key="train_subset").set_value(120)
    at.number_input(key="train_batch_size").set_value(256).run()
    assert any("batch_size" in str(error.value) for error in at.error)
    assert at.button(key="trainbtn_start").disabled


@pytest.mark.slow
def test_freeze_depth_updates_the_layer_view_at_once(store):
    at = open_page(app(), "pages/train.py")
    at.selectbox(key="train_model").set_value("vgg16-frozen").run()
    assert at.selectbox(key="train_backbone").value == "vgg16"
    assert "5,130 learn, 14,714,688 frozen" in texts(at)  # only the new head (512 x 10 + 10) learns
    frozen_line = next(m.value for m in at.markdown if "parameters**" in str(m.value))
    at.toggle(key="train_freeze_all").set_value(False).run()
    at.slider(key="train_freeze_depth").set_value(11).run()
    assert not at.exception
    partly = next(m.value for m in at.markdown if "parameters**" in str(m.value))
    assert partly != frozen_line
    assert at.selectbox(key="train_model").value == "custom"  # the network changed: no longer the preset
    assert any("ImageNet weights" in str(info.value) for info in at.info)  # not cached on this machine


def test_the_fast_recipe_loads_into_the_form_with_its_width(store):
    at = open_page(app(), "pages/train.py")
    at.selectbox(key="train_model").set_value("fast-cnn").run()
    assert not at.exception
    assert at.slider(key="train_val_fraction").value == pytest.approx(0.02)  # the recipe's share, not clipped
    assert at.select_slider(key="train_width").value == 0.75
    at.select_slider(key="train_width").set_value(1.0).run()
    assert not at.exception
    assert at.selectbox(key="train_model").value == "custom"  # a wider network is no longer the preset
    assert "1,9" in texts(at)  # the layer view counts the full-width network's ~1.97 M parameters


@pytest.mark.slow
def test_the_fine_labels_switch_belongs_to_the_binary_task(store):
    from ui.train_form import config_from_state

    at = open_page(app(), "pages/train.py")
    assert not [toggle for toggle in at.toggle if toggle.key == "train_fine_labels"]  # all 10 classes: nothing finer
    at.radio(key="train_task").set_value("binary").run()
    at.toggle(key="train_fine_labels").set_value(True).run()
    assert not at.exception
    assert config_from_state(at.session_state).fine_labels is True
    at.radio(key="train_task").set_value("cifar10").run()
    assert not at.exception and not at.error  # the switch no longer applies, so it is left out, not refused
    assert config_from_state(at.session_state).fine_labels is False


@pytest.mark.slow
def test_prefill_from_compare_loads_a_run_s_settings(store):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["train_prefill"] = RunConfig(task="pair:cat,dog", epochs=7, learning_rate=3e-4, augment=True).to_dict()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception
    assert at.radio(key="train_task").value == "pair"
    assert (at.selectbox(key="train_class_a").value, at.selectbox(key="train_class_b").value) == ("cat", "dog")
    assert at.number_input(key="train_epochs").value == 7
    assert at.number_input(key="train_learning_rate").value == pytest.approx(3e-4)
    assert at.toggle(key="train_augment").value is True


@pytest.mark.slow
def test_start_a_job_from_the_train_page_and_see_it_in_compare(monkeypatch, store, tiny_cifar):
    monkeypatch.setenv("CIFAR10_DIR", tiny_cifar)
    at = open_page(app(), "pages/train.py")
    at.number_input(key="train_subset").set_value(200)
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_batch_size").set_value(16)
    at.button(key="trainbtn_start").click().run()
    assert not at.exception
    run_id = at.session_state["train_run_id"]
    assert Store().get_run(run_id).config.subset == 200

    deadline = time.monotonic() + 120
    while Store().get_run(run_id).status.is_active and time.monotonic() < deadline:
        time.sleep(0.5)
    run = Store().get_run(run_id)
    assert run.status is Status.COMPLETED, run.message
    accuracy = f"{run.metrics['accuracy']:.1%}"

    at.run()  # the page now shows the finished run's results
    assert not at.exception
    assert [m.label for m in at.metric][:1] == ["Test accuracy"]
    assert "completed" in "\n".join(str(s.value) for s in at.subheader)

    # On the Compare page: a row of the results table, and the run chosen for a close look with its accuracy.
    open_page(at, "pages/compare.py")
    (table,) = [frame.value for frame in at.dataframe if "run_id" in frame.value.columns and "accuracy" in frame.value.columns]
    (row,) = table[table["run_id"] == run_id].to_dict("records")
    assert row["model"] == run.config.model and row["accuracy"] == pytest.approx(run.metrics["accuracy"])
    at.session_state["compare_section"] = "One run: matrix and mistakes"  # Compare opens on its results table
    at.run()
    assert at.selectbox(key="compare_run").value == run_id
    assert {metric.label: metric.value for metric in at.metric}["Test accuracy"] == accuracy
    deadline = time.monotonic() + 30
    while launcher.live_workers(Store()) and time.monotonic() < deadline:
        time.sleep(0.2)


def test_a_refreshed_page_finds_the_running_job_in_the_store(store):
    run_id = Store().create_run(config_for_preset("quick-demo"))  # queued; no worker will take it (no data)
    Store().set_status(run_id, "running")  # as if a worker had claimed it
    at = open_page(app(), "pages/train.py")  # a new session: nothing in session state
    assert run_id in "\n".join(str(c.value) for c in at.caption)
    assert at.button(key="trainbtn_cancel")
    at.button(key="trainbtn_cancel").click().run()
    assert Store().get_run(run_id).cancel_requested
    assert not Store().get_run(run_id).keep_when_stopped
    at.run()  # the next redraw (in the browser, the panel's own rerun) says what happens
    assert "Stopping after the current batch ..." in [w.value for w in at.warning]


def test_a_running_job_can_stop_and_keep_its_model_but_a_queued_one_only_cancel(store, monkeypatch):
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args: None)  # no worker may take the queued run
    queued = Store().create_run(config_for_preset("quick-demo"))
    at = open_page(app(), "pages/train.py")
    assert at.button(key="trainbtn_cancel") and not [b for b in at.button if b.key == "trainbtn_stop_keep"]
    Store().set_status(queued, "running")  # as if a worker had claimed it
    at.run()
    at.button(key="trainbtn_stop_keep").click().run()
    run = Store().get_run(queued)
    assert run.status is Status.RUNNING and run.keep_when_stopped and Store().keep_requested(queued)
    at.run()
    assert not at.exception
    assert any("measuring and saving the model" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key in ("trainbtn_stop_keep", "trainbtn_cancel")]  # asked once is enough


def test_a_running_job_shows_progress_eta_and_curves(store):
    run_id = Store().create_run(config_for_preset("quick-demo", epochs=3))
    Store().claim_next_queued(os.getpid())  # this test process plays the worker
    Store().add_event(run_id, {"kind": "train_begin", "epochs": 3, "steps_per_epoch": 10, "n_train": 640, "n_val": 64})
    Store().add_event(
        run_id, {"kind": "epoch_end", "epoch": 1, "seconds": 4.0, "loss": 2.1, "accuracy": 0.2, "val_loss": 2.0, "val_accuracy": 0.25}
    )
    Store().add_event(run_id, {"kind": "batch_end", "epoch": 2, "step": 5, "steps": 10, "loss": 1.9, "accuracy": 0.3, "epoch_seconds": 2.0})
    at = open_page(app(), "pages/train.py")
    bar = at.get("progress")[0].proto
    assert bar.value == 50  # 15 of 30 steps
    assert "Epoch 2/3" in bar.text and "6 s so far" in bar.text and "less than a minute left" in bar.text  # 6 s to go
    assert len(at.get("vega_lite_chart")) == 3  # the loss batch by batch; accuracy and loss per epoch
    assert any("dashed line: the validation pictures" in caption.value for caption in at.caption)  # the curves' key


@pytest.mark.slow
def test_the_learning_rate_finder_suggests_a_rate_that_fills_the_form(monkeypatch, store, tiny_cifar):
    monkeypatch.setenv("CIFAR10_DIR", tiny_cifar)
    at = open_page(app(), "pages/train.py")
    at.toggle(key="train_lr_finder").set_value(True).run()
    at.button(key="train_lr_lr_find").click().run()
    assert not at.exception
    use = next(button for button in at.button if button.key and button.key.startswith("train_lr") and button.key != "train_lr_lr_find")
    use.click().run()
    assert not at.exception
    suggested = at.number_input(key="train_learning_rate").value
    assert 1e-6 <= suggested <= 1.0 and suggested != 0.001


def test_a_run_resumed_by_itself_says_why_on_its_page(store):
    """A Ray worker failed and the dispatcher put the run back in the queue: the student sees why it started again."""
    run_id = Store().create_run(config_for_preset("quick-demo", epochs=3))
    Store().claim_next_queued(os.getpid())
    because = "worker 1 of 2 failed: ActorDiedError: the actor died unexpectedly"
    Store().add_event(run_id, {"kind": RESUMED_BY_ITSELF, "after_epoch": 1, "because": because})
    at = open_page(app(), "pages/train.py")
    said = [box.value for box in at.info if "went back in the queue by itself" in box.value]
    assert said and "after epoch 1 of 3" in said[0] and "ActorDiedError" in said[0]
