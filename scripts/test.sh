#!/usr/bin/env bash
# Run everything CI runs: lint, format check, tests; .venv is set up first when needed (scripts/venv.sh).
# Browser tests need Debian's chromium (`apt-get install -y chromium`); without it they skip,
# except under CI=true, where a missing browser is a failure. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv requirements-dev.txt
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
