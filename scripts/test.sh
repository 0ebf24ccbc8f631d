#!/usr/bin/env bash
# Set up a virtual environment (once) and run everything CI runs: lint, format check, tests.
# Browser tests need Debian's chromium (`apt-get install -y chromium`); without it they skip,
# except under CI=true, where a missing browser is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
