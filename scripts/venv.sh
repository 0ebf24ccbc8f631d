# Sourced by scripts/app.sh and scripts/test.sh: make .venv ready to use, then return.
#   ensure_venv requirements-dev.txt   # the TensorFlow build's file, plus these
# 1. A .venv that is complete (its Python runs, is a version we support, and has pip) is kept;
#    a half-made one (a first try that stopped, e.g. without python3-venv) is removed and made again.
# 2. pip runs only when something is missing: when the fingerprint of pyproject.toml and the requirement
#    files kept inside .venv matches, or when every declared dependency is found installed at a version
#    it allows (scripts/deps.py), the app starts without pip, and so offline.
# Written for bash 3.2 too (macOS's own bash).

SUPPORTED_PYTHONS="3.11 3.12 3.13"  # TensorFlow 2.21 has wheels for 3.10-3.13; the code needs 3.11 or newer
VENV_PYTHON=.venv/bin/python
STAMP=.venv/cifar10-lab-requirements.sha256

python_version() {  # "3.12" for a working interpreter, nothing otherwise (never a failure: callers run under set -e)
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

is_supported() {
  case " $SUPPORTED_PYTHONS " in *" $1 "*) [ -n "$1" ] ;; *) return 1 ;; esac
}

pick_python() {  # sets PY to the first supported interpreter: $PYTHON if set, else python3.13 ... python3
  local candidates found="" candidate version
  if [ -n "${PYTHON:-}" ]; then candidates="$PYTHON"; else candidates="python3.13 python3.12 python3.11 python3"; fi
  for candidate in $candidates; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    version=$(python_version "$candidate")
    if is_supported "$version"; then PY=$candidate; return 0; fi
    found="$found $candidate (${version:-does not run})"
  done
  echo "CIFAR-10 Lab needs Python 3.11, 3.12 or 3.13 (TensorFlow 2.21 publishes wheels for 3.10 to 3.13," >&2
  echo "and this code uses Python 3.11 features). Found:${found:- no python3 on PATH}." >&2
  echo "Install one (python.org; Debian/Ubuntu: sudo apt install python3.12 python3.12-venv;" >&2
  echo "macOS: brew install python@3.12), or name it: PYTHON=/path/to/python3.12 bash $0" >&2
  exit 1
}

venv_is_complete() {
  [ -x "$VENV_PYTHON" ] && is_supported "$(python_version "$VENV_PYTHON")" && "$VENV_PYTHON" -m pip --version >/dev/null 2>&1
}

tensorflow_file() {  # which file installs TensorFlow: requirements-gpu.txt (CUDA build) or requirements.txt
  if [ "${LAB_GPU:-}" = 1 ]; then echo requirements-gpu.txt; return; fi
  # A .venv set up by hand with requirements-gpu.txt keeps its build: on Linux x86-64 the CPU build
  # is tensorflow-cpu, so a plain "tensorflow" there is the CUDA one.
  if [ -x "$VENV_PYTHON" ] && [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] &&
    "$VENV_PYTHON" -c 'import importlib.metadata as m; m.version("tensorflow")' >/dev/null 2>&1; then
    echo requirements-gpu.txt
  else
    echo requirements.txt
  fi
}

refuse_intel_mac() {  # before anything is made: pip would only fail later, on a missing TensorFlow wheel
  if [ "$(uname -s)-$(uname -m)" = Darwin-x86_64 ]; then
    echo "TensorFlow 2.21 publishes no wheel for Intel Macs, so the lab cannot be installed on this Mac." >&2
    echo "README.md, \"Installing\", says what works instead: a classroom server, Docker, or Colab." >&2
    exit 1
  fi
}

ensure_venv() {
  refuse_intel_mac
  if [ -e .venv ] && ! venv_is_complete; then
    echo "The .venv folder is incomplete or made with an unsupported Python: making it again." >&2
    rm -rf .venv
  fi
  if [ ! -e .venv ]; then
    pick_python
    echo "Creating .venv with $PY ($(python_version "$PY"))" >&2
    if ! "$PY" -m venv .venv || ! venv_is_complete; then
      rm -rf .venv
      echo "Could not create .venv with $PY. On Debian/Ubuntu install the venv module first:" >&2
      echo "  sudo apt install python$(python_version "$PY")-venv" >&2
      exit 1
    fi
  fi
  local files wanted
  files="$(tensorflow_file) $*"
  # shellcheck disable=SC2086 - the file names have no spaces
  wanted=$("$VENV_PYTHON" scripts/deps.py hash $files)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
    return 0  # installed from these very files: no pip, no network
  fi
  # shellcheck disable=SC2086
  if "$VENV_PYTHON" scripts/deps.py installed $files >/dev/null; then
    echo "$wanted" >"$STAMP"  # installed by other means (pip by hand, an earlier version of this script)
    return 0
  fi
  # The two TensorFlow builds must never share an environment: drop the one this install does not use.
  case "$files" in
    requirements-gpu.txt*) "$VENV_PYTHON" -m pip uninstall -y -q tensorflow-cpu >/dev/null 2>&1 || true ;;
    *) if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then "$VENV_PYTHON" -m pip uninstall -y -q tensorflow >/dev/null 2>&1 || true; fi ;;
  esac
  echo "Installing the requirements ($files) into .venv" >&2
  local args="" file
  for file in $files; do args="$args -r $file"; done
  # shellcheck disable=SC2086
  "$VENV_PYTHON" -m pip install -q --disable-pip-version-check $args
  echo "$wanted" >"$STAMP"
}
