"""Training on a Ray cluster: a real two-node cluster on this machine (a head and a worker node, one CPU each).

Both nodes listen on 127.0.0.1 only. The app's side is the real one: queue.submit starts the
dispatcher process (lab/jobs/ray/dispatch.py), which sends each run to the cluster and writes
its events and result into the store. Ray comes with `pip install -e .[cluster]` (and the dev
extras); without it these tests skip, except under CI, where a missing Ray is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.jobs import launcher, queue, resume
from lab.jobs.progress import RESUMED_BY_ITSELF
from lab.jobs.ray import cluster
from lab.store.owners import local_person
from lab.store.records import Status
from lab.store.runs import Store
from lab.train import checkpoints
from tests.synthetic import random_cifar10_folder
from tests.test_jobs import tiny_config, wait_finished, wait_for

if os.environ.get("CI"):
    import ray  # CI installs the dev extras, Ray included: a missing Ray fails there
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e .[cluster]")

# A real two-node cluster and a fresh Ray worker per run: the slow tier (`pytest -m "not slow"` leaves it out).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240  # a tiny run on one CPU, TensorFlow's start in a fresh Ray worker included
# Ray turns 127.0.0.1 into this machine's network address unless told this is not a cluster of machines;
# with it, every node, driver and worker stays on the loopback address.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 100 * 1024 * 1024}


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> str:
    return str(random_cifar10_folder(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", 200, 100, seed=5))


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a worker node, one CPU each, on loopback; shut down after this module's tests."""
    from ray.cluster_utils import Cluster

    saved = {name: os.environ.get(name) for name in LOOPBACK_ONLY}
    os.environ.update(LOOPBACK_ONLY)
    nodes = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    nodes.add_node(**NODE)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def store(tmp_path, monkeypatch, two_nodes) -> Store:
    """A store whose queued runs go to the two-node cluster, one CPU per run."""
    monkeypatch.setenv("LAB_RAY_ADDRESS", two_nodes.address)
    monkeypatch.setenv("LAB_RAY_CPUS_PER_RUN", "1")
    store = Store(tmp_path / "lab_home")
    yield store
    for pid in launcher.live_workers(store):  # never leave a dispatcher behind, even when a test fails
        os.kill(pid, signal.SIGKILL)
    # Shown only when the test failed (pytest prints a failed test's captured output): what the dispatcher said.
    print(f"dispatcher log:\n{dispatcher_log(store)[-4000:]}")
    for run in store.list_runs():
        print(f"run {run.run_id}: {run.status} {run.message}")


def dispatcher_log(store: Store) -> str:
    return "\n".join(path.read_text() for path in sorted((store.root / "logs").glob("*.log")))


def node_of(store: Store, run_id: str) -> str:
    return wait_for(lambda: (event := store.latest_event(run_id, "placed")) and event["ran_on"]["node_id"], TIMEOUT, "the run's node")


def resume_then_stop_and_keep(store: Store, run_id: str, data_dir: str) -> dict:
    """Resume an interrupted run from the checkpoint it sent home, let it train past that, stop it and keep it."""
    saved = checkpoints.saved_epoch(store.run_folder(run_id).checkpoints)
    assert saved is not None and saved >= 1
    resume.resume(run_id, store, data_dir=data_dir, by=local_person())
    return continue_then_stop_and_keep(store, run_id, saved)


def continue_then_stop_and_keep(store: Store, run_id: str, saved: int) -> dict:
    """A resumed run starts after epoch `saved`; let it train past that, stop it, keep it, and check what was stored."""
    # Its own train_begin: one from an earlier resume of the same run says another epoch.
    wait_for(lambda: (event := store.latest_event(run_id, "train_begin")) and event["resumed_from_epoch"] == saved, TIMEOUT, "the resume")
    wait_for(lambda: store.latest_event(run_id, "epoch_end")["epoch"] > saved + 1, TIMEOUT, "an epoch after the resume")
    seen = store.latest_event(run_id, "batch_end")  # the newest step rank 0 reported when the stop is asked
    queue.cancel(run_id, store, keep_model=True, by=local_person())
    run = wait_finished(store, run_id, 120)
    assert run.status is Status.COMPLETED and run.metrics["epochs_completed"] > saved + 1, (run.message, dispatcher_log(store)[-3000:])
    assert len(store.load_history(run_id)["loss"]) == run.metrics["epochs_completed"]  # the epochs before the stop count
    workers = run.environment["ran_on"].get("workers")
    if workers:
        # Several workers: each stopped after the same step (one that stopped alone would leave the others
        # waiting for its gradients forever), and none before the stop was asked. They count steps since the resume.
        assert run.message.startswith("stopped early on request"), run.message
        assert sorted(worker["rank"] for worker in workers) == list(range(len(workers)))
        steps_done = {worker["steps_done"] for worker in workers}
        steps_seen = (seen["epoch"] - saved - 1) * seen["steps"] + seen["step"]
        assert len(steps_done) == 1 and steps_seen <= steps_done.pop(), (steps_seen, workers)
    return run


def test_two_runs_train_at_once_on_different_nodes_and_their_events_reach_the_store(store, tiny_cifar):
    first = queue.submit(tiny_config(epochs=2, seed=1), store=store, data_dir=tiny_cifar)
    second = queue.submit(tiny_config(epochs=2, seed=2), store=store, data_dir=tiny_cifar)
    assert launcher.worker_command(store)[2] == "lab.jobs.ray.dispatch"
    assert node_of(store, first) != node_of(store, second)  # both placed at once, one per node
    for run_id in (first, second):
        run = wait_finished(store, run_id, TIMEOUT)
        assert run.status is Status.COMPLETED, f"{run.message}\n{dispatcher_log(store)}"
        ran_on = run.environment["ran_on"]
        assert ran_on["kind"] == "ray" and ran_on["node_address"] == "127.0.0.1" and ran_on["node_id"] == node_of(store, run_id)
        kinds = {event["kind"] for event in store.events(run_id)}
        assert {"train_begin", "batch_end", "epoch_end", "evaluation"} <= kinds  # live progress, relayed through Ray
        assert (store.root / "runs" / run_id / "model.keras").is_file()
        assert store.load_model(run_id) is not None
    assert len(store.list_runs()) == 2  # each stored once
    status = cluster.read_status(store.root)
    assert status["ok"] and status["nodes"] == 2 and status["cpus"] == 2


def test_cancel_and_stop_and_keep_reach_runs_on_the_cluster(store, tiny_cifar):
    cancelled = queue.submit(tiny_config(epochs=40, batch_size=8, seed=3), store=store, data_dir=tiny_cifar)
    kept = queue.submit(tiny_config(epochs=40, batch_size=8, seed=4), store=store, data_dir=tiny_cifar)
    for run_id in (cancelled, kept):
        wait_for(lambda run_id=run_id: store.latest_event(run_id, "batch_end"), TIMEOUT, f"{run_id}'s first batch")
    queue.cancel(cancelled, store, by=local_person())
    queue.cancel(kept, store, keep_model=True, by=local_person())
    assert wait_finished(store, cancelled, 60).status is Status.CANCELLED
    run = wait_finished(store, kept, 90)
    assert run.status is Status.COMPLETED and run.metrics["stopped_early"], run.message
    assert run.metrics["epochs_completed"] < 40


def test_the_command_line_trains_one_run_on_the_cluster(store, tiny_cifar, two_nodes):
    command = [sys.executable, "-m", "lab", "train", "--model", "seed-cnn", "--epochs", "1", "--subset", "200", "--batch-size", "16"]
    command += ["--data-dir", tiny_cifar, "--ray-address", two_nodes.address, "--json"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "LAB_HOME": str(store.root)}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed" and summary["ran_on"]["kind"] == "ray"
    assert "epoch 1/1" in done.stderr.lower() or "training on" in done.stderr  # the terminal's progress, as for a local run
    run = store.get_run(summary["run_id"])
    assert run.status is Status.COMPLETED and run.environment["ran_on"]["kind"] == "ray"


def test_a_run_no_node_can_hold_fails_at_once_saying_what_it_asked_and_what_to_change(store, tiny_cifar, two_nodes, monkeypatch):
    """Two CPUs per run on nodes of one CPU each: Ray alone would keep the run pending for ever, silently."""
    assert NODE["num_cpus"] == 1 and len(two_nodes.list_all_nodes()) == 2  # two CPUs in all, but one per node
    expected = "needs 2 CPUs on one computer, but the biggest computer (node) of the Ray cluster has 1 CPU"
    command = [sys.executable, "-m", "lab", "train", "--model", "seed-cnn", "--epochs", "1", "--subset", "200"]
    command += ["--data-dir", tiny_cifar, "--ray-address", two_nodes.address]
    env = {**os.environ, "LAB_HOME": str(store.root), "LAB_RAY_CPUS_PER_RUN": "2"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert time.monotonic() - started < 60, done.stderr[-3000:]
    assert done.returncode != 0 and expected in done.stderr and "LAB_RAY_CPUS_PER_RUN to 1 or less" in done.stderr, done.stderr[-3000:]
    assert store.list_runs() == []  # refused before anything was stored

    # Through the queue, as the app sends it: the run fails with the same sentence, and the sidebar says it too.
    monkeypatch.setenv("LAB_RAY_CPUS_PER_RUN", "2")
    started = time.monotonic()
    run_id = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
    run = wait_finished(store, run_id, 60)
    assert time.monotonic() - started < 60
    assert run.status is Status.FAILED and expected in run.message, (run.message, dispatcher_log(store)[-3000:])
    healthy, line = cluster.status_line(store.root)
    assert not healthy and expected in line
    wait_for(lambda: launcher.live_workers(store) == [], 30, "the dispatcher to leave")


def test_a_cluster_that_does_not_answer_leaves_runs_waiting_and_says_so(tmp_path, monkeypatch, tiny_cifar):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("LAB_RAY_ADDRESS", dead)
    store = Store(tmp_path / "lab_home")
    try:
        run_id = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
        status = wait_for(lambda: cluster.read_status(store.root), 60, "the dispatcher's word on the cluster")
        assert not status["ok"] and "does not answer" in status["message"]
        healthy, line = cluster.status_line(store.root)
        assert not healthy and "Queued runs wait until it answers" in line
        assert store.get_run(run_id).status is Status.QUEUED  # nothing lost, nothing failed: it waits
        queue.cancel(run_id, store, by=local_person())
        wait_for(lambda: launcher.live_workers(store) == [], 30, "the dispatcher to leave")
    finally:
        for pid in launcher.live_workers(store):
            os.kill(pid, signal.SIGKILL)


def test_without_a_cluster_runs_can_fall_back_to_local_workers(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setenv("LAB_RAY_ADDRESS", "127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("LAB_RAY_FALLBACK", "local")
    store = Store(tmp_path / "lab_home")
    try:
        run_id = queue.submit(tiny_config(), store=store, data_dir=tiny_cifar)
        run = wait_finished(store, run_id, TIMEOUT)
        assert run.status is Status.COMPLETED and run.environment["ran_on"]["kind"] == "local"
        assert "They train here meanwhile" in cluster.status_line(store.root)[1]
    finally:
        for pid in launcher.live_workers(store):
            os.kill(pid, signal.SIGKILL)


def test_one_run_trained_by_two_workers_at_once_spans_both_nodes(store, tiny_cifar, two_nodes):
    """`train --ray-workers 2`: Ray Train's TensorflowTrainer, MultiWorkerMirroredStrategy, one model."""
    command = [sys.executable, "-m", "lab", "train", "--model", "seed-cnn", "--epochs", "2", "--subset", "200", "--batch-size", "16"]
    command += ["--data-dir", tiny_cifar, "--ray-address", two_nodes.address, "--ray-workers", "2", "--json"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "LAB_HOME": str(store.root)}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads(done.stdout)["run_id"]
    run = store.get_run(run_id)
    assert run.status is Status.COMPLETED, run.message
    workers = run.environment["ran_on"]["workers"]
    assert len(workers) == 2 and {worker["node_id"] for worker in workers} == {node.node_id for node in two_nodes.list_all_nodes()}
    assert run.environment["strategy"] == "multi_worker"
    assert len(store.load_history(run_id)["loss"]) == 2 and 0.0 <= run.metrics["accuracy"] <= 1.0
    epoch_ends = [event for event in store.events(run_id) if event["kind"] == "epoch_end"]
    assert [event["epoch"] for event in epoch_ends] == [1, 2]  # one voice: rank 0's events only
    assert store.load_model(run_id).count_params() == run.metrics["total_params"]


def training_worker_pids() -> list[int]:
    """The processes of Ray Train's workers on this machine (Ray names each process after its actor)."""
    found = subprocess.run(["pgrep", "-f", "^ray::RayTrainWorker"], capture_output=True, text=True)
    return sorted(int(pid) for pid in found.stdout.split())


def test_a_two_worker_run_survives_a_dead_worker_by_itself_and_a_dead_dispatcher_by_resume(store, tiny_cifar, monkeypatch):
    """Two accidents and a stop for one run, since each run's start on the cluster is the slow part.

    1. One worker's process is killed (its machine ran out of memory, say): the dispatcher resumes the run
       by itself, once, from its last checkpoint; nobody has to click Resume.
    2. The app's machine restarts (the dispatcher is killed): the run is interrupted, and Resume continues it
       from the checkpoint rank 0 sent home, on both workers again.
    3. Stop and keep the model: both workers stop after the same step, and the run is kept.
    """
    monkeypatch.setenv("LAB_RAY_WORKERS_PER_RUN", "2")
    run_id = queue.submit(tiny_config(epochs=400, batch_size=8), store=store, data_dir=tiny_cifar)
    wait_for(lambda: store.latest_event(run_id, "epoch_end"), TIMEOUT, "the run's first epoch")
    workers = wait_for(lambda: len(found := training_worker_pids()) == 2 and found, 30, "the run's two worker processes")
    os.kill(workers[-1], signal.SIGKILL)
    resumed = wait_for(lambda: store.latest_event(run_id, RESUMED_BY_ITSELF), TIMEOUT, "the dispatcher's resume")
    assert resumed["because"].startswith("worker ") and " of 2 failed" in resumed["because"], resumed
    after = resumed["after_epoch"]
    assert after >= 1
    wait_for(lambda: (event := store.latest_event(run_id, "train_begin")) and event["resumed_from_epoch"] == after, TIMEOUT, "the resume")
    wait_for(lambda: store.latest_event(run_id, "epoch_end")["epoch"] > after + 1, TIMEOUT, "an epoch after the resume")

    for pid in launcher.live_workers(store):  # the dispatcher, killed as a server restart would
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: launcher.live_workers(store) == [], 30, "the dispatcher to die")
    store.mark_interrupted_runs()
    assert store.get_run(run_id).status is Status.FAILED
    assert checkpoints.saved_epoch(store.run_folder(run_id).checkpoints) > after  # the checkpoint moved on since
    run = resume_then_stop_and_keep(store, run_id, tiny_cifar)
    assert len(run.environment["ran_on"]["workers"]) == 2
    assert len([event for event in store.events(run_id) if event["kind"] == RESUMED_BY_ITSELF]) == 1  # once only


def test_a_worker_node_killed_mid_run_leaves_its_run_interrupted_and_the_other_goes_on(store, tiny_cifar, two_nodes):
    """Then the interrupted run resumes from the checkpoint its node sent home.

    Last in this module: it kills the worker node (and adds a fresh one for anything after it)."""
    runs = [queue.submit(tiny_config(epochs=400, batch_size=8, seed=seed), store=store, data_dir=tiny_cifar) for seed in (5, 6)]
    nodes = {node_of(store, run_id): run_id for run_id in runs}
    worker_node = next(node for node in two_nodes.worker_nodes)
    on_worker = nodes[worker_node.node_id]
    on_head = next(run_id for run_id in runs if run_id != on_worker)
    wait_for(lambda: store.latest_event(on_worker, "epoch_end"), TIMEOUT, "the first epoch on the worker node")
    two_nodes.remove_node(worker_node, allow_graceful=False)  # as if the machine lost power

    run = wait_finished(store, on_worker, 120)
    assert run.status is Status.FAILED and run.message.startswith("interrupted: the Ray node"), run.message
    # The head's run carries on: it finishes epochs it had not reached when the other node died.
    epoch_at_death = (store.latest_event(on_head, "epoch_end") or {"epoch": 0})["epoch"]
    events_at_death = len(store.events(on_head))
    wait_for(
        lambda: (store.latest_event(on_head, "epoch_end") or {"epoch": 0})["epoch"] >= epoch_at_death + 2,
        TIMEOUT,
        f"two more epochs of the head's run after epoch {epoch_at_death}",
    )
    assert len(store.events(on_head)) > events_at_death
    head_run = store.get_run(on_head)
    assert head_run.status is Status.RUNNING, (head_run.message, dispatcher_log(store)[-3000:])
    queue.cancel(on_head, store, by=local_person())
    head_run = wait_finished(store, on_head, 60)
    assert head_run.status is Status.CANCELLED, (head_run.message, dispatcher_log(store)[-3000:])
    assert len(store.list_runs()) == 2 and store.integrity_check() == "ok"

    # Each epoch's checkpoint came home through the channel: the run resumes on the node that is left.
    resume_then_stop_and_keep(store, on_worker, tiny_cifar)
    assert checkpoints.saved_epoch(store.run_folder(on_worker).checkpoints) is None  # completed: nothing left to resume
    two_nodes.add_node(**NODE)
