"""Why the Streamlit server grows a little with each new batch size it times: TensorFlow's oneDNN cache.

The Train page times one training step for every new setting (ui/model_view.show_estimate).
Even with the traced graphs released (lab/system/process_memory.py), each new batch size leaves a few
MB behind. Each side below is a fresh process timing seed-cnn's step at batch sizes 64 to 71, as a
student raising the batch size would; resident memory is read after each timing. The three sides
differ only in environment variables, read when TensorFlow loads:

- as shipped (oneDNN on, TensorFlow's default on x86);
- ONEDNN_PRIMITIVE_CACHE_CAPACITY=8: oneDNN's own cache of compiled kernels shrunk to 8 entries;
- TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's own kernels instead of oneDNN's.

    .venv/bin/python -m bench.primitive_cache
"""

from __future__ import annotations

import os

from bench.harness import markdown_table, run_contender, write_section

BATCH_SIZES = list(range(64, 72))
SIDES = {
    "as shipped": {},
    "ONEDNN_PRIMITIVE_CACHE_CAPACITY=8": {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "8"},
    "TF_ENABLE_ONEDNN_OPTS=0": {"TF_ENABLE_ONEDNN_OPTS": "0"},
}


def time_batch_sizes() -> dict:
    """Resident MB after importing TensorFlow, then after timing seed-cnn at each of BATCH_SIZES."""
    import gc
    import os

    import tensorflow  # noqa: F401 - imported first, so the first row is the import alone

    from lab.system import process_memory
    from lab.config import config_for_preset
    from lab.train.estimate import measure_step_seconds
    from lab.train.memory import process_rss_mb

    resident = {"import": process_rss_mb(os.getpid())}
    for batch_size in BATCH_SIZES:
        measure_step_seconds(config_for_preset("seed-cnn", batch_size=batch_size))
        gc.collect()
        process_memory.return_free_heap()  # as the server does at the end of every page run
        resident[str(batch_size)] = process_rss_mb(os.getpid())
    return resident


def main() -> None:
    rows = []
    for side, variables in SIDES.items():
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)  # the child process inherits them
        try:
            figures = run_contender("bench.primitive_cache", "time_batch_sizes")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        # From the second timing on: the first one also sets up what every later one reuses.
        first, last = figures[str(BATCH_SIZES[1])], figures[str(BATCH_SIZES[-1])]
        rows.append({"side": side, **figures, "growth": last - first})
        print(side, figures)
    columns = [("side", "environment", ""), ("import", "after import MB", ".0f")]
    columns += [(str(size), f"batch {size}", ".0f") for size in BATCH_SIZES]
    columns += [("growth", f"growth {BATCH_SIZES[1]}->{BATCH_SIZES[-1]} MB", "+.0f")]
    note = (
        "seed-cnn's training step timed by `lab.train.estimate.measure_step_seconds` (as the Train page does) at each batch size in "
        "turn, one fresh process per row; resident MB after each timing, after gc and malloc_trim. The growth that stays "
        "with oneDNN's own cache at 8 entries and goes away without oneDNN is TensorFlow's per-thread cache of oneDNN "
        "primitives (`MklPrimitiveFactory` in its mkl_util.h: 1,024 entries per kind of operation and thread, not settable)."
    )
    write_section(
        "TensorFlow's oneDNN primitive cache: server memory per new batch size",
        note + "\n\n" + markdown_table(rows, columns),
        "python -m bench.primitive_cache",
    )


if __name__ == "__main__":
    main()
