"""Page tests (AppTest) for the report's binary task in the app: one class vs the rest, baselines, model cards, run zips.

A one-vs-rest task is lopsided (1 picture in 10 shows the class), so every page that shows its accuracy
must also show what always answering "not <class>" scores, how well the model finds the class, and a
note saying why. Completed runs are stored through the store's API with a tiny untrained Keras model
(and a MODEL_CARD.md written by lab's own `model_card`), so nothing here trains.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import keras
import pytest
from keras import layers
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from lab.config import config_for_preset, positive_class, task_class_names
from lab.data.cifar10 import load_cifar10
from lab.data.tasks import prepare_task
from lab.evaluate.metrics import evaluate_model, metrics_from_predictions
from lab.evaluate.model_card import model_card
from lab.jobs import launcher
from lab.store.run_folder import MODEL_CARD_FILE
from lab.store.runs import Store
from tests.synthetic import random_cifar10_folder
from ui import tasks
from ui.run_files import NO_CARD
from ui.train_form import config_from_state

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
HISTORY = {"loss": [0.5, 0.4], "accuracy": [0.88, 0.9], "val_loss": [0.45, 0.42], "val_accuracy": [0.89, 0.9]}
# Twenty test answers of a one-vs-rest:cat model: 2 cat pictures (label 1) among 20; it finds one of them,
# and says "cat" twice more, wrongly. Accuracy 17/20 = 85%, below the 90% of always answering "not cat".
TRUE_LABELS = [1, 1] + [0] * 18
ANSWERS = [1, 0, 1, 1] + [0] * 16


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def _no_workers_no_downloads(tmp_path, monkeypatch):
    """No page may start a worker or reach for the Keras download; CIFAR-10 is missing unless a test brings a copy."""
    monkeypatch.setattr(launcher, "ensure_workers", lambda *args, **kwargs: None)
    (tmp_path / "no_cifar").mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "no_cifar"))


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A 200 + 50 image synthetic CIFAR-10 (labels cycle 0-9: 20 and 5 pictures per class)."""
    folder = random_cifar10_folder(tmp_path / "cifar", 200, 50, seed=0)
    monkeypatch.setenv("CIFAR10_DIR", str(folder))
    return load_cifar10(folder)


def tiny_model(num_classes: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    output = layers.Dense(num_classes, activation="softmax") if num_classes > 2 else layers.Dense(1, activation="sigmoid")
    return keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), output])


def store_completed_run(
    task: str = "one-vs-rest:cat", *, with_card: bool = True, data=None, drop: tuple[str, ...] = (), answers: list[int] = ANSWERS
) -> str:
    """A completed run as training leaves it now (metrics with a baseline, MODEL_CARD.md), or as an older run (`with_card=False`,
    metric keys in `drop` removed)."""
    store = Store()
    names = task_class_names(task)
    model = tiny_model(len(names))
    config = config_for_preset("seed-cnn", task=task, epochs=2)
    run_id = store.create_run(config, status="running")
    if data is not None:
        task_data = prepare_task(data, config)
        metrics = evaluate_model(model, task_data.x_test, task_data.y_test, names, positive_class=positive_class(task)).metrics
    elif positive_class(task) is not None:
        metrics = metrics_from_predictions(TRUE_LABELS, answers, names, positive_class=positive_class(task))
    else:
        truth = [index % len(names) for index in range(20)]  # every class as often: the baseline is 1 / classes
        metrics = metrics_from_predictions(truth, [0] * 4 + truth[4:], names)
    metrics |= {"total_params": model.count_params(), "trainable_params": model.count_params(), "class_names": list(names)}
    metrics = {key: value for key, value in metrics.items() if key not in drop}
    fingerprint = {"source": "synthetic", "n_train": 180, "n_val": 20, "n_test": metrics["n_test"]}
    extra = (
        {MODEL_CARD_FILE: model_card(config.to_dict(), metrics, {"device": "CPU"}, fingerprint, run_id=run_id).encode()}
        if with_card
        else None
    )
    store.complete_run(
        run_id, metrics=metrics, history=HISTORY, model=model, environment={"device": "CPU"}, fingerprint=fingerprint,
        train_seconds=8.0, extra_files=extra,
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


def metrics_shown(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def infos(at: AppTest) -> str:
    return "\n".join(str(info.value) for info in at.info)


def png_bytes(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- the task in every picker


def test_explore_offers_one_class_vs_the_rest_and_shows_its_1_to_9_balance(tiny_data):
    at = open_page("pages/explore.py", explore_tab="Class balance")
    at.segmented_control(key="explore_task").set_value("one-vs-rest").run()
    assert at.selectbox(key="explore_one_class").value == "ship"  # the lab report's binary task, to start with
    at.selectbox(key="explore_one_class").set_value("cat").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.index.tolist() == ["not cat", "cat"]
    assert table["train"].tolist() == [180, 20] and table["test"].tolist() == [45, 5]
    assert any("a 1 : 9 imbalance" in str(markdown.value) for markdown in at.markdown)
    assert "Only 1 picture in 10 shows a cat" in infos(at) and "right 90% of the time" in infos(at)


@pytest.mark.slow
def test_train_builds_a_one_vs_rest_config_and_starts_it(tiny_data):
    at = open_page("pages/train.py")
    at.radio(key="train_task").set_value("one-vs-rest").run()
    at.selectbox(key="train_one_class").set_value("cat").run()
    at.toggle(key="train_fine_labels").set_value(True).run()  # a one-vs-rest task groups the ten classes: finer labels exist
    at.number_input(key="train_subset").set_value(200).run()
    assert not at.exception and not at.error
    assert config_from_state(at.session_state).task == "one-vs-rest:cat"
    at.button(key="trainbtn_start").click().run()
    assert not at.exception
    config = Store().get_run(at.session_state["train_run_id"]).config  # queued; no worker takes it here
    assert config.task == "one-vs-rest:cat" and config.fine_labels is True


@pytest.mark.slow
def test_a_one_vs_rest_run_loads_back_into_the_train_form():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["train_prefill"] = config_for_preset("seed-cnn", task="one-vs-rest:ship").to_dict()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.radio(key="train_task").value == "one-vs-rest"
    assert at.selectbox(key="train_one_class").value == "ship"


def test_task_names_for_people():
    assert tasks.task_label("one-vs-rest:cat") == "cat vs the rest"
    assert tasks.task_label("pair:cat,dog") == "cat vs dog" and tasks.task_label("binary") == "Vehicles vs animals"
    assert tasks.balanced_baseline("one-vs-rest:cat") == pytest.approx(0.9)
    assert tasks.balanced_baseline("binary") == pytest.approx(0.6) and tasks.balanced_baseline("cifar10") == pytest.approx(0.1)


# ---------------------------------------------------------------- baselines beside every accuracy


def test_the_train_result_shows_the_baseline_the_class_figures_and_the_note():
    run_id = store_completed_run()
    at = open_page("pages/train.py", train_run_id=run_id, train_tab="Current run")
    shown = metrics_shown(at)
    assert shown["Test accuracy"] == "85.0%" and shown["Baseline"] == "90.0%"
    assert shown["cat: recall"] == "50.0%"  # 1 of the 2 cat pictures found
    assert shown["cat: precision"] == "33.3%"  # 1 of its 3 "cat" answers right
    assert shown["cat: F1"] == "40.0%"
    assert "always answering “not cat” scores 90.0%" in "\n".join(str(caption.value) for caption in at.caption)
    assert "Only 1 picture in 10 shows a cat" in infos(at)


def test_a_model_that_never_names_its_class_is_called_out():
    run_id = store_completed_run(answers=[0] * 20)  # "not cat" every time: 90% accuracy, the baseline itself
    at = open_page("pages/train.py", train_run_id=run_id, train_tab="Current run")
    shown = metrics_shown(at)
    assert shown["Test accuracy"] == shown["Baseline"] == "90.0%"
    assert shown["cat: recall"] == "0.0%" and shown["cat: precision"] == "–"  # no "cat" answer to check
    assert any("never answers “cat”" in warning.value for warning in at.warning)
    assert "seed-cnn on cat vs the rest: completed" in at.subheader[0].value


def test_a_balanced_task_gets_its_baseline_but_no_note():
    run_id = store_completed_run("pair:cat,dog")
    at = open_page("pages/train.py", train_run_id=run_id, train_tab="Current run")
    assert metrics_shown(at)["Baseline"] == "50.0%"
    assert not [label for label in metrics_shown(at) if "recall" in label and "macro" not in label]
    assert "without learning anything" not in infos(at)


def test_compare_lists_the_baseline_and_the_one_class_columns():
    ovr = store_completed_run()
    older = store_completed_run("cifar10", with_card=False, drop=("baseline_accuracy",))  # stored before metrics had a baseline
    at = open_page("pages/compare.py")
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc[ovr, "baseline_accuracy"] == pytest.approx(0.9)
    assert table.loc[older, "baseline_accuracy"] == pytest.approx(0.1)  # from its confusion matrix: 10 classes, 2 pictures each
    assert table.loc[ovr, "positive_recall"] == pytest.approx(0.5) and table.loc[ovr, "positive_precision"] == pytest.approx(1 / 3)
    assert table.loc[ovr, "positive_f1"] == pytest.approx(0.4)
    assert table.loc[older, ["positive_recall", "positive_precision", "positive_f1"]].isna().all()
    assert "Only 1 picture in 10 shows a cat" in infos(at)
    at.multiselect(key="compare_tasks").set_value(["cifar10"]).run()  # no one-vs-rest run listed: no columns for its class
    assert "positive_f1" not in at.dataframe[0].value.columns and "baseline_accuracy" in at.dataframe[0].value.columns


def test_compare_shows_every_figure_of_the_reports_rows_and_tasks_in_words():
    at = open_page("pages/compare.py")  # no runs: the lab report's rows alone
    table = at.dataframe[0].value.set_index(["model", "task"])
    vgg = table.loc[("vgg16-frozen", "cifar10")]
    assert (vgg["accuracy"], vgg["precision_macro"], vgg["recall_macro"], vgg["f1_macro"]) == pytest.approx((0.5768, 0.58, 0.57, 0.57))
    assert (vgg["total_params"], vgg["train_seconds"], vgg["baseline_accuracy"]) == pytest.approx((14_719_818, 164.39, 0.1))
    figures = ["accuracy", "baseline_accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params", "train_seconds"]
    ten_classes = table.xs("cifar10", level="task")
    assert len(ten_classes) == 5 and ten_classes[figures].notna().all().all()  # no "–" where the report gives a figure
    assert table.loc[("seed-cnn", "one-vs-rest:ship"), "baseline_accuracy"] == pytest.approx(0.9)  # always "not ship"
    assert "10,000 test images" in ten_classes["data"].iloc[0].replace("10000", "10,000")
    assert any("original 10,000 test images" in caption.value for caption in at.caption)  # said where the rows show
    shown_as = json.loads(at.dataframe[0].proto.columns)["task"]["type_config"]["options"]
    assert {"value": "one-vs-rest:ship", "label": "ship vs the rest"} in shown_as  # the cell keeps the code name, shows words
    assert at.multiselect(key="compare_tasks").options == ["All 10 classes", "ship vs the rest"]


def test_compare_one_run_up_close_shows_the_baseline_and_the_class_figures():
    store_completed_run()
    at = open_page("pages/compare.py", compare_section="One run: matrix and mistakes")
    shown = metrics_shown(at)
    assert shown["Baseline"] == "90.0%" and shown["cat: recall"] == "50.0%"


# ---------------------------------------------------------------- Predict: the task's answers, the figures, the card


def test_predict_a_one_vs_rest_model_answers_cat_or_not_cat_and_shows_its_card():
    run_id = store_completed_run()
    at = open_page("pages/predict.py")
    assert "right about 85% of the time" in at.info[0].value and "always answering “not cat” scores 90.0%" in at.info[0].value
    assert metrics_shown(at)["cat: precision"] == "33.3%"
    assert "Only 1 picture in 10 shows a cat" in infos(at)
    (about,) = [expander for expander in at.expander if expander.label == "About this model"]
    card = "\n".join(str(markdown.value) for markdown in about.markdown)
    assert f"Model card: seed-cnn on one-vs-rest:cat ({run_id})" in card and "Finding cat" in card
    at.file_uploader(key="predict_upload").set_value(("red.png", png_bytes(), "image/png")).run()
    assert not at.exception
    assert sorted(row[0] for row in _answers(at)) == ["cat", "not cat"]


def _answers(at: AppTest) -> list[tuple[str, float]]:
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    (chart,) = at.get("vega_lite_chart")
    frame = convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    return list(zip(frame["class"], frame["probability"], strict=True))


def test_predict_says_when_a_run_has_no_card():
    store_completed_run(with_card=False)
    at = open_page("pages/predict.py")
    (about,) = [expander for expander in at.expander if expander.label == "About this model"]
    assert [info.value for info in about.info] == [NO_CARD]


def test_predict_shows_the_default_model_s_card():
    at = open_page("pages/predict.py")  # no runs: the shipped model
    (about,) = [expander for expander in at.expander if expander.label == "About this model"]
    assert "shipped default model" in "\n".join(str(markdown.value) for markdown in about.markdown)
    assert "always giving the same answer scores 10.0%" in at.info[0].value  # its ten test classes are even


# ---------------------------------------------------------------- Compare: a run's zip


def test_compare_downloads_a_run_as_the_zip_export_writes(tmp_path, monkeypatch):
    """The button's data is built on click (a deferred download): the test catches it where Streamlit registers it."""
    run_id = store_completed_run()
    registered = []
    original = MediaFileManager.add_deferred

    def remember(self, data, *args, **kwargs):
        registered.append((data, kwargs.get("file_name")))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", remember)
    at = open_page("pages/compare.py", compare_section="One run: matrix and mistakes")
    assert at.get("download_button")  # the run's
    # The run's records zip; the "Take this model with you" zips (lab/export) have tests of their own (tests/test_export.py).
    ((build, file_name),) = [(data, name) for data, name in registered if name == f"{run_id}.zip"]
    with zipfile.ZipFile(io.BytesIO(build())) as downloaded:
        names = set(downloaded.namelist())
        assert {f"{run_id}/model.keras", f"{run_id}/config.json", f"{run_id}/{MODEL_CARD_FILE}"} <= names
        exported = Store().export_run(run_id, tmp_path / "exported.zip")
        with zipfile.ZipFile(exported) as written:
            assert names == set(written.namelist())
            assert all(downloaded.read(name) == written.read(name) for name in names)


@pytest.mark.slow
def test_compare_downloads_the_lab_report_of_the_listed_runs(monkeypatch):
    """The lab report (HTML and PDF) is built on click, from the best run of each preset and task in the table."""
    run_id = store_completed_run()
    registered = {}
    original = MediaFileManager.add_deferred

    def remember(self, data, *args, **kwargs):
        registered[kwargs.get("file_name")] = data
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", remember)
    open_page("pages/compare.py")
    page = registered["cifar10-lab-report.html"]().decode()
    assert page.startswith("<!DOCTYPE html>") and "5. Results" in page and "10. Environment" in page
    assert store_run_accuracy(run_id) in page
    assert registered["cifar10-lab-report.pdf"]().startswith(b"%PDF")


def store_run_accuracy(run_id: str) -> str:
    return f"{Store().get_run(run_id).metrics['accuracy']:.2%}"
