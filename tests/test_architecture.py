"""The package layers of docs/DESIGN.md, checked on the source: dependencies point one way, with no cycles.

Every `import` counts, including those inside functions: a lower layer that reaches up into a
higher one inside a function (to dodge a cycle, or to load TensorFlow later) is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# lab's packages from the bottom up; a package may import its own modules and those of lower layers only.
LAYERS = (
    ("lab.config", "lab.system"),
    ("lab.data", "lab.models"),
    ("lab.evaluate",),
    ("lab.train",),
    ("lab.insight",),
    ("lab.store",),
    ("lab.report", "lab.export"),
    ("lab.classroom",),
    ("lab.jobs",),
    ("lab.cli",),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


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
    """The layer package a module belongs to ("lab.train.run" -> "lab.train"), or None for lab's own top files."""
    return next((package for package in RANK if module == package or module.startswith(package + ".")), None)


def test_every_lab_module_belongs_to_a_layer():
    unplaced = [name for name in lab_modules() if package_of(name) is None and name not in ("lab", "lab.__main__")]
    assert unplaced == [], f"add these to LAYERS here and to docs/DESIGN.md: {unplaced}"


@pytest.mark.parametrize("module", sorted(lab_modules()))
def test_lab_imports_only_its_own_layer_and_the_layers_below(module):
    own = package_of(module)
    if own is None:  # lab/__init__.py and lab/__main__.py sit on top of everything
        return
    upward = []
    for imported in imports_of(lab_modules()[module]):
        target = package_of(imported)
        if target is not None and target != own and RANK[target] >= RANK[own]:
            upward.append(imported)
    assert upward == [], f"{module} imports from its own layer or above: {sorted(set(upward))}"


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
