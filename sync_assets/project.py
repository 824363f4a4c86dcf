"""This project's routes and definitions, loaded lazily from ``sync_assets/defs``.

``load_project()`` reads every ``defs.yaml`` under the defs folder (``RouteComponent`` files) and
every Python module there with a ``routes`` list (the Python API), builds each route on its own and
keeps a bad one out: its error is listed (``durable-sync status``) and shown in the UI as the
description of a placeholder asset, and every other route loads. Nothing here runs at import: the
code location's ``definitions.py`` calls it when Dagster loads the location, and loading writes no
file and reads no secret (the resources hold ``dg.EnvVar`` names; see ``sync_assets.systems``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from connectors.core import ConfigError, describe_error
from sync_assets.components import load_route_files
from sync_assets.routes import Route
from sync_assets.systems import SystemResource, load_resources

__all__ = ["DEFS_DIR", "Project", "RouteError", "load_project"]

log = logging.getLogger(__name__)

DEFS_DIR = Path(__file__).resolve().parent / "defs"
INVALID_GROUP = "invalid_routes"


@dataclass(frozen=True)
class RouteError:
    """A route that could not be loaded.

    Attributes:
        name: The route's name (its folder's name when the file could not be read).
        path: The file that declares it.
        error: Why, naming the field or variable to fix.
    """

    name: str
    path: str
    error: str


@dataclass
class Project:
    """The routes of a defs folder, the ones that failed to load, and the resources they use."""

    routes: list[Route] = field(default_factory=list)
    errors: list[RouteError] = field(default_factory=list)
    resources: dict[str, SystemResource] = field(default_factory=dict)

    def definitions(self) -> dg.Definitions:
        """The Dagster definitions: every enabled route, the resources, a placeholder per failed route."""
        from sync_assets.factory import build_definitions, link_report_asset

        placeholders = [
            dg.AssetSpec(
                key=dg.AssetKey([e.name]),
                group_name=INVALID_GROUP,
                description=f"Not loaded — {e.error} ({e.path}). The other routes are unaffected.",
                metadata={"durable_sync/error": e.error, "durable_sync/path": e.path},
                tags={"durable_sync/invalid": "true"},
            )
            for e in self.errors
            if e.name not in {r.name for r in self.routes if r.enabled}
        ]
        reports = [link_report_asset(r) for r in self.routes if r.name == "files_to_sqlite" and r.enabled]
        return build_definitions(self.routes, assets=[*reports, *placeholders], resources=dict(self.resources))


def _route_name_of(path: Path) -> str:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = doc["attributes"]["name"]
        if isinstance(name, str) and name.strip():
            return name.strip()
    except Exception:  # the file is what failed; fall back to its folder's name
        pass
    return path.parent.name


def load_project(
    defs_dir: Path | None = None,
    *,
    resources: Mapping[str, SystemResource] | None = None,
    modules: Sequence[str] = (),
) -> Project:
    """Load every route of ``defs_dir`` on its own.

    Args:
        defs_dir: The folder of ``<route>/defs.yaml`` files (default: ``sync_assets/defs``).
        resources: The resources routes name (default: the shipped ones, ``sync_assets.systems``; one
            whose settings are bad keeps out only the routes that use it).
        modules: Python modules with a ``routes`` list (the Python API), loaded the same way.

    Returns:
        The routes that loaded, the errors of those that did not, and the resources.
    """
    broken: dict[str, str] = {}
    if resources is None:
        resources, broken = load_resources()
    project = Project(resources=dict(resources))
    folder = defs_dir or DEFS_DIR
    for path in sorted(folder.rglob("defs.yaml")) if folder.is_dir() else []:
        try:
            routes = load_route_files(path, project.resources, broken)
        except (ConfigError, ValueError, TypeError) as err:
            rel = _relative(path)
            project.errors.append(RouteError(_route_name_of(path), rel, describe_error(err)))
            log.warning("route in %s not loaded: %s", rel, describe_error(err))
            continue
        project.routes.extend(routes)  # two for a two-way pair
    for name in modules:
        try:
            project.routes.extend(importlib.import_module(name).routes)
        except Exception as err:
            project.errors.append(RouteError(name, name, describe_error(err)))
    _drop_duplicate_names(project)
    return project


def _drop_duplicate_names(project: Project) -> None:
    """Two routes with one name: both are kept out, each with an error naming the other's file."""
    seen: dict[str, int] = {}
    for r in project.routes:
        seen[r.name] = seen.get(r.name, 0) + 1
    dup = {name for name, n in seen.items() if n > 1}
    if not dup:
        return
    project.routes = [r for r in project.routes if r.name not in dup]
    for name in sorted(dup):
        project.errors.append(RouteError(name, "", f"two routes are named {name!r}; rename one of them"))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
