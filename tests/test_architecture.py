"""The dependency graph docs/DESIGN.md draws, checked on the source: arrows point down it, with no cycles.

DRAWN below is the drawing's table of arrows, one package to the packages right below it. A
package may import what it can reach by following arrows down (the arrows' closure), and nothing
else: not a package beside it (ui and lab/cli, the two ways in, never import each other), not
one above it. Every `import` counts, including those inside functions: a lower layer that
reaches up into a higher one inside a function (to dodge a cycle, or to load TensorFlow later)
is still a dependency.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The arrows of docs/DESIGN.md's drawing ("Which way dependencies point"), top to bottom.
DRAWN = {
    "pages": {"ui"},  # the app's pages and its router ...
    "streamlit_app": {"ui"},
    "ui": {"lab.jobs", "lab.insight", "lab.export"},  # ... and the command line: side by side on top
    "lab.cli": {"lab.jobs", "lab.insight", "lab.export"},
    "lab.jobs": {"lab.classroom"},  # lab/jobs/ray/ is part of lab/jobs
    "lab.classroom": {"lab.report"},
    "lab.report": {"lab.store"},
    "lab.export": {"lab.store"},
    "lab.store": {"lab.train"},
    "lab.insight": {"lab.train"},
    "lab.train": {"lab.evaluate", "lab.system"},
    "lab.evaluate": {"lab.data", "lab.models"},
    "lab.data": {"lab.config"},
    "lab.models": {"lab.config"},
    "lab.config": set(),
    "lab.system": set(),
}


@cache
def reachable(package: str) -> frozenset[str]:
    """Every package `package` may import: those its arrows reach, directly or through others."""
    found: set[str] = set()
    for below in DRAWN[package]:
        found |= {below, *reachable(below)}
    return frozenset(found)


def upward_imports(own: str, imported: set[str]) -> list[str]:
    """The imports of a module of package `own` that no path of arrows allows (beside it, above it, or itself a cycle)."""
    wrong = []
    for name in imported:
        target = package_of(name)
        if target is not None and target != own and target not in reachable(own):
            wrong.append(name)
    return sorted(set(wrong))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (`from lab.x import y` counts as lab.x and lab.x.y)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def lab_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / "lab").rglob("*.py"))}


def package_of(module: str) -> str | None:
    """The drawn package a module belongs to ("lab.train.run" -> "lab.train", "ui.sidebar" -> "ui"), or None for lab's own top files."""
    return next((package for package in DRAWN if module == package or module.startswith(package + ".")), None)


def test_every_lab_module_belongs_to_a_layer():
    unplaced = [name for name in lab_modules() if package_of(name) is None and name not in ("lab", "lab.__main__")]
    assert unplaced == [], f"add these to DRAWN here and to docs/DESIGN.md: {unplaced}"


@pytest.mark.parametrize("module", sorted(lab_modules()))
def test_lab_imports_only_what_the_drawing_lets_it_reach(module):
    own = package_of(module)
    if own is None:  # lab/__init__.py and lab/__main__.py sit on top of everything
        return
    upward = upward_imports(own, imports_of(lab_modules()[module]))
    assert upward == [], f"{module} imports from beside or above it in docs/DESIGN.md's drawing: {upward}"


@pytest.mark.parametrize("folder", ["ui", "pages"])
def test_the_app_imports_only_what_the_drawing_lets_it_reach(folder):
    for path in sorted((ROOT / folder).rglob("*.py")):
        upward = upward_imports(folder, imports_of(path))
        assert upward == [], f"{path.relative_to(ROOT)} imports {upward}: the app and the command line never import each other"
    assert upward_imports("streamlit_app", imports_of(ROOT / "streamlit_app.py")) == []


@pytest.mark.parametrize(
    ("own", "planted"),
    [
        ("lab.train", "lab.store.runs"),  # a lower layer reaching up
        ("lab.store", "lab.insight.gradcam"),  # side by side on one floor
        ("lab.cli", "ui.sidebar"),  # the command line reaching into the app
        ("ui", "lab.cli.main"),  # and the app into the command line
        ("lab.config", "lab.data.cifar10"),  # the ground floor reaching up
    ],
)
def test_a_planted_upward_import_is_caught(own, planted):
    """The check can fail: each of these imports breaks the drawing, and each is refused."""
    assert package_of(planted) is not None  # the precondition: the planted module belongs to a drawn package
    assert upward_imports(own, {planted}) == [planted]
    assert upward_imports(own, {"lab.config"} if own != "lab.config" else set()) == []  # while a downward one is allowed


def test_the_drawing_has_no_cycle_and_names_every_package():
    for package in DRAWN:
        assert package not in reachable(package), f"the drawing's arrows loop back to {package}"
        assert set(DRAWN[package]) <= set(DRAWN), f"{package} points at a package the drawing does not name"
    packages = {name.split(".")[1] for name in lab_modules() if name.count(".") >= 1 and not name.startswith(("lab.__main__",))}
    assert {f"lab.{name}" for name in packages} <= set(DRAWN), "add the new package to DRAWN here and to docs/DESIGN.md's drawing"


def test_design_md_draws_the_same_arrows():
    """docs/DESIGN.md's table of arrows is DRAWN, word for word: the drawing a reader sees is the one checked here."""
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w./]+)` \| (.*?) \|$", text.split("## Which way dependencies point", 1)[1].split("\n## ", 1)[0], re.M)
    drawn = {_package(name): {_package(target) for target in re.findall(r"`([\w./]+)`", targets)} for name, targets in rows}
    assert drawn == DRAWN


def _package(written: str) -> str:
    """ "lab/jobs/" -> "lab.jobs", "streamlit_app.py" -> "streamlit_app", "pages/" -> "pages"."""
    return written.removesuffix("/").removesuffix(".py").replace("/", ".")


def test_lab_never_imports_the_app_or_the_benchmarks():
    for module, path in lab_modules().items():
        outside = {name for name in imports_of(path) if name.split(".")[0] in ("streamlit", "ui", "pages", "bench", "tests")}
        assert outside == set(), f"{module} imports {sorted(outside)}"


def test_ui_never_imports_a_page_nor_a_store_internal():
    for path in sorted((ROOT / "ui").rglob("*.py")):
        imported = imports_of(path)
        assert not any(name.startswith("pages") for name in imported), path
        public = ("lab.store.runs", "lab.store.owners")  # the store's face: Store and its errors; who owns a run
        internals = {name for name in imported if name.startswith("lab.store.") and not name.startswith(public)}
        assert internals == set(), f"{path.name} reaches into the store: {sorted(internals)}"


def test_no_import_cycles_between_modules():
    """Module by module, all imports included: a cycle (even through a function) means a layer is cut wrong."""
    modules = lab_modules()
    graph = {
        name: {imported for imported in imports_of(path) if imported in modules and imported != name} for name, path in modules.items()
    }
    # A package's __init__ is imported along with any of its modules: it holds only a docstring, so it is no edge back.
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for follower in sorted(graph[name]):
            if state.get(follower) == "open":
                cycle = trail[trail.index(follower) :] + [follower]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if follower not in state:
                visit(follower, [*trail, follower])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_packages_say_what_they_hold():
    for init in sorted((ROOT / "lab").rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and len(docstring.splitlines()[0]) > 20, f"{init} needs a one-line docstring"
