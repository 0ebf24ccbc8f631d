"""Dependencies: one TensorFlow build per environment, an upper bound on everything, a lock file in step with pyproject.toml."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT_FILES = sorted(path.name for path in ROOT.glob("requirements*.txt"))
TENSORFLOW_BUILDS = {"tensorflow", "tensorflow-cpu"}
# Where people run the lab: the lock's platform, Linux on ARM, Apple Silicon, Windows.
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
}


def _deps_module():
    spec = importlib.util.spec_from_file_location("project_deps", ROOT / "scripts" / "deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deps = _deps_module()


def _names_on(platform: dict, requirement_files: list[str]) -> list[str]:
    """The packages these files ask for directly on one platform (markers evaluated there)."""
    names = []
    for requirement in deps.from_files(requirement_files):
        if requirement.marker is None or requirement.marker.evaluate({**platform, "extra": ""}):
            names.append(canonicalize_name(requirement.name))
    return names


def _all_declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + [text for extra in project["optional-dependencies"].values() for text in extra]
    return [Requirement(text) for text in texts if canonicalize_name(Requirement(text).name) != deps.PROJECT]


def test_requirement_files_declare_nothing_of_their_own():
    # pyproject.toml is the one place versions are declared; each file only picks extras of this project.
    assert {"requirements.txt", "requirements-gpu.txt", "requirements-dev.txt", "requirements-cluster.txt"} <= set(REQUIREMENT_FILES)
    for name in REQUIREMENT_FILES:
        lines = [line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines()]
        assert all(re.fullmatch(r"-e \.\[[\w,-]+\]", line) for line in lines if line), name


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_combination_of_requirement_files_installs_both_tensorflow_builds(platform):
    # requirements.txt and requirements-gpu.txt are the two ways to install (one or the other); every other file
    # adds to either, so any combination with at most one of the two must hold one TensorFlow build.
    tensorflow_files = []
    for count in range(1, len(REQUIREMENT_FILES) + 1):
        for files in itertools.combinations(REQUIREMENT_FILES, count):
            if {"requirements.txt", "requirements-gpu.txt"} <= set(files):
                continue
            builds = TENSORFLOW_BUILDS & set(_names_on(PLATFORMS[platform], list(files)))
            assert len(builds) <= 1, f"{files} installs {builds} on {platform}"
            if count == 1 and builds:
                tensorflow_files.append(files[0])
    # Precondition: the CPU and the GPU file each really install one; the others add to either.
    assert sorted(tensorflow_files) == ["requirements-gpu.txt", "requirements.txt"]


def test_the_lock_platform_gets_tensorflow_cpu_and_the_gpu_file_the_cuda_build():
    linux = PLATFORMS["linux-x86_64"]
    assert TENSORFLOW_BUILDS & set(_names_on(linux, ["requirements.txt"])) == {"tensorflow-cpu"}
    gpu = [requirement for requirement in deps.from_files(["requirements-gpu.txt"]) if requirement.name == "tensorflow"]
    assert len(gpu) == 1 and gpu[0].extras == {"and-cuda"}


def _upper_bound(requirement: Requirement) -> Version | None:
    """The version a requirement stays below: `<N`, or the next release after `==X.Y.*` / `~=X.Y`."""
    bounds = []
    for spec in requirement.specifier:
        if spec.operator == "<":
            bounds.append(Version(spec.version))
        elif spec.operator == "==" and spec.version.endswith(".*"):
            parts = [int(part) for part in spec.version[:-2].split(".")]
            bounds.append(Version(".".join(map(str, [*parts[:-1], parts[-1] + 1]))))
        elif spec.operator in ("==", "==="):
            bounds.append(Version(spec.version))
        elif spec.operator == "~=":
            parts = [int(part) for part in spec.version.split(".")][:-1]
            bounds.append(Version(".".join(map(str, [*parts[:-1], parts[-1] + 1]))))
    return min(bounds) if bounds else None


@pytest.mark.parametrize("requirement", _all_declared(), ids=lambda requirement: requirement.name)
def test_every_dependency_stays_below_its_next_major(requirement):
    bound = _upper_bound(requirement)
    assert bound is not None, f"{requirement} has no upper bound"
    try:
        installed = Version(importlib.metadata.version(requirement.name))
    except importlib.metadata.PackageNotFoundError:
        return  # e.g. tensorflow[and-cuda] on a CPU machine: the bound alone is checked
    # The bound sits at the next major of what is tested here: not looser (an untested major), not tighter.
    assert requirement.specifier.contains(installed, prereleases=True), f"{requirement}: {installed} is installed"
    assert bound <= Version(f"{installed.major + 1}"), f"{requirement} allows majors after {installed.major}, untested"


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line.strip())
            assert match, f"not a pin: {line!r}"
            name = canonicalize_name(match.group(1))
            assert name not in pins, f"{name} pinned twice"
            pins[name] = match.group(2)
    return pins


def test_lock_pins_every_declared_dependency_inside_its_bounds():
    pins = _lock()
    linux = PLATFORMS["linux-x86_64"]  # the platform the lock was made on (its header says so)
    declared = [
        requirement
        for requirement in deps.from_files(["requirements.txt"])
        if requirement.marker is None or requirement.marker.evaluate({**linux, "extra": ""})
    ]
    assert {"keras", "streamlit", "tensorflow-cpu"} <= {canonicalize_name(requirement.name) for requirement in declared}  # precondition
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is declared in pyproject.toml but missing from requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}"
        )
    assert len(TENSORFLOW_BUILDS & set(pins)) == 1
    assert "Linux x86_64" in (ROOT / "requirements.lock").read_text()
