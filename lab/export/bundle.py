"""A completed run as one zip that opens anywhere: the model in four formats, the code behind it, its card.

    model.keras     Keras 3, built from Keras' own layers only (lab/export/plain_model.py)
    saved_model/    TensorFlow SavedModel
    model.tflite    LiteRT (TensorFlow Lite), for phones
    model.onnx      ONNX, for ONNX Runtime
    notebook.ipynb  the run's training as a notebook (lab/export/code.py)
    train.py        the same code as a script
    MODEL_CARD.md   what the model is for, how well it does, where it fails (written when the run completed)
    README.md       how to open each file

`export_run(store, run_id, destination)` writes it for a stored run (`python -m lab export`);
`export_format(...)` writes one format alone, for a download of just that file.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras

from lab.config import RunConfig
from lab.export.code import notebook, train_script
from lab.export.formats import FORMATS, SAVED_MODEL_FOLDER, save_format
from lab.export.plain_model import plain_model
from lab.models.files import load_model_file
from lab.store.run_folder import MODEL_CARD_FILE, ModelFolder

NOTEBOOK_FILE = "notebook.ipynb"
SCRIPT_FILE = "train.py"
README_FILE = "README.md"
# Everything one can download on its own: the four model formats and the two kinds of code.
SINGLE_FILES = (*FORMATS, "notebook", "script")


def readme(config: RunConfig, run_id: str) -> str:
    """The zip's README: what each file is and the few lines that open it, for a beginner."""
    names = ", ".join(config.class_names)
    binary = len(config.class_names) == 2
    output = (
        f"one number per picture: the probability that it shows a {config.class_names[1]} (the other class: {config.class_names[0]})"
        if binary
        else f"one probability per class, in this order: {names}"
    )
    return f"""# Run {run_id}: {config.backbone} on {config.task}

Every model file here takes pictures of 32x32 pixels in RGB, as float32 numbers from 0 to 255
(an array of shape N x 32 x 32 x 3), and gives {output}.
None of them needs the CIFAR-10 Lab to open.

| file | what it is | open it with |
| --- | --- | --- |
| `model.keras` | the model for Keras 3 (to look inside or train further) | `keras.models.load_model("model.keras")` |
| `saved_model/` | TensorFlow SavedModel (TensorFlow Serving, TensorFlow.js's converter) | `model = tf.saved_model.load("saved_model")`, then `model.serve(images)` |
| `model.tflite` | LiteRT, formerly TensorFlow Lite (phones, small boards) | `ai_edge_litert.interpreter.Interpreter("model.tflite")` |
| `model.onnx` | ONNX (ONNX Runtime, many other tools) | `onnxruntime.InferenceSession("model.onnx")` |
| `train.py`, `notebook.ipynb` | the code that trains this model, in plain Keras | `python train.py`, Jupyter or Colab |
| `MODEL_CARD.md` | what the model is for, how well it does, where it fails | any text editor |

## Try each one in Python

```python
import numpy as np
from PIL import Image  # pip install pillow

images = np.asarray(Image.open("picture.png").convert("RGB").resize((32, 32)), dtype="float32")[None]

import keras  # pip install tensorflow
print(keras.models.load_model("model.keras").predict(images))

import tensorflow as tf
saved_model = tf.saved_model.load("saved_model")  # keep it in a name: its weights live as long as it does
print(saved_model.serve(images).numpy())

from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert
interpreter = Interpreter(model_path="model.tflite")
interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
interpreter.invoke()
print(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

import onnxruntime  # pip install onnxruntime
session = onnxruntime.InferenceSession("model.onnx")
print(session.run(None, {{session.get_inputs()[0].name: images}})[0])
```

The app may also average its answer over a mirrored and shifted copy of each picture (test-time
augmentation{", which this run used" if config.tta else ""}); the files above answer for the picture as it is.
"""


def write_export(model: keras.Model, config: RunConfig, run_id: str, folder: Path, *, card: str | None = None) -> dict[str, Path]:
    """Every file of the zip, unzipped, into `folder`: {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain = plain_model(model)
    written = {name: save_format(plain, name, folder) for name in FORMATS}
    written["notebook"] = _write_text(folder / NOTEBOOK_FILE, notebook(config, run_id))
    written["script"] = _write_text(folder / SCRIPT_FILE, train_script(config, run_id))
    written["readme"] = _write_text(folder / README_FILE, readme(config, run_id))
    if card is not None:
        written["card"] = _write_text(folder / MODEL_CARD_FILE, card)
    return written


def zip_folder(folder: Path, destination: str | Path, top: str) -> Path:
    """Zip every file under `folder` into `destination`, inside one top folder `top`; written whole or not at all."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    partial.replace(destination)
    return destination


def export_model(
    model: keras.Model, config: RunConfig, run_id: str, destination: str | Path, *, card: str | None = None, records: Path | None = None
) -> Path:
    """The whole zip for a model and the config that trained it; `destination` is a file or a folder for `<run_id>.zip`.

    `records`: a folder whose small record files (config, history, metrics, environment: *.json) go into the zip too.
    """
    destination = Path(destination).expanduser()
    if destination.is_dir():
        destination = destination / f"{run_id}.zip"
    with tempfile.TemporaryDirectory(prefix="lab-export-") as work:
        files = Path(work) / "files"
        write_export(model, config, run_id, files, card=card)
        for record in sorted(Path(records).glob("*.json")) if records is not None else []:
            if record.is_file() and not record.is_symlink():
                shutil.copyfile(record, files / record.name)
        return zip_folder(files, destination, run_id)


def export_run(store, run_id: str, destination: str | Path) -> Path:
    """The whole zip for a completed run of `store` (the store refuses a run without a saved model)."""
    model = store.load_model(run_id)
    run = store.get_run(run_id)
    return export_model(model, run.config, run_id, destination, card=run_card(store, run_id), records=store.run_dir(run_id))


def run_card(store, run_id: str) -> str | None:
    """The run's model card, or None when it was stored before cards existed."""
    try:
        return store.run_folder(run_id).model_card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def export_single(model: keras.Model, config: RunConfig, run_id: str, name: str, folder: Path) -> Path:
    """One of SINGLE_FILES into `folder`; the SavedModel (a folder) comes back zipped. Returns the file's path."""
    if name not in SINGLE_FILES:
        raise ValueError(f"{name!r} is not one of the files a run exports: {', '.join(SINGLE_FILES)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "notebook":
        return _write_text(folder / NOTEBOOK_FILE, notebook(config, run_id))
    if name == "script":
        return _write_text(folder / SCRIPT_FILE, train_script(config, run_id))
    path = save_format(plain_model(model), name, folder)
    if name == "saved_model":
        zipped = zip_folder(path, folder / f"{SAVED_MODEL_FOLDER}.zip", SAVED_MODEL_FOLDER)
        shutil.rmtree(path)
        return zipped
    return path


def folder_model(folder: Path) -> tuple[keras.Model, RunConfig, str | None]:
    """A model folder laid out as a run's (model.keras, config.json, MODEL_CARD.md), e.g. the shipped default model."""
    files = ModelFolder(folder)
    config = RunConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    card = files.model_card.read_text(encoding="utf-8") if files.model_card.is_file() else None
    return load_model_file(files.model), config, card


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
