"""Every bad setting is refused by `python -m lab train` before training, naming the setting and its valid range.

The command runs in this process (`lab.cli.main.main`, exactly what `python -m lab` calls), so
TensorFlow loads once for the whole table. CIFAR10_DIR names an empty folder: a setting
that slipped through would fail on the missing data instead, and the test would say so.
The page-side twins of these checks are in tests/test_app_reliability.py.
"""

from __future__ import annotations

import pytest

from lab.cli import main as cli
from lab.store.runs import Store
from lab.system import hardware

REFUSED = [
    # (arguments after "train", text the error must contain: the setting, then its valid range)
    (["--epochs", "-1"], "epochs must be a whole number from 1 to 1000; got -1"),
    (["--epochs", "0"], "epochs must be a whole number from 1 to 1000"),
    (["--epochs", "5000"], "epochs must be a whole number from 1 to 1000"),
    (["--batch-size", "0"], "batch_size must be from 1 to 4096 images"),
    (["--subset", "200", "--batch-size", "512"], "batch_size (512) is larger than the 180 training images the subset leaves"),
    (["--subset", "5"], "subset must be at least 100 images"),
    (["--task", "pair:cat,unicorn"], "pair task names two different CIFAR-10 classes"),
    (["--task", "pair:cat,cat"], "Known classes: airplane, automobile, bird"),
    (["--task", "mnist"], "task 'mnist' is unknown: use 'cifar10', 'binary'"),
    (["--freeze-depth", "-3"], "freeze_depth must be a whole number >= 0"),
    (
        ["--model", "vgg16-frozen", "--weights", "none", "--freeze-depth", "99"],
        "freeze_depth must be from 0 to 19 (the vgg16 backbone's layer count)",
    ),
    (
        ["--model", "custom", "--backbone", "fast-cnn", "--freeze-depth", "500"],
        "freeze_depth must be from 0 to 24 (the fast-cnn backbone's layer count)",
    ),
    (["--input-size", "33"], "input_size must be one of (32, 64, 96, 128, 160, 224) pixels; got 33"),
    (["--input-size", "16"], "input_size must be one of (32, 64, 96, 128, 160, 224)"),
    (["--model", "custom", "--backbone", "vit-tiny", "--input-size", "30"], "input_size must be one of (32, 64, 96, 128, 160, 224)"),
    (["--learning-rate", "0"], "learning_rate must be > 0 and <= 10"),
    (["--learning-rate", "100"], "learning_rate must be > 0 and <= 10"),
    (["--val-fraction", "0.9"], "val_fraction must be between 0 and 0.5"),
    (["--label-smoothing", "0.7"], "label_smoothing must be in [0, 0.5)"),
    (["--seed", "-1"], "seed must be a whole number >= 0"),
    (["--model", "alexnet"], "model 'alexnet' is unknown; choose a preset: seed-cnn, vgg16-frozen"),
    (["--weights", "imagenet"], "weights 'imagenet' only apply to pretrained backbones"),
    (["--model", "vgg16-frozen", "--weights", "model.txt"], "weights must be 'imagenet', 'none' or a path to a .h5"),
    (["--model", "vgg16-frozen", "--weights", "/no/such/file.h5"], "the weights file /no/such/file.h5 does not exist"),
    (["--model", "vgg16-finetune", "--weights", "none", "--input-size", "224", "--batch-size", "256"], "this run needs about"),
]
PARSER_REFUSED = [
    (["--epochs", "three"], "argument --epochs: invalid int value: 'three'"),
    (["--freeze-depth", "lots"], "freeze depth must be 'all' or a whole number, not 'lots'"),
    (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop' (choose from 'adam', 'adamw', 'sgd', 'muon')"),
    (["--backbone", "alexnet"], "argument --backbone: invalid choice: 'alexnet'"),
]


@pytest.fixture(autouse=True)
def _no_data_and_a_small_machine(tmp_path, monkeypatch):
    (tmp_path / "no_cifar").mkdir()
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "no_cifar"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no cached ImageNet weights either
    monkeypatch.setattr(hardware, "available_memory_mb", lambda *args, **kwargs: 2700.0)  # a 2.7 GB cloud machine
    monkeypatch.setattr(hardware, "process_rss_mb", lambda pid: 0.0)


@pytest.mark.parametrize(("arguments", "expected"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_cli_refuses_a_bad_setting_before_training(capsys, arguments, expected):
    assert cli.main(["train", *arguments]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert "training on" not in captured.err  # refused before any training started
    assert Store().list_runs() == []  # and before anything was stored


@pytest.mark.parametrize(("arguments", "expected"), PARSER_REFUSED, ids=[" ".join(a) for a, _ in PARSER_REFUSED])
def test_cli_refuses_a_malformed_option_with_its_usage(capsys, arguments, expected):
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", *arguments])
    assert exited.value.code == 2
    captured = capsys.readouterr().err
    assert captured.startswith("usage: python -m lab train") and expected in captured
    assert "Traceback" not in captured


# ---------------------------------------------------------------- commands without data or runs say what is missing

MISSING = [
    (["runs"], 0, "no runs yet: train one with `python -m lab train --model quick-demo`"),
    (["evaluate", "20250101-000000-seed-cnn-0000"], 2, "no stored run is called '20250101-000000-seed-cnn-0000'"),
    (["export", "20250101-000000-seed-cnn-0000", "out.zip"], 2, "no run with id '20250101-000000-seed-cnn-0000' in the store"),
    (["default-model", "--from-run", "20250101-000000-seed-cnn-0000"], 2, "no completed run is called '20250101-000000-seed-cnn-0000'"),
    (["train", "--model", "quick-demo"], 2, "lacks data_batch_1"),  # the empty CIFAR10_DIR
    (["study", "--epochs", "1", "--weights", "none"], 2, "Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
]


@pytest.mark.parametrize(("arguments", "status", "expected"), MISSING, ids=[a[0] for a, _, _ in MISSING])
def test_commands_say_what_is_missing(capsys, arguments, status, expected):
    assert cli.main(arguments) == status
    captured = capsys.readouterr()
    assert expected in captured.out + captured.err
    assert "Traceback" not in captured.err
