"""CIFAR-10 in: find it, read it, or let Keras download it; and write it out in the official layout.

Where the images come from, in order of preference:
1. a folder in the official "python version" layout (`cifar-10-batches-py`), or the official
   `cifar-10-python.tar.gz` archive, named by `data_dir` (the CLI's `--data-dir`) or the
   `CIFAR10_DIR` environment variable;
2. otherwise `keras.datasets.cifar10.load_data()`, which downloads the archive once.

Images stay uint8 (0-255) all the way to the model: a float32 copy of 50,000 images would take
600 MB, four times the uint8 arrays, and the model rescales them itself (see lab/models/registry.py).
TensorFlow is imported only by the functions that need it, so loading data stays light.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lab.config import CLASS_NAMES, IMAGE_SHAPE

DOWNLOAD_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
BATCH_FILES = (*TRAIN_FILES, "test_batch")

HOW_TO_GET_IT = (
    f"Download {DOWNLOAD_URL} (163 MB) and either keep the .tar.gz or extract it (it holds a '{FOLDER_NAME}' folder); "
    "then point the lab at it with the CIFAR10_DIR environment variable or the --data-dir option, "
    f"for example CIFAR10_DIR=~/data/{FOLDER_NAME}."
)


class DataUnavailableError(RuntimeError):
    """CIFAR-10 could not be found or read; the message says what to download and where to put it."""


@dataclass(frozen=True)
class Cifar10:
    """The whole dataset as loaded: uint8 images (N, 32, 32, 3) and int64 labels 0-9 (CIFAR order)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it came from: "folder /path", "archive /path.tar.gz" or "keras download"


# ---------------------------------------------------------------- finding and loading the data


def find_data_source(data_dir: str | Path | None = None) -> tuple[str, Path | None]:
    """Where load_cifar10 would read from: ("folder", path), ("archive", path) or ("keras", None).

    Only looks at file names, so it is cheap enough for every page view. A configured path that
    is not a CIFAR-10 folder or archive raises DataUnavailableError naming what is missing.
    """
    configured = data_dir or os.environ.get("CIFAR10_DIR")
    if not configured:
        return "keras", None
    path = Path(configured).expanduser()
    if path.is_file():
        return "archive", path
    if not path.is_dir():
        raise DataUnavailableError(f"The CIFAR-10 path {path} does not exist. {HOW_TO_GET_IT}")
    # Accept the batches folder itself, a folder that contains it, or a folder holding the archive.
    for folder in (path, path / FOLDER_NAME):
        if all((folder / name).is_file() for name in BATCH_FILES):
            return "folder", folder
    if (path / ARCHIVE_NAME).is_file():
        return "archive", path / ARCHIVE_NAME
    folder = path / FOLDER_NAME if (path / FOLDER_NAME).is_dir() else path
    missing = [name for name in BATCH_FILES if not (folder / name).is_file()]
    raise DataUnavailableError(f"The CIFAR-10 folder {folder} lacks {', '.join(missing)}. {HOW_TO_GET_IT}")


def describe_data_source(data_dir: str | Path | None = None) -> dict:
    """A status for the sidebar: kind, path, found (the data is on this machine now) and a message."""
    try:
        kind, path = find_data_source(data_dir)
    except DataUnavailableError as error:
        configured = data_dir or os.environ.get("CIFAR10_DIR")
        return {"kind": "missing", "path": str(configured), "found": False, "message": str(error)}
    if kind != "keras":
        message = f"CIFAR-10 is read from the {kind} {path}" + (" (nothing is extracted)." if kind == "archive" else ".")
        return {"kind": kind, "path": str(path), "found": True, "message": message}
    # Keras keeps its download under KERAS_HOME (default ~/.keras), in datasets/.
    keras_home = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    cached = (keras_home / "datasets" / "cifar-10-batches-py-target_archive").is_file()
    if cached:
        message = f"CIFAR-10 comes from the Keras download cached in {keras_home / 'datasets'}."
    else:
        message = f"No local copy is configured, so Keras will download CIFAR-10 on first use. Offline? {HOW_TO_GET_IT}"
    return {"kind": "keras", "path": None, "found": cached, "message": message}


def load_cifar10(data_dir: str | Path | None = None) -> Cifar10:
    """Load all of CIFAR-10 from the source find_data_source picks. Arrays are read-only: share, never mutate."""
    kind, path = find_data_source(data_dir)
    if kind == "folder":
        data = _assemble({name: _read_batch_file(path / name) for name in BATCH_FILES}, source=f"folder {path}")
    elif kind == "archive":
        data = _assemble(_read_archive(path), source=f"archive {path}")
    else:
        data = _download_with_keras()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False  # the app caches one copy for every page and job
    return data


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches only: a pickle may name any Python function, and loading it would run it."""

    # Exactly what a pickled NumPy array names, as written by NumPy 1.x ("numpy.core") or 2.x ("numpy._core").
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    ALLOWED |= {(f"numpy.{core}.multiarray", "_reconstruct") for core in ("core", "_core")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR-10 batch")
        return super().find_class(module, name)


def _parse_batch(file, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch's pixel rows (N, 3072) uint8 and labels (N,) int64; a damaged file raises DataUnavailableError."""
    try:
        batch = _BatchUnpickler(file, encoding="bytes").load()  # encoding="bytes": the files were written by Python 2
        rows = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as error:  # a corrupt pickle can fail in many ways; every one means "get a fresh copy"
        raise DataUnavailableError(f"{where} is damaged or not a CIFAR-10 batch ({error!r}). {HOW_TO_GET_IT}") from error
    if rows.ndim != 2 or rows.shape[1] != 3072 or len(labels) != len(rows) or np.any((labels < 0) | (labels > 9)):
        raise DataUnavailableError(f"{where} does not hold N x 3072 pixels with labels 0-9. {HOW_TO_GET_IT}")
    return rows, labels


def _read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as file:
        return _parse_batch(file, str(path))


def _read_archive(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the batches straight out of the .tar.gz, in one pass, writing nothing to disk."""
    batches = {}
    try:
        # "r|gz" streams the archive: each member is unpickled as the gzip stream reaches it, because
        # jumping back and forth in a gzip file would mean decompressing it again from the start.
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in BATCH_FILES:
                    batches[name] = _parse_batch(tar.extractfile(member), f"{archive}:{member.name}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataUnavailableError(f"{archive} is not a readable .tar.gz archive ({error}). {HOW_TO_GET_IT}") from error
    missing = [name for name in BATCH_FILES if name not in batches]
    if missing:
        raise DataUnavailableError(f"The archive {archive} lacks {', '.join(missing)}. {HOW_TO_GET_IT}")
    return batches


def _to_images(row_batches: list[np.ndarray]) -> np.ndarray:
    """Pixel rows (channel-major: 1024 red, 1024 green, 1024 blue) -> images (N, 32, 32, 3).

    Consumes `row_batches`: each batch is copied into its slice of one preallocated array and
    then dropped. np.empty touches no memory until a slice is written, so the peak stays near
    one copy of the images plus one batch, instead of two whole copies.
    """
    images = np.empty((sum(len(rows) for rows in row_batches), *IMAGE_SHAPE), dtype=np.uint8)
    start = 0
    while row_batches:
        rows = row_batches.pop(0)
        # The reshape and transpose are free views; the assignment copies every pixel once.
        images[start : start + len(rows)] = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        start += len(rows)
        del rows
    return images


def _assemble(batches: dict[str, tuple[np.ndarray, np.ndarray]], source: str) -> Cifar10:
    """Build the dataset from the batches, emptying the dict as it goes (see _to_images)."""
    y_train = np.concatenate([batches[name][1] for name in TRAIN_FILES])
    rows_test, y_test = batches.pop("test_batch")
    x_train = _to_images([batches.pop(name)[0] for name in TRAIN_FILES])
    return Cifar10(x_train, y_train, _to_images([rows_test]), y_test, source)


def _download_with_keras() -> Cifar10:
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # offline, a proxy, a full disk, a broken cache: all need the same fix
        raise DataUnavailableError(
            f"CIFAR-10 is not on this machine and the Keras download failed ({type(error).__name__}: {error}). {HOW_TO_GET_IT}"
        ) from error
    # Keras returns transposed views and (N, 1) uint8 labels; keep contiguous images and flat int64 labels.
    x_train, x_test = np.ascontiguousarray(x_train), np.ascontiguousarray(x_test)
    return Cifar10(x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64), "keras download")


def write_cifar10_folder(folder, x_train, y_train, x_test, y_test, batches: int = 5) -> Path:
    """Write arrays in the official python layout (data_batch_1.., test_batch, batches.meta); for tests and benchmarks.

    With `batches` other than 5 the folder holds data_batch_1..batches, which load_cifar10 rejects:
    keep the default for anything it must read back.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = zip(np.array_split(np.asarray(x_train), batches), np.array_split(np.asarray(y_train), batches), strict=True)
    files = [(f"data_batch_{i}", x, y, f"training batch {i} of {batches}") for i, (x, y) in enumerate(parts, start=1)]
    for name, x, y, label in [*files, ("test_batch", np.asarray(x_test), np.asarray(y_test), "testing batch 1 of 1")]:
        batch = {
            b"batch_label": label.encode(),
            b"labels": [int(v) for v in np.ravel(y)],
            b"data": np.ascontiguousarray(x.astype(np.uint8).transpose(0, 3, 1, 2).reshape(len(x), 3072)),
            b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(len(x))],
        }
        _write_pickle(folder / name, batch)
    meta = {b"num_cases_per_batch": len(files[0][1]), b"label_names": [name.encode() for name in CLASS_NAMES], b"num_vis": 3072}
    _write_pickle(folder / "batches.meta", meta)
    return folder


def _write_pickle(path: Path, value: dict) -> None:
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=2)  # the official files' protocol: readable everywhere
