"""The work behind each `python -m lab` command (the grammar lives in lab/cli/parser.py, the entry point in lab/cli/main.py)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from lab.cli.export_commands import cmd_export
from lab.cli.output import TerminalProgress, print_json, print_summary, print_table, summarise
from lab.cli.parser import config_from_args
from lab.cli.store_commands import cmd_store
from lab.cli.teacher_commands import cmd_teacher
from lab.cli.train_commands import cmd_resume, cmd_stop, cmd_train
from lab.config import PRESETS, REPORT_BINARY_EPOCHS, REPORT_BINARY_TASK, RunConfig, config_for_preset, positive_class
from lab.report.results_table import reference_rows
from lab.store.records import Status
from lab.store.run_folder import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
)
from lab.store.runs import Store
from lab.system.paths import DEFAULT_MODEL_DIR


def dispatch(args: argparse.Namespace) -> int:
    handlers = {
        "models": cmd_models,
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "runs": cmd_runs,
        "stop": cmd_stop,
        "resume": cmd_resume,
        "export": cmd_export,
        "study": cmd_study,
        "default-model": cmd_default_model,
        "gradcam": cmd_gradcam,
        "lr-find": cmd_lr_find,
        "report": cmd_report,
        "teacher": cmd_teacher,
        "store": cmd_store,
    }
    return handlers[args.command](args)


def cmd_models(args) -> int:
    from lab.models.registry import build_model, count_params

    rows = []
    for name, preset in PRESETS.items():
        tasks = ("cifar10", "binary") if name == "seed-cnn" else ("cifar10",)
        for task in tasks:
            config = config_for_preset(name, task=task, weights="none")
            counts = count_params(build_model(config, len(config.class_names)))
            rows.append({"name": name, "task": task, "backbone": config.backbone, **counts, "description": preset["description"]})
    if args.json:
        print_json(rows)
    else:
        print(f"{'preset':<20}{'task':<10}{'total':>14}{'trainable':>14}  description")
        for row in rows:
            print(f"{row['name']:<20}{row['task']:<10}{row['total_params']:>14,}{row['trainable_params']:>14,}  {row['description']}")
    return 0


def cmd_evaluate(args) -> int:
    from lab.evaluate.metrics import evaluate_model
    from lab.train.run import task_data_for

    store = Store()
    run = store.get_run(args.run_id)
    if run is None:
        raise ValueError(f"no stored run is called {args.run_id!r}; `python -m lab runs` lists them.")
    config = run.config
    task = task_data_for(config, args.data_dir)
    model = store.load_model(args.run_id)
    evaluation = evaluate_model(
        model, task.x_test, task.y_test, task.class_names, tta=config.tta, positive_class=positive_class(config.task)
    )
    metrics = {**run.metrics, **evaluation.metrics}
    summary = summarise(args.run_id, config, metrics)
    print_summary(summary, args.json)
    return 0


def cmd_runs(args) -> int:
    store = Store()
    store.mark_interrupted_runs()  # a run whose process was killed is no longer "running", as the app would show it
    runs = store.list_runs()
    if args.json:
        print_json([run.to_dict() for run in runs])
        return 0
    if not runs:
        print("no runs yet: train one with `python -m lab train --model quick-demo`")
    for run in runs:
        accuracy = run.metrics.get("accuracy")
        shown = f"{accuracy:.4f}" if accuracy is not None else "-"
        owner = run.owner
        print(f"{run.run_id:<44}{run.status:<11}{run.model:<20}{run.task:<16}{shown:<9}{owner}")
    return 0


DEFAULT_MODEL_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, HISTORY_FILE, ENVIRONMENT_FILE, MODEL_CARD_FILE)
DEFAULT_MODEL_LIMIT_MB = 8  # the repository keeps no file larger than this


def cmd_default_model(args) -> int:
    """Train (or take) a run and copy its model and its facts into assets/default_model/."""
    store = Store()
    run_id = args.from_run
    if run_id is None:
        from lab.jobs.outcome import train_and_record

        overrides = {"epochs": args.epochs} if args.epochs else {}
        result = train_and_record(config_for_preset(args.model, **overrides), store, TerminalProgress(), data_dir=args.data_dir)
        run_id = result.run_id
    stored = store.get_run(run_id)
    if stored is None or stored.status is not Status.COMPLETED:
        raise ValueError(f"no completed run is called {run_id!r}, so there is no model to ship; `python -m lab runs` lists the runs.")
    source = store.run_dir(run_id)
    size_mb = store.run_folder(run_id).model.stat().st_size / 2**20
    if size_mb > DEFAULT_MODEL_LIMIT_MB:
        raise ValueError(
            f"the model of {run_id} takes {size_mb:.1f} MB; a shipped default model must stay under {DEFAULT_MODEL_LIMIT_MB} MB."
        )
    DEFAULT_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    for name in DEFAULT_MODEL_FILES:
        if (source / name).exists():
            shutil.copyfile(source / name, DEFAULT_MODEL_DIR / name)
    (DEFAULT_MODEL_DIR / "SOURCE.txt").write_text(f"Copied from run {run_id} by `python -m lab default-model`.\n")
    print(f"shipped {run_id} ({size_mb:.1f} MB) to {DEFAULT_MODEL_DIR}")
    return 0


# The lab report's study: five configurations on CIFAR-10 plus its binary row, which is one class against
# the rest (REPORT_BINARY_TASK), trained the report's plain way; each sits beside the report's row of its task.
STUDY = (
    ("seed-cnn", "cifar10"),
    ("vgg16-frozen", "cifar10"),
    ("resnet50-frozen", "cifar10"),
    ("mobilenetv2-frozen", "cifar10"),
    ("vgg16-finetune", "cifar10"),
    ("seed-cnn", REPORT_BINARY_TASK),
)


def study_configs(epochs: int, subset: int | None, weights: str) -> list[RunConfig]:
    configs = []
    for name, task in STUDY:
        overrides: dict[str, Any] = {"task": task, "epochs": epochs, "subset": subset}
        if PRESETS[name]["fields"].get("weights", "none") != "none":
            overrides["weights"] = weights
        if task == REPORT_BINARY_TASK:
            # The report's plain recipe: 5 epochs (fewer if asked for a quick study), the last epoch's weights,
            # and almost every training image (2% held out, where the report held none).
            overrides.update(epochs=min(epochs, REPORT_BINARY_EPOCHS), keep_best=False, val_fraction=0.02)
        configs.append(config_for_preset(name, **overrides))
    return configs


def cmd_study(args) -> int:
    from lab.data.cifar10 import load_cifar10
    from lab.jobs.outcome import train_and_record

    configs = study_configs(args.epochs, args.subset, args.weights)
    data = load_cifar10(args.data_dir)  # loaded once for all six runs
    store = Store()
    ours = []
    for number, config in enumerate(configs, start=1):
        print(f"[{number}/{len(configs)}] {config.model} on {config.task}", file=sys.stderr)
        result = train_and_record(config, store, TerminalProgress(), data=data)
        ours.append(summarise(result.run_id, config, result.metrics))
    reference = {(row["model"], row["task"]): row for row in reference_rows()}
    rows = []
    for row in ours:
        report = reference.get((row["model"], row["task"]), {})
        rows.append({**row, "report_accuracy": report.get("accuracy"), "report_total_params": report.get("total_params")})
    if args.json:
        print_json(rows)
    else:
        print_table(rows, with_report=True)
    return 0


# Images a sweep uses when --subset is not given: enough for 100 batches of 64 to see ~3 passes.
LR_FIND_SUBSET = 2000


def cmd_gradcam(args) -> int:
    from PIL import Image

    from lab.evaluate.predict import decode_image, to_model_input
    from lab.insight.gradcam import gradcam
    from lab.insight.heatmaps import overlay

    store = Store()
    run = store.get_run(args.run_id)
    if run is None:
        raise ValueError(f"no stored run is called {args.run_id!r}; `python -m lab runs` lists them.")
    class_names = list(run.metrics.get("class_names") or run.config.class_names)
    class_index = None
    if args.class_name is not None:
        if args.class_name.lower() not in class_names:
            raise ValueError(f"class {args.class_name!r} is not one of this run's classes: {', '.join(class_names)}.")
        class_index = class_names.index(args.class_name.lower())
    if args.size < 1:
        raise ValueError(f"--size must be at least 1 pixel; got {args.size}.")
    path = Path(args.image)
    picture = decode_image(path.read_bytes(), name=path.name)
    image = to_model_input(picture)
    model = store.load_model(args.run_id)
    result = gradcam(model, image, class_index, layer_name=args.layer, size=args.size)
    Image.fromarray(overlay(image, result.heatmap)).save(args.out, format="PNG")

    top = int(result.probabilities.argmax())
    summary = {
        "top_class": class_names[top],
        "top_probability": float(result.probabilities[top]),
        "explained_class": class_names[result.class_index],
        "explained_probability": result.probability,
        "method": result.method,
        "layer": result.layer,
        "out": str(args.out),
    }
    if args.json:
        print_json(summary)
    else:
        print(f"top class: {summary['top_class']} ({summary['top_probability']:.1%})")
        print(f"heatmap for {summary['explained_class']} ({result.probability:.1%}) written to {args.out}")
        print(result.note)
    return 0


def cmd_lr_find(args) -> int:
    from lab.data.cifar10 import load_cifar10
    from lab.insight.lr_finder import lr_find

    config = config_from_args(args)
    curve = lr_find(
        config,
        load_cifar10(args.data_dir),
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        steps=args.steps,
        subset=config.subset or LR_FIND_SUBSET,
    )
    if args.json:
        print_json(curve)
        return 0
    print(f"{'learning rate':>14}{'loss':>9}")
    every = max(1, len(curve["learning_rates"]) // 12)  # about a dozen rows: the curve's shape, not every point
    for rate, loss in list(zip(curve["learning_rates"], curve["losses"], strict=True))[::every]:
        print(f"{rate:>14.2e}{loss:>9.3f}")
    if curve["stopped_early"]:
        print(f"the loss exploded after {len(curve['losses'])} of {args.steps} batches, so the sweep stopped there")
    print(f"suggested learning rate: {curve['suggestion']:.2e} ({curve['method']}, {curve['n_train']} training images)")
    if curve["note"]:
        print(curve["note"])
    return 0


def cmd_report(args) -> int:
    from lab.report.lab_report import build_report
    from lab.report.writers import write_report

    path = write_report(build_report(Store(), args.runs), args.out)
    print(f"lab report written to {path}")
    return 0
