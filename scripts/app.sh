#!/usr/bin/env bash
# Set up a virtual environment (once) and start the app on http://localhost:8501.
# Point CIFAR10_DIR at a cifar-10-batches-py folder or cifar-10-python.tar.gz; without it the
# app lets Keras download CIFAR-10 (online only).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/streamlit run streamlit_app.py "$@"
