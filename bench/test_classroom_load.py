"""bench.classroom_load's own rules: each way's runs are trained by that way's workers only, and no verdict over errors."""

from __future__ import annotations

import pytest

from bench import classroom_load, classroom_sim
from lab.config import config_for_preset
from lab.jobs import launcher, queue
from lab.store.runs import Status, Store
from tests.synthetic import random_cifar10_folder

FAIR_WORKER = "-m lab.jobs.worker --lab-home /tmp/classroom-fair/lab_home"
FCFS_WORKER = "-m lab.jobs.worker --lab-home /tmp/classroom-fcfs/lab_home --order oldest"
COLD_RUN = "-m bench.classroom_sim fcfs-worker /tmp/classroom-fcfs-cold/lab_home /data --one-run"


def summary(way: str, errors: int = 0, median: float = 30.0, longest: float = 60.0) -> dict:
    return {"way": classroom_load.LABELS[way], "errors": errors, "median": median, "max": longest, "unserved": 0}


def test_no_target_is_judged_while_a_way_has_errors():
    clean = {"fair": summary("fair", median=20.0), "fcfs": summary("fcfs", median=80.0)}
    judged = "\n".join(classroom_load.targets(clean))
    assert "met (4.0x)" in judged and "0 errors in every way: met" in judged  # the precondition: clean ways are judged

    for broken in ({**clean, "fcfs": summary("fcfs", errors=35, median=80.0)}, {**clean, "fair": summary("fair", errors=1, median=20.0)}):
        lines = classroom_load.targets(broken)
        text = "\n".join(lines)
        assert len(lines) == 1 and text.startswith("- No verdict on the targets")
        assert " met" not in text and "NOT met" not in text
        assert f"{next(s['way'] for s in broken.values() if s['errors'])}: " in text  # names the way and its errors


def test_each_way_accepts_only_its_own_workers():
    assert classroom_sim.is_own_worker("fair", FAIR_WORKER) and not classroom_sim.is_own_worker("fair", FCFS_WORKER)
    assert classroom_sim.is_own_worker("fcfs", FCFS_WORKER) and not classroom_sim.is_own_worker("fcfs", FAIR_WORKER)
    assert classroom_sim.is_own_worker("fcfs-cold", COLD_RUN) and not classroom_sim.is_own_worker("fcfs-cold", FAIR_WORKER)
    runs = [
        {"run_id": "a", "worker_pid": 11, "worker": FCFS_WORKER},
        {"run_id": "b", "worker_pid": 12, "worker": FAIR_WORKER},  # the case: a fair-order worker in the fcfs way
        {"run_id": "c", "worker_pid": 13, "worker": ""},  # a process the way never saw start
        {"run_id": "d", "worker_pid": None, "worker": ""},  # never taken: counted elsewhere (no result by the deadline)
    ]
    errors = classroom_sim.foreign_runs("fcfs", runs)
    assert [error.split()[1] for error in errors] == ["b", "c"]
    assert "a process this way did not start" in errors[1]


def test_in_a_first_come_first_served_way_the_app_starts_no_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "start_worker", launcher.start_worker)  # put back after the test
    store = Store(tmp_path / "lab_home")
    asked = classroom_sim.keep_the_app_from_starting_workers()
    run_id = queue.submit(config_for_preset("quick-demo"), store=store, data_dir=str(tmp_path / "no-data"))
    assert asked, "the app did not even try to start a worker: nothing was kept from it"
    assert launcher.live_workers(store) == [] and store.get_run(run_id).status is Status.QUEUED


@pytest.mark.slow
def test_a_small_class_runs_through_the_benchmark_end_to_end(tmp_path, monkeypatch):
    """Two students (one of them choosing a classmate's settings) through the real bench, on a tiny data set.

    The bench drives the app and reads the store the way a student would; when either changes under it (a run
    read as a dict after the store began returning records), every student ends in an error and no target is judged.
    """
    data = random_cifar10_folder(tmp_path / "cifar-10-batches-py", n_train=300, n_test=50)
    monkeypatch.setenv("CIFAR10_DIR", str(data))
    out = tmp_path / "section.md"
    classroom_load.main(
        ["--students", "2", "--identical", "1", "--eager", "0", "--subset", "200", "--epochs", "1"]
        + ["--ways", "fair", "--arrive-over", "1", "--minutes", "4", "--out", str(out)]
    )
    section = out.read_text()
    assert "0 errors in every way: met." in section, section
    assert "| everyone | 2 |" in section and "| 2 / 2 |" in section, section
