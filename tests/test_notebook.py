"""The code behind a run runs without this project: the notebook in a real Jupyter kernel, the script in plain Python.

Each trains on a small learnable stand-in for CIFAR-10 (CIFAR10_DIR, CIFAR10_SUBSET, ...), in a process where this
project's packages are blocked, and must build the run's network with the run's parameter count, finish training,
and beat chance on the test pictures.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

from lab.config import RunConfig, config_for_preset
from lab.data.cifar10 import write_cifar10_folder
from lab.export import code
from lab.export.network_code import helper_sources, network_code
from lab.models.registry import build_model
from tests.synthetic import learnable_cifar10

BLOCK_THIS_PROJECT = 'import sys\nfor name in ("lab", "ui", "tests", "pages", "bench"):\n    sys.modules[name] = None\n'

# The notebook is executed by nbclient in a fresh interpreter (-I: no PYTHONPATH, no current folder on sys.path);
# the kernel it starts gets a first cell that blocks this project (installed editable in the venv) before any other.
EXECUTE_NOTEBOOK = """
import json
import sys

import nbclient
import nbformat

notebook = nbformat.read("notebook.ipynb", as_version=4)
notebook.cells.insert(0, nbformat.v4.new_code_cell(BLOCK + "try:\\n    import lab\\n    raise SystemExit('lab importable')\\nexcept ImportError:\\n    pass"))
nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
"""


def quick_environment(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    quick = {"CIFAR10_DIR": str(data_dir), "CIFAR10_SUBSET": "600", "CIFAR10_EPOCHS": "2", "CIFAR10_BATCH_SIZE": "64"}
    return {**env, **quick, "CIFAR10_TEST_IMAGES": "200", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    data = learnable_cifar10(n_train=1000, n_test=200)
    return write_cifar10_folder(
        tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", data.x_train, data.y_train, data.x_test, data.y_test
    )


def results(folder: Path) -> dict:
    return json.loads((folder / code.RESULTS_FILE).read_text())


@pytest.mark.slow
def test_the_fast_recipe_notebook_trains_in_a_real_kernel_without_this_project(data_dir, tmp_path):
    config = config_for_preset("fast-cnn-quick")  # Muon, weight averaging, augmentation, label smoothing, TTA
    (tmp_path / "notebook.ipynb").write_text(code.notebook(config, "run-1"))
    program = f"BLOCK = {BLOCK_THIS_PROJECT!r}\nexec(BLOCK)\n" + textwrap.dedent(EXECUTE_NOTEBOOK)
    completed = subprocess.run(
        [sys.executable, "-I", "-c", program], cwd=tmp_path, env=quick_environment(data_dir), capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = results(tmp_path)
    assert outcome["parameters"] == build_model(config, 10).count_params()
    assert outcome["test_accuracy"] > 0.3  # chance is 0.1
    assert (tmp_path / "model.keras").is_file()


@pytest.mark.slow
def test_the_script_trains_a_two_class_run_without_this_project(data_dir, tmp_path):
    config = RunConfig(backbone="seed-cnn", model="custom", task="pair:cat,dog", epochs=2, keep_best=True, lr_schedule="cosine")
    (tmp_path / "train.py").write_text(code.train_script(config, "run-2"))
    program = BLOCK_THIS_PROJECT + "import runpy\nrunpy.run_path('train.py', run_name='__main__')\n"
    env = {**quick_environment(data_dir), "CIFAR10_SUBSET": "200", "CIFAR10_BATCH_SIZE": "32"}
    completed = subprocess.run([sys.executable, "-I", "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = results(tmp_path)
    assert outcome["parameters"] == build_model(config, 2).count_params()
    assert outcome["test_accuracy"] > 0.6  # two classes: chance is 0.5


def build_written_network(config: RunConfig, num_classes: int) -> keras.Model:
    """Run only the network part of the generated code (its helpers and build_network) and build it."""
    namespace: dict = {}
    source = "import keras\nimport numpy as np\nfrom keras import layers, ops\n\n" + "\n\n".join(helper_sources(config))
    exec(source + "\n\n" + network_code(config, num_classes), namespace)  # the code this project just wrote
    return namespace["build_network"]()


NETWORKS = [
    (RunConfig(backbone="seed-cnn", model="custom"), 10),
    (config_for_preset("fast-cnn"), 10),
    (RunConfig(backbone="vit-tiny", model="custom", task="binary"), 2),
    pytest.param(RunConfig(backbone="vgg16", model="custom", head="dense256", freeze_depth=11, input_size=64), 10, marks=pytest.mark.slow),
    pytest.param(RunConfig(backbone="efficientnetb0", model="custom", freeze_depth=None), 10, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("config", "num_classes"), NETWORKS)
def test_the_written_network_has_the_runs_layers_and_parameters(config, num_classes):
    written, app = build_written_network(config, num_classes), build_model(config, num_classes)
    assert written.count_params() == app.count_params()
    assert len(written.trainable_weights) == len(app.trainable_weights)

    # Layer by layer the same kind of layer with the same weights (names: Keras numbers unnamed layers per process).
    # The app's batch norm and GELU are Keras' own, computed faster while training (lab/models/fused_layers.py).
    same_as = {"FusedBatchNormalization": "BatchNormalization", "Gelu": "Activation"}

    def layers_of(model):
        return [
            (same_as.get(type(layer).__name__, type(layer).__name__), [tuple(weight.shape) for weight in layer.weights])
            for layer in model.get_layer("backbone").layers
        ]

    assert layers_of(written) == layers_of(app)


def test_the_code_carries_the_runs_settings_and_our_optimiser():
    config = config_for_preset("fast-cnn", epochs=4, seed=7)
    script = code.train_script(config, "run-3")
    assert "'epochs': 4" in script and "'seed': 7" in script
    assert "class Muon(keras.optimizers.SGD)" in script and "def orthogonalize" in script  # written out, not imported
    assert "from lab" not in script and "import lab" not in script
    compile(script, "train.py", "exec")
    notebook = json.loads(code.notebook(config, "run-3"))
    code_cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert len(code_cells) == len(code.code_sections(config)) and all(cell in script for cell in code_cells)  # the same code


@pytest.mark.slow
def test_the_runs_page_shows_the_code_and_offers_both_files():
    from streamlit.testing.v1 import AppTest

    def page():
        from lab.config import config_for_preset
        from ui import export_view

        export_view.show_code(config_for_preset("fast-cnn", epochs=4), "run-4", key="run")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    shown = at.code[0].value
    assert "'epochs': 4" in shown and "class Muon(" in shown
    assert at.download_button(key="run_code_notebook") and at.download_button(key="run_code_script")
