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
    """The engine, the routes and the state store (a module or a package) import no Dagster, neither
    themselves nor through any first-party module they import."""
    modules = _first_party_modules()
    graph = {name: _import_edges(name, path, modules) for name, path in modules.items()}
    roots = [m for m in modules if m in ("sync_assets.engine", "sync_assets.routes", "sync_assets.state")]
    roots += [m for m in modules if m.startswith("sync_assets.state.")]
    assert {"sync_assets.engine", "sync_assets.routes", "sync_assets.state"} <= set(roots)
    for root in roots:
        seen, todo = {root}, [root]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        for name in sorted(seen):
            assert "dagster" not in _imports(modules[name]), f"{root} imports dagster through {name}"


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


# The packages whose import graph must stay acyclic. tests/ is not among them yet: tests/contract/cases.py
# collects the per-system contract cases, whose modules import its harness back.
FIRST_PARTY = ("connectors", "sync_assets", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _first_party_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in FIRST_PARTY for p in sorted((ROOT / pkg).rglob("*.py"))}


def _import_edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The first-party modules that ``name`` imports anywhere in its body (module level, in functions,
    under ``TYPE_CHECKING``): ``from pkg import mod`` counts as an import of ``pkg.mod`` when that is a
    module, ``import a.b.c`` as one of the longest first-party module it names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            found = known(target)
            if found and found != name:
                edges.add(found)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """One cycle per strongly connected component of more than one module (Tarjan): a path from the
    component's first module back to it, and every module of the component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for component in components:
        start = min(component)
        # Shortest way back to ``start`` inside the component (breadth first).
        previous: dict[str, str] = {}
        frontier = [start]
        while start not in previous:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & component):
                    if w not in previous:
                        previous[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [start]
        while previous[path[-1]] != start:
            path.append(previous[path[-1]])
        cycles.append(([start, *reversed(path[1:]), start], component))
    return sorted(cycles, key=lambda c: c[0])


def test_cycle_finder_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert _cycles(graph) == [(["a", "b", "c", "a"], {"a", "b", "c"})]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_import_edges_see_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import thing\n")
    (pkg / "b.py").write_text("from . import a\nfrom .c import x\n")
    (pkg / "c.py").write_text("if False:\n    import pkg.a\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py", "pkg.c": pkg / "c.py"}
    assert _import_edges("pkg.a", modules["pkg.a"], modules) == {"pkg.b"}
    assert _import_edges("pkg.b", modules["pkg.b"], modules) == {"pkg.a", "pkg.c"}
    assert _import_edges("pkg.c", modules["pkg.c"], modules) == {"pkg.a"}


def test_no_import_cycles_among_first_party_modules():
    """No first-party module imports, directly or through others, a module that imports it — not even
    inside a function, where a circle hides until the first call."""
    modules = _first_party_modules()
    graph = {name: _import_edges(name, path, modules) for name, path in modules.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{' -> '.join(path)}   (all of: {', '.join(sorted(component))})" for path, component in cycles
    )
