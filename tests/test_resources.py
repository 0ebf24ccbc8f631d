"""The memory guard: a run that cannot fit is refused before it starts, with what to lower; the presets always fit."""

from __future__ import annotations

import math

import pytest

from lab.config import PRESETS, RunConfig, config_for_preset
from lab.system import hardware
from lab.train import memory as resources

CLOUD_MB = 2700  # Streamlit Community Cloud gives an app less than 2.7 GB


def test_vgg16_upscaled_to_224_on_the_full_set_is_refused_on_a_small_machine():
    config = config_for_preset("vgg16-finetune", input_size=224, batch_size=256, weights="none")
    with pytest.raises(ValueError) as refused:
        resources.check_fits(config, 50_000, available_mb=CLOUD_MB)
    message = str(refused.value)
    assert message.startswith("this run needs about ") and "GB of memory but the machine has 2.6 GB free" in message
    for setting in ("input_size (224)", "batch_size (256)", "subset (all)"):
        assert setting in message
    assert resources.estimate_run_memory_mb(config) > 10 * 1024  # not a near miss: over 10 GB
    # The frozen variant computes features 256 images at a time: still far too much at 224 pixels.
    with pytest.raises(ValueError, match="needs about"):
        resources.check_fits(config_for_preset("vgg16-frozen", input_size=224, batch_size=256, weights="none"), available_mb=CLOUD_MB)


# fast-cnn-full peaks at 2,202 MB (docs/BENCHMARKS.md), and the app beside it takes ~0.8 GB: more than Community Cloud has.
BIGGER_THAN_THE_CLOUD = ("fast-cnn-full",)


@pytest.mark.parametrize("name", [name for name in PRESETS if name not in BIGGER_THAN_THE_CLOUD])
def test_every_other_preset_fits_in_a_small_cloud_machine(name):
    config = config_for_preset(name, weights="none") if PRESETS[name]["fields"].get("weights") else config_for_preset(name)
    resources.check_fits(config, 50_000, available_mb=CLOUD_MB)  # no error
    assert resources.estimate_run_memory_mb(config) < CLOUD_MB


def test_the_full_width_recipe_is_refused_on_a_small_cloud_machine_and_told_what_to_lower():
    with pytest.raises(ValueError, match="needs about") as refusal:
        resources.check_fits(config_for_preset("fast-cnn-full"), 50_000, available_mb=CLOUD_MB)
    assert "batch_size (1024)" in str(refusal.value)
    resources.check_fits(config_for_preset("fast-cnn-full"), 50_000, available_mb=4096)  # a 4 GB laptop: no error


def test_the_defaults_fit_and_need_at_least_tensorflow_and_the_data():
    for config in (RunConfig(), config_for_preset("seed-cnn"), config_for_preset("quick-demo")):
        resources.check_fits(config, available_mb=CLOUD_MB)
        needed = resources.estimate_run_memory_mb(config)
        assert resources.TF_BASELINE_MB + 60_000 * 3072 / 2**20 < needed < 1600
    # The measured peak of seed-cnn on the full set (docs/DECISIONS.md, "The memory estimate"), within 15%.
    assert resources.estimate_run_memory_mb(RunConfig()) == pytest.approx(1300, rel=0.15)


def test_the_estimate_grows_with_batch_input_size_and_data():
    base = RunConfig(subset=10_000)
    size = resources.estimate_run_memory_mb
    assert size(base) < size(RunConfig(subset=10_000, batch_size=512)) < size(RunConfig(subset=10_000, batch_size=512, input_size=96))
    assert size(RunConfig(subset=1_000)) < size(base) < size(RunConfig())
    # Attention grows with the square of the number of patches: a ViT at 224 pixels is enormous.
    assert size(RunConfig(model="custom", backbone="vit-tiny", input_size=224)) > 20 * size(RunConfig(model="custom", backbone="vit-tiny"))


def test_on_a_gpu_activations_do_not_count_against_the_host_memory():
    config = config_for_preset("vgg16-finetune", input_size=224, batch_size=256, weights="none")
    resources.check_fits(config, available_mb=CLOUD_MB, on_gpu=True)  # the GPU reports its own out-of-memory errors
    assert "activations" not in resources.estimate_parts_mb(config, on_gpu=True)


def test_unknown_free_memory_refuses_nothing(monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_mb", lambda *args, **kwargs: None)
    resources.check_fits(config_for_preset("vgg16-finetune", input_size=224, batch_size=256, weights="none"))


def test_the_budget_adds_what_the_running_processes_hold(monkeypatch):
    import os

    monkeypatch.setattr(hardware, "available_memory_mb", lambda *args, **kwargs: 1000.0)
    own = hardware.process_rss_mb(os.getpid())
    assert own > 10
    assert hardware.memory_budget_mb() == pytest.approx(1000 + own, abs=50)  # RSS moves a little between reads
    assert hardware.memory_budget_mb([]) == 1000.0
    assert hardware.process_rss_mb(2**22 + 12345) == 0.0  # no such process


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_free_memory_is_the_smaller_of_the_machine_and_the_container(tmp_path):
    machine = 8_000_000 * 1024  # what the machine itself has free, in bytes
    cgroup = tmp_path / "cgroup"
    # No container limit: the machine's MemAvailable.
    _write(cgroup / "memory.max", "max\n")
    _write(cgroup / "memory.current", str(500 * 2**20))
    assert hardware.available_memory_mb(cgroup, machine_bytes=machine) == pytest.approx(8_000_000 / 1024)
    # A 2.7 GB container using 1 GB, 100 MB of it droppable file cache: 1.8 GB left.
    _write(cgroup / "memory.max", str(int(2.7 * 2**30)))
    _write(cgroup / "memory.current", str(2**30))
    _write(cgroup / "memory.stat", "anon 900000000\ninactive_file 104857600\nactive_file 1\n")
    assert hardware.available_memory_mb(cgroup, machine_bytes=machine) == pytest.approx(2.7 * 1024 - 1024 + 100)
    # cgroup v1 spells "no limit" as a huge number.
    v1 = tmp_path / "v1"
    _write(v1 / "memory" / "memory.limit_in_bytes", str(2**63 - 4096))
    _write(v1 / "memory" / "memory.usage_in_bytes", "1")
    assert hardware.available_memory_mb(v1, machine_bytes=machine) == pytest.approx(8_000_000 / 1024)
    _write(v1 / "memory" / "memory.limit_in_bytes", str(2**31))
    _write(v1 / "memory" / "memory.stat", "total_inactive_file 0\n")
    assert hardware.available_memory_mb(v1, machine_bytes=machine) == pytest.approx(2048 - 1 / 2**20)


def test_without_proc_or_cgroups_free_memory_still_comes_from_the_system(tmp_path, monkeypatch):
    """macOS and Windows have neither /proc nor cgroups: the machine's own figure (psutil) still lets check_fits refuse."""
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 3 * 2**30})())
    assert hardware.available_memory_mb(tmp_path / "no-cgroup") == pytest.approx(3 * 1024)
    with pytest.raises(ValueError, match="needs about"):
        resources.check_fits(config_for_preset("vgg16-finetune", input_size=224, batch_size=256, weights="none"))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: (_ for _ in ()).throw(RuntimeError("not supported here")))
    assert hardware.available_memory_mb(tmp_path / "no-cgroup") is None  # nothing known: check_fits refuses nothing


def test_this_machine_reports_its_free_memory():
    free = hardware.available_memory_mb()
    assert free is not None and 100 < free < 10**7


def test_the_feature_cache_rule_matches_lab_feature_cache():
    from lab.train.feature_cache import cache_decision

    configs = [
        config_for_preset("vgg16-frozen", weights="none"),
        config_for_preset("vgg16-frozen", weights="none", augment=True),
        config_for_preset("vgg16-frozen", weights="none", tta=True),
        config_for_preset("vgg16-frozen", weights="none", task="binary", fine_labels=True),
        config_for_preset("vgg16-finetune", weights="none"),
        RunConfig(),
    ]
    assert [resources.uses_feature_cache(config) for config in configs] == [cache_decision(config)[0] for config in configs]


@pytest.mark.parametrize("backbone", ["seed-cnn", "fast-cnn", "vit-tiny"])
def test_the_backbone_table_matches_the_real_models(backbone):
    from lab.models.registry import build_backbone, build_model, count_params

    facts = resources.BACKBONES[backbone]
    config = RunConfig(model="custom", backbone=backbone)
    assert count_params(build_model(config, 10))["total_params"] == facts.params
    outputs = [math.prod(dim for dim in layer.output.shape[1:] if dim) for layer in build_backbone(backbone, 32).layers]
    assert sum(outputs) / 32**2 == pytest.approx(facts.floats_per_pixel, rel=0.02)
    assert max(outputs) / 32**2 == pytest.approx(facts.largest_per_pixel, rel=0.02)


def test_preflight_refuses_a_run_that_cannot_fit(monkeypatch):
    from lab.train import run as training

    monkeypatch.setattr(hardware, "available_memory_mb", lambda *args, **kwargs: 500.0)
    monkeypatch.setattr(hardware, "process_rss_mb", lambda pid: 0.0)
    with pytest.raises(ValueError, match=r"needs about 1\.\d GB of memory but the machine has 0\.5 GB free"):
        training.preflight(config_for_preset("quick-demo"))
    monkeypatch.setattr(hardware, "available_memory_mb", lambda *args, **kwargs: float(CLOUD_MB))
    training.preflight(config_for_preset("quick-demo"))  # fits: no error


def test_a_wider_fast_cnn_is_estimated_from_the_measured_one_and_matches_the_real_model():
    from lab.models.registry import build_backbone, build_model, count_params

    config = RunConfig(model="custom", backbone="fast-cnn", width=1.0)
    facts = resources.backbone_memory(config)
    assert count_params(build_model(config, 10))["total_params"] == pytest.approx(facts.params, rel=0.02)
    outputs = [math.prod(dim for dim in layer.output.shape[1:] if dim) for layer in build_backbone("fast-cnn", 32, width=1.0).layers]
    # The whitening layer's outputs do not grow with the width, so scaling errs on the safe side.
    assert sum(outputs) / 32**2 <= facts.floats_per_pixel <= 1.2 * sum(outputs) / 32**2
    half = RunConfig(model="custom", backbone="fast-cnn")
    assert resources.estimate_run_memory_mb(half) < resources.estimate_run_memory_mb(config)
