"""Opening a saved model file safely: Keras safe mode on, and one plain sentence for every failure."""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path


class ModelFileError(ValueError):
    """A model file that cannot be used: it holds Python code, or it is damaged. The message says what to do."""


def load_model_file(path: Path):
    """Load a saved model for prediction, with Keras safe mode on (no arbitrary code runs while loading).

    lab.models.registry is imported first because it registers the lab's own layers, which Keras must
    know by name to rebuild a model in a fresh process. The model comes back uncompiled: the
    lab only predicts with a loaded model, so the optimiser, schedule and loss it was trained
    with (a run in float32 saves them) are neither rebuilt nor need to be known here.
    A file safe mode refuses (it holds Python code, such as a Lambda layer) or
    that is damaged raises ModelFileError with one sentence saying so; Keras's own
    message would suggest turning safe mode off, which the lab never does.
    """
    try:
        importlib.import_module("lab.models.registry")
    except ModuleNotFoundError as error:
        if error.name != "lab.models.registry":
            raise
    import keras  # imported here so that reading the store never pays for TensorFlow

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except ValueError as error:
        if "safe_mode" in str(error) or "arbitrary code" in str(error):
            raise ModelFileError(
                f"the model file {path} contains Python code (for example a Lambda layer), which the lab refuses to run; "
                "models trained by the lab never do, so train this one again with the lab."
            ) from error
        raise ModelFileError(_damaged_model_message(path, error)) from error
    except (OSError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as error:
        raise ModelFileError(_damaged_model_message(path, error)) from error


def _damaged_model_message(path: Path, error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return f"the model file {path} cannot be read ({type(error).__name__}: {first_line}); it may be damaged, so train the model again."
