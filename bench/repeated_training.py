"""Memory of a process that trains again and again: before and after lab/system/process_memory.py.

Two processes in this app train many times: the Streamlit server (the Train page
times one training step for each new setting, and runs the learning-rate finder)
and the job worker (it trains queued runs one after another). TensorFlow keeps
every traced training step's graph, and with it the model's weights and optimizer
state, unless `process_memory.releasing_traced_graphs` lets go of it (TensorFlow issue
#97697). Each side runs in its own fresh process; "before" is the same code with
the release switched off. Resident memory is read after each repetition, once the
worker's own clean-up between runs has been done.

    .venv/bin/python -m bench.repeated_training
"""

from __future__ import annotations

import contextlib
import os

from bench.harness import markdown_table, run_contender, write_section

REPEATS = 4
BACKBONE = "vgg16"  # the largest of the lab report's networks: 15 M parameters at 32x32


def train_repeatedly(scenario: str, release: bool) -> dict:
    """Resident MB after each of REPEATS trainings of `scenario`, with the release on or off."""
    import numpy as np

    from lab.jobs import worker as jobs

    from lab.system import process_memory
    from lab.config import RunConfig
    from lab.data.cifar10 import Cifar10
    from lab.train.estimate import measure_step_seconds
    from lab.train.memory import process_rss_mb
    from lab.train.run import run

    if not release:  # the code as it was: nothing unregistered
        process_memory.releasing_traced_graphs = contextlib.nullcontext
    rng = np.random.default_rng(0)
    data = Cifar10(
        rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8),
        np.arange(1000) % 10,
        rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8),
        np.arange(200) % 10,
        source="random pixels",
    )
    network = {"model": "custom", "backbone": BACKBONE, "weights": "none", "freeze_depth": 0}
    rss = []
    for repeat in range(REPEATS):
        if scenario == "step timing":  # the Train page, a new setting each time (as a student tries dropouts)
            measure_step_seconds(RunConfig(**network, dropout=0.1 * repeat, batch_size=32), steps=1)
        else:  # the job worker: whole runs, one after another
            run(RunConfig(**network, epochs=1, batch_size=32, seed=repeat), data=data)
        jobs.free_memory()  # what the worker does between runs: clear Keras' session, collect garbage
        rss.append(process_rss_mb(os.getpid()))
    return {"rss": rss}


def main() -> None:
    rows = []
    for scenario, where in (("step timing", "Streamlit server: Train page step timing"), ("whole runs", "job worker: queued runs")):
        for release in (False, True):
            rss = run_contender("bench.repeated_training", "train_repeatedly", scenario=scenario, release=release)["rss"]
            rows.append(
                {
                    "where": where,
                    "code": "now (graphs released)" if release else "before",
                    **{f"rss{i}": value for i, value in enumerate(rss)},
                    "growth": (rss[-1] - rss[0]) / (len(rss) - 1),
                }
            )
            print(rows[-1], flush=True)
    columns = [("where", "process", ""), ("code", "code", "")]
    columns += [(f"rss{i}", f"after {i + 1}: MB", ".0f") for i in range(REPEATS)]
    columns += [("growth", "growth per repeat MB", ".0f")]
    table = markdown_table(rows, columns)
    print(table)
    note = (
        f"{BACKBONE} with random weights at 32x32, every layer learning, batch 32; whole runs: 1 epoch on 1,000 random images "
        "(200 to test). Resident memory after each repetition, after the worker's clean-up (`keras.backend.clear_session`, "
        "garbage collection). Before: each training left its traced graph, weights and optimizer slots in the process."
    )
    write_section("Repeated training in one process: memory kept between runs", note + "\n\n" + table, "python -m bench.repeated_training")


if __name__ == "__main__":
    main()
