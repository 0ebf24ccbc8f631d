"""`python -m lab export RUN_ID OUT.zip`: a completed run as a zip that opens without this project (lab/export/)."""

from __future__ import annotations

from lab.store.runs import Store


def cmd_export(args) -> int:
    """Write the run's zip: the model as Keras, SavedModel, LiteRT and ONNX, its notebook and script, its card and records."""
    from lab.export.bundle import export_run  # TensorFlow loads only for this command

    path = export_run(Store(), args.run_id, args.path)
    print(f"exported {args.run_id} to {path}: model.keras, saved_model/, model.tflite, model.onnx, notebook.ipynb, train.py, README.md")
    return 0
