"""The Train page's look at the chosen network before it trains: its layers, its size, its likely duration.

The network is built once per architecture (with random weights, so this works
offline) and its layer table cached; the freeze-depth slider then only re-marks
which backbone rows are frozen, so moving it updates the table at once, even for
ResNet50, without building anything again.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lab.config import RunConfig
from lab.jobs import launcher
from lab.jobs.progress import format_seconds
from lab.store.runs import RunStore
from lab.system import hardware
from lab.train import estimate
from lab.train import memory as resources
from ui.common import device_summary
from ui.help_texts import SETTINGS

HELP_MEASURE = SETTINGS["measure"]

# Networks cheap enough to time on every change of settings (about a second on a
# 2-core CPU); bigger ones are timed when the user asks, as that takes 5-15 s.
AUTO_MEASURE_BACKBONES = ("seed-cnn",)
AUTO_MEASURE_MAX_INPUT = 64


@st.cache_data(show_spinner=False, max_entries=64)
def layer_count(backbone: str, input_size: int) -> int:
    """How many backbone layers the freeze-depth slider can cover."""
    from lab.models.registry import backbone_layer_count

    return backbone_layer_count(backbone, input_size)


@st.cache_data(show_spinner="Building the network ...", max_entries=16)
def _layer_rows(backbone: str, head: str, input_size: int, dropout: float, num_classes: int, width: float | None = None) -> list[dict]:
    """describe_layers of the network with every layer trainable (freezing is applied afterwards)."""
    from lab.models.registry import build_model, describe_layers

    config = RunConfig(
        model="custom", backbone=backbone, head=head, input_size=input_size, dropout=dropout, width=width, weights="none", freeze_depth=0
    )
    return describe_layers(build_model(config, num_classes))


def frozen_rows(rows: list[dict], freeze_depth: int | None) -> list[dict]:
    """The layer rows as `freeze_depth` leaves them: backbone layer i is frozen when i < depth (all when None)."""
    marked = []
    for row in rows:
        frozen = row["part"] == "backbone" and (freeze_depth is None or row["index"] < freeze_depth)
        marked.append({**row, "trainable": row["trainable"] and not frozen, "trainable_params": 0 if frozen else row["trainable_params"]})
    return marked


def check_memory(config: RunConfig, store: RunStore) -> None:
    """ValueError (what to lower, in a sentence) when the run would not fit in this server's memory.

    A queued run trains in a job worker, so the memory the live workers hold counts as
    available: the current run frees it, or the same worker reuses it, before this one starts.
    """
    budget = hardware.memory_budget_mb(launcher.live_workers(store))
    resources.check_fits(config, available_mb=budget, on_gpu=bool(device_summary()["gpus"]))


def show_layers(config: RunConfig) -> None:
    """The network's size in one line, and its layer table in an expander. ValueError if it cannot be built."""
    rows = frozen_rows(
        _layer_rows(config.backbone, config.head, config.input_size, config.dropout, len(config.class_names), config.width),
        config.freeze_depth,
    )
    total, trainable = sum(row["params"] for row in rows), sum(row["trainable_params"] for row in rows)
    st.markdown(
        f":material/layers: **{total:,} parameters**: {trainable:,} learn, {total - trainable:,} frozen "
        f"({len(rows)} layers, {sum(row['part'] == 'backbone' for row in rows)} of them in the backbone)"
    )
    with st.expander("The network, layer by layer"):
        table = pd.DataFrame(rows)[["part", "index", "name", "type", "output_shape", "params", "trainable"]]
        st.dataframe(
            table,
            hide_index=True,
            height=320,
            column_config={
                "index": st.column_config.NumberColumn("#", help="Backbone layer number: the freeze depth counts these."),
                "output_shape": "output shape",
                "params": st.column_config.NumberColumn("parameters", format="localized"),
                "trainable": st.column_config.CheckboxColumn("learns"),
            },
        )
        st.caption("Built with random weights, so this view works offline; pretrained weights do not change the layers.")


def weights_hint(config: RunConfig) -> None:
    """Say before the start, not after a failed job, when ImageNet weights must still be downloaded."""
    if config.weights != "imagenet":
        return
    from lab.models.pretrained import imagenet_weights_file, keras_home

    wanted = imagenet_weights_file(config.backbone, config.input_size)
    if not (keras_home() / "models" / wanted.file_name).is_file():
        st.info(
            f"The ImageNet weights ({wanted.file_name}) are not on this server yet: the job downloads them first, "
            'which needs internet. Offline, copy the file into ~/.keras/models/ or choose weights "none".',
            icon=":material/cloud_download:",
        )


@st.cache_data(show_spinner="Timing one training step ...", max_entries=64)
def _step_seconds(speed_fields: tuple) -> float:
    return estimate.measure_step_seconds(RunConfig(**dict(speed_fields)))


def _speed_key(config: RunConfig) -> tuple:
    """The settings a step's duration depends on (not the epochs, the seed or the data size)."""
    # augment and tta also decide whether a frozen backbone's features are cached (lab/train/feature_cache.py).
    fields = [
        "task",
        "backbone",
        "head",
        "input_size",
        "width",
        "freeze_depth",
        "dropout",
        "batch_size",
        "optimizer",
        "label_smoothing",
        "augment",
        "tta",
        "ema",
        "precision",
    ]
    return tuple((name, getattr(config, name)) for name in fields) + (("model", "custom"), ("weights", "none"))


def show_estimate(config: RunConfig, runs: list[dict]) -> None:
    """The run's likely duration: from past runs of the same network, else from one timed step."""
    from lab.train.devices import choose_precision

    device = device_summary()  # cached: GPUs are looked up once per server
    guess = estimate.from_past_runs(runs, config, device=device["device"], precision=choose_precision(config, device["gpus"]))
    if guess is None:
        key = _speed_key(config)
        measured = st.session_state.setdefault("train_measured_speeds", set())
        cheap = config.backbone in AUTO_MEASURE_BACKBONES and config.input_size <= AUTO_MEASURE_MAX_INPUT
        label = "Estimate the duration (times one training step, 5-15 s)"
        if key not in measured and not cheap and not st.button(label, key="trainbtn_measure", icon=":material/timer:", help=HELP_MEASURE):
            return
        measured.add(key)
        guess = estimate.from_step_time(_step_seconds(key), config)
    n_train, n_val = estimate.split_sizes(config)
    st.markdown(
        f":material/timer: **About {format_seconds(guess.seconds)}** of training for {config.epochs} epoch(s) on "
        f"{n_train:,} images (+ {n_val:,} for validation), plus about {estimate.STARTUP_SECONDS} s to start."
    )
    st.caption(f"Estimate {guess.source}.")
