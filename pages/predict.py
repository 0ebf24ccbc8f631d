"""Predict: show a trained model a picture of your own, and see what it thinks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lab.data.tasks import task_label_map
from lab.evaluate.predict import MAX_BYTES, MAX_FILES, UPLOAD_EXTENSIONS, predict_files, read_model_card, top_k
from lab.report import charts
from lab.store.runs import ModelFolder, Status, StoreError
from ui import export_view, insight_views, results, run_files, tasks
from ui.charts import show_chart
from ui.common import DEFAULT_MODEL_DIR, get_dataset, get_store, load_default_model, load_model
from ui.pictures import show_picture
from ui.router import ensure_router

ensure_router("pages/predict.py")

DEFAULT = "default"  # the select box's value for the shipped model (never a valid run id)
SOURCES = {"upload": "Upload images", "camera": "Take a photo", "test": "A CIFAR-10 test image"}

st.title("Predict")
try:
    runs = {run.run_id: run for run in get_store().list_runs(status=Status.COMPLETED)}
except StoreError as error:
    st.error(f"The results store cannot be read: {error}")
    runs = {}
choices = {run_id: results.run_label(run) for run_id, run in runs.items()}
if ModelFolder(DEFAULT_MODEL_DIR).model.is_file():
    choices[DEFAULT] = "The model shipped with the lab"
if not choices:
    st.info("There is no trained model yet: train a first model, then come back to try it on your own pictures.", icon=":material/info:")
    st.page_link("pages/train.py", label="Train a first model", icon=":material/model_training:")
    st.stop()

choice = st.selectbox("Model", list(choices), format_func=choices.get, key="predict_run")
if choice == DEFAULT:
    facts = read_model_card(ModelFolder(DEFAULT_MODEL_DIR))
    metrics = facts["metrics"]
else:
    run = runs[choice]
    metrics = run.metrics
    facts = {"class_names": results.class_names_of(run), "accuracy": metrics.get("accuracy"), "task": run.task}
names = list(facts["class_names"])
try:
    model = load_default_model() if choice == DEFAULT else load_model(choice)
except (StoreError, OSError, ValueError, TypeError, KeyError, ImportError) as error:
    st.error(f"This model cannot be loaded ({type(error).__name__}: {error}). Choose another one, or train it again.")
    st.stop()

accuracy = f"right about {facts['accuracy']:.0%} of the time" if facts.get("accuracy") is not None else "of unknown accuracy"
st.info(
    f"This model is {accuracy} on CIFAR-10 test images ({tasks.baseline_words(metrics, names)}), and it only knows these "
    f"{len(names)} classes: {', '.join(names)}. Whatever you show it, it answers with one of them.",
    icon=":material/lightbulb:",
)
tasks.one_class_metrics(metrics, facts["task"])
run_files.show_card(None if choice == DEFAULT else choice)
export_view.export_downloads(None if choice == DEFAULT else choice, "predict")

source = st.segmented_control("Picture", list(SOURCES), format_func=SOURCES.get, default="upload", required=True, key="predict_source")
outcomes, true_class = [], None
# Cropping applies to your own pictures; a CIFAR-10 test image is already 32 x 32.
crop = source != "test" and st.toggle(
    "Crop to the centre square",
    key="predict_crop",
    help="Off: the whole picture is squeezed into 32 x 32 pixels. On: only its centre square is kept.",
)
if source == "upload":
    uploads = st.file_uploader(
        "Images (PNG, JPEG, WebP, BMP or GIF)", type=list(UPLOAD_EXTENSIONS), accept_multiple_files=True,
        max_upload_size=MAX_BYTES // 2**20, key="predict_upload",
    )  # fmt: skip
    if len(uploads or []) > MAX_FILES:
        st.warning(f"Only the first {MAX_FILES} images are classified.")
    outcomes = predict_files(model, [(upload.name, upload.getvalue()) for upload in uploads or []], names, k=5, crop=crop)
elif source == "camera":
    # The camera widget is drawn only once asked for, so the browser does not ask for the camera on page load.
    photo = st.camera_input("Take a photo", key="predict_camera")
    outcomes = predict_files(model, [("camera photo", photo.getvalue())] if photo else [], names, k=5, crop=crop)
else:
    data = get_dataset()
    if data is None:
        st.stop()
    if st.button("Another picture", icon=":material/shuffle:", key="predict_another"):
        st.session_state["predict_test_seed"] = st.session_state.get("predict_test_seed", 0) + 1
    task_labels = task_label_map(facts["task"])[data.y_test]
    rng = np.random.default_rng(st.session_state.get("predict_test_seed", 0))
    index = int(rng.choice(np.flatnonzero(task_labels >= 0)))
    true_class = names[task_labels[index]]
    image = data.x_test[index]
    outcomes = [{"name": f"test image #{index}", "image": image, "top": top_k(model, image[np.newaxis], names, k=5)[0]}]

for number, outcome in enumerate(outcomes):
    if "error" in outcome:
        st.error(outcome["error"], icon=":material/broken_image:")
        continue
    with st.container(border=True):
        original, seen, answer = st.columns([1, 1, 2])
        best, confidence = outcome["top"][0]
        if outcome.get("preview") is not None:
            width, height = outcome["original_size"]
            show_picture(outcome["preview"], f"Your picture {outcome['name']}, {width} x {height} pixels", f"{outcome['name']} ({width} x {height})",
                         width=256, where=original)  # fmt: skip
        show_picture(outcome["image"], f"{outcome['name']} shrunk to the 32 x 32 pixels the model sees; it answers {best}",
                     "What the model sees: 32 x 32 pixels", width=128, where=seen)  # fmt: skip
        answer.markdown(f"**{best}**, {confidence:.0%} sure")
        guesses = pd.DataFrame(outcome["top"], columns=["class", "probability"]).round(3)
        summary = "; ".join(f"{name} {share:.0%}" for name, share in outcome["top"])
        show_chart(
            charts.top_k_chart(outcome["top"]), guesses, title="Its five best guesses", summary=summary, where=answer, width="stretch"
        )
        if true_class is not None:
            verdict = ":green[right]" if best == true_class else ":red[wrong]"
            answer.markdown(f"True class: **{true_class}**: the model is {verdict}.")
        # Computed only when asked for: a heatmap per picture costs a little time each.
        if st.toggle("Why? Show where the model looked and what its layers see", key=f"predict_explain_{number}"):
            insight_views.explain_picture(
                model, outcome["image"], names, key=f"predict_{number}", picture=outcome.get("preview"), crop=crop
            )
