"""What the app says about a Ray cluster, from the dispatcher's cluster.json: no Ray needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lab.cli.main import main
from lab.jobs import launcher
from lab.jobs.ray import cluster
from lab.jobs.ray import node as ray_node
from lab.jobs.ray.node import RunChannel
from lab.store.runs import Store

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def test_without_a_cluster_address_runs_train_locally(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_RAY_ADDRESS", raising=False)
    assert cluster.ray_address() is None and cluster.status_line(tmp_path) is None
    assert launcher.worker_command(Store(tmp_path))[2] == "lab.jobs.worker"


def test_the_status_line_says_what_the_dispatcher_last_saw(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_RAY_ADDRESS", "10.0.0.5:6379")
    assert cluster.status_line(tmp_path) == (True, "Runs train on the Ray cluster at 10.0.0.5:6379.")
    cluster.write_status(tmp_path, ok=True, address="10.0.0.5:6379", message="", nodes=3, cpus=24.0, gpus=2.0)
    assert cluster.status_line(tmp_path) == (True, "Runs train on the Ray cluster at 10.0.0.5:6379 (3 nodes, 24 CPUs, 2 GPUs).")
    cluster.write_status(tmp_path, ok=False, address="10.0.0.5:6379", message="the Ray cluster at 10.0.0.5:6379 does not answer.")
    healthy, line = cluster.status_line(tmp_path)
    assert not healthy and line.endswith("does not answer. Queued runs wait until it answers.")
    monkeypatch.setenv("LAB_RAY_FALLBACK", "local")
    assert cluster.status_line(tmp_path)[1].endswith("They train here meanwhile.")


def test_a_malformed_address_is_explained(monkeypatch):
    assert "is not HOST:PORT" in cluster.answers("just-a-host")
    assert cluster.answers("127.0.0.1:9", timeout=1) is not None  # the discard port: nobody listens


def test_the_sidebar_says_the_cluster_does_not_answer(monkeypatch):
    monkeypatch.setenv("LAB_RAY_ADDRESS", "10.0.0.5:6379")
    cluster.write_status(Store().root, ok=False, address="10.0.0.5:6379", message="the Ray cluster at 10.0.0.5:6379 does not answer.")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    sidebar = "\n".join(str(element.value) for element in [*at.sidebar.markdown, *at.sidebar.caption])
    assert "cluster unreachable" in sidebar and "Queued runs wait until it answers" in sidebar


def test_workers_per_run_reads_its_setting_and_refuses_nonsense(monkeypatch):
    monkeypatch.delenv("LAB_RAY_WORKERS_PER_RUN", raising=False)
    assert cluster.workers_per_run() == 1
    monkeypatch.setenv("LAB_RAY_WORKERS_PER_RUN", "3")
    assert cluster.workers_per_run() == 3 and cluster.workers_per_run(2) == 2  # the command line's flag wins
    for bad in ("two", "0", "-1"):
        monkeypatch.setenv("LAB_RAY_WORKERS_PER_RUN", bad)
        with pytest.raises(ValueError, match="worker"):
            cluster.workers_per_run()


def test_the_channel_gives_every_worker_the_same_step_to_stop_after():
    """Plain Python: the RunChannel actor's class, with two workers a step apart, as gradients keep them."""
    channel = RunChannel()
    assert channel.report_step([], 5) == (None, False)  # worker A finished step 5
    assert channel.report_step([], 4) == (None, False)  # worker B is a step behind
    channel.request_stop(keep_model=True)
    stop_after, keep = channel.report_step([], 5)  # B catches up and hears first
    assert (stop_after, keep) == (7, True)
    channel.request_stop(keep_model=False)  # a later request changes nothing once the step is set
    assert channel.report_step([], 6) == (7, True)  # A, at step 6, hears the same step
    assert stop_after > channel.furthest_step  # a step neither worker has finished yet


def test_a_run_of_several_workers_needs_a_cluster(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LAB_RAY_ADDRESS", raising=False)
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    assert main(["train", "--model", "quick-demo", "--ray-workers", "2"]) != 0
    assert "--ray-address" in capsys.readouterr().err


def test_a_node_removes_the_temporary_folders_of_dead_workers_only(tmp_path):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = tmp_path / f"{ray_node.LEFTOVER_PREFIX}{gone.stdout.strip()}-abc"
    alive = tmp_path / f"{ray_node.LEFTOVER_PREFIX}{os.getpid()}-def"
    for folder in (dead, alive):
        (folder / "checkpoints").mkdir(parents=True)
    ray_node.remove_leftovers(tmp_path)
    assert not dead.exists() and alive.exists()
