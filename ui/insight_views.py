"""Streamlit views for "seeing inside the model": each takes plain values and draws one panel.

The work is done by lab/ (lab.insight.activations, lab.insight.gradcam, lab.insight.lr_finder, lab.insight.freezing);
these functions only lay out widgets and pictures. `key` prefixes every widget key,
so a view can appear twice on a page (for example once per uploaded picture). What runs in the
server's own process and costs seconds (Grad-CAM, the learning-rate sweep) takes a heavy-work slot
first (lab/classroom/heavy_work.py): when none is free, the view says so and to try again.

Where each view belongs:
    Predict page:  gradcam_view, activations_view
    Compare page:  per_class_view, confusion_cell_gallery, filters_view, compare_two_runs_view
    Train page:    freezing_note, lr_finder_panel (runs the sweep) / lr_finder_view (draws a finished one)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Sequence

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from lab.classroom import heavy_work
from lab.classroom.heavy_work import BusyError
from lab.config import RunConfig
from lab.evaluate.metrics import most_confused_pairs
from lab.evaluate.predict import upscale_nearest
from lab.insight import activations, gradcam, heatmaps, layer_taps, lr_finder, misclassified
from lab.report import charts
from lab.report.task_names import task_label
from lab.store.runs import Run
from ui import identity
from ui.charts import show_chart
from ui.help_texts import SETTINGS
from ui.pictures import show_picture, show_pictures

DISPLAY_SIDE = 224  # pixels: how large a 32x32 picture and its heatmap are drawn
COLOUR_KEY = "Dark: the model hardly looked there. Bright: where the model looked most."
GALLERY_LIMIT = 24  # pictures per gallery: enough to see a pattern, few enough to load fast
MAX_CHANNELS = 64  # feature maps drawn per layer; deep layers have hundreds


# ---------------------------------------------------------------- Predict page


def heavy(what: str):
    """A heavy-work slot for this session's person (lab/classroom/heavy_work.py); BusyError when none comes free."""
    return heavy_work.slot(identity.current_person(), what)


def busy_note(error: BusyError) -> None:
    """Say that the server is busy and to try again: never a silent wait."""
    st.info(str(error)[:1].upper() + str(error)[1:], icon=":material/hourglass_top:")


def explain_picture(
    model, image_uint8: np.ndarray, class_names: Sequence[str], key: str, picture: np.ndarray | None = None, crop: bool = False
) -> None:
    """Grad-CAM and the feature maps for one picture, or a sentence when this model cannot be looked into (or the server is busy).

    `picture` is the picture as uploaded (any size; `crop` says whether the model saw only its centre square).
    """
    try:
        with heavy("Grad-CAM"):
            gradcam_view(model, image_uint8, class_names, key, picture=picture, crop=crop)
            activations_view(model, image_uint8, key)
    except BusyError as error:
        busy_note(error)
    except (ValueError, AttributeError) as error:
        st.info(
            f"This model cannot be looked inside, so there is no map of where it looked. (The exact reason: {error})",
            icon=":material/visibility_off:",
        )


def gradcam_view(
    model, image_uint8: np.ndarray, class_names: Sequence[str], key: str, picture: np.ndarray | None = None, crop: bool = False
) -> None:
    """The picture beside the same picture with its Grad-CAM heatmap, for the class the student picks (the model's answer by default).

    The heatmap lies over `picture`, the picture as uploaded, when there is one; else over the
    model's own input, enlarged. One colour scale (dark to bright), a key, and a sentence saying
    where the model looked; the layer and grid behind it are under "More detail".
    """
    top = "the model's answer"
    choice = st.selectbox(
        "Explain which class?",
        [top, *class_names],
        key=f"{key}_gradcam_class",
        help="The heatmap shows what counted for this class: by default the model's own answer, or any other class to see "
        "what would have made the model say that (Grad-CAM).",
    )
    class_index = None if choice == top else list(class_names).index(choice)
    result = gradcam.gradcam(model, image_uint8, class_index, size=DISPLAY_SIDE)
    name = class_names[result.class_index]
    if picture is None:
        shown = upscale_nearest(image_uint8, DISPLAY_SIDE // image_uint8.shape[0])
        drawn = heatmaps.overlay(image_uint8, result.heatmap)
        where = result.heatmap
    else:
        shown = np.asarray(picture.convert("RGB") if hasattr(picture, "convert") else picture, dtype=np.uint8)
        drawn = heatmaps.overlay_on_picture(shown, result.coarse, crop=crop)
        where = heatmaps.smooth_resize(result.coarse, (DISPLAY_SIDE, DISPLAY_SIDE))  # the part the model saw, as drawn
    left, right = st.columns(2)
    sentence = heatmaps.where_sentence(where, name)
    what = "your picture" if picture is not None else "the test picture, enlarged"
    show_picture(shown, what.capitalize(), what, width=DISPLAY_SIDE, where=left)
    looked = f"where the model looked for '{name}' ({result.probability:.0%} sure)"
    show_picture(drawn, f"Heatmap over the picture: {looked}. {sentence}", looked, width=DISPLAY_SIDE, where=right)
    show_picture(heatmaps.colour_bar(DISPLAY_SIDE, 12), f"Colour key: {COLOUR_KEY}", COLOUR_KEY, width=DISPLAY_SIDE, where=right)
    st.markdown(f"**{sentence}** {gradcam.coarse_sentence(result)}")
    with st.expander("More detail"):
        st.caption(result.note)


def activations_view(model, image_uint8: np.ndarray, key: str) -> None:
    """What one convolutional layer computes for the picture: one small grey map per channel."""
    names = layer_taps.conv_layers(model)
    if not names:
        st.caption("This model has no convolutional layers to look into.")
        return
    layer = st.selectbox(
        "Layer", names, index=0, key=f"{key}_activations_layer", help="Early layers see edges and colours; later ones, parts of objects."
    )
    maps = activations.activation_maps(model, image_uint8, layer)
    grid = activations.activation_grid(maps, columns=8, max_channels=MAX_CHANNELS)
    scale = max(1, 480 // grid.shape[1])  # about 480 pixels wide, in whole-pixel steps
    shown = min(maps.shape[-1], MAX_CHANNELS)
    alt = (f"A grid of {shown} grey maps, one per channel of layer {layer}, each {maps.shape[0]} x {maps.shape[1]}: "
           "white where the channel fires strongly on the picture, black where it stays quiet")  # fmt: skip
    show_picture(_grey(grid, 1), alt, width=grid.shape[1] * scale)
    st.caption(
        f"{layer}: {maps.shape[-1]} channels of {maps.shape[0]} x {maps.shape[1]} (first {shown} shown). "
        "White = the channel fires strongly there; each map is scaled on its own."
    )


def _grey(values: np.ndarray, scale: int) -> np.ndarray:
    pixels = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


# ---------------------------------------------------------------- Compare page


def filters_view(model) -> None:
    """The first convolution's filters, enlarged: what the network looks for in the raw pixels."""
    try:
        filters = activations.first_layer_filters(model)
    except ValueError as error:
        st.caption(str(error))
        return
    pictures = np.rint(filters * 255).astype(np.uint8)
    scale = max(1, 48 // filters.shape[1])  # about 48 pixels per filter
    alts = [
        f"Filter {number + 1} of the first convolution, {filters.shape[1]} x {filters.shape[2]} pixels" for number in range(len(pictures))
    ]
    show_pictures(pictures, alts, width=filters.shape[1] * scale)
    st.caption(
        f"The {len(filters)} filters of the first convolution ({filters.shape[1]} x {filters.shape[2]} pixels each, enlarged). "
        "After training they often look like edges and colour blobs; untrained, like noise."
    )


def per_class_view(metrics: dict) -> None:
    """Precision, recall and F1 of every class, and the classes the model mixes up most."""
    per_class = metrics.get("per_class") or []
    if not per_class:
        st.caption("This run has no per-class numbers.")
        return
    table = pd.DataFrame(per_class).set_index("class")
    weakest = table["f1"].idxmin()
    summary = f"Precision, recall and F1 of each class. The hardest class: {weakest} (F1 {table.loc[weakest, 'f1']:.2f})."
    show_chart(charts.per_class_chart(per_class), table.round(3).reset_index(), title="Each class", summary=summary, width="stretch")
    fraction = {
        name: st.column_config.ProgressColumn(name, min_value=0.0, max_value=1.0, format="%.2f") for name in ("precision", "recall", "f1")
    }
    st.dataframe(table, column_config=fraction)
    st.caption("Precision: of the images it called this class, the share that were. Recall: of this class's images, the share it found.")
    names = metrics.get("class_names") or [row["class"] for row in per_class]
    if metrics.get("confusion_matrix"):
        pairs = most_confused_pairs(metrics["confusion_matrix"], names, k=5)
        lines = [
            f"- {p['true']} taken for {p['predicted']}: {p['count']} images ({p['share']:.0%} of the {p['true']} images)" for p in pairs
        ]
        st.markdown("**Most confused pairs**\n" + "\n".join(lines) if lines else "No mistakes at all.")


def mistakes_gallery(
    x_test: np.ndarray, y_test: np.ndarray, probabilities: np.ndarray, indices: Sequence[int], class_names: Sequence[str], model=None
) -> None:
    """Test images with true and predicted class and confidence; with a model, each beside its Grad-CAM."""
    names = list(class_names)
    predicted = probabilities.argmax(axis=1)
    pictures, captions, alts = [], [], []
    with contextlib.ExitStack() as slot:
        if model is not None:
            try:
                slot.enter_context(heavy("Grad-CAM"))
            except BusyError as error:  # the pictures still show, without their heatmaps
                busy_note(error)
                model = None
        for i in indices:
            caption = f"{names[y_test[i]]} → {names[predicted[i]]} ({probabilities[i, predicted[i]]:.0%})"
            pictures.append(x_test[i])
            captions.append(caption)
            alts.append(f"Test picture number {i}, a {names[y_test[i]]}, that the model called {names[predicted[i]]}")
            if model is not None:
                # Where the model looked when it gave its (wrong) answer.
                heat = gradcam.gradcam(model, x_test[i], class_index=int(predicted[i]), size=128)
                pictures.append(heatmaps.overlay(x_test[i], heat.heatmap))
                captions.append(f"where it looked for {names[predicted[i]]}")
                alts.append(f"Heatmap over test picture number {i}: where the model looked for {names[predicted[i]]}")
    if pictures:
        show_pictures(pictures, alts, captions, width=128)
        if model is not None:
            st.caption(COLOUR_KEY)
    else:
        st.caption("No images of this kind.")


def confusion_cell_gallery(
    x_test: np.ndarray, y_test: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], key: str, model=None
) -> None:
    """The test images behind one cell of the confusion matrix; with a model, a Grad-CAM of any of them."""
    names = list(class_names)
    left, right = st.columns(2)
    true_class = names.index(left.selectbox("True class", names, key=f"{key}_cell_true"))
    predicted_class = names.index(right.selectbox("Predicted class", names, index=min(1, len(names) - 1), key=f"{key}_cell_predicted"))
    found = misclassified.confusion_cell(y_test, probabilities, true_class, predicted_class)
    kind = "right answers, surest first" if true_class == predicted_class else "mistakes, most confident first"
    st.caption(f"{len(found)} {names[true_class]} images called {names[predicted_class]} ({kind}).")
    shown = found[:GALLERY_LIMIT]
    if not len(shown):
        return
    captions = [f"#{i}: {probabilities[i, predicted_class]:.0%}" for i in shown]
    alts = [f"Test picture number {i}, a {names[true_class]}, that the model called {names[predicted_class]}" for i in shown]
    show_pictures(x_test[shown], alts, captions, width=96)
    if model is not None:
        index = st.selectbox("Explain one of them", shown.tolist(), format_func=lambda i: f"#{i}", key=f"{key}_cell_explain")
        gradcam_view(model, x_test[index], names, key=f"{key}_cell_{index}")


def two_runs_section(runs: list[Run], data, label: Callable[[str], str], test_predictions: Callable) -> None:
    """Pick two finished runs of the same task and compare them on the same test images."""
    if data is None:
        return
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)
    comparable = {task: group for task, group in by_task.items() if len(group) >= 2}
    if not comparable:
        st.caption("Train two runs of the same task to compare them image by image.")
        return
    task = st.selectbox("Task", list(comparable), format_func=task_label, key="compare_two_task")
    ids = [run.run_id for run in comparable[task]]
    left, right = st.columns(2)
    first = left.selectbox("Run A", ids, format_func=label, key="compare_two_a")
    second = right.selectbox("Run B", [i for i in ids if i != first], format_func=label, key="compare_two_b")
    runs_by_id = {run.run_id: run for run in comparable[task]}
    try:
        x_test, y_test, probs_a = test_predictions(data.source, runs_by_id[first])
        _, _, probs_b = test_predictions(data.source, runs_by_id[second])
    except BusyError as error:
        busy_note(error)
        return
    except (OSError, ValueError) as error:
        st.warning(f"These runs cannot be compared here: {error}")
        return
    names = list(runs_by_id[first].metrics.get("class_names") or [])
    if len(names) != probs_a.shape[1] or probs_a.shape != probs_b.shape:
        st.warning("These two runs were tested on different images, so they cannot be compared image by image.")
        return
    compare_two_runs_view(x_test, y_test, probs_a, probs_b, names, labels=("A", "B"))


def compare_two_runs_view(
    x_test: np.ndarray,
    y_test: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    class_names: Sequence[str],
    labels: tuple[str, str] = ("A", "B"),
) -> None:
    """Two runs on the same test images: how often they agree, class by class, and the images only one gets right."""
    split = misclassified.disagreements(y_test, probs_a, probs_b)
    columns = st.columns(4)
    columns[0].metric("Both right", f"{split['both_right']:,}")
    columns[1].metric("Both wrong", f"{split['both_wrong']:,}")
    columns[2].metric(f"Only {labels[0]} right", f"{len(split['a_right_b_wrong']):,}")
    columns[3].metric(f"Only {labels[1]} right", f"{len(split['b_right_a_wrong']):,}")
    rows = misclassified.compare_per_class(y_test, probs_a, probs_b, class_names)
    frame = pd.DataFrame(rows).rename(columns={"accuracy_a": labels[0], "accuracy_b": labels[1]})
    gaps = (frame[labels[0]] - frame[labels[1]]).abs()
    widest = frame.loc[gaps.idxmax()]
    summary = (f"Accuracy of each class for both runs. The widest gap: {widest['class']}, {widest[labels[0]]:.0%} for {labels[0]} "
               f"against {widest[labels[1]]:.0%} for {labels[1]}.")  # fmt: skip
    table = frame[["class", *labels]].round(3)
    show_chart(_per_class_comparison_chart(rows, labels), table, title="Each class, both runs", summary=summary, width="stretch")
    names = list(class_names)
    for tab, (field, right, wrong) in zip(
        st.tabs([f"{labels[0]} right, {labels[1]} wrong", f"{labels[1]} right, {labels[0]} wrong"]),
        (("a_right_b_wrong", labels[0], probs_b), ("b_right_a_wrong", labels[1], probs_a)),
        strict=True,
    ):
        shown = split[field][:GALLERY_LIMIT]
        if not len(shown):
            tab.caption("None.")
            continue
        captions = [f"{names[y_test[i]]}; the other said {names[wrong[i].argmax()]} ({wrong[i].max():.0%})" for i in shown]
        alts = [
            f"Test picture number {i}, a {names[y_test[i]]}: {right} gets it right, the other says {names[wrong[i].argmax()]}"
            for i in shown
        ]
        show_pictures(x_test[shown], alts, captions, width=96, where=tab)
        tab.caption(f"Only {right} gets these right; the other run's most confident mistakes first.")


def _per_class_comparison_chart(rows: list[dict], labels: tuple[str, str]) -> alt.Chart:
    frame = pd.DataFrame(rows).rename(columns={"accuracy_a": labels[0], "accuracy_b": labels[1]})
    frame = frame.melt(id_vars=["class"], value_vars=list(labels), var_name="run", value_name="accuracy")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None, title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("run:N", sort=list(labels)),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="accuracy"),
            color=alt.Color("run:N", sort=list(labels), scale=alt.Scale(scheme=charts.CATEGORY_SCHEME), title=None),
            tooltip=["class:N", "run:N", alt.Tooltip("accuracy:Q", format=".1%")],
        )
        .properties(height=260)
    )


# ---------------------------------------------------------------- Train page


@st.cache_data(show_spinner="Building the network ...", max_entries=32)
def _freezing_text(config_json: str, num_classes: int) -> str:
    from lab.insight.freezing import freezing_summary
    from lab.models.registry import build_model

    config = RunConfig.from_dict(json.loads(config_json))
    # Random weights build quickly and offline; the note's numbers do not depend on the weights' values.
    model = build_model(dataclasses.replace(config, weights="none"), num_classes)
    return freezing_summary(model, config)


def freezing_note(config: RunConfig) -> None:
    """What learns and what stays fixed under this config: one plain sentence, and the counts and costs under "More detail"."""
    text = _freezing_text(json.dumps(config.to_dict(), sort_keys=True), len(config.class_names))
    plain, *details = text.splitlines()
    st.info(plain, icon=":material/ac_unit:")
    if details:
        with st.expander("More detail: what learns, and what it costs"):
            st.markdown("\n".join(f"- {line}" for line in details))


def lr_finder_view(curve: dict, key: str, on_use: Callable[[float], None] | None = None) -> None:
    """A finished sweep: the smoothed loss against the learning rate (log scale) and the suggestion.

    With `on_use`, a button hands the suggestion to it (for example to set the Train page's
    learning-rate widget from an on_click callback, which Streamlit allows).
    """
    frame = pd.DataFrame({"learning rate": curve["learning_rates"], "loss": curve["losses"]})
    line = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("learning rate:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e")),
            y=alt.Y("loss:Q", scale=alt.Scale(zero=False)),
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"learning rate": [curve["suggestion"]]}))
        .mark_rule(color="#e45756", strokeDash=[4, 3])
        .encode(x="learning rate:Q")
    )
    summary = (f"The loss (smoothed) at {len(frame)} learning rates from {frame['learning rate'].min():.1e} to "
               f"{frame['learning rate'].max():.1e}; the suggestion, {curve['suggestion']:.1e}, is the dashed line.")  # fmt: skip
    show_chart((line + rule).properties(height=260), frame, title="Loss against learning rate", summary=summary, width="stretch")
    st.markdown(f"**Suggested learning rate: {curve['suggestion']:.1e}** ({curve['method']}; dashed line).")
    if curve.get("note"):
        st.warning(curve["note"], icon=":material/warning:")
    note = "The loss exploded, so the sweep stopped early. " if curve.get("stopped_early") else ""
    st.caption(
        note + "Too small a rate barely moves the loss; too large a rate makes it shoot up. The suggestion sits where it falls fastest."
    )
    if on_use is not None:
        st.button(
            "Use this learning rate",
            on_click=on_use,
            args=(curve["suggestion"],),
            icon=":material/check:",
            key=f"{key}_lr_use",
            help=SETTINGS["lr_use"],
        )


def lr_finder_panel(config: RunConfig, data, key: str, on_use: Callable[[float], None] | None = None) -> None:
    """A button that runs the learning-rate sweep for `config` (a few seconds to a minute) and shows its curve.

    The sweep runs in this script run, with a progress bar; only its curve (about
    100 numbers) is kept, in session state, so a rerun redraws it without sweeping again.
    """
    state_key = f"{key}_lr_curve"
    if st.button("Find a learning rate", icon=":material/query_stats:", key=f"{key}_lr_find", help=SETTINGS["lr_find"]):
        progress = st.progress(0.0, text="Sweeping the learning rate ...")

        def show(event: dict) -> None:
            progress.progress(event["step"] / event["steps"], text=f"learning rate {event['learning_rate']:.1e}: loss {event['loss']:.3f}")

        try:
            with heavy("the learning-rate finder"):
                st.session_state[state_key] = {"sweep": _sweep_settings(config), "curve": lr_finder.lr_find(config, data, on_event=show)}
        except BusyError as error:
            busy_note(error)
        progress.empty()
    saved = st.session_state.get(state_key)
    # A curve stays valid while the settings it was swept with stay; choosing a learning rate does not change them.
    if saved and saved["sweep"] == _sweep_settings(config):
        lr_finder_view(saved["curve"], key, on_use)


def _sweep_settings(config: RunConfig) -> dict:
    ignored = ("learning_rate", "lr_schedule", "epochs", "ema", "tta", "fine_labels")  # the sweep overrides or never uses these
    return {name: value for name, value in config.to_dict().items() if name not in ignored}
