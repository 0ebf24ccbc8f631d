"""Training on a Ray cluster: does a second node double the runs per hour, and what does going through Ray cost?

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.ray_scaling

Side by side, on this one machine, through the app's real queue (queue.submit, the dispatcher,
the store): the same queue of quick runs on a Ray cluster of one node and of two nodes of the
same size (one CPU each, on loopback), in runs per hour and their ratio; then the seconds from
"queued" to the first progress event of one run on the cluster against a local worker. Writes
its section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import markdown_table, write_section

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 300 * 1024 * 1024}


def quick_run(seed: int, subset: int | None):
    """The app's quick run (the quick-demo preset), or fewer images for a quick trial of this script."""
    from lab.config import config_for_preset

    return config_for_preset("quick-demo", seed=seed, **({"subset": subset} if subset else {}))


def loopback_cluster_settings() -> str:
    """The settings these Ray benches share; returns the CIFAR-10 folder (CIFAR10_DIR, required)."""
    data_dir = os.environ.get("CIFAR10_DIR")
    if not data_dir:
        raise SystemExit("set CIFAR10_DIR to the CIFAR-10 folder (../shared/data/cifar-10-batches-py)")
    # Ray turns 127.0.0.1 into this machine's network address unless told this is not a cluster of machines.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["LAB_RAY_CPUS_PER_RUN"] = "1"
    os.environ["LAB_WORKER_IDLE_SECONDS"] = "0"  # every run starts cold: a new worker or dispatcher per measurement
    return str(Path(data_dir).resolve())


def _seconds_since(stamp: str) -> float:
    return time.time() - datetime.datetime.fromisoformat(stamp).timestamp()


def wait_all(store, run_ids: list[str], timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [store.get_run(run_id) for run_id in run_ids]
        if all(run.status.is_finished for run in runs):
            return runs
        time.sleep(0.5)
    raise TimeoutError(f"runs not finished after {timeout} s")


def queue_of_runs(nodes: int, runs: int, subset: int, data_dir: str) -> dict:
    """`runs` quick runs queued at once on a cluster of `nodes` one-CPU nodes: runs per hour."""
    from ray.cluster_utils import Cluster

    from lab.jobs import queue
    from lab.store.runs import Status, Store

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    os.environ["LAB_RAY_ADDRESS"] = cluster.address
    try:
        store = Store(tempfile.mkdtemp(prefix="ray-bench-"))
        started = time.perf_counter()
        run_ids = [queue.submit(quick_run(seed, subset), store=store, data_dir=data_dir) for seed in range(runs)]
        finished = wait_all(store, run_ids, timeout=runs * 600)
        seconds = time.perf_counter() - started
    finally:
        os.environ.pop("LAB_RAY_ADDRESS", None)
        cluster.shutdown()
    failed = [run.message for run in finished if run.status is not Status.COMPLETED]
    used_nodes = {run.environment["ran_on"]["node_id"] for run in finished if run.status is Status.COMPLETED}
    return {
        "setup": f"Ray, {nodes} node{'s' if nodes > 1 else ''} x 1 CPU",
        "runs": runs,
        "failed": len(failed),
        "nodes_used": len(used_nodes),
        "seconds": seconds,
        "runs_per_hour": 3600 * (runs - len(failed)) / seconds,
        "mean_train_seconds": statistics.mean(run.train_seconds for run in finished if run.status is Status.COMPLETED),
    }


def first_progress(on_ray: bool, subset: int, data_dir: str, repeats: int) -> dict:
    """Seconds from a run's queueing to its first batch event: through Ray's dispatcher, or a local worker."""
    from lab.jobs import queue
    from lab.store.runs import Store

    cluster = None
    if on_ray:
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
        os.environ["LAB_RAY_ADDRESS"] = cluster.address
    waits = []
    try:
        for repeat in range(repeats):
            store = Store(tempfile.mkdtemp(prefix="ray-bench-"))
            run_id = queue.submit(quick_run(100 + repeat, subset), store=store, data_dir=data_dir)
            deadline = time.monotonic() + 600
            while store.latest_event(run_id, "batch_end") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            waits.append(
                _seconds_since(store.get_run(run_id).created_at) - _seconds_since(store.latest_event(run_id, "batch_end")["created_at"])
            )
            wait_all(store, [run_id], 600)
    finally:
        os.environ.pop("LAB_RAY_ADDRESS", None)
        if cluster is not None:
            cluster.shutdown()
    return {"setup": "Ray, 1 node x 1 CPU" if on_ray else "local worker", "median": statistics.median(waits), "runs": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="quick runs in the queue")
    parser.add_argument("--subset", type=int, help="fewer training images per run, for a quick trial (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=2, help="runs timed from queued to first progress, per setup")
    args = parser.parse_args()
    data_dir = loopback_cluster_settings()

    rows = [queue_of_runs(nodes, args.runs, args.subset, data_dir) for nodes in (1, 2)]
    for row in rows:
        print(row)
    ratio = rows[1]["runs_per_hour"] / rows[0]["runs_per_hour"]
    starts = [first_progress(on_ray, args.subset, data_dir, args.repeats) for on_ray in (False, True)]
    for row in starts:
        print(row)
    body = (
        f"A queue of {args.runs} quick runs (the quick-demo preset{f' on {args.subset:,} images' if args.subset else ''}, seeds 0-{args.runs - 1}), "
        "queued at once through the app's queue, one CPU per run; "
        f"two nodes against one: **{ratio:.2f}x** the runs per hour.\n\n"
        + markdown_table(
            rows,
            [
                ("setup", "cluster", ""),
                ("runs", "runs", ""),
                ("failed", "failed", ""),
                ("nodes_used", "nodes used", ""),
                ("seconds", "wall seconds", ".0f"),
                ("runs_per_hour", "runs per hour", ".0f"),
                ("mean_train_seconds", "training seconds per run", ".1f"),
            ],
        )
        + "\n\nFrom queued to the first progress event of one run (median of "
        + f"{args.repeats}; a cold worker or Ray task each time, TensorFlow's start and the data loading included):\n\n"
        + markdown_table(starts, [("setup", "runs on", ""), ("median", "seconds to first progress", ".1f")])
    )
    command = "CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.ray_scaling"
    write_section("Ray cluster: one node against two", body, command, per_cpu=True)


if __name__ == "__main__":
    main()
