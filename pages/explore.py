"""Explore: look at CIFAR-10 before training on it: samples, class balance, averages, augmentation."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lab.config import CLASS_NAMES, ONE_VS_REST, task_class_names
from lab.data import stats as data_stats
from lab.data.pipeline import augmentation_preview
from lab.report.charts import class_balance_chart
from ui.charts import show_chart
from ui.common import get_dataset
from ui.pictures import show_pictures
from ui.router import ensure_router
from ui.tasks import DEFAULT_ONE_CLASS, TASK_KINDS, one_class_of, show_imbalance_note

ensure_router("pages/explore.py")

SCALE = 3  # 32 px -> 96 px, every pixel a sharp 3x3 block

st.title("Explore CIFAR-10")
data = get_dataset()
if data is None:
    st.info(
        "This page shows CIFAR-10's pictures once the data set is on this machine: follow the steps above, "
        "then reload the page. The Predict page works without it when a trained model is stored.",
        icon=":material/info:",
    )
    st.stop()


# Derived tables are cached by small arguments (a task name, a seed); the 150 MB arrays
# come from the cached data set inside, so Streamlit never hashes them.
# `source` (where the data came from) is part of each key, so another data set never reuses them.
@st.cache_data(show_spinner="Averaging the training images ...")
def _class_stats(source: str) -> data_stats.ClassStats:
    dataset = get_dataset()
    return data_stats.class_stats(dataset.x_train, dataset.y_train)


@st.cache_data(max_entries=32)
def _augmented(source: str, index: int, draws: int, seed: int):
    return augmentation_preview(get_dataset().x_train[index], draws, seed)


st.caption(f"{len(data.x_train):,} training and {len(data.x_test):,} test images, 32 x 32 pixels each, read from {data.source}.")
kind = st.segmented_control("Task", list(TASK_KINDS), format_func=TASK_KINDS.get, default="cifar10", required=True, key="explore_task")
task = kind
if kind == "one-vs-rest":
    one_class = st.columns(2)[0].selectbox(  # as wide as one of the pair's two pickers
        "The one class", CLASS_NAMES, index=CLASS_NAMES.index(DEFAULT_ONE_CLASS), key="explore_one_class",
        help="This class against the nine others together, as in the lab report's binary task.",
    )  # fmt: skip
    task = f"{ONE_VS_REST}{one_class}"
elif kind == "pair":
    left, right = st.columns(2)
    first = left.selectbox("First class", CLASS_NAMES, index=CLASS_NAMES.index("cat"), key="explore_pair_a")
    second = right.selectbox("Second class", CLASS_NAMES, index=CLASS_NAMES.index("dog"), key="explore_pair_b")
    if first == second:
        st.warning("Pick two different classes.")
        st.stop()
    task = f"pair:{first},{second}"
task_names = task_class_names(task)
label_map = data_stats.task_classes_of(task)  # CIFAR-10 class -> task class

samples, balance, averages, augmentation = st.tabs(
    ["Samples", "Class balance", "Average images", "Augmentation"], key="explore_tab", on_change="rerun"
)

if samples.open:
    with samples:
        available = list(label_map)
        chosen = st.multiselect("Classes", available, default=available, key=f"explore_classes_{task}")
        per_class, seed_column = st.columns([3, 1], vertical_alignment="bottom")
        count = per_class.slider("Pictures per class", 1, 16, 8, key="explore_per_class")
        if seed_column.button("Reshuffle", icon=":material/shuffle:", key="explore_reshuffle"):
            st.session_state["explore_seed"] = st.session_state.get("explore_seed", 0) + 1
        seed = st.session_state.get("explore_seed", 0)
        st.caption(f"Training images, enlarged {SCALE}x without smoothing so you see the real pixels. Shuffle {seed}.")
        for name, indices in data_stats.sample_indices(data.y_train, chosen, count, seed).items():
            heading = name if label_map[name] == name else f"{name} (task class: {label_map[name]})"
            st.markdown(f"**{heading}**")
            alts = [f"Training picture number {i}, a {name}" for i in indices]
            show_pictures(data.x_train[indices], alts, [f"#{i}" for i in indices], width=32 * SCALE)

if balance.open:
    with balance:
        counts = pd.DataFrame(data_stats.class_balance(data.y_train, data.y_test, task))
        table = counts.pivot(index="class", columns="split", values="images").reindex(task_names)[["train", "test"]]
        fewest, most = table["train"].idxmin(), table["train"].idxmax()
        summary = (f"Bars: training and test images of each of the {len(table)} classes. Fewest training images: {fewest} "
                   f"({table.loc[fewest, 'train']:,}); most: {most} ({table.loc[most, 'train']:,}).")  # fmt: skip
        show_chart(class_balance_chart(counts), table, title="Images per class", summary=summary, width="stretch")
        if counts.groupby("split")["images"].nunique().max() > 1:
            test_counts = table["test"]
            majority_share = float(test_counts.max() / test_counts.sum())
            if one_class := one_class_of(task):
                found, others = max(int(table.loc[one_class, "train"]), 1), int(table.loc[f"not {one_class}", "train"])
                st.markdown(
                    f"**1 {one_class} picture for every {others / found:.0f} others**: {found:,} {one_class} pictures against "
                    f"{others:,} others among the training images, a 1 : {others / found:.0f} imbalance."
                )
            else:
                st.caption(
                    f"The classes are not balanced: always answering “{test_counts.idxmax()}” is right {majority_share:.0%} of the "
                    "time on the test images, so compare any accuracy with that, and look at macro F1 too."
                )
            show_imbalance_note(task, majority_share)  # for a lopsided task: why its accuracy can mean nothing
        else:
            st.caption(
                f"Every class has the same number of images, so a model that guesses at random is right 1 time in {len(task_names)}."
            )

if averages.open:
    with averages:
        stats = _class_stats(data.source)
        means = data_stats.task_mean_images(stats, task)
        st.markdown("**The average picture of each class** (training images). Blurry shapes mean varied pictures; "
                    "a clear colour (blue sky, green grass) is a clue the model can learn.")  # fmt: skip
        alts = [f"The average of all training pictures of class {name}: a blurred colour patch" for name in task_names]
        show_pictures(means, alts, list(task_names), width=32 * SCALE)
        st.markdown("**Pixel statistics per colour channel**, over the task's training images")
        st.dataframe(pd.DataFrame(data_stats.pixel_statistics(stats, task)).set_index("channel").round(3), width="content")
        st.caption(
            "A model's first layer rescales pixels from 0-255 to a small range; the backbones' own preprocessing uses numbers like these."
        )

if augmentation.open:
    with augmentation:
        st.markdown("Training with **augmentation** shows the model a randomly mirrored and shifted copy of each image "
                    "every epoch, so it learns the object rather than its exact position. This is the same code training runs.")  # fmt: skip
        pick, number, draws_column, again = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
        name = pick.selectbox("Class", list(label_map), key="explore_aug_class")
        options = data_stats.sample_indices(data.y_train, [name], 50, 0)[name]
        which = number.number_input("Picture", 1, len(options), 1, key="explore_aug_pick")
        draws = draws_column.slider("Random draws", 2, 12, 6, key="explore_aug_draws")
        if again.button("New draws", icon=":material/casino:", key="explore_aug_again"):
            st.session_state["explore_aug_seed"] = st.session_state.get("explore_aug_seed", 0) + 1
        index = options[int(which) - 1]
        with st.spinner("Augmenting ..."):
            augmented = _augmented(data.source, index, draws, st.session_state.get("explore_aug_seed", 0))
        show_pictures(data.x_train[[index]], [f"Training picture number {index}, a {name}, as stored"], [f"original #{index}"], 32 * SCALE)
        alts = [f"Random draw {i + 1}: the same {name} picture, maybe mirrored and shifted" for i in range(draws)]
        show_pictures(augmented, alts, [f"draw {i + 1}" for i in range(draws)], width=32 * SCALE)
