"""`python -m lab ...` end to end, in a subprocess, as a user would type it."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lab.config import REPORT_BINARY_TASK
from lab.data.cifar10 import write_cifar10_folder
from tests.synthetic import learnable_cifar10

ROOT = Path(__file__).resolve().parent.parent
REPORT_COUNTS = {
    ("seed-cnn", "cifar10"): (356_810, 356_810),
    ("seed-cnn", "binary"): (355_649, 355_649),
    ("vgg16-frozen", "cifar10"): (14_719_818, 5_130),
    ("resnet50-frozen", "cifar10"): (23_608_202, 20_490),
    ("mobilenetv2-frozen", "cifar10"): (2_270_794, 12_810),
    ("vgg16-finetune", "cifar10"): (14_848_586, 13_113_098),
}


def lab(*args: str, lab_home: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_HOME": str(lab_home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("CIFAR10_DIR", None)
    completed = subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    data = learnable_cifar10(n_train=300, n_test=100)
    return write_cifar10_folder(
        tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", data.x_train, data.y_train, data.x_test, data.y_test
    )


@pytest.mark.slow
def test_models_json_lists_every_preset_with_the_reports_counts(tmp_path):
    rows = json.loads(lab("models", "--json", lab_home=tmp_path).stdout)
    counts = {(row["name"], row["task"]): (row["total_params"], row["trainable_params"]) for row in rows}
    for key, expected in REPORT_COUNTS.items():
        assert counts[key] == expected, key
    assert all(row["non_trainable_params"] == row["total_params"] - row["trainable_params"] for row in rows)


@pytest.mark.slow
def test_train_evaluate_runs_export(tmp_path, data_dir):
    trained = json.loads(
        lab(
            "train",
            "--model",
            "seed-cnn",
            "--task",
            "cifar10",
            "--epochs",
            "1",
            "--subset",
            "300",
            "--data-dir",
            str(data_dir),
            "--json",
            lab_home=tmp_path,
        ).stdout
    )
    for key in (
        "run_id",
        "model",
        "task",
        "epochs",
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "total_params",
        "trainable_params",
        "train_seconds",
        "n_test",
    ):
        assert key in trained, key
    assert (trained["model"], trained["task"], trained["epochs"], trained["n_test"]) == ("seed-cnn", "cifar10", 1, 100)

    evaluated = json.loads(lab("evaluate", trained["run_id"], "--data-dir", str(data_dir), "--json", lab_home=tmp_path).stdout)
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    assert evaluated["f1_macro"] == pytest.approx(trained["f1_macro"])

    runs = json.loads(lab("runs", "--json", lab_home=tmp_path).stdout)
    assert [run["run_id"] for run in runs] == [trained["run_id"]]
    assert runs[0]["owner_id"] == "local" and runs[0]["owner"]  # the local user, by name

    # The same settings on the same data are not trained twice: the stored result comes back at once.
    arguments = ["train", "--model", "seed-cnn", "--epochs", "1", "--subset", "300", "--data-dir", str(data_dir), "--json"]
    again = lab(*arguments, lab_home=tmp_path)
    assert json.loads(again.stdout)["run_id"] == trained["run_id"] and json.loads(again.stdout)["already_trained"] is True
    assert "already trained by" in again.stderr and "--force" in again.stderr
    assert len(json.loads(lab("runs", "--json", lab_home=tmp_path).stdout)) == 1
    forced = json.loads(lab(*arguments, "--force", lab_home=tmp_path).stdout)
    assert forced["run_id"] != trained["run_id"] and forced["status"] == "completed"

    archive = tmp_path / "run.zip"
    lab("export", trained["run_id"], str(archive), lab_home=tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert any(name.endswith("model.keras") for name in names) and any(name.endswith("config.json") for name in names)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--epochs", "-1"], "epochs"),
        (["train", "--task", "pair:cat,unicorn"], "pair"),
        # These three get far enough to start TensorFlow in the child process: the slow tier.
        pytest.param(["train", "--model", "vgg16-frozen", "--freeze-depth", "99"], "freeze_depth", marks=pytest.mark.slow),
        pytest.param(["evaluate", "no-such-run"], "no-such-run", marks=pytest.mark.slow),
        pytest.param(["train", "--data-dir", "/nowhere/cifar"], "cifar-10-python.tar.gz", marks=pytest.mark.slow),
        (["train", "--width", "1.0"], "width"),  # seed-cnn has one shape
    ],
)
def test_errors_are_one_readable_line(tmp_path, args, words):
    completed = lab(*args, lab_home=tmp_path, check=False)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0]
    assert "Traceback" not in completed.stderr


@pytest.mark.slow
def test_offline_imagenet_weights_fail_before_training_with_the_file_named(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.keras/models cache in this home
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / ".keras"))
    completed = lab("train", "--model", "vgg16-frozen", "--subset", "300", "--data-dir", str(data_dir), lab_home=tmp_path, check=False)
    assert completed.returncode == 2
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in completed.stderr
    assert ".keras/models" in completed.stderr and "none" in completed.stderr


@pytest.mark.slow
def test_study_runs_the_reports_six_configurations_beside_the_reports_numbers(tmp_path, data_dir):
    rows = json.loads(
        lab(
            "study", "--epochs", "1", "--subset", "200", "--weights", "none", "--data-dir", str(data_dir), "--json", lab_home=tmp_path
        ).stdout
    )
    # The report's binary row is one class against the rest (REPORT_BINARY_TASK), beside the report's "binary" figure.
    by_key = {(row["model"], "binary" if row["task"] == REPORT_BINARY_TASK else row["task"]): row for row in rows}
    assert len(rows) == 6 and {key: (row["total_params"], row["trainable_params"]) for key, row in by_key.items()} == REPORT_COUNTS
    assert by_key["seed-cnn", "cifar10"]["report_accuracy"] == pytest.approx(0.7191)
    assert by_key["seed-cnn", "binary"]["report_accuracy"] == pytest.approx(0.9598)
    binary = by_key["seed-cnn", "binary"]
    assert binary["baseline_accuracy"] == pytest.approx(0.9)  # one class in ten: "never" is right 90% of the time
    assert {"positive_precision", "positive_recall", "positive_f1"} <= set(binary)
    assert all(0.0 <= row["accuracy"] <= 1.0 and row["n_test"] > 0 for row in rows)
    table = lab("runs", lab_home=tmp_path).stdout
    assert table.count("completed") == 6


def test_every_training_option_maps_onto_its_run_config_field():
    from lab.cli.parser import build_parser, config_from_args

    options = [
        "train",
        "--model",
        "fast-cnn",
        "--width",
        "1.0",
        "--weight-decay",
        "0.01",
        "--no-ema",
        "--keep-best",
        "--precision",
        "float32",
    ]
    config = config_from_args(build_parser().parse_args(options))
    assert (config.width, config.weight_decay, config.ema, config.keep_best, config.precision) == (1.0, 0.01, False, True, "float32")
    assert config.optimizer == "muon" and config.batch_size == 1024  # the rest is still the fast recipe
    binary = config_from_args(build_parser().parse_args(["train", "--task", "binary", "--fine-labels"]))
    assert binary.fine_labels is True and binary.model == "seed-cnn"


def test_runs_marks_a_run_whose_process_was_killed_as_interrupted(tmp_path):
    """No app needs to open first: the command line notices a dead worker too."""
    from lab.config import RunConfig
    from lab.store.runs import INTERRUPTED_MESSAGE, Store

    store = Store(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_id = store.create_run(RunConfig())
    store.claim_next_queued(worker_pid=gone.pid)  # its worker has exited: nothing will ever finish it
    (run,) = json.loads(lab("runs", "--json", lab_home=tmp_path).stdout)
    assert (run["run_id"], run["status"], run["message"]) == (run_id, "failed", INTERRUPTED_MESSAGE)


def test_stop_cancels_a_queued_job_and_asks_a_running_one_to_keep_its_model(tmp_path):
    from lab.config import RunConfig
    from lab.store.records import Status
    from lab.store.runs import Store

    store = Store(tmp_path)
    queued, running = store.create_run(RunConfig()), store.create_run(RunConfig())
    store.set_status(running, Status.RUNNING)
    assert "cancelled" in lab("stop", queued, lab_home=tmp_path).stdout
    assert store.get_run(queued).status is Status.CANCELLED
    assert "evaluated and saved" in lab("stop", running, "--keep", lab_home=tmp_path).stdout
    assert store.keep_requested(running)
    finished = lab("stop", queued, lab_home=tmp_path, check=False)
    assert finished.returncode == 1 and "nothing to stop" in finished.stdout
    unknown = lab("stop", "20000101-000000-ghost-0000", lab_home=tmp_path, check=False)
    assert unknown.returncode == 2 and "python -m lab runs" in unknown.stderr


def test_the_first_ctrl_c_asks_training_to_stop_and_keep_and_the_second_aborts(capsys):
    import signal

    from lab.cli.train_commands import CtrlCStopsEarly

    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (CI's background job ignores Ctrl-C)
    try:
        with CtrlCStopsEarly() as ctrl_c:
            assert ctrl_c.requested is False
            signal.raise_signal(signal.SIGINT)
            assert ctrl_c.requested is True  # no KeyboardInterrupt: training will stop after its batch
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own handler is back
        assert "evaluated and saved" in capsys.readouterr().err

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # started in the background: Ctrl-C stays ignored
        with CtrlCStopsEarly() as ctrl_c:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert ctrl_c.requested is False
    finally:
        signal.signal(signal.SIGINT, outer)
