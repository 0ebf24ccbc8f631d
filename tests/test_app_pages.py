"""Page tests: the Explore, Compare and Predict pages, run through the real entry point with AppTest.

Each test gets its own LAB_HOME (see conftest.py) and either no CIFAR-10 at all (an
empty CIFAR10_DIR, which fails at once, without trying a download) or a tiny
synthetic copy written in the official layout. Completed runs are stored directly
through the store's API with a tiny real Keras model, so no test trains anything.
"""

from __future__ import annotations

import io
import re
from html import unescape
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from lab.config import REPORT_BINARY_TASK, config_for_preset, task_class_names
from lab.data.cifar10 import load_cifar10
from lab.data.tasks import prepare_task
from lab.evaluate.metrics import evaluate_model, metrics_from_predictions
from lab.evaluate.predict import predict_image
from lab.report.results_table import reference_rows
from lab.store.runs import Store
from tests.synthetic import random_cifar10_folder

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
HISTORY = {"loss": [2.0, 1.6], "accuracy": [0.2, 0.4], "val_loss": [1.9, 1.7], "val_accuracy": [0.25, 0.35]}


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """CIFAR10_DIR names an empty folder: the data set is missing and nothing is downloaded."""
    empty = tmp_path / "no_cifar"
    empty.mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(empty))


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A 200 + 50 image synthetic CIFAR-10 (labels cycle 0-9), in the official folder layout."""
    folder = random_cifar10_folder(tmp_path / "cifar", 200, 50, seed=0)
    monkeypatch.setenv("CIFAR10_DIR", str(folder))
    return load_cifar10(folder)


def tiny_model(num_classes: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    output = layers.Dense(10, activation="softmax") if num_classes > 2 else layers.Dense(1, activation="sigmoid")
    return keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), output])


def store_completed_run(task: str = "cifar10", data=None, probabilities: np.ndarray | None = None) -> str:
    """A completed run in the store, as training would leave it, with a tiny untrained model."""
    store = Store()
    names = task_class_names(task)
    model = tiny_model(len(names))
    config = config_for_preset("seed-cnn", task=task, epochs=2)
    run_id = store.create_run(config, status="running")
    if data is not None:
        task_data = prepare_task(data, config)
        metrics = evaluate_model(model, task_data.x_test, task_data.y_test, names).metrics
    else:
        metrics = metrics_from_predictions([0, 1, 1, 0], [0, 1, 0, 0], names)
    extra = None
    if probabilities is not None:
        buffer = io.BytesIO()
        np.save(buffer, probabilities.astype(np.float16))
        extra = {"test_probabilities.npy": buffer.getvalue()}
    metrics |= {"total_params": model.count_params(), "trainable_params": model.count_params(), "class_names": list(names)}
    store.complete_run(
        run_id, metrics=metrics, history=HISTORY, model=model, environment={"device": "CPU"},
        fingerprint={"source": "synthetic", "n_test": metrics["n_test"]}, train_seconds=12.5, extra_files=extra,
    )  # fmt: skip
    return run_id


def open_page(page: str, **state) -> AppTest:
    """Run the app, switch to `page` (with session state set first) and check it rendered cleanly."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def chart_frames(at: AppTest) -> list:
    """The data of every Altair chart on the page, as DataFrames."""
    return [convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data) for chart in at.get("vega_lite_chart")]


class PictureBlock:
    """One row of pictures drawn by ui/pictures.py (an st.html block): each picture's alt text and caption."""

    def __init__(self, body: str):
        self.alts = [unescape(alt) for alt in re.findall(r'<img [^>]*alt="([^"]*)"', body)]
        self.captions = [unescape(text) for text in re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", body)]


def picture_blocks(at: AppTest) -> list[PictureBlock]:
    """The page's pictures, block by block; every picture must carry an alt text."""
    blocks = [PictureBlock(html.value) for html in at.html if "<figure" in html.value]
    assert all(block.alts and all(block.alts) for block in blocks), "a picture without a text alternative"
    return blocks


def png_bytes(colour=(200, 30, 30), size=(48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- without a data set or runs


def test_explore_without_data_explains_how_to_get_it(no_data):
    at = open_page("pages/explore.py")
    assert any("No CIFAR-10 data" in warning.value and "CIFAR10_DIR" in warning.value for warning in at.warning)
    assert "once the data set is on this machine" in at.info[0].value
    assert not picture_blocks(at)


def test_compare_without_runs_links_to_train_and_shows_the_report(no_data):
    at = open_page("pages/compare.py")
    assert "No finished runs yet" in at.info[0].value
    assert at.get("page_link")
    table = at.dataframe[0].value
    reference = reference_rows()
    assert len(reference) > 0 and len(table) == len(reference)
    assert table["reference"].all()
    assert at.download_button(key="compare_csv")


def test_predict_without_models_says_train_a_first_model(no_data, tmp_path, monkeypatch):
    monkeypatch.setattr("ui.common.DEFAULT_MODEL_DIR", tmp_path / "no_default_model")
    at = open_page("pages/predict.py")
    assert "train a first model" in at.info[0].value
    assert not at.get("file_uploader")


def test_predict_offers_the_shipped_default_model_before_any_run(no_data):
    at = open_page("pages/predict.py")
    assert not at.exception
    assert at.get("file_uploader")


# ---------------------------------------------------------------- Explore


def test_explore_samples_grid(tiny_data):
    at = open_page("pages/explore.py", explore_per_class=4)
    assert len(picture_blocks(at)) == 10  # one row per class
    assert all(len(row.captions) == 4 for row in picture_blocks(at))
    before = [row.captions for row in picture_blocks(at)]
    at.button(key="explore_reshuffle").click().run()
    assert [row.captions for row in picture_blocks(at)] != before
    at.multiselect(key="explore_classes_cifar10").set_value(["cat", "ship"]).run()
    assert len(picture_blocks(at)) == 2


@pytest.mark.slow
def test_explore_class_balance_for_each_task(tiny_data):
    at = open_page("pages/explore.py", explore_tab="Class balance")
    table = at.dataframe[0].value
    assert table["train"].tolist() == [20] * 10 and table["test"].tolist() == [5] * 10
    at.segmented_control(key="explore_task").set_value("binary").run()
    table = at.dataframe[0].value
    assert table.index.tolist() == ["animal", "vehicle"]
    assert table["train"].tolist() == [120, 80]
    at.segmented_control(key="explore_task").set_value("pair").run()
    assert at.dataframe[0].value["test"].tolist() == [5, 5]
    at.selectbox(key="explore_pair_b").set_value("cat").run()
    assert "two different classes" in at.warning[0].value


def test_explore_average_images_and_pixel_statistics(tiny_data):
    at = open_page("pages/explore.py", explore_tab="Average images")
    assert picture_blocks(at)[0].captions == list(task_class_names("cifar10"))
    stats = at.dataframe[0].value
    expected = tiny_data.x_train.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats["mean (0-255)"], expected.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(stats["std (0-255)"], expected.std(axis=0), atol=1e-3)


def test_explore_augmentation_preview(tiny_data):
    at = open_page("pages/explore.py", explore_tab="Augmentation", explore_aug_draws=4)
    original, draws = picture_blocks(at)
    assert len(original.captions) == 1 and draws.captions == [f"draw {i}" for i in range(1, 5)]


# ---------------------------------------------------------------- Compare


@pytest.mark.slow
def test_compare_with_a_completed_run(tiny_data):
    run_id = store_completed_run(data=tiny_data)  # no saved probabilities: the page evaluates the model
    at = open_page("pages/compare.py")
    assert [tab.label for tab in at.tabs] == ["Results table", "Charts", "One run: matrix and mistakes", "Two runs, image by image"]
    table = at.dataframe[0].value
    assert table["run_id"].iloc[0] == run_id and not table["reference"].iloc[0]
    assert not at.metric and not chart_frames(at)  # only the open section is drawn: no model evaluated for the table
    at.session_state["compare_section"] = "Charts"
    at.run()
    assert len(chart_frames(at)) == 2  # accuracy vs time, learning curves
    at.session_state["compare_section"] = "One run: matrix and mistakes"
    at.run()
    assert not at.exception
    run = Store().get_run(run_id)
    assert at.metric[0].value == f"{run.metrics['accuracy']:.1%}"
    frames = chart_frames(at)
    assert len(frames) >= 2  # confusion matrix, per-class
    confusion = next(frame for frame in frames if {"true", "predicted", "count"} <= set(frame.columns))
    assert confusion["count"].sum() == 50
    gallery = picture_blocks(at)[-1].captions
    assert gallery and all(caption.split(" → ")[0] != caption.split(" → ")[1].split(" (")[0] for caption in gallery)


def test_compare_reads_saved_test_probabilities_and_filters_mistakes(tiny_data):
    probabilities = np.zeros((50, 10), dtype=np.float32)
    probabilities[:, 0] = 1.0  # the saved answer: "airplane" for every test image
    store_completed_run(data=tiny_data, probabilities=probabilities)
    at = open_page("pages/compare.py", compare_section="One run: matrix and mistakes")
    gallery = picture_blocks(at)[-1].captions
    assert len(gallery) == 24 and all(caption.endswith("→ airplane (100%)") for caption in gallery)
    at.selectbox(key="compare_true").set_value("cat").run()
    assert picture_blocks(at)[-1].captions == ["cat → airplane (100%)"] * 5


def test_compare_explains_when_the_local_test_split_differs(tiny_data):
    store_completed_run(data=tiny_data, probabilities=np.full((40, 10), 0.1))  # tested on 40 images; 50 here
    at = open_page("pages/compare.py", compare_section="One run: matrix and mistakes")
    assert any("tested on 40 images, but the data set here has 50" in warning.value for warning in at.warning)


def test_compare_filters_the_table(no_data):
    store_completed_run()
    at = open_page("pages/compare.py")
    at.multiselect(key="compare_tasks").set_value([REPORT_BINARY_TASK]).run()  # the report's binary row: one class vs the rest
    table = at.dataframe[0].value
    assert set(table["task"]) == {REPORT_BINARY_TASK} and table["reference"].all()


@pytest.mark.slow
def test_compare_deletes_a_run_only_after_confirmation(no_data):
    run_id = store_completed_run()
    at = open_page("pages/compare.py")
    at.selectbox(key="compare_delete_run").set_value(run_id).run()
    assert at.button(key="compare_delete").disabled
    at.checkbox(key="compare_delete_confirm").check().run()
    at.button(key="compare_delete").click().run()
    assert not at.exception
    assert Store().get_run(run_id) is None
    assert "No finished runs yet" in at.info[0].value


def test_compare_lists_failed_runs_with_their_message(no_data):
    store = Store()
    run_id = store.create_run(config_for_preset("seed-cnn"), status="running")
    store.set_status(run_id, "failed", "MemoryError: out of memory")
    at = open_page("pages/compare.py")
    listing = next(frame.value for frame in at.dataframe if "status" in frame.value.columns)  # the list of all runs
    assert listing.loc[listing["run_id"] == run_id, "message"].item() == "MemoryError: out of memory"


# ---------------------------------------------------------------- Predict


def test_predict_an_uploaded_png(no_data):
    run_id = store_completed_run()
    at = open_page("pages/predict.py")
    assert "right about 75% of the time" in at.info[0].value
    at.file_uploader(key="predict_upload").set_value(("red.png", png_bytes(), "image/png")).run()
    assert not at.exception and not at.error
    (top,) = chart_frames(at)
    assert len(top) == 5
    assert top["probability"].is_monotonic_decreasing and 0 < top["probability"].sum() <= 1 + 1e-6
    expected = predict_image(Store().load_model(run_id), png_bytes(), task_class_names("cifar10"))["top"]
    assert top["class"].tolist() == [name for name, _ in expected]
    np.testing.assert_allclose(top["probability"], [p for _, p in expected], rtol=1e-5)


@pytest.mark.slow
def test_predict_a_binary_model_gives_two_probabilities_summing_to_one(no_data):
    store_completed_run(task="binary")
    at = open_page("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value(("red.png", png_bytes(), "image/png")).run()
    (top,) = chart_frames(at)
    assert sorted(top["class"]) == ["animal", "vehicle"]
    assert top["probability"].sum() == pytest.approx(1.0, abs=1e-6)


def test_predict_refuses_a_file_that_is_not_an_image(no_data):
    store_completed_run()
    at = open_page("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value(
        [("notes.png", b"these are my notes, not a picture", "image/png"), ("ok.png", png_bytes(), "image/png")]
    ).run()
    assert not at.exception
    assert at.error[0].value == "notes.png is not an image we can read: use a PNG, JPEG, WebP, BMP or GIF file."
    assert len(chart_frames(at)) == 1  # the good file is still classified


def test_predict_a_camera_photo(no_data):
    store_completed_run()
    at = open_page("pages/predict.py", predict_source="camera")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buffer, "JPEG")
    at.camera_input(key="predict_camera").set_value(("photo.jpg", buffer.getvalue(), "image/jpeg")).run()
    assert not at.exception
    assert len(chart_frames(at)[0]) == 5


def test_predict_a_random_test_image_shows_its_true_class(tiny_data):
    store_completed_run(task="pair:cat,dog")
    at = open_page("pages/predict.py", predict_source="test")
    assert any(markdown.value.startswith("True class: **") for markdown in at.markdown)
    (top,) = chart_frames(at)
    assert sorted(top["class"]) == ["cat", "dog"]


@pytest.mark.slow
def test_compare_rerun_opens_train_with_the_run_settings(no_data):
    run_id = store_completed_run(task="binary")
    at = open_page("pages/compare.py")
    rows = at.dataframe[0].value["run_id"].tolist()
    at.selectbox(key="compare_rerun_row").set_value(rows.index(run_id)).run()
    at.button(key="compare_rerun").click().run()
    assert not at.exception
    assert "train_prefill" not in at.session_state  # the Train page took it ...
    assert at.session_state["train_task"] == "binary" and at.session_state["train_epochs"] == 2  # ... and applied it


@pytest.mark.slow
def test_compare_rerun_of_a_report_row_uses_its_preset(no_data):
    at = open_page("pages/compare.py")
    rows = at.dataframe[0].value["run_id"].tolist()
    one_class = REPORT_BINARY_TASK.split(":")[1]  # the report's binary row: one class against the other nine
    at.selectbox(key="compare_rerun_row").set_value(rows.index(f"report-seed-cnn-one-vs-rest-{one_class}")).run()
    at.button(key="compare_rerun").click().run()
    assert not at.exception
    assert at.session_state["train_model"] == "seed-cnn" and at.session_state["train_task"] == "one-vs-rest"
    assert at.session_state["train_one_class"] == one_class


def test_predict_explains_a_picture_with_the_default_model(no_data):
    at = open_page("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value(("red.png", png_bytes(), "image/png")).run()
    at.toggle(key="predict_explain_0").set_value(True).run()
    assert not at.exception and not at.error
    assert sum(len(block.alts) for block in picture_blocks(at)) >= 5  # picture, model input, heatmap, its key, the feature maps
    # Where the model looked, in a sentence; and why the map is coarse (the default model's last map is a small grid).
    words = "\n".join(str(m.value) for m in at.markdown)
    assert "Looking for '" in words and "the model looked" in words and "grid of squares" in words


def test_compare_two_runs_image_by_image(tiny_data):
    rng = np.random.default_rng(1)
    for _ in range(2):
        probabilities = rng.dirichlet(np.ones(10), size=50)
        store_completed_run(data=tiny_data, probabilities=probabilities)
    at = open_page("pages/compare.py", compare_section="Two runs, image by image")
    assert not at.exception
    labels = [metric.label for metric in at.metric]
    assert "Both right" in labels and "Only A right" in labels and "Only B right" in labels
    assert at.selectbox(key="compare_two_task").options == ["All 10 classes"]  # tasks in words
    runs = at.selectbox(key="compare_two_a").options  # two runs of one preset, one minute: their labels still differ
    assert len(runs) == len(set(runs)) == 2
    at.session_state["compare_section"] = "One run: matrix and mistakes"
    at.run()
    at.toggle(key="compare_filters").set_value(True).run()
    assert not at.exception
