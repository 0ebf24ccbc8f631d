"""What .venv needs, whether it has it, and the pinned lock file for deployments. Standard library and pip only.

    python scripts/deps.py hash requirements.txt [requirements-dev.txt ...]
    python scripts/deps.py installed requirements.txt [...]     # exit 0 when everything is installed
    python scripts/deps.py lock > requirements.lock              # pins what requirements.txt installs

The start scripts (scripts/venv.sh, scripts/venv.ps1) call the first two: `hash` is a fingerprint of
pyproject.toml, the requirement files and the Python version, kept inside .venv after an install;
`installed` walks the declared dependencies and theirs through the installed packages' own
metadata. Either one lets the app start without pip, and so without a network.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import re
import sys
import tomllib
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement  # pip's own copy: there in every .venv
from pip._vendor.packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "cifar10-lab"
LOCK_FILE = ROOT / "requirements.lock"


def requirements_hash(requirement_files: list[str]) -> str:
    """A fingerprint of what an install from these files would do: pip runs again only when it changes."""
    digest = hashlib.sha256(f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode())
    for name in ["pyproject.toml", *requirement_files]:
        digest.update(f"--- {name}\n".encode())
        digest.update((ROOT / name).read_bytes().replace(b"\r\n", b"\n"))  # the same on a Windows checkout
    return digest.hexdigest()


def declared(extras: set[str] | frozenset[str] = frozenset()) -> list[Requirement]:
    """pyproject.toml's dependencies and those of the extras named (an extra may name others: "cifar10-lab[cluster]")."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project.get("optional-dependencies", {}).get(extra, []):
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                todo.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def from_files(requirement_files: list[str]) -> list[Requirement]:
    """The requirements a list of requirement files asks for; "-e .[x]" means this project with extra x."""
    found: list[Requirement] = []
    for name in requirement_files:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("-r "):
                found += from_files([line[3:].strip()])
            elif match := re.fullmatch(r"(?:-e\s+)?\.(?:\[([\w,\s-]*)\])?", line):
                found += declared({extra.strip() for extra in (match.group(1) or "").split(",") if extra.strip()})
            else:
                found.append(Requirement(line))
    return found


def applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether a requirement's marker (platform, Python, extra) holds here, for the extras asked of its package."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def closure(requirements: list[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """Every installed package the requirements need, theirs included. Raises LookupError for the first one missing."""
    found: dict[str, importlib.metadata.Distribution] = {}
    asked: set[tuple[str, frozenset[str]]] = set()
    todo = [(requirement, set()) for requirement in requirements]
    while todo:
        requirement, parent_extras = todo.pop()
        if not applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise LookupError(f"{requirement} is not installed") from None
        if not requirement.specifier.contains(distribution.version, prereleases=True):
            raise LookupError(f"{requirement} is not met: {name} {distribution.version} is installed")
        found[name] = distribution
        key = (name, frozenset(requirement.extras))
        if key in asked:
            continue
        asked.add(key)
        todo += [(Requirement(text), set(requirement.extras)) for text in distribution.requires or []]
    return found


def lock_text() -> str:
    """requirements.lock: every package requirements.txt installs here, pinned, one `name==version` a line."""
    pinned = closure(from_files(["requirements.txt"]))
    lines = [
        "# Pinned versions for deployments: what requirements.txt installs, as tested. Generated by",
        "#   .venv/bin/python scripts/deps.py lock > requirements.lock",
        f"# on {platform.system()} {platform.machine()}, Python {sys.version_info[0]}.{sys.version_info[1]} (other platforms: requirements.txt).",
        "# Install:  pip install --no-deps -r requirements.lock -e .",
        "# tests/test_dependencies.py checks that it pins every dependency pyproject.toml declares, inside its bounds.",
    ]
    return "\n".join(lines + [f"{name}=={pinned[name].version}" for name in sorted(pinned)]) + "\n"


def main(argv: list[str]) -> int:
    command, files = argv[0], argv[1:]
    if command == "hash":
        print(requirements_hash(files))
    elif command == "installed":
        try:
            closure(from_files(files))
        except LookupError as missing:
            print(missing)  # what pip would install first; the scripts discard it
            return 1
    elif command == "lock":
        sys.stdout.write(lock_text())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
