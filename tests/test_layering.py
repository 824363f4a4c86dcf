"""The architecture rules that keep the tree honest."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "connectors").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_connectors_never_import_dagster_or_sync_assets(path):
    assert not {"dagster", "sync_assets"} & _imports(path)


def test_engine_and_state_are_dagster_free():
    for name in ("engine.py", "state.py", "routes.py"):
        assert "dagster" not in _imports(ROOT / "sync_assets" / name), name


@pytest.mark.parametrize(
    "module",
    [
        "connectors.core",
        "sync_assets",
        "connectors.files",
        "connectors.http",
        "connectors.github",
        "connectors.notion",
        "connectors.asana",
        "connectors.jira",
        "connectors.mcp",
        "connectors.notion.mcp",
        "connectors.contentful",
        "connectors.youtube",
        "connectors.luma",
        "connectors.contentful.mcp",
    ],
)
def test_public_surface_is_explicit(module):
    mod = importlib.import_module(module)
    assert mod.__all__, module
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_no_print_in_library_code():
    allowed = {ROOT / "sync_assets" / "cli.py", ROOT / "sync_assets" / "demo.py"}
    for path in [*(ROOT / "connectors").rglob("*.py"), *(ROOT / "sync_assets").rglob("*.py")]:
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
        assert not calls, f"print() in {path.relative_to(ROOT)}"
