"""A decoded copy of CIFAR-10 on disk, opened memory-mapped: the app's server holds only what it shows.

Loading the pickled batches decodes 165 MB of uint8 pixels into the memory of the process
that loads them, and they stay there for as long as the process lives. The Streamlit server
keeps the data set for its whole life but looks at a few dozen pictures at a time, so it
loads it differently: the first load also saves the decoded arrays as .npy files (under
LAB_HOME/data_cache), and every load opens those files with `np.load(mmap_mode="r")`.
The operating system then reads from disk only the pages a process touches (a 32x32 picture
is 3 kB), keeps them in its page cache, shares them between processes, and can drop them
again when memory is short, because the file still has them.

    data = load_cifar10_mapped(data_dir)  # same Cifar10 as lab.data.cifar10.load_cifar10, arrays memory-mapped
    ... read a whole array once (statistics) ...
    release_pages(data.x_train)           # give its pages back; the next read fetches them again

Training workers keep using lab.data.cifar10.load_cifar10: they read every image every epoch anyway.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from lab.data.cifar10 import Cifar10, DataUnavailableError, find_data_source, load_cifar10

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
CACHE_FORMAT = 1  # bump when the files' layout changes, so old caches are rebuilt rather than misread


def cache_root() -> Path:
    """Where decoded copies live: LAB_HOME/data_cache (LAB_HOME defaults to ./runs)."""
    return Path(os.environ.get("LAB_HOME") or "runs") / "data_cache"


def load_cifar10_mapped(data_dir: str | Path | None = None, root: Path | None = None) -> Cifar10:
    """CIFAR-10 with memory-mapped arrays, decoding and saving them first if this source is new.

    If the copy cannot be written (a read-only or full disk), the data is returned in memory,
    as lab.data.cifar10.load_cifar10 would: slower to share, but the app still works.
    """
    root = cache_root() if root is None else Path(root)
    kind, path = find_data_source(data_dir)
    folder = root / _source_key(kind, path) if path is not None else None
    if folder is None or not _complete(folder):
        data = load_cifar10(data_dir)  # raises DataUnavailableError with its instructions
        if folder is None:  # a Keras download: key it by the files Keras saved
            folder = root / _source_key("keras", _keras_download_folder())
        try:
            _save(data, folder)
        except OSError:
            return data
        del data  # the decoded copy in memory goes; the mapped one below replaces it
    return _open(folder)


def release_pages(array: np.ndarray) -> None:
    """Tell the OS this process is done with a memory-mapped array's pages (no-op for ordinary arrays).

    Reading a whole mapped array (to average its images, say) makes all of its pages resident
    in this process; MADV_DONTNEED drops them again. Safe, because they are file-backed and
    read-only: the next access reads them back from the page cache or the disk.
    """
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "_mmap", None) or getattr(base, "base", None)
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)


def source_identity(data_dir: str | Path | None = None) -> str:
    """A short key that names this copy of CIFAR-10 and changes when any of its files changes.

    Two runs with equal settings and equal source identities see exactly the same data
    (prepare_task is deterministic for a seed), so lab.jobs.queue need not train the second.
    """
    try:
        kind, path = find_data_source(data_dir)
    except DataUnavailableError:  # nothing there yet: the name alone identifies it (the run will say what is missing)
        kind, path = "missing", Path(data_dir or "")
    return _source_key(kind, path if path is not None else _keras_download_folder())


def _source_key(kind: str, path: Path | None) -> str:
    """A name for one source's decoded copy: it changes when any of the source's files changes."""
    path = Path(path) if path is not None else None
    files = sorted(path.iterdir()) if path is not None and path.is_dir() else [path] if path is not None else []
    facts = [CACHE_FORMAT, kind, str(path.resolve()) if path is not None else ""]
    facts += [(file.name, file.stat().st_size, file.stat().st_mtime_ns) for file in files if file.is_file()]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]


def _keras_download_folder() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets" / "cifar-10-batches-py"


def _complete(folder: Path) -> bool:
    return (folder / "source.json").is_file()  # written last, so its presence means every array is there


def _save(data: Cifar10, folder: Path) -> None:
    """Write the arrays into a temporary folder, then rename it: a killed save leaves no half copy."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
    try:
        for name in ARRAYS:
            np.save(staging / f"{name}.npy", getattr(data, name))
        (staging / "source.json").write_text(json.dumps({"source": data.source}))
        try:
            os.replace(staging, folder)
        except OSError:
            if not _complete(folder):  # another process finished the same copy first: keep theirs
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _open(folder: Path) -> Cifar10:
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    source = json.loads((folder / "source.json").read_text())["source"]
    return Cifar10(**arrays, source=source)
