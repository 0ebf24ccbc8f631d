"""Exports open anywhere: each format loads in a fresh Python where this project cannot be imported, and predicts as the app does.

One fixture exports three models once (the shipped fast-recipe model, a seed CNN, a VGG16 backbone
with weights=None on a two-class task); one fresh Python process then opens every file of all three with
plain Keras, TensorFlow, LiteRT's interpreter and ONNX Runtime, and writes its predictions back.
"""

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from lab.config import RunConfig
from lab.export import bundle, plain_model
from lab.export.formats import FORMATS
from lab.models.registry import build_model
from lab.system.paths import DEFAULT_MODEL_DIR
from tests.synthetic import learnable_cifar10

TEST_IMAGES = 100

# Run in a fresh interpreter (-I: no PYTHONPATH, no current folder on sys.path) from an empty folder. The venv has
# this project as an editable install, so its packages are blocked outright before anything else is imported.
WITHOUT_THIS_PROJECT = """
import sys
for name in ("lab", "ui", "tests", "pages", "bench"):
    sys.modules[name] = None
"""

OPEN_EVERY_FORMAT = """
import json
from pathlib import Path

import numpy as np

try:
    import lab  # noqa: F401
    sys.exit("this project could still be imported")
except ImportError:
    pass

images = np.load("images.npy")
folders = json.loads(Path("folders.json").read_text())
import keras

try:  # the app's own file, for the precondition: it needs this project
    keras.models.load_model(Path("original.txt").read_text())
    Path("original-error.txt").write_text("")
except Exception as error:
    Path("original-error.txt").write_text(str(error))
for name, folder in folders.items():
    folder = Path(folder)
    import keras
    import tensorflow as tf

    keras_output = keras.models.load_model(folder / "model.keras").predict(images, verbose=0)
    saved_model = tf.saved_model.load(str(folder / "saved_model"))  # kept in a name: its weights live as long as it does
    saved_output = saved_model.serve(tf.constant(images)).numpy()

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    litert_output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_output = session.run(None, {session.get_inputs()[0].name: images})[0]
    for format_name, output in (("keras", keras_output), ("saved_model", saved_output), ("litert", litert_output), ("onnx", onnx_output)):
        np.save(f"{name}-{format_name}.npy", np.asarray(output, dtype=np.float32))
print("opened", len(folders) * 4, "files")
"""


def fresh_python(code: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    program = textwrap.dedent(WITHOUT_THIS_PROJECT) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-I", "-c", program], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def models_to_export() -> dict[str, tuple[keras.Model, RunConfig]]:
    default_model, default_config, _ = bundle.folder_model(DEFAULT_MODEL_DIR)
    seed = RunConfig(backbone="seed-cnn", model="custom")
    # VGG16 also brings the colour preprocessing of the "caffe" backbones, which becomes a 1x1 convolution.
    backbone = RunConfig(backbone="vgg16", model="custom", weights="none", task="pair:cat,dog")
    keras.utils.set_random_seed(0)
    return {
        "fast-recipe": (default_model, default_config),
        "seed-cnn": (build_model(seed, 10), seed),
        "vgg16": (build_model(backbone, 2), backbone),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: (the app's model, its export folder, the app's outputs)} and the fresh process's outputs."""
    work = tmp_path_factory.mktemp("export")
    images = learnable_cifar10(n_train=10, n_test=TEST_IMAGES, seed=3).x_test.astype(np.float32)
    np.save(work / "images.npy", images)
    folders, app_outputs = {}, {}
    for name, (model, config) in models_to_export().items():
        folders[name] = str(bundle.write_export(model, config, f"test-{name}", work / name, card="# card\n")["keras"].parent)
        app_outputs[name] = model.predict(images, verbose=0)
    (work / "folders.json").write_text(json.dumps(folders))
    (work / "original.txt").write_text(str(DEFAULT_MODEL_DIR / "model.keras"))
    opened = fresh_python(OPEN_EVERY_FORMAT, cwd=work)
    assert opened.returncode == 0, opened.stderr[-3000:]
    return work, folders, app_outputs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fast-recipe", "seed-cnn", "vgg16"])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_each_format_predicts_as_the_app_without_this_project(exported, name, format_name):
    work, _, app_outputs = exported
    expected = app_outputs[name]
    got = np.load(work / f"{name}-{format_name}.npy").reshape(expected.shape)
    assert expected.shape[0] == TEST_IMAGES
    assert np.abs(got - expected).max() < 1e-4  # every format is float32: the same numbers up to rounding
    if expected.shape[-1] == 1:  # one sigmoid unit: class 1 when p > 0.5
        agree = np.mean((got[:, 0] > 0.5) == (expected[:, 0] > 0.5))
    else:
        agree = np.mean(got.argmax(axis=1) == expected.argmax(axis=1))
    assert agree >= 0.99


@pytest.mark.slow
def test_the_shipped_model_itself_needs_this_project(exported):
    """The precondition: in the same fresh process, plain Keras cannot open the app's own file, only the export."""
    work, _, _ = exported
    assert "PatchWhitening" in (work / "original-error.txt").read_text()


@pytest.mark.slow
def test_the_zip_holds_every_file_and_a_readme(exported, tmp_path):
    work, folders, _ = exported
    archive = bundle.zip_folder(Path(folders["seed-cnn"]), tmp_path / "run.zip", "test-seed-cnn")
    names = set(zipfile.ZipFile(archive).namelist())
    for expected in ("model.keras", "model.tflite", "model.onnx", "notebook.ipynb", "train.py", "README.md", "MODEL_CARD.md"):
        assert f"test-seed-cnn/{expected}" in names
    assert any(name.startswith("test-seed-cnn/saved_model/") and name.endswith("saved_model.pb") for name in names)
    readme = (Path(folders["vgg16"]) / "README.md").read_text()
    assert "probability that it shows a dog" in readme and "onnxruntime.InferenceSession" in readme


@pytest.mark.slow
def test_the_vits_position_embedding_becomes_a_built_in_layer_with_the_same_outputs():
    """A ViT's learned position vectors become a Rescaling's offset: the same sums, with built-in layers only."""
    model = build_model(RunConfig(backbone="vit-tiny", model="custom"), 10)
    copy = plain_model.plain_model(model)
    images = learnable_cifar10(n_train=10, n_test=8).x_test.astype(np.float32)
    assert all(type(layer).__module__.startswith("keras.") for layer in plain_model._all_layers(copy))
    assert np.abs(copy.predict(images, verbose=0) - model.predict(images, verbose=0)).max() < 1e-5


def test_a_layer_without_a_built_in_equivalent_is_refused():
    class Unknown(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    images = keras.Input((4,))
    model = keras.Model(images, keras.layers.Dense(2)(Unknown()(images)))
    with pytest.raises(ValueError, match="no built-in Keras equivalent"):
        plain_model.plain_model(model)


def test_single_downloads_are_the_files_of_the_zip(tmp_path):
    config = RunConfig(backbone="seed-cnn", model="custom", epochs=3)
    script = bundle.export_single(None, config, "run-1", "script", tmp_path)
    assert script.name == "train.py" and "EPOCHS" in script.read_text()
    notebook = json.loads(bundle.export_single(None, config, "run-1", "notebook", tmp_path).read_text())
    assert notebook["nbformat"] == 4 and any(cell["cell_type"] == "code" for cell in notebook["cells"])
    with pytest.raises(ValueError, match="not one of the files"):
        bundle.export_single(None, config, "run-1", "model.exe", tmp_path)


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """CIFAR10_DIR names an empty folder: the pages run without a data set, and nothing is downloaded."""
    (tmp_path / "no_cifar").mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "no_cifar"))


@pytest.mark.slow
def test_predict_and_compare_offer_each_download_and_it_is_made_on_click(no_data):
    from lab.store.database import StoreError
    from lab.store.runs import Status, Store
    from tests.test_app_pages import open_page, store_completed_run
    from ui import export_view, identity

    run_id = store_completed_run()
    predict = open_page("pages/predict.py")
    compare = open_page("pages/compare.py", compare_section="One run: matrix and mistakes")
    for page, prefix in ((predict, "predict"), (compare, "compare")):
        for what in export_view.DOWNLOADS:
            assert page.download_button(key=f"{prefix}_export_{what}")

    # What a click on Compare's "Everything (zip)" makes, for the stored run: the files and the run's own records.
    store = Store()
    archive = export_view.export_bytes(str(store.root), run_id, "zip", identity.local_person())
    names = set(zipfile.ZipFile(io.BytesIO(archive)).namelist())
    assert {f"{run_id}/model.onnx", f"{run_id}/train.py", f"{run_id}/config.json", f"{run_id}/README.md"} <= names

    # A run that has not finished has no model to export: the store refuses, whoever clicks.
    queued = store.create_run(RunConfig(), status=Status.QUEUED)
    assert store.get_run(queued) is not None
    with pytest.raises(StoreError, match="only a completed run"):
        export_view.export_bytes(str(store.root), queued, "onnx", identity.local_person())
