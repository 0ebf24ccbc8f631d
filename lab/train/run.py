"""Train one model from a RunConfig: `run(config, on_event) -> RunResult`.

The whole chain lives here: data -> task split -> model -> `model.fit` -> test
evaluation -> results store. Progress leaves this module only as plain-dict
events (`{"kind": "epoch_end", "epoch": 3, "val_accuracy": 0.71, ...}`) handed to
`on_event`; the command line prints them, the job runner writes them to the store
for the app to poll, and tests collect them in a list.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from lab.config import RunConfig, positive_class
from lab.data.cifar10 import Cifar10, load_cifar10
from lab.data.pipeline import full_batches_only, in_order, make_dataset, training_steps_per_epoch
from lab.data.tasks import TaskData, prepare_task
from lab.evaluate.metrics import evaluate_model
from lab.evaluate.model_card import CARD_FILE, model_card
from lab.models.pretrained import resolve_weights
from lab.models.registry import backbone_layer_count, build_model, check_input_size, count_params
from lab.models.scratch import adapt_whitening
from lab.system import process_memory
from lab.train import checkpoints, devices, fine_labels
from lab.train import memory as resources
from lab.train.callbacks import EventCallback, EventHandler, keep_best_epoch
from lab.train.compile import compile_model, steps_per_execution_for
from lab.train.feature_cache import cache_decision, cached_features, split_at_features
from lab.train.schedules import DECAYING_SCHEDULES, schedule_callbacks
from lab.train.training_state import EpochCheckpoints, restore_model


@dataclass
class RunResult:
    """What a finished (or cancelled) run produced."""

    run_id: str | None
    status: str  # "completed" | "cancelled"
    config: RunConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    model: keras.Model | None = None


def run(
    config: RunConfig,
    on_event: EventHandler | None = None,
    *,
    data: Cifar10 | None = None,
    data_dir: str | None = None,
    store=None,
    should_stop: Callable[[], bool] | None = None,
    keep_when_stopped: Callable[[], bool] | None = None,
    run_id: str | None = None,
    settings_key: str | None = None,
    resume: bool = False,
) -> RunResult:
    """Train, evaluate and (when given a store) save one run.

    `should_stop` is asked after every batch; once it says True, training ends there. The run is
    then cancelled, unless `keep_when_stopped` says True: then it is evaluated and saved like any
    finished run, with `metrics["stopped_early"]` set (the Train page's "Stop and keep the model").

    With a `store`, the run is recorded there: a new row is created (with `settings_key`, which
    lets the same run be found later) unless `run_id` names one the job runner already claimed.
    Failures mark the row failed and re-raise.

    With a store, the run also saves a checkpoint after every epoch (lab/train/training_state.py),
    removed once the run completes or is cancelled. `resume=True` continues the stored run `run_id`
    from its checkpoint instead of starting afresh: same config, data split, weights, optimiser
    state and callbacks, from the epoch after the saved one; the result completes that same run.
    """
    emit = on_event or (lambda event: None)
    if resume and (store is None or run_id is None):
        raise ValueError("resuming needs the store and the id of the run to continue.")
    preflight(config)
    if store is not None and run_id is None:
        run_id = store.create_run(config, status="running", settings_key=settings_key)
    precision = devices.precision_for(config)
    try:
        # Only the task's splits live on: when this function loads the data itself, the whole
        # data set is freed once the splits are cut from it (about 150 MB less at the peak).
        task = prepare_task(data if data is not None else load_cifar10(data_dir), config)
        resume_from = checkpoints.checkpoint_to_resume(store.root, run_id, config.to_dict(), task.fingerprint["sha256"]) if resume else None
        # Mixed precision for this run's models only; and once the run ends, nothing of its
        # traced graphs (nor the weights they hold) outlives it in this process (lab/system/process_memory.py).
        with devices.precision_policy(precision), process_memory.releasing_traced_graphs():
            return _train_and_evaluate(
                config,
                precision,
                emit,
                task,
                store,
                run_id,
                should_stop=should_stop,
                keep_when_stopped=keep_when_stopped,
                resume_from=resume_from,
            )
    except BaseException as error:
        if store is not None:
            store.set_status(run_id, "failed", _one_line(error))
        raise


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


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else 'no message'}"


def _train_and_evaluate(
    config: RunConfig, precision: str, emit: EventHandler, task: TaskData, store, run_id, *, should_stop, keep_when_stopped, resume_from
) -> RunResult:
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

    emit(
        {
            "kind": "train_begin",
            "epochs": config.epochs,
            "steps_per_epoch": steps_per_epoch,
            "n_train": len(task.x_train),
            "n_val": len(task.x_val),
            "feature_cache": use_cache,
            "feature_cache_reason": cache_reason,
            "resumed_from_epoch": resume_from.epoch if resume_from else None,
        }
    )
    keep_best = keep_best_epoch(config.epochs) if config.keep_best else None
    callbacks = [*schedule_callbacks(config, steps_per_epoch), *([keep_best] if keep_best else [])]
    # A run with a store saves its state after each epoch, unless it trains on cached features: that takes
    # seconds, and starting again is simpler. The events come last, so an epoch_end means its checkpoint is saved.
    if store is not None and not use_cache:
        callbacks.append(
            EpochCheckpoints(
                store.root, run_id, config.to_dict(), callbacks, emit, data_sha256=task.fingerprint["sha256"], resume_from=resume_from
            )
        )
    events = EventCallback(emit, should_stop, steps_per_epoch)
    callbacks.append(events)
    started = time.perf_counter()
    if use_cache:
        # Only the head trains, on the backbone's stored outputs; each epoch keeps its last, smaller batch.
        features = _features(extractor, config, {"train": task.x_train, "val": task.x_val}, emit)
        train_data = make_dataset(features["train"], task.y_train, config.batch_size, shuffle=True, seed=config.seed)
        val_data = make_dataset(features["val"], task.y_val, config.batch_size, shuffle=False)
    else:
        # The fine-label loss reads each image's CIFAR-10 class and works out the task's label itself.
        y_train, y_val = (task.y_train_fine, task.y_val_fine) if config.fine_labels else (task.y_train, task.y_val)
        train_data = make_dataset(
            task.x_train,
            y_train,
            config.batch_size,
            shuffle=True,
            augment=config.augment,
            seed=config.seed,
            drop_remainder=full_batches_only(n_train, config.batch_size),
        )
        val_data = make_dataset(task.x_val, y_val, config.batch_size, shuffle=False)
    # The datasets shuffle themselves (Keras would warn that its own `shuffle` is ignored for them).
    initial_epoch = resume_from.epoch if resume_from else 0
    fit = trainee.fit(
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    train_seconds = time.perf_counter() - started + (resume_from.train_seconds if resume_from else 0.0)
    history = {name: list(values) for name, values in (resume_from.history if resume_from else {}).items()}
    for name, values in fit.history.items():  # a resumed run's epochs follow the saved ones
        history.setdefault(name, []).extend(float(value) for value in values)

    # A stop request either drops the run or keeps what it has learned so far (evaluated and saved below).
    # Keras still ends the epoch a stop interrupts (validation, history), so that epoch counts as the last.
    epochs_trained = len(history.get("loss", []))
    stopped_early = events.cancelled and keep_when_stopped is not None and bool(keep_when_stopped())
    if events.cancelled and not stopped_early:
        emit({"kind": "train_end", "status": "cancelled", "train_seconds": train_seconds})
        if store is not None:
            store.set_status(run_id, "cancelled", f"cancelled after {epochs_trained} of {config.epochs} epochs")
            checkpoints.remove_checkpoints(store.root, run_id)  # a cancelled run keeps nothing
        return RunResult(run_id, "cancelled", config, history=history, train_seconds=train_seconds, model=model)

    emit({"kind": "train_end", "status": "stopped early" if stopped_early else "completed", "train_seconds": train_seconds})
    if use_cache:
        features.update(_features(extractor, config, {"test": task.x_test}, emit))
        evaluation = evaluate_model(trainee, features["test"], task.y_test, task.class_names, positive_class=positive_class(config.task))
        # Time the whole model, as a user of the saved model will meet it, not the head alone.
        evaluation.metrics["inference_ms_per_image"] = _inference_ms(model, task.x_test[:256])
    else:
        evaluation = evaluate_model(
            model, task.x_test, task.y_test, task.class_names, tta=config.tta, positive_class=positive_class(config.task)
        )
    metrics = {
        **evaluation.metrics,
        **count_params(model),
        "train_seconds": train_seconds,
        "epochs_completed": epochs_trained,
        "stopped_early": stopped_early,
        "class_names": list(task.class_names),
        "feature_cache": use_cache,
        "best_epoch": keep_best.best_epoch + 1 if keep_best is not None and keep_best.best_weights is not None else None,
    }
    emit({"kind": "evaluation", **{k: metrics[k] for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "n_test")}})

    if store is not None:
        environment = devices.describe_environment(precision, strategy_name, xla)
        card = model_card(config.to_dict(), metrics, environment, task.fingerprint, run_id=run_id or "")
        store.complete_run(
            run_id,
            metrics=metrics,
            history=history,
            model=inference_copy(model, config, task.num_classes),
            environment=environment,
            fingerprint=task.fingerprint,
            train_seconds=train_seconds,
            extra_files={"test_probabilities.npy": _npy_bytes(evaluation.probabilities.astype(np.float16)), CARD_FILE: card.encode()},
            message=stopped_early_message(config, epochs_trained) if stopped_early else "",
        )
        checkpoints.remove_checkpoints(store.root, run_id)  # completed: nothing left to resume
    return RunResult(run_id, "completed", config, metrics=metrics, history=history, train_seconds=train_seconds, model=model)


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


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def task_data_for(config: RunConfig, data_dir: str | None = None) -> TaskData:
    """The task's train/val/test split for a config (used to re-evaluate stored runs)."""
    return prepare_task(load_cifar10(data_dir), config)
