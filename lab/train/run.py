"""Train one model from a RunConfig: `run(config, on_event) -> RunResult`.

The whole chain lives here: data -> task split -> model -> `model.fit` -> test evaluation. The
result is a value (lab/train/result.py); recording it in a results store is lab/jobs' work
(lab/jobs/outcome.py), so training runs the same on this machine and on a Ray node. Progress
leaves this module only as plain-dict events (`{"kind": "epoch_end", "epoch": 3, "val_accuracy":
0.71, ...}`) handed to `on_event`; the command line prints them, the job runner writes them to the
store for the app to poll, and tests collect them in a list.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from lab.config import RunConfig, positive_class
from lab.data.cifar10 import Cifar10, load_cifar10
from lab.data.pipeline import full_batches_only, in_order, make_dataset, training_steps_per_epoch
from lab.data.tasks import TaskData, prepare_task
from lab.evaluate.metrics import Evaluation, evaluate_model
from lab.models.pretrained import resolve_weights
from lab.models.registry import backbone_layer_count, build_model, check_input_size, count_params
from lab.models.scratch import adapt_whitening
from lab.system import process_memory
from lab.train import checkpoints, devices, fine_labels
from lab.train import memory as resources
from lab.train.callbacks import EventCallback, EventHandler, keep_best_epoch
from lab.train.checkpoints import Checkpoint
from lab.train.compile import compile_model, steps_per_execution_for
from lab.train.feature_cache import cache_decision, cached_features, split_at_features
from lab.train.result import RunResult
from lab.train.schedules import DECAYING_SCHEDULES, schedule_callbacks
from lab.train.training_state import EpochCheckpoints, restore_model

__all__ = ["RunResult", "inference_copy", "preflight", "run", "stopped_early_message", "task_data_for"]


def run(
    config: RunConfig,
    on_event: EventHandler | None = None,
    *,
    data: Cifar10 | None = None,
    data_dir: str | None = None,
    checkpoint_folder: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_when_stopped: Callable[[], bool] | None = None,
    resume: bool = False,
) -> RunResult:
    """Train and evaluate one run; return what it produced (a cancelled run: its history only).

    `should_stop` is asked after every batch; once it says True, training ends there. The run is
    then cancelled, unless `keep_when_stopped` says True: then it is evaluated like any finished
    run, with `metrics["stopped_early"]` set (the Train page's "Stop and keep the model").

    With a `checkpoint_folder` (the run's own, lab/store/run_folder.py), the run saves a checkpoint
    there after every epoch (lab/train/training_state.py). `resume=True` continues from the
    checkpoint in that folder instead of starting afresh: same config, data split, weights,
    optimiser state and callbacks, from the epoch after the saved one.
    """
    emit = on_event or (lambda event: None)
    if resume and checkpoint_folder is None:
        raise ValueError("resuming needs the folder of the run's checkpoint.")
    preflight(config)
    precision = devices.precision_for(config)
    # Only the task's splits live on: when this function loads the data itself, the whole
    # data set is freed once the splits are cut from it (about 150 MB less at the peak).
    task = prepare_task(data if data is not None else load_cifar10(data_dir), config)
    resume_from = checkpoints.checkpoint_to_resume(checkpoint_folder, config.to_dict(), task.fingerprint["sha256"]) if resume else None
    # Mixed precision for this run's models only; and once the run ends, nothing of its
    # traced graphs (nor the weights they hold) outlives it in this process (lab/system/process_memory.py).
    with devices.precision_policy(precision), process_memory.releasing_traced_graphs():
        trainer = _build_trainer(config, task, resume_from)
        return _train_and_evaluate(
            trainer, emit, checkpoint_folder, should_stop=should_stop, keep_when_stopped=keep_when_stopped, precision=precision
        )


def preflight(config: RunConfig) -> None:
    """Refuse a run that cannot start before any data is loaded or any row is stored.

    RunConfig checks each setting alone; this checks the ones that depend on the
    architecture: the input size it accepts, how many layers there are to freeze,
    and whether the weights can be found (offline, this names the missing file).
    """
    check_input_size(config.backbone, config.input_size)
    if config.freeze_depth is not None:
        layer_count = backbone_layer_count(config.backbone, config.input_size)
        if config.freeze_depth > layer_count:
            raise ValueError(
                f"freeze_depth must be from 0 to {layer_count} (the {config.backbone} backbone's layer count) or 'all'; got {config.freeze_depth}."
            )
    resources.check_fits(config, on_gpu=bool(devices.gpu_names()))  # refuse now what the out-of-memory killer would end midway
    resolve_weights(config.backbone, config.weights, config.input_size)


@dataclass
class _Trainer:
    """One run's network, ready to fit: what it trains (`trainee`), on what, and how it was set up."""

    config: RunConfig
    task: TaskData
    model: keras.Model  # the whole network, the one that is evaluated and saved
    trainee: keras.Model  # what `fit` trains: the model, its head alone on cached features, or it with a fine-label output
    extractor: keras.Model | None  # with cached features: images -> the frozen backbone's pooled outputs
    use_cache: bool
    cache_reason: str
    steps_per_epoch: int
    strategy_name: str
    xla: bool
    resume_from: Checkpoint | None


def _build_trainer(config: RunConfig, task: TaskData, resume_from: Checkpoint | None) -> _Trainer:
    """Choose the strategy, decide on cached features, build and compile the network (with its saved state when resuming)."""
    gpus = devices.gpu_names()
    strategy_name = devices.choose_strategy_name(gpus, devices.cluster_workers())
    xla = devices.use_xla(gpus)
    keras.utils.set_random_seed(config.seed)
    use_cache, cache_reason = cache_decision(config)
    # On images, full batches only (lab/data/pipeline.py); on cached features, the last batch is kept.
    n_train = len(task.x_train)
    steps_per_epoch = math.ceil(n_train / config.batch_size) if use_cache else training_steps_per_epoch(n_train, config.batch_size)
    with devices.make_strategy(strategy_name).scope():
        model = build_model(config, task.num_classes)
        if config.weights == "none" and resume_from is None:
            # A fast-cnn's first layer is fitted to the training pixels before any step is taken.
            adapt_whitening(model, task.x_train)
        # With cached features only the head trains: compile that, not the whole model. With fine
        # labels the trainer has a second, training-only output beside the model's own.
        trainee, extractor = model, None
        if use_cache:
            extractor, trainee = split_at_features(model)
        elif config.fine_labels:
            trainee = fine_labels.with_fine_label_head(model)
        compile_model(
            trainee,
            config,
            task.num_classes,
            steps_per_epoch,
            jit_compile=xla,
            # Keras runs several steps per call with a loop TensorFlow cannot split across machines.
            steps_per_execution=1 if strategy_name == "multi_worker" else steps_per_execution_for(config),
            with_fine_labels=config.fine_labels,
        )
        if resume_from is not None:
            restore_model(trainee, resume_from)  # weights and optimiser as they were after the saved epoch
    return _Trainer(config, task, model, trainee, extractor, use_cache, cache_reason, steps_per_epoch, strategy_name, xla, resume_from)


def _train_and_evaluate(
    trainer: _Trainer, emit: EventHandler, checkpoint_folder: Path | None, *, should_stop, keep_when_stopped, precision: str
) -> RunResult:
    config, task, resume_from = trainer.config, trainer.task, trainer.resume_from
    emit(
        {
            "kind": "train_begin",
            "epochs": config.epochs,
            "steps_per_epoch": trainer.steps_per_epoch,
            "n_train": len(task.x_train),
            "n_val": len(task.x_val),
            "feature_cache": trainer.use_cache,
            "feature_cache_reason": trainer.cache_reason,
            "resumed_from_epoch": resume_from.epoch if resume_from else None,
        }
    )
    callbacks, events, keep_best = _callbacks(trainer, emit, should_stop, checkpoint_folder)
    started = time.perf_counter()  # the training time includes computing the cached features, when there are
    features = _features(trainer.extractor, config, {"train": task.x_train, "val": task.x_val}, emit) if trainer.use_cache else {}
    history = _fit(trainer, *_datasets(trainer, features), callbacks)
    train_seconds = time.perf_counter() - started + (resume_from.train_seconds if resume_from else 0.0)

    # A stop request either drops the run or keeps what it has learned so far (evaluated below).
    # Keras still ends the epoch a stop interrupts (validation, history), so that epoch counts as the last.
    epochs_trained = len(history.get("loss", []))
    stopped_early = events.cancelled and keep_when_stopped is not None and bool(keep_when_stopped())
    if events.cancelled and not stopped_early:
        emit({"kind": "train_end", "status": "cancelled", "train_seconds": train_seconds})
        message = f"cancelled after {epochs_trained} of {config.epochs} epochs"
        return RunResult(config, cancelled=True, message=message, history=history, train_seconds=train_seconds, model=trainer.model)

    emit({"kind": "train_end", "status": "stopped early" if stopped_early else "completed", "train_seconds": train_seconds})
    evaluation = _evaluate(trainer, features, emit)
    metrics = {
        **evaluation.metrics,
        **count_params(trainer.model),
        "train_seconds": train_seconds,
        "epochs_completed": epochs_trained,
        "stopped_early": stopped_early,
        "class_names": list(task.class_names),
        "feature_cache": trainer.use_cache,
        "best_epoch": keep_best.best_epoch + 1 if keep_best is not None and keep_best.best_weights is not None else None,
    }
    emit({"kind": "evaluation", **{k: metrics[k] for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "n_test")}})
    return RunResult(
        config,
        message=stopped_early_message(config, epochs_trained) if stopped_early else "",
        metrics=metrics,
        history=history,
        train_seconds=train_seconds,
        model=trainer.model,
        saved_model=inference_copy(trainer.model, config, task.num_classes),
        environment=devices.describe_environment(precision, trainer.strategy_name, trainer.xla),
        fingerprint=task.fingerprint,
        test_probabilities=evaluation.probabilities.astype(np.float16),
    )


def _datasets(trainer: _Trainer, features: dict[str, np.ndarray]):
    """The training and validation datasets: of cached features (each epoch keeps its last, smaller batch), or of images."""
    config, task = trainer.config, trainer.task
    if trainer.use_cache:
        train_data = make_dataset(features["train"], task.y_train, config.batch_size, shuffle=True, seed=config.seed)
        return train_data, make_dataset(features["val"], task.y_val, config.batch_size, shuffle=False)
    # The fine-label loss reads each image's CIFAR-10 class and works out the task's label itself.
    y_train, y_val = (task.y_train_fine, task.y_val_fine) if config.fine_labels else (task.y_train, task.y_val)
    train_data = make_dataset(
        task.x_train,
        y_train,
        config.batch_size,
        shuffle=True,
        augment=config.augment,
        seed=config.seed,
        drop_remainder=full_batches_only(len(task.x_train), config.batch_size),
    )
    return train_data, make_dataset(task.x_val, y_val, config.batch_size, shuffle=False)


def _callbacks(trainer: _Trainer, emit: EventHandler, should_stop, checkpoint_folder: Path | None):
    """The schedule, keep-best, the epoch checkpoints and the events, in the order their work needs; also the last two alone."""
    config = trainer.config
    keep_best = keep_best_epoch(config.epochs) if config.keep_best else None
    callbacks = [*schedule_callbacks(config, trainer.steps_per_epoch), *([keep_best] if keep_best else [])]
    # A run with a checkpoint folder saves its state after each epoch, unless it trains on cached features: that
    # takes seconds, and starting again is simpler. The events come last, so an epoch_end means its checkpoint is saved.
    if checkpoint_folder is not None and not trainer.use_cache:
        callbacks.append(
            EpochCheckpoints(
                checkpoint_folder,
                config.to_dict(),
                callbacks,
                emit,
                data_sha256=trainer.task.fingerprint["sha256"],
                resume_from=trainer.resume_from,
            )
        )
    events = EventCallback(emit, should_stop, trainer.steps_per_epoch)
    return [*callbacks, events], events, keep_best


def _fit(trainer: _Trainer, train_data, val_data, callbacks) -> dict[str, list[float]]:
    """`fit` from the first epoch not yet trained; the whole history, a resumed run's earlier epochs included."""
    resume_from = trainer.resume_from
    # The datasets shuffle themselves (Keras would warn that its own `shuffle` is ignored for them).
    fit = trainer.trainee.fit(
        train_data,
        validation_data=val_data,
        epochs=trainer.config.epochs,
        initial_epoch=resume_from.epoch if resume_from else 0,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    history = {name: list(values) for name, values in (resume_from.history if resume_from else {}).items()}
    for name, values in fit.history.items():  # a resumed run's epochs follow the saved ones
        history.setdefault(name, []).extend(float(value) for value in values)
    return history


def _evaluate(trainer: _Trainer, features: dict[str, np.ndarray], emit: EventHandler) -> Evaluation:
    """The test split's metrics and probabilities, on cached features (timing the whole model all the same) or on images."""
    config, task = trainer.config, trainer.task
    if not trainer.use_cache:
        return evaluate_model(
            trainer.model, task.x_test, task.y_test, task.class_names, tta=config.tta, positive_class=positive_class(config.task)
        )
    features.update(_features(trainer.extractor, config, {"test": task.x_test}, emit))
    evaluation = evaluate_model(
        trainer.trainee, features["test"], task.y_test, task.class_names, positive_class=positive_class(config.task)
    )
    # Time the whole model, as a user of the saved model will meet it, not the head alone.
    evaluation.metrics["inference_ms_per_image"] = _inference_ms(trainer.model, task.x_test[:256])
    return evaluation


def stopped_early_message(config: RunConfig, epochs_trained: int) -> str:
    """What a run stopped early on request says about itself (the run's page, Compare's list of runs)."""
    message = f"stopped early on request, during epoch {epochs_trained} of {config.epochs}: evaluated and saved as it was then."
    if config.lr_schedule in DECAYING_SCHEDULES:
        message += (
            f" Its {config.lr_schedule} learning-rate schedule had not yet come down to its end,"
            " so it is usually less accurate than a run planned that short."
        )
    return message


def inference_copy(model: keras.Model, config: RunConfig, num_classes: int) -> keras.Model:
    """The same network and weights, uncompiled and computing in float32: the copy a run saves.

    Uncompiled: a compiled model's file also holds its optimiser's state (Adam keeps two numbers
    per trainable weight: +100 MB for VGG16 fine-tuned), which prediction never reads.
    Float32: a model saves the dtype policy it was trained under. One trained in float16 on a GPU
    (or bfloat16 on a CPU that has it) would then compute in that precision wherever it is loaded,
    and a CPU without such instructions emulates it slowly. Weights are float32 under every
    policy, so they copy across unchanged.
    """
    with devices.precision_policy("float32"):
        copy = build_model(config, num_classes)  # the same weights setting: the same layers
    copy.set_weights(model.get_weights())
    return copy


def _features(extractor, config: RunConfig, splits: dict[str, np.ndarray], emit: EventHandler) -> dict[str, np.ndarray]:
    """The frozen backbone's pooled outputs for each split, from the cache or computed once."""
    features = {}
    for split, images in splits.items():
        started = time.perf_counter()
        features[split], from_cache = cached_features(extractor, config, images)
        emit(
            {
                "kind": "feature_cache",
                "split": split,
                "images": len(images),
                "from_cache": from_cache,
                "seconds": time.perf_counter() - started,
            }
        )
    return features


def _inference_ms(model: keras.Model, images: np.ndarray) -> float:
    model.predict(in_order(images[:1]), verbose=0)  # the first call builds the prediction function
    started = time.perf_counter()
    model.predict(in_order(images, 256), verbose=0)
    return (time.perf_counter() - started) / max(1, len(images)) * 1000


def task_data_for(config: RunConfig, data_dir: str | None = None) -> TaskData:
    """The task's train/val/test split for a config (used to re-evaluate stored runs)."""
    return prepare_task(load_cifar10(data_dir), config)
