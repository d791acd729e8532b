"""Imports run down the layers, never up or sideways: a walk over every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Rank of each top-level package; a module may import only lower ranks, or its own unit.
RANKS = {
    "policies": 0,
    "cluster": 1,
    "routing": 1,
    "graph": 2,
    "nodes": 2,
    "service": 3,
    "app": 4,
    "server": 5,
    "devnodes": 5,
    "sim": 5,
    "training": 5,
    "cli": 6,
}
#: Packages that form one layer and may import each other: the graph and its nodes.
UNITS = {"graph": "graph+nodes", "nodes": "graph+nodes"}


def unit(package: str) -> str:
    return UNITS.get(package, package)


def modules() -> list[Path]:
    found = [ROOT / "server.py"]
    for package in RANKS:
        if (ROOT / package).is_dir():
            found += sorted((ROOT / package).rglob("*.py"))
    return found


def imported_packages(path: Path) -> set[str]:
    """Top-level project packages `path` imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & RANKS.keys()


def package_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down_the_layers(path: Path) -> None:
    own = package_of(path)
    wrong = sorted(
        target
        for target in imported_packages(path)
        if unit(target) != unit(own) and RANKS[target] >= RANKS[own]
    )
    assert not wrong, f"{path.relative_to(ROOT)} ({own}, rank {RANKS[own]}) imports {wrong}"


def test_only_the_composition_root_imports_cluster_routing_and_service_together() -> None:
    together = {"cluster", "routing", "service"}
    offenders = [
        str(path.relative_to(ROOT))
        for path in modules()
        if package_of(path) != "app" and together <= imported_packages(path)
    ]
    assert offenders == []


def test_the_walk_catches_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "upward.py"
    module.write_text("def f():\n    from service.routes import router\n    import app.runtime\n")
    assert imported_packages(module) == {"service", "app"}
