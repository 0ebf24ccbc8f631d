"""Hardware decisions: GPU ones tested with fake device lists (this machine has no GPU), CPU ones with fake CPU flags."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from lab.config import RunConfig
from lab.train import devices, multi_worker

ROOT = Path(__file__).resolve().parents[1]


def test_mixed_precision_only_on_a_gpu():
    assert devices.choose_precision(RunConfig(), gpus=[], cpu_bfloat16=False) == "float32"
    assert devices.choose_precision(RunConfig(), gpus=["NVIDIA H200"]) == "mixed_float16"


@pytest.mark.parametrize("backbone", ["fast-cnn", "seed-cnn"])
def test_bfloat16_for_our_own_networks_only_on_a_cpu_that_has_it(backbone):
    config = RunConfig(model="custom", backbone=backbone)
    assert devices.choose_precision(config, gpus=[], cpu_bfloat16=True) == "mixed_bfloat16"
    assert devices.choose_precision(config, gpus=[], cpu_bfloat16=False) == "float32"
    assert devices.choose_precision(config, gpus=["NVIDIA H200"], cpu_bfloat16=True) == "mixed_float16"


def test_imagenet_backbones_stay_in_float32_on_any_cpu():
    config = RunConfig(model="custom", backbone="vgg16", weights="none", freeze_depth=None)
    assert devices.choose_precision(config, gpus=[], cpu_bfloat16=True) == "float32"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True), ("fpu amx_bf16 amx_tile", True), ("fpu sse avx2 avx512f", False)],
)
def test_bfloat16_support_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert devices.cpu_has_bfloat16(str(cpuinfo)) is expected


def test_no_cpuinfo_means_no_bfloat16(tmp_path):
    assert devices.cpu_has_bfloat16(str(tmp_path / "missing")) is False


def test_an_explicit_precision_wins():
    assert devices.choose_precision(RunConfig(precision="float32"), gpus=["NVIDIA H200"]) == "float32"


def test_xla_only_on_a_gpu():
    assert devices.use_xla([]) is False
    assert devices.use_xla(["GPU 0"]) is True


@pytest.mark.parametrize(
    ("gpus", "workers", "expected"),
    [([], 1, "default"), (["a"], 1, "default"), (["a", "b"], 1, "mirrored"), (["a"], 2, "multi_worker"), ([], 3, "multi_worker")],
)
def test_strategy_choice(gpus, workers, expected):
    assert devices.choose_strategy_name(gpus, workers) == expected


def test_cluster_size_from_tf_config():
    tf_config = {"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"]}, "task": {"type": "chief", "index": 0}}
    assert devices.cluster_workers(json.dumps(tf_config)) == 3
    assert devices.cluster_workers("") == 1
    with pytest.raises(ValueError, match="TF_CONFIG"):
        devices.cluster_workers("{not json")


def test_this_machine_reports_its_environment():
    environment = devices.describe_environment()
    assert environment["device"] == ("CPU" if not environment["gpus"] else ", ".join(environment["gpus"]))
    assert environment["keras"].startswith("3.")
    assert environment["cpu_bfloat16"] is devices.cpu_has_bfloat16()
    assert environment["onednn"] == os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")


def test_precision_policy_is_put_back_even_after_an_error():
    before = keras.mixed_precision.dtype_policy().name
    with pytest.raises(RuntimeError), devices.precision_policy("mixed_bfloat16"):
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("a failed build")
    assert keras.mixed_precision.dtype_policy().name == before


def _python_in_a_fresh_process(code: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    """Run `code` in a new Python, with this environment changed as given (None removes a variable)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN is switched on only on x86")
def test_importing_lab_switches_on_tensorflows_onednn_kernels_unless_the_user_chose():
    # TensorFlow says at start-up whether its oneDNN kernels are on: the setting must be in place
    # before `import tensorflow`, which lab/__init__.py guarantees for anything that imports lab first.
    default = _python_in_a_fresh_process(
        "import lab, os, tensorflow; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])", TF_ENABLE_ONEDNN_OPTS=None
    )
    assert default.returncode == 0, default.stderr[-2000:]
    assert default.stdout.split()[-1] == "1"
    assert "oneDNN custom operations are on" in default.stderr
    chosen = _python_in_a_fresh_process("import lab, os; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])", TF_ENABLE_ONEDNN_OPTS="0")
    assert chosen.stdout.split()[-1] == "0"


def test_workers_of_a_multi_worker_run_wait_patiently_for_each_other():
    """A worker slowed by a busy machine must not be declared dead after TensorFlow's short default heartbeat."""
    tf_config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    code = (
        "from lab.train import devices, multi_worker; from tensorflow.python.eager import context\n"
        "print(multi_worker.patient_coordination(devices.tf_config_cluster()))\n"
        "config = context.context().coordination_service\n"
        "print(config.service_type, config.service_leader, config.heartbeat_timeout_in_ms,"
        " [(job.name, job.num_tasks) for job in config.coordinated_job_list])\n"
    )
    done = _python_in_a_fresh_process(code, TF_CONFIG=json.dumps(tf_config))
    assert done.returncode == 0, done.stderr[-2000:]
    configured, settings = done.stdout.strip().splitlines()[-2:]
    timeout_ms = multi_worker.HEARTBEAT_TIMEOUT_SECONDS * 1000
    assert configured == "True"
    assert settings == f"standalone /job:worker/replica:0/task:0 {timeout_ms} [('worker', 2)]"
    assert (
        multi_worker.patient_coordination(devices.tf_config_cluster(json.dumps({"cluster": {}}))) is False
    )  # one machine: nothing to coordinate
