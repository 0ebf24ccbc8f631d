"""The start scripts' paths (scripts/app.sh, scripts/test.sh, scripts/venv.sh), run for real in a copy of the project.

Nothing is really installed: the copy's .venv holds a fake `python` that logs every `-m pip` and
`-m pytest` call (and answers as pip would, online or offline) and passes anything else to this
test's own Python, and a fake `streamlit` that logs how it was started. So each test can say whether
pip ran, with which files, and whether the app started.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ["pyproject.toml", "requirements.txt", "requirements-gpu.txt", "requirements-dev.txt", "requirements-cluster.txt"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the bash scripts; scripts/*.ps1 are their Windows twins")

# The .venv's interpreter: pip and pytest only log (pip install fails with FAKE_PIP_RC, as offline); the rest is real Python.
FAKE_VENV_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = pip ]; then
  echo "pip ${*:3}" >>"$FAKE_LOG"
  if [ "$3" = install ] && [ "${FAKE_PIP_RC:-0}" != 0 ]; then echo "ERROR: No matching distribution found" >&2; exit "$FAKE_PIP_RC"; fi
  exit 0
fi
if [ "$1" = -m ] && [ "$2" = pytest ]; then echo "pytest ${*:3}" >>"$FAKE_LOG"; exit 0; fi
exec "$REAL_PYTHON" "$@"
"""
# A system Python that makes fake .venvs (or, with FAKE_VENV_FAILS, a half-made one, as Debian does without python3-venv).
FAKE_SYSTEM_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = venv ]; then
  echo "venv $3" >>"$FAKE_LOG"
  mkdir -p "$3/bin"
  if [ -n "${FAKE_VENV_FAILS:-}" ]; then echo "ensurepip is not available" >&2; exit 1; fi
  cp "$FAKE_DIR/venv-python" "$3/bin/python"; cp "$FAKE_DIR/streamlit" "$3/bin/streamlit"; cp "$FAKE_DIR/ruff" "$3/bin/ruff"
  exit 0
fi
exec "$REAL_PYTHON" "$@"
"""
FAKE_OLD_PYTHON = """#!/usr/bin/env bash
echo "old python $*" >>"$FAKE_LOG"
echo 3.9
"""
FAKE_STREAMLIT = """#!/usr/bin/env bash
echo "streamlit $*" >>"$FAKE_LOG"
"""
FAKE_RUFF = """#!/usr/bin/env bash
echo "ruff $*" >>"$FAKE_LOG"
"""


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class Project:
    """A copy of the project's install files and scripts, with fakes for pip, streamlit and the interpreters."""

    def __init__(self, root: Path):
        self.root = root / "project"
        self.fakes = root / "fakes"
        self.log = root / "log.txt"
        shutil.copytree(ROOT / "scripts", self.root / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
        for name in PROJECT_FILES:
            shutil.copy(ROOT / name, self.root / name)
        for name, text in [
            ("venv-python", FAKE_VENV_PYTHON),
            ("python3.12", FAKE_SYSTEM_PYTHON),
            ("python3.9", FAKE_OLD_PYTHON),
            ("streamlit", FAKE_STREAMLIT),
            ("ruff", FAKE_RUFF),
        ]:
            _write_executable(self.fakes / name, text)

    def make_venv(self) -> None:
        """A complete .venv, as the fake system Python makes it."""
        for name, fake in [("python", "venv-python"), ("streamlit", "streamlit"), ("ruff", "ruff")]:
            _write_executable(self.root / ".venv" / "bin" / name, (self.fakes / fake).read_text())

    def run(self, script: str = "app.sh", *args: str, **env: str) -> subprocess.CompletedProcess:
        self.log.write_text("")
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "FAKE_LOG": str(self.log),
            "FAKE_DIR": str(self.fakes),
            "REAL_PYTHON": sys.executable,
            **env,
        }
        return subprocess.run(
            ["bash", f"scripts/{script}", *args], cwd=self.root, env=environment, capture_output=True, text=True, timeout=60
        )

    def calls(self, program: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith(program + " ")]

    def pip_installs(self) -> list[str]:
        return [line for line in self.calls("pip") if line.startswith("pip install")]

    @property
    def stamp(self) -> Path:
        return self.root / ".venv" / "cifar10-lab-requirements.sha256"


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def _add_missing_dependency(project: Project, name: str = "not-installed-anywhere-h33b") -> None:
    """A dependency this environment lacks, so only pip (the fake) can satisfy it."""
    pyproject = project.root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('    "keras==3.15.*",', f'    "keras==3.15.*",\n    "{name}>=1,<2",', 1))
    assert name in pyproject.read_text()


@pytest.mark.slow
def test_installed_venv_starts_offline_without_pip(project):
    project.make_venv()
    _add_missing_dependency(project)
    first = project.run("app.sh", "--server.port", "8599")
    assert first.returncode == 0, first.stderr
    # Precondition: something was missing, so the first start really installed, and left its fingerprint.
    assert project.pip_installs() == ["pip install -q --disable-pip-version-check -r requirements.txt"]
    assert project.stamp.exists()
    assert project.calls("streamlit") == ["streamlit run streamlit_app.py --server.port 8599"]

    offline = project.run("app.sh", FAKE_PIP_RC="1")  # pip would fail: "No matching distribution found"
    assert offline.returncode == 0, offline.stderr
    assert project.pip_installs() == []
    assert project.calls("streamlit") == ["streamlit run streamlit_app.py"]

    _add_missing_dependency(project, "another-missing-h33b")  # the requirements changed: pip must run, and offline it fails
    changed = project.run("app.sh", FAKE_PIP_RC="1")
    assert changed.returncode != 0
    assert len(project.pip_installs()) == 1 and "No matching distribution" in changed.stderr
    assert project.calls("streamlit") == []  # the app does not start on a half-installed .venv


@pytest.mark.slow
def test_everything_installed_without_a_fingerprint_starts_offline(project):
    # A .venv installed by hand (or by an older script): no fingerprint yet, every declared dependency present.
    project.make_venv()
    assert not project.stamp.exists()
    result = project.run("app.sh", FAKE_PIP_RC="1")
    assert result.returncode == 0, result.stderr
    assert project.pip_installs() == []
    assert project.stamp.exists()  # found complete: the next start takes the fingerprint's short path
    assert project.calls("streamlit") == ["streamlit run streamlit_app.py"]


def test_wrong_python_is_refused_with_the_versions_it_needs(project):
    result = project.run("app.sh", PYTHON=str(project.fakes / "python3.9"))
    assert project.calls("old") != []  # precondition: the script really asked that Python its version
    assert result.returncode != 0
    assert "Python 3.11, 3.12 or 3.13" in result.stderr and "(3.9)" in result.stderr
    assert "TensorFlow 2.21" in result.stderr
    assert not (project.root / ".venv").exists() and project.calls("streamlit") == []


def test_a_python_on_path_that_does_not_run_is_passed_over(project):
    # pyenv puts a shim for every version on PATH; a version not selected exits 127 ("command not found").
    shims = project.fakes / "shims"
    _write_executable(shims / "python3.13", '#!/bin/sh\necho "pyenv: python3.13: command not found" >&2\nexit 127\n')
    _write_executable(shims / "python3.12", (project.fakes / "python3.12").read_text())
    result = project.run("app.sh", PATH=f"{shims}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert "Creating .venv with python3.12" in result.stderr  # the shim that fails was skipped, the next one used
    assert project.calls("venv") == ["venv .venv"] and project.calls("streamlit") != []


@pytest.mark.slow
def test_half_made_venv_is_made_again(project):
    # A first try that stopped half way: .venv exists, with no Python in it.
    (project.root / ".venv" / "bin").mkdir(parents=True)
    (project.root / ".venv" / "leftover").write_text("from the failed try")
    _add_missing_dependency(project)
    result = project.run("app.sh", PYTHON=str(project.fakes / "python3.12"))
    assert result.returncode == 0, result.stderr
    assert "incomplete" in result.stderr
    assert project.calls("venv") == ["venv .venv"]
    assert not (project.root / ".venv" / "leftover").exists()
    assert len(project.pip_installs()) == 1 and project.calls("streamlit") == ["streamlit run streamlit_app.py"]


def test_an_intel_mac_is_told_what_works_instead(project):
    _write_executable(project.fakes / "bin" / "uname", '#!/bin/sh\nif [ "$1" = -s ]; then echo Darwin; else echo x86_64; fi\n')
    result = project.run("app.sh", PATH=f"{project.fakes / 'bin'}:{os.environ['PATH']}", PYTHON=str(project.fakes / "python3.12"))
    assert result.returncode != 0
    assert "no wheel for Intel Macs" in result.stderr and "Docker" in result.stderr
    assert not (project.root / ".venv").exists() and project.calls("streamlit") == []


def test_venv_module_missing_says_what_to_install(project):
    result = project.run("app.sh", PYTHON=str(project.fakes / "python3.12"), FAKE_VENV_FAILS="1")
    assert project.calls("venv") == ["venv .venv"]  # precondition: it did try to make one
    assert result.returncode != 0
    assert "-venv" in result.stderr and "apt install" in result.stderr
    assert not (project.root / ".venv").exists()  # nothing half-made left for the next try


@pytest.mark.slow
def test_test_script_installs_dev_beside_cpu_or_gpu_tensorflow(project):
    project.make_venv()
    _add_missing_dependency(project)
    cpu = project.run("test.sh", "-m", "not slow", LAB_TEST_PROCESSES="3")
    assert cpu.returncode == 0, cpu.stderr
    assert project.pip_installs() == ["pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt"]
    # Test files in parallel processes, each file whole in one process (its module fixtures start once).
    assert project.calls("pytest") == ["pytest -n 3 --dist loadfile --no-loadscope-reorder -m not slow"] and len(project.calls("ruff")) == 2

    gpu = project.run("test.sh", LAB_GPU="1")
    assert gpu.returncode == 0, gpu.stderr
    # The CUDA build replaces the CPU one: tensorflow-cpu is removed before pip installs the GPU file.
    assert "pip uninstall -y -q tensorflow-cpu" in project.calls("pip")
    assert project.pip_installs() == ["pip install -q --disable-pip-version-check -r requirements-gpu.txt -r requirements-dev.txt"]


def test_windows_scripts_match_the_bash_ones():
    # No PowerShell here to run them: at least they install the same files and accept the same Pythons.
    venv_sh, venv_ps1 = (ROOT / "scripts" / "venv.sh").read_text(), (ROOT / "scripts" / "venv.ps1").read_text()
    supported = re.search(r'SUPPORTED_PYTHONS="([\d. ]+)"', venv_sh).group(1).split()
    assert re.findall(r'"(3\.\d+)"', re.search(r"\$SupportedPythons = @\(([^)]*)\)", venv_ps1).group(1)) == supported
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires_python == f">={supported[0]},<3.{int(supported[-1].split('.')[1]) + 1}"
    assert "requirements-dev.txt" in (ROOT / "scripts" / "test.ps1").read_text()
    for name in ("app.ps1", "test.ps1"):
        text = (ROOT / "scripts" / name).read_text()
        assert '. (Join-Path $PSScriptRoot "venv.ps1")' in text and "Initialize-Venv" in text
    assert "scripts/deps.py hash" in venv_ps1 and "scripts/deps.py installed" in venv_ps1 and "cifar10-lab-requirements.sha256" in venv_ps1
