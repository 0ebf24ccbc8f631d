"""The work behind each `python -m lab` command (the grammar lives in lab/cli/parser.py, the entry point in lab/cli/main.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lab.cli.parser import config_from_args
from lab.config import PRESETS, REPORT_BINARY_EPOCHS, REPORT_BINARY_TASK, RunConfig, config_for_preset, positive_class
from lab.jobs import cluster
from lab.jobs.cluster import ray_address
from lab.report.results_table import reference_rows
from lab.store.runs import Store
from lab.system.paths import DEFAULT_MODEL_DIR

# The keys every metrics JSON carries, in the report's order.
RESULT_KEYS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "total_params", "trainable_params", "train_seconds", "n_test")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


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
    }
    return handlers[args.command](args)


class TerminalProgress:
    """Prints training events on stderr: a live bar on a terminal, one line per epoch otherwise."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr  # looked up now: sys.stderr may have been replaced
        self.width = width
        self.live = self.stream.isatty()
        self.epochs = 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "train_begin":
            self.epochs = event["epochs"]
            resumed = f", continuing after epoch {event['resumed_from_epoch']}" if event.get("resumed_from_epoch") else ""
            self._line(f"training on {event['n_train']} images, validating on {event['n_val']}, {self.epochs} epochs{resumed}")
        elif kind == "batch_end" and self.live:
            done = event["step"] / event["steps"]
            bar = "=" * int(done * self.width)
            eta = event["epoch_seconds"] / done - event["epoch_seconds"]
            text = f"epoch {event['epoch']}/{self.epochs} [{bar:<{self.width}}] {event['step']}/{event['steps']} loss {event['loss']:.3f} acc {event['accuracy']:.3f} eta {eta:.0f}s"
            self.stream.write("\r" + text)
            self.stream.flush()
        elif kind == "epoch_end":
            if self.live:
                self.stream.write("\r")
            self._line(
                f"epoch {event['epoch']}/{self.epochs}: loss {event['loss']:.3f} acc {event['accuracy']:.3f} "
                f"val_loss {event['val_loss']:.3f} val_acc {event['val_accuracy']:.3f} ({event['seconds']:.1f}s)"
            )
        elif kind == "evaluation":
            self._line(f"test accuracy {event['accuracy']:.4f} on {event['n_test']} images (macro F1 {event['f1_macro']:.4f})")

    def _line(self, text: str) -> None:
        self.stream.write(text.ljust(110) + "\n" if self.live else text + "\n")
        self.stream.flush()


def summarise(run_id: str | None, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """The JSON object `train` and `evaluate` print."""
    summary = {"run_id": run_id, "model": config.model, "backbone": config.backbone, "task": config.task, "epochs": config.epochs}
    summary.update({key: metrics.get(key) for key in RESULT_KEYS})
    summary["non_trainable_params"] = metrics.get("non_trainable_params")
    # What always answering the commonest class scores, and, for a one-vs-rest task, how well the model
    # finds its one class: the figures that show whether an accuracy means anything.
    summary["baseline_accuracy"] = metrics.get("baseline_accuracy")
    if positive_class(config.task) is not None:
        summary.update({key: metrics.get(key) for key in ("positive_precision", "positive_recall", "positive_f1")})
    summary["inference_ms_per_image"] = metrics.get("inference_ms_per_image")
    return summary


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


class CtrlCStopsEarly:
    """While active, the first Ctrl-C asks training to stop after its current batch and keep the model; a second aborts.

    Python turns Ctrl-C (the SIGINT signal) into a KeyboardInterrupt, which would end the run as failed and
    lose what it learned. This handler just raises a flag that training reads after every batch
    (`training.run`'s should_stop), so the run is evaluated and saved as it is, like the Train page's
    "Stop now and keep the model". Signal handlers can only be set from the main thread; elsewhere
    Ctrl-C keeps its usual meaning. A process started in the background (`... &`) ignores Ctrl-C, and keeps doing so.
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.requested = False
        self._previous = None

    def __enter__(self) -> CtrlCStopsEarly:
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_interrupt(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after the current batch; the model will be evaluated and saved. Ctrl-C again aborts.", file=self.stream)


def cmd_train(args) -> int:
    from lab.data.cache import source_identity
    from lab.jobs.queue import settings_key
    from lab.train.run import run

    config = config_from_args(args)
    store = Store()
    key = settings_key(config, source_identity(args.data_dir))
    same = None if args.force else _same_settings(store, key)
    if same is not None:
        return _show_same_run(same, config, args.json)
    address = ray_address(getattr(args, "ray_address", None))
    if address is None and getattr(args, "ray_workers", None):
        raise ValueError("--ray-workers trains one run on several machines of a Ray cluster: give --ray-address (or LAB_RAY_ADDRESS) too")
    if address is not None:
        return _train_on_cluster(config, store, address, args, key)
    with CtrlCStopsEarly() as ctrl_c:
        result = run(
            config,
            TerminalProgress(),
            data_dir=args.data_dir,
            store=store,
            should_stop=lambda: ctrl_c.requested,
            keep_when_stopped=lambda: True,
            settings_key=key,
        )
    summary = summarise(result.run_id, config, result.metrics)
    summary["status"] = result.status
    if args.json:
        print_json(summary)
    else:
        print_table([summary])
    return 0 if result.status == "completed" else 1


def _train_on_cluster(config: RunConfig, store: Store, address: str, args, key: str) -> int:
    """`train --ray-address`: the run trains on a node of the cluster; progress, result and storage as for a local run."""
    from lab.jobs import ray_dispatch

    print(f"training on the Ray cluster at {address}", file=sys.stderr)
    with CtrlCStopsEarly() as ctrl_c:
        run_id, status = ray_dispatch.train_one(
            config,
            store,
            address,
            data_dir=args.data_dir,
            settings_key=key,
            workers=cluster.workers_per_run(args.ray_workers),
            on_event=TerminalProgress(),
            should_stop=lambda: ctrl_c.requested,
        )
    run = store.get_run(run_id)
    summary = summarise(run_id, config, run.get("metrics") or {})
    summary.update(status=status, ran_on=(run.get("environment") or {}).get("ran_on"))
    if args.json:
        print_json(summary)
    else:
        print_table([summary])
        if status == "failed":
            print(f"error: {run['message']}", file=sys.stderr)
    return 0 if status == "completed" else 1


def _same_settings(store: Store, key: str) -> dict | None:
    """A completed run with these settings on this data (the newest), else one queued or running, else None."""
    runs = store.runs_with_settings(key)
    completed = [run for run in runs if run["status"] == "completed"]
    return (completed or runs or [None])[0]


def _show_same_run(run: dict, config: RunConfig, as_json: bool) -> int:
    """Say that this run exists already, and show its result (the same settings on the same data are not trained twice)."""
    who = run.get("owner_name") or run.get("owner_id")
    if run["status"] == "completed":
        summary = summarise(run["run_id"], config, run["metrics"])
        summary.update(status="completed", already_trained=True, owner=who, train_seconds=run.get("train_seconds"))
        print(f"already trained by {who} as {run['run_id']}; --force trains it again", file=sys.stderr)
        if as_json:
            print_json(summary)
        else:
            print_table([summary])
        return 0
    print(
        f"the same run is already {run['status']} as {run['run_id']} (started by {who}); "
        "`python -m lab runs` shows when it is done, and --force trains a copy now",
        file=sys.stderr,
    )
    if as_json:
        print_json({"run_id": run["run_id"], "status": run["status"], "already_trained": False, "owner": who})
    return 0


def cmd_evaluate(args) -> int:
    from lab.evaluate.metrics import evaluate_model
    from lab.train.run import task_data_for

    store = Store()
    run = store.get_run(args.run_id)
    if run is None:
        raise ValueError(f"no stored run is called {args.run_id!r}; `python -m lab runs` lists them.")
    config = RunConfig.from_dict(run["config"])
    task = task_data_for(config, args.data_dir)
    model = store.load_model(args.run_id)
    evaluation = evaluate_model(
        model, task.x_test, task.y_test, task.class_names, tta=config.tta, positive_class=positive_class(config.task)
    )
    metrics = {**(run.get("metrics") or {}), **evaluation.metrics}
    summary = summarise(args.run_id, config, metrics)
    if args.json:
        print_json(summary)
    else:
        print_table([summary])
    return 0


def cmd_runs(args) -> int:
    store = Store()
    store.mark_interrupted_runs()  # a run whose process was killed is no longer "running", as the app would show it
    runs = store.list_runs()
    if args.json:
        print_json(runs)
        return 0
    if not runs:
        print("no runs yet: train one with `python -m lab train --model quick-demo`")
    for run in runs:
        accuracy = (run.get("metrics") or {}).get("accuracy")
        shown = f"{accuracy:.4f}" if accuracy is not None else "-"
        owner = run.get("owner") or ""
        print(f"{run['run_id']:<44}{run['status']:<11}{run['model']:<20}{run['task']:<16}{shown:<9}{owner}")
    return 0


def cmd_stop(args) -> int:
    from lab.jobs import queue  # TensorFlow is not needed to stop a job

    store = Store()
    if store.get_run(args.run_id) is None:
        raise ValueError(f"no stored run is called {args.run_id!r}; `python -m lab runs` lists them.")
    if not queue.cancel(args.run_id, store, keep_model=args.keep):
        print(f"{args.run_id} has already finished ({store.get_run(args.run_id)['status']}): nothing to stop.")
        return 1
    status = store.get_run(args.run_id)["status"]
    if status == "cancelled":
        print(f"{args.run_id} was still queued: cancelled.")
    elif args.keep:
        print(f"{args.run_id} stops after its current batch, then is evaluated and saved (`python -m lab runs` shows it).")
    else:
        print(f"{args.run_id} stops after its current batch and keeps nothing.")
    return 0


def cmd_resume(args) -> int:
    """Continue an interrupted run from its last finished epoch, here in the foreground like `train`, as the same run."""
    from lab.jobs import queue
    from lab.train.run import run

    store = Store()
    epoch = queue.reopen_for_resume(args.run_id, store, status="running")  # refuses, with the reason, what cannot be resumed
    config = RunConfig.from_dict(store.get_run(args.run_id)["config"])
    print(f"resuming {args.run_id} after epoch {epoch} of {config.epochs}", file=sys.stderr)
    with CtrlCStopsEarly() as ctrl_c:
        result = run(
            config,
            TerminalProgress(),
            data_dir=args.data_dir,
            store=store,
            run_id=args.run_id,
            resume=True,
            should_stop=lambda: ctrl_c.requested,
            keep_when_stopped=lambda: True,
        )
    summary = summarise(result.run_id, config, result.metrics)
    summary["status"] = result.status
    if args.json:
        print_json(summary)
    else:
        print_table([summary])
    return 0 if result.status == "completed" else 1


def cmd_export(args) -> int:
    path = Store().export_run(args.run_id, args.path)
    print(f"exported {args.run_id} to {path}")
    return 0


DEFAULT_MODEL_FILES = ("model.keras", "config.json", "metrics.json", "history.json", "environment.json", "MODEL_CARD.md")
DEFAULT_MODEL_LIMIT_MB = 8  # the repository keeps no file larger than this


def cmd_default_model(args) -> int:
    """Train (or take) a run and copy its model and its facts into assets/default_model/."""
    store = Store()
    run_id = args.from_run
    if run_id is None:
        from lab.train.run import run

        overrides = {"epochs": args.epochs} if args.epochs else {}
        result = run(config_for_preset(args.model, **overrides), TerminalProgress(), data_dir=args.data_dir, store=store)
        run_id = result.run_id
    stored = store.get_run(run_id)
    if stored is None or stored["status"] != "completed":
        raise ValueError(f"no completed run is called {run_id!r}, so there is no model to ship; `python -m lab runs` lists the runs.")
    source = store.run_dir(run_id)
    size_mb = (source / "model.keras").stat().st_size / 2**20
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
# the rest (REPORT_BINARY_TASK), trained the report's plain way. Each with the task of the report's row it sits beside.
STUDY = (
    ("seed-cnn", "cifar10", "cifar10"),
    ("vgg16-frozen", "cifar10", "cifar10"),
    ("resnet50-frozen", "cifar10", "cifar10"),
    ("mobilenetv2-frozen", "cifar10", "cifar10"),
    ("vgg16-finetune", "cifar10", "cifar10"),
    ("seed-cnn", REPORT_BINARY_TASK, "binary"),
)


def study_configs(epochs: int, subset: int | None, weights: str) -> list[RunConfig]:
    configs = []
    for name, task, _ in STUDY:
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
    from lab.train.run import run

    configs = study_configs(args.epochs, args.subset, args.weights)
    data = load_cifar10(args.data_dir)  # loaded once for all six runs
    store = Store()
    ours = []
    for number, config in enumerate(configs, start=1):
        print(f"[{number}/{len(configs)}] {config.model} on {config.task}", file=sys.stderr)
        result = run(config, TerminalProgress(), data=data, store=store)
        ours.append(summarise(result.run_id, config, result.metrics))
    reference = {(row["model"], row["task"]): row for row in reference_rows()}
    report_task = {task: report for _, task, report in STUDY}
    rows = []
    for row in ours:
        report = reference.get((row["model"], report_task.get(row["task"], row["task"])), {})
        rows.append({**row, "report_accuracy": report.get("accuracy"), "report_total_params": report.get("total_params")})
    if args.json:
        print_json(rows)
    else:
        print_table(rows, with_report=True)
    return 0


def format_cell(value, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def print_table(rows: list[dict[str, Any]], with_report: bool = False) -> None:
    """The report's columns: model, accuracy %, macro precision, recall, F1, parameters, training time."""
    header = f"{'model':<20}{'task':<22}{'acc %':>8}{'base %':>8}{'prec':>8}{'recall':>8}{'F1':>8}{'params':>14}{'time s':>9}"
    print(header + (f"{'report acc %':>14}" if with_report else ""))
    for row in rows:
        accuracy = None if row.get("accuracy") is None else 100 * row["accuracy"]
        baseline = None if row.get("baseline_accuracy") is None else 100 * row["baseline_accuracy"]
        line = (
            f"{row['model']:<20}{row['task']:<22}{format_cell(accuracy, '.2f'):>8}{format_cell(baseline, '.2f'):>8}{format_cell(row.get('precision_macro'), '.4f'):>8}"
            f"{format_cell(row.get('recall_macro'), '.4f'):>8}{format_cell(row.get('f1_macro'), '.4f'):>8}{format_cell(row.get('total_params'), ','):>14}"
            f"{format_cell(row.get('train_seconds'), '.1f'):>9}"
        )
        if with_report:
            report = row.get("report_accuracy")
            line += f"{format_cell(None if report is None else 100 * report, '.2f'):>14}"
        print(line)
    for row in rows:
        if row.get("positive_f1") is not None:
            found = row["task"].split(":")[-1]
            print(
                f"{row['task']}: always answering 'not {found}' scores {format_cell(row.get('baseline_accuracy'), '.1%')}; the model finds "
                f"{format_cell(row.get('positive_recall'), '.1%')} of the {found}s, and {format_cell(row.get('positive_precision'), '.1%')} "
                f"of its '{found}' answers are right (F1 {format_cell(row['positive_f1'], '.3f')})."
            )
    if rows and rows[0].get("run_id"):
        print("run ids: " + ", ".join(str(row["run_id"]) for row in rows))


# Images a sweep uses when --subset is not given: enough for 100 batches of 64 to see ~3 passes.
LR_FIND_SUBSET = 2000


def cmd_gradcam(args) -> int:
    from PIL import Image

    from lab.evaluate.predict import decode_image, to_model_input
    from lab.insight.gradcam import gradcam, overlay

    store = Store()
    run = store.get_run(args.run_id)
    if run is None:
        raise ValueError(f"no stored run is called {args.run_id!r}; `python -m lab runs` lists them.")
    class_names = list((run.get("metrics") or {}).get("class_names") or RunConfig.from_dict(run["config"]).class_names)
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
