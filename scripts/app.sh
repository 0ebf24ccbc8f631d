#!/usr/bin/env bash
# Start the app on http://localhost:8501, setting up .venv first when needed (scripts/venv.sh: pip runs only
# when the requirements changed, so an installed checkout starts offline). Point CIFAR10_DIR at a
# cifar-10-batches-py folder or cifar-10-python.tar.gz; without it the app lets Keras download CIFAR-10 (online only).
# On a Linux machine with an NVIDIA GPU: LAB_GPU=1 bash scripts/app.sh (TensorFlow's CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv
exec .venv/bin/streamlit run streamlit_app.py "$@"
