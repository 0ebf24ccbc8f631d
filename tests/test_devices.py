"""GPU decisions, tested with fake device lists (this machine has no GPU)."""

import json

import keras
import pytest

from lab import devices
from lab.config import RunConfig


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


def test_precision_policy_is_put_back_even_after_an_error():
    before = keras.mixed_precision.dtype_policy().name
    with pytest.raises(RuntimeError), devices.precision_policy("mixed_bfloat16"):
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("a failed build")
    assert keras.mixed_precision.dtype_policy().name == before
