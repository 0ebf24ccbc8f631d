"""The command line's grammar: every command, its options, and the RunConfig the options describe.

Imports nothing heavy, so `--help` answers at once; lab/cli/commands.py does the work.
"""

from __future__ import annotations

import argparse
import dataclasses

from lab.config import BACKBONES, HEADS, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, PRESETS, RunConfig, config_for_preset


def _freeze_depth(text: str) -> int | str:
    """'all' keeps the whole backbone frozen; a number freezes that many layers from the input up."""
    if text.lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"freeze depth must be 'all' or a whole number, not {text!r}") from None


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """Command-line options that map one-to-one onto RunConfig fields."""
    parser.add_argument("--model", default="seed-cnn", help=f"a preset ({', '.join(PRESETS)}) or 'custom'")
    parser.add_argument("--task", help="cifar10 | binary (vehicles vs animals) | pair:CLASS_A,CLASS_B | one-vs-rest:CLASS")
    parser.add_argument("--backbone", choices=BACKBONES)
    parser.add_argument("--head", choices=HEADS)
    parser.add_argument("--freeze-depth", type=_freeze_depth, help="backbone layers kept frozen from the input up; 'all' or a number")
    parser.add_argument("--input-size", type=int, help="pixels per side the backbone sees (32, 64, 96, 128, 160, 224)")
    parser.add_argument("--weights", help="imagenet | none | path to a .h5 / .weights.h5 file")
    parser.add_argument("--width", type=float, help="fast-cnn only: channels relative to airbench94 (default 0.5; 1.0 on a GPU)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None, help="weight averaging")
    parser.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=None, help="keep the best epoch's weights")
    parser.add_argument(
        "--fine-labels", action=argparse.BooleanOptionalAction, default=None, help="binary task: also learn the 10 classes while training"
    )
    parser.add_argument("--precision", choices=PRECISIONS)
    parser.add_argument("--subset", type=int, help="training images drawn (stratified) before the validation split")
    parser.add_argument("--val-fraction", type=float)
    parser.add_argument("--seed", type=int)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the options describe: the preset's fields with the given options on top."""
    # Every option named after a RunConfig field maps onto it (`--batch-size` -> batch_size); "model"
    # names the preset to start from. Options left out (None) keep the preset's values.
    option_fields = [field.name for field in dataclasses.fields(RunConfig) if field.name != "model"]
    overrides = {name: getattr(args, name) for name in option_fields if getattr(args, name, None) is not None}
    if overrides.get("freeze_depth") == "all":
        overrides["freeze_depth"] = None  # RunConfig spells "the whole backbone" as None
    if args.model == "custom":
        return RunConfig(model="custom", **overrides)
    return config_for_preset(args.model, **overrides)


def build_parser(prog: str = "python -m lab") -> argparse.ArgumentParser:
    """Every command and its options; `prog` is how the user called it (`python -m lab` or `cifar10-lab`)."""
    parser = argparse.ArgumentParser(prog=prog, description="CIFAR-10 Lab, headless.")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the model presets and their parameter counts")
    models.add_argument("--json", action="store_true")
    for add_commands in (_add_train_commands, _add_stored_run_commands, _add_insight_commands, _add_server_commands):
        add_commands(commands)
    return parser


def _add_train_commands(commands) -> None:
    """train, evaluate, stop and resume: one run at a time."""
    train = commands.add_parser(
        "train", help="train one model and store the run (Ctrl-C once: stop early and keep the model; twice: abort)"
    )
    _add_config_options(train)
    train.add_argument("--data-dir", help="CIFAR-10 folder or cifar-10-python.tar.gz (default: $CIFAR10_DIR, else download)")
    train.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    train.add_argument(
        "--force", action="store_true", help="train even when a run with the same settings on the same data exists (else: show its result)"
    )
    train.add_argument(
        "--ray-address",
        help="train on the Ray cluster at this address (default: $LAB_RAY_ADDRESS; unset: here). Needs `pip install -e .[cluster]`",
    )
    train.add_argument(
        "--ray-workers",
        type=int,
        help="with --ray-address: train this one run with N workers at once, on several machines (default: $LAB_RAY_WORKERS_PER_RUN or 1)",
    )

    evaluate = commands.add_parser("evaluate", help="re-evaluate a stored model on the test batch")
    evaluate.add_argument("run_id")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--json", action="store_true")

    stop = commands.add_parser("stop", help="stop a queued or running job (one the app started), like the Train page's buttons")
    stop.add_argument("run_id")
    stop.add_argument("--keep", action="store_true", help="keep a running job's model: evaluate and save it as it is now")

    resume = commands.add_parser(
        "resume", help="continue an interrupted run (a killed worker, a restart, a full disk) from its last finished epoch, as the same run"
    )
    resume.add_argument("run_id")
    resume.add_argument("--data-dir", help="the CIFAR-10 copy the run started on (default: $CIFAR10_DIR, else download)")
    resume.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _add_stored_run_commands(commands) -> None:
    """runs, export, default-model and study: the stored runs, and the runs the lab ships or studies."""
    runs = commands.add_parser("runs", help="list stored runs")
    runs.add_argument("--json", action="store_true")

    export = commands.add_parser(
        "export",
        help="write a completed run to a zip that opens without this project: the model as Keras, SavedModel, LiteRT and ONNX, "
        "its notebook and train.py, its card, config, history and metrics",
    )
    export.add_argument("run_id")
    export.add_argument("path")

    default = commands.add_parser("default-model", help="train the Predict page's default model and ship it in assets/default_model/")
    default.add_argument("--model", default="fast-cnn", help="the preset to train (the shipped model is fast-cnn)")
    default.add_argument("--epochs", type=int, help="override the preset's epochs")
    default.add_argument("--data-dir")
    default.add_argument("--from-run", help="ship an already stored run instead of training a new one")

    study = commands.add_parser("study", help="run the lab report's whole study and print its table beside the report's")
    study.add_argument("--epochs", type=int, default=10)
    study.add_argument("--subset", type=int)
    study.add_argument("--weights", default="imagenet", help="imagenet | none")
    study.add_argument("--data-dir")
    study.add_argument("--json", action="store_true")


def _add_insight_commands(commands) -> None:
    """gradcam, report and lr-find: looking inside models, writing about runs, choosing a learning rate."""
    gradcam = commands.add_parser("gradcam", help="show which part of a picture a stored model looked at (Grad-CAM heatmap)")
    gradcam.add_argument("run_id")
    gradcam.add_argument("image", help="a PNG, JPEG, WebP, BMP or GIF file")
    gradcam.add_argument("--out", required=True, help="where to write the heatmap over the picture, as a PNG")
    gradcam.add_argument("--class", dest="class_name", help="the class to explain (default: the model's top answer)")
    gradcam.add_argument("--size", type=int, default=256, help="pixels per side of the written picture (default 256)")
    gradcam.add_argument("--layer", help="the convolutional layer to explain (default: the last one with a grid)")
    gradcam.add_argument("--json", action="store_true")

    report = commands.add_parser("report", help="write a lab report (HTML, Markdown or PDF) from the stored runs")
    report.add_argument("--out", required=True, help="the file to write: .html (self-contained), .md (charts beside it) or .pdf (A4)")
    report.add_argument("--runs", nargs="+", metavar="RUN_ID", help="the runs to cover (default: the best run of each preset and task)")

    lr_find = commands.add_parser("lr-find", help="sweep the learning rate over a short run and suggest one")
    _add_config_options(lr_find)
    lr_find.add_argument("--data-dir", help="CIFAR-10 folder or cifar-10-python.tar.gz (default: $CIFAR10_DIR, else download)")
    lr_find.add_argument("--min-lr", type=float, default=1e-6)
    lr_find.add_argument("--max-lr", type=float, default=1.0)
    lr_find.add_argument("--steps", type=int, default=100, help="batches in the sweep (default 100)")
    lr_find.add_argument("--json", action="store_true", help="print the suggestion and the whole curve as JSON")


def _add_server_commands(commands) -> None:
    """teacher and store: what only someone with a shell on the server does."""
    teacher = commands.add_parser("teacher", help="the teacher's sign-in, from the server: clear its lock, list the tries at the password")
    teacher_commands = teacher.add_subparsers(dest="teacher_command", required=True)
    teacher_commands.add_parser("unlock", help="clear the locks that wrong guesses put on the teacher's sign-in and on students rejoining")
    attempts = teacher_commands.add_parser("attempts", help="every try at the teacher password, newest first: when, who, accepted or not")
    attempts.add_argument("--limit", type=int, default=100, help="how many of the newest tries (default 100)")
    attempts.add_argument("--json", action="store_true")

    store_parser = commands.add_parser("store", help="the results store: which one this computer uses; copy it to PostgreSQL and back")
    store_commands = store_parser.add_subparsers(dest="store_command", required=True)
    store_commands.add_parser("where", help="which store this computer uses: a SQLite folder or a PostgreSQL database (never its password)")
    copy = store_commands.add_parser("copy", help="copy every run, event, person and file into an empty store")
    copy.add_argument("--to", required=True, help="postgresql://user:password@host:5432/database, or a folder (SQLite)")
    copy.add_argument("--from", dest="source", help="the store to copy (default: this computer's: LAB_DATABASE_URL, else LAB_HOME)")
