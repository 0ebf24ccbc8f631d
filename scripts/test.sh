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
# Test files run in parallel processes (pytest-xdist), one file per process at a time, so a module's server and
# fixtures stay in one process: as many processes as cores, at most 4 (each imports TensorFlow, about 2 GB).
# LAB_TEST_PROCESSES=0 runs everything in this one process, as a debugger wants.
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
processes=${LAB_TEST_PROCESSES:-$(( cores < 4 ? cores : 4 ))}
# --no-loadscope-reorder: modules go out in collection order, longest first (tests/conftest.py says why).
.venv/bin/python -m pytest -n "$processes" --dist loadfile --no-loadscope-reorder "$@"
