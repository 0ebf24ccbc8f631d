"""The memory-mapped copy of the data set the app's server uses (lab/data/cache.py)."""

import os
from pathlib import Path

import numpy as np
import pytest

from lab.data import cache as data_cache
from lab.data import cifar10 as data
from tests.synthetic import random_cifar10_folder


@pytest.fixture
def source(tmp_path):
    return random_cifar10_folder(tmp_path / "cifar-10-batches-py", n_train=120, n_test=40)


def test_a_mapped_load_gives_the_same_data_as_a_plain_load(source, tmp_path):
    plain = data.load_cifar10(source)
    mapped = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    for name in data_cache.ARRAYS:
        assert isinstance(getattr(mapped, name), np.memmap)
        np.testing.assert_array_equal(getattr(mapped, name), getattr(plain, name))
        assert not getattr(mapped, name).flags.writeable
    assert mapped.source == plain.source


def test_the_second_load_reads_the_saved_copy_instead_of_the_batches(source, tmp_path, monkeypatch):
    first = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    monkeypatch.setattr(data_cache, "load_cifar10", lambda *args: pytest.fail("decoded the batches again"))
    second = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one folder per source, no leftovers


def test_a_changed_source_gets_a_fresh_copy(source, tmp_path):
    first = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    random_cifar10_folder(source, n_train=120, n_test=40, seed=1)  # new pixels in the same files
    os.utime(source / "test_batch", ns=(1, 1))  # and make sure the timestamps differ, whatever the clock's resolution
    second = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    assert not np.array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(second.x_train, data.load_cifar10(source).x_train)


def test_a_cache_that_cannot_be_written_falls_back_to_memory(source, tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data_cache.np, "save", disk_full)
    loaded = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    assert not isinstance(loaded.x_train, np.memmap)
    assert loaded.x_train.shape == (120, 32, 32, 3)
    assert not any(path.name.startswith(".partial-") for path in (tmp_path / "cache").iterdir())  # no half copy left


def test_a_missing_source_still_says_what_to_download(tmp_path):
    with pytest.raises(data.DataUnavailableError, match="cifar-10"):
        data_cache.load_cifar10_mapped(tmp_path / "nowhere", root=tmp_path / "cache")


def resident_kb(path: Path) -> int:
    """How much of the file mapped from `path` this process holds in memory, from /proc/self/smaps."""
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:  # a mapping's header line: "start-end perms offset dev inode path"
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            resident += int(line.split()[1])
    return resident


def test_released_pages_leave_this_process_and_come_back_on_reading(source, tmp_path):
    mapped = data_cache.load_cifar10_mapped(source, root=tmp_path / "cache")
    file = Path(mapped.x_train.filename)
    total = int(mapped.x_train.astype(np.int64).sum())  # touches every page: 120 pictures, 360 kB
    assert resident_kb(file) >= 300
    data_cache.release_pages(mapped.x_train)
    assert resident_kb(file) <= 8  # at most a page or two of the file's header
    assert int(mapped.x_train.astype(np.int64).sum()) == total  # still readable, same pixels
    data_cache.release_pages(np.zeros(3))  # an ordinary array: nothing to release, no error
