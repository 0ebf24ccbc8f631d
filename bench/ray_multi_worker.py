"""One run on two machines at once: is it faster than on one, and does it learn as well?

    CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.ray_multi_worker

Side by side, on a Ray cluster of two one-CPU nodes on this machine (loopback), through the
app's real queue: the same quick run (the quick-demo preset) trained by one Ray worker
(LAB_RAY_WORKERS_PER_RUN=1, one node) and by two workers at once (=2: Ray Train, one worker per
node, MultiWorkerMirroredStrategy), per seed: its training seconds, the wall seconds from queued
to completed (the workers' start included), and its test accuracy. Writes its section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.harness import markdown_table, write_section
from bench.ray_scaling import NODE, loopback_cluster_settings, quick_run, wait_all


def one_run(workers: int, seed: int, subset: int | None, data_dir: str, address: str) -> dict:
    from lab.jobs import queue
    from lab.store.runs import Status, Store

    os.environ["LAB_RAY_WORKERS_PER_RUN"] = str(workers)
    store = Store(tempfile.mkdtemp(prefix="ray-workers-bench-"))
    started = time.perf_counter()
    run_id = queue.submit(quick_run(seed, subset), store=store, data_dir=data_dir)
    (run,) = wait_all(store, [run_id], timeout=1800)
    wall = time.perf_counter() - started
    if run.status is not Status.COMPLETED:
        raise RuntimeError(f"{workers} worker(s), seed {seed}: {run.status}: {run.message}")
    ran_on = run.environment["ran_on"]
    return {
        "setup": f"{workers} worker{'s' if workers > 1 else ''}",
        "seed": seed,
        "nodes": len({worker["node_id"] for worker in ran_on.get("workers", [ran_on])}),
        "train_seconds": run.train_seconds,
        "wall_seconds": wall,
        "accuracy": run.metrics["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="runs per setup (seeds 0, 1, ...)")
    parser.add_argument("--subset", type=int, help="fewer training images per run, for a quick trial (default: the preset's)")
    args = parser.parse_args()
    data_dir = loopback_cluster_settings()

    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    os.environ["LAB_RAY_ADDRESS"] = cluster.address
    try:
        rows = [one_run(workers, seed, args.subset, data_dir, cluster.address) for seed in range(args.seeds) for workers in (1, 2)]
    finally:
        os.environ.pop("LAB_RAY_ADDRESS", None)
        cluster.shutdown()
    for row in rows:
        print(row)

    def mean(workers: int, key: str) -> float:
        return statistics.mean(row[key] for row in rows if row["setup"].startswith(f"{workers} "))

    speedup = mean(1, "train_seconds") / mean(2, "train_seconds")
    body = (
        f"The quick run (the quick-demo preset{f' on {args.subset:,} images' if args.subset else ''}, seeds 0-{args.seeds - 1}) "
        "on a Ray cluster of two one-CPU nodes, through the app's queue: one worker on one node against two workers "
        f"training it together, one per node. Two workers train it in **{1 / speedup:.2f}x** the time of one "
        f"(mean accuracy {mean(1, 'accuracy'):.1%} against {mean(2, 'accuracy'):.1%}).\n\n"
        + markdown_table(
            rows,
            [
                ("setup", "trained by", ""),
                ("seed", "seed", ""),
                ("nodes", "nodes", ""),
                ("train_seconds", "training seconds", ".1f"),
                ("wall_seconds", "queued to stored, seconds", ".1f"),
                ("accuracy", "test accuracy", ".4f"),
            ],
        )
    )
    command = "CIFAR10_DIR=../shared/data/cifar-10-batches-py .venv/bin/python -m bench.ray_multi_worker"
    write_section("Ray cluster: one run on one node or on two at once", body, command, per_cpu=True)


if __name__ == "__main__":
    main()
