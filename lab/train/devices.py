"""Which hardware a run uses, and the speed-ups that only make sense on a GPU.

Each decision is a small pure function of the device list (and the config), so
tests can hand in a fake list of GPUs and check the decision without a GPU:

- mixed precision (float16 maths, float32 weights) on a GPU; bfloat16 maths for fast-cnn on a
  CPU that has native bfloat16 instructions; float32 everywhere else;
- XLA compilation only on a GPU: on a CPU its compile time rarely pays back in a short run;
- `MirroredStrategy` over all local GPUs when there is more than one;
- `MultiWorkerMirroredStrategy` when `TF_CONFIG` describes a cluster of machines.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lab.config import RunConfig
from lab.system.hardware import cpu_name_and_flags


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow can see (an empty list on a CPU-only machine)."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


@functools.cache  # the CPU does not change while the process runs; the Train page asks on every rerun
def cpu_has_bfloat16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 numbers natively (AVX512-BF16 or AMX, e.g. AMD Zen 4, Intel Sapphire Rapids).

    Linux lists the CPU's instruction sets as "flags" in /proc/cpuinfo; elsewhere we cannot
    tell cheaply, and answer False (bfloat16 emulated in software would be slower, not faster).
    Read once per process and path.
    """
    _, flags = cpu_name_and_flags(cpuinfo_path)
    return bool(flags & {"avx512_bf16", "amx_bf16"})


# The networks measured faster, at the same accuracy, in bfloat16 on a CPU that has it.
BFLOAT16_BACKBONES = ("seed-cnn", "fast-cnn")


def choose_precision(config: RunConfig, gpus: Sequence[str], cpu_bfloat16: bool | None = None) -> str:
    """The Keras dtype policy for a run when precision is "auto".

    - on a GPU: mixed_float16 (float16 maths on tensor cores, float32 weights);
    - the project's own from-scratch networks (BFLOAT16_BACKBONES) on a CPU with native
      bfloat16: mixed_bfloat16, which runs their convolutions faster at the same accuracy
      (docs/DECISIONS.md, "seed-cnn in mixed bfloat16"); bfloat16 keeps float32's range, so it
      needs no loss scaling;
    - otherwise float32: the ImageNet backbones were not measured in bfloat16 on a CPU.
    """
    if config.precision != "auto":
        return config.precision
    if gpus:
        return "mixed_float16"
    if cpu_bfloat16 is None:
        cpu_bfloat16 = cpu_has_bfloat16()
    return "mixed_bfloat16" if cpu_bfloat16 and config.backbone in BFLOAT16_BACKBONES else "float32"


def precision_for(config: RunConfig) -> str:
    """The dtype policy a run of `config` uses on this machine: choose_precision with its GPUs."""
    return choose_precision(config, gpu_names())


def use_xla(gpus: Sequence[str]) -> bool:
    """Compile the training step with XLA only on a GPU, where fused kernels pay off."""
    return bool(gpus)


def tf_config_cluster(tf_config: str | None = None) -> dict[str, list[str]]:
    """The machines TF_CONFIG names, by job (`{"chief": [...], "worker": [...]}`); empty when it is unset."""
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw:
        return {}
    try:
        return json.loads(raw).get("cluster") or {}
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); unset it to train on one machine.") from error


def cluster_workers(tf_config: str | None = None) -> int:
    """How many machines TF_CONFIG describes (1 when it is unset or names no cluster)."""
    cluster = tf_config_cluster(tf_config)
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def choose_strategy_name(gpus: Sequence[str], workers: int) -> str:
    """Which tf.distribute strategy fits the hardware: "multi_worker", "mirrored" or "default"."""
    if workers > 1:
        return "multi_worker"
    if len(gpus) > 1:
        return "mirrored"
    return "default"


_multi_worker: tf.distribute.Strategy | None = None


def start_multi_worker() -> tf.distribute.Strategy:
    """The process's MultiWorkerMirroredStrategy, made once, from TF_CONFIG.

    TensorFlow configures its collective operations (the all-reduce that sums the workers'
    gradients) when this strategy is made, and only before its runtime has started: call this
    first thing in a worker process, before anything else touches TensorFlow.
    """
    global _multi_worker
    if _multi_worker is None:
        from lab.train import multi_worker

        multi_worker.enable()  # Keras' fit needs two fixes to run under this strategy
        multi_worker.patient_coordination(tf_config_cluster())  # a worker slowed by a busy machine is not a dead one
        try:
            _multi_worker = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as error:
            raise RuntimeError(
                f"this process could not join the multi-worker run ({error}); "
                "a worker must make its strategy (lab.train.devices.start_multi_worker) before any other TensorFlow call"
            ) from error
    return _multi_worker


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Build the strategy `choose_strategy_name` picked."""
    if name == "multi_worker":
        return start_multi_worker()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def precision_policy(policy: str) -> Iterator[None]:
    """Build models under the Keras dtype policy `policy`, then put the previous one back.

    The policy is global: a model takes it when its layers are built and keeps it afterwards.
    Restoring it (even after an error) keeps one run's mixed precision out of the next model
    this process builds, such as a float32 copy to save or another student's run.
    """
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def describe_environment(precision: str = "float32", strategy: str = "default", xla: bool = False) -> dict[str, Any]:
    """Versions and hardware, stored with every run so any result can be explained later."""
    gpus = gpu_names()
    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        # A CPU's speed depends most on these two: bfloat16 instructions, and whether TensorFlow runs its
        # oneDNN kernels (lab/__init__.py; "default" = TensorFlow chose by itself, from the CPU's features).
        "cpu_bfloat16": cpu_has_bfloat16(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "device": ", ".join(gpus) if gpus else "CPU",
        "gpus": gpus,
        "precision": precision,
        "strategy": strategy,
        "xla": xla,
        "ran_on": where_this_runs(),
    }


def where_this_runs() -> dict[str, Any]:
    """The machine a run trains on: a Ray node (set by lab/jobs/ray/node.py in LAB_RAN_ON), or this one."""
    try:
        return json.loads(os.environ["LAB_RAN_ON"])
    except (KeyError, ValueError):
        return {"kind": "local", "host": platform.node()}
