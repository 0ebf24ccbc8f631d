"""A run is a typed value (lab.store.records.Run), and a status is a Status, everywhere outside lab/store.

The store hands out `Run`s; code that read them as dicts (`run["status"]`, `run.get("metrics")`) or compared
statuses with strings ("completed") failed only at run time, on the one screen that read the misspelt key.
This file reads the source (no imports, no app) and fails on either habit coming back, naming file and line.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from lab.config import RunConfig
from lab.store.records import Run, Status

ROOT = Path(__file__).resolve().parent.parent
RUN_FIELDS = {field.name for field in dataclasses.fields(Run)} | {"owner", "reference"}
STATUS_TEXTS = {status.value for status in Status}


def checked_files() -> list[Path]:
    """Every Python file of the lab, the UI and the pages, except the store itself (which turns rows into Runs)."""
    files = [ROOT / "streamlit_app.py", *(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").rglob("*.py")]
    files += [path for path in (ROOT / "lab").rglob("*.py") if "store" not in path.relative_to(ROOT / "lab").parts[:1]]
    return sorted(files)


def _names_a_run(node: ast.AST) -> bool:
    """`run`, `stored_run`, ... or `store.get_run(...)`: an expression that holds one stored run."""
    if isinstance(node, ast.Name):
        return node.id == "run" or node.id.endswith("_run")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_run"


def _status_text(node: ast.AST) -> bool:
    """A string constant that spells a status, or a tuple/list/set made only of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in STATUS_TEXTS
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
        return all(_status_text(element) for element in node.elts)
    return False


def _is_status(node: ast.AST) -> bool:
    """`x.status`, `x["status"]`, or a name such as `status`: something holding a run's status."""
    if isinstance(node, ast.Attribute):
        return node.attr == "status"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "status"
    return isinstance(node, ast.Name) and node.id == "status"


def problems_in(source: str, name: str = "<source>") -> list[str]:
    """Each run read as a dict and each status spelt as a string in `source`, as "name:line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Subscript) and _names_a_run(node.value) and isinstance(node.slice, ast.Constant):
            if node.slice.value in RUN_FIELDS:
                found.append(f"{name}:{line}: a run read as a dict, [{node.slice.value!r}]: read .{node.slice.value}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
            key = node.args[0]
            if _names_a_run(node.func.value) and isinstance(key, ast.Constant) and key.value in RUN_FIELDS:
                found.append(f"{name}:{line}: a run read as a dict, .get({key.value!r}): read .{key.value}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_status(side) for side in sides) and any(_status_text(side) for side in sides):
                found.append(f"{name}:{line}: a status compared with a string: use Status members")
        elif isinstance(node, ast.keyword) and node.arg == "status" and _status_text(node.value):
            found.append(f"{name}:{line}: status={ast.unparse(node.value)}: use Status members")
        elif isinstance(node, ast.Assign) and _status_text(node.value) and isinstance(node.value, ast.Tuple | ast.List | ast.Set):
            found.append(f"{name}:{line}: statuses spelt as strings: use Status members (or status.is_active / is_finished)")
        elif isinstance(node, ast.Dict) and any(key is not None and _status_text(key) for key in node.keys):
            found.append(f"{name}:{line}: a dict keyed by status strings: key it by Status members")
    return found


def test_no_code_outside_the_store_reads_a_run_as_a_dict_or_spells_a_status():
    files = checked_files()
    assert ROOT / "ui" / "run_view.py" in files and ROOT / "lab" / "report" / "lab_report.py" in files  # the check reads real code
    assert not any("store" in path.relative_to(ROOT).parts[1:2] for path in files if path.is_relative_to(ROOT / "lab"))
    found = [problem for path in files for problem in problems_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == []


PLANTED = {
    'status = run["status"]': "a run read as a dict",
    'metrics = run.get("metrics") or {}': "a run read as a dict",
    'store.get_run(run_id)["config"]': "a run read as a dict",
    'if run.status == "completed": pass': "a status compared",
    'busy = chosen.status in ("queued", "running")': "a status compared",
    'store.list_runs(status="completed")': "status='completed'",
    'ACTIVE = ("running", "queued")': "statuses spelt as strings",
    'ICONS = {"failed": "x", "cancelled": "y"}': "a dict keyed by status strings",
}


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_the_check_finds_a_planted_example(planted):
    (problem,) = problems_in(planted)
    assert PLANTED[planted] in problem


def test_the_check_leaves_attributes_members_and_other_strings_alone():
    clean = """
run = store.get_run(run_id)
if run.status is Status.COMPLETED and run.metrics.get("accuracy"):
    pass
if request.outcome == "queued":  # a queue request's outcome, not a run's status
    pass
row = {"status": run.status.value, "model": run.model}
active = store.list_runs(status=(Status.QUEUED, Status.RUNNING))
"""
    assert problems_in(clean) == []


def test_run_keeps_no_dict_reads():
    """The temporary dict-style reads are gone: a run answers attributes only."""
    run = Run(
        run_id="20250101-000000-seed-cnn-abcd", status=Status.QUEUED, config=RunConfig(), model="seed-cnn", task="cifar10",
        owner_id="local", owner_name="", created_at="2025-01-01T00:00:00.000+00:00", updated_at="2025-01-01T00:00:00.000+00:00",
    )  # fmt: skip
    assert run.status is Status.QUEUED and run.owner == "local"  # the precondition: a real run, readable by attribute
    with pytest.raises(TypeError):
        run["status"]  # noqa: B018
    assert not hasattr(run, "get")
