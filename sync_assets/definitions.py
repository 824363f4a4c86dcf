"""The code location: every route under ``sync_assets/defs`` (``workspace.yaml`` and ``dg`` load ``defs``).

Add a route by writing ``sync_assets/defs/<route>/defs.yaml`` (or ``dg scaffold defs
sync_assets.components.RouteComponent <route>``); see ``sync_assets.components``. Importing this module
builds nothing, writes nothing and reads no secret: Dagster calls ``defs`` when it loads the location.
A route whose configuration is invalid is kept out with its error (``durable-sync status``, and the
description of a placeholder asset in the UI); a route whose variables are unset is listed by
``durable-sync status`` with what to set.

``routes`` and ``route_errors`` (what the CLI reads) are computed on access, the same way.
"""

from typing import Any

import dagster as dg

from sync_assets.project import load_project

__all__ = ["defs", "load_definitions"]


def load_definitions() -> dg.Definitions:
    """The definitions of every route under ``sync_assets/defs`` (built when the location loads)."""
    return load_project().definitions()


defs = dg.definitions(load_definitions)


def __getattr__(name: str) -> Any:
    """``routes`` and ``route_errors``, loaded on access (PEP 562), never at import."""
    if name == "routes":
        return load_project().routes
    if name == "route_errors":
        return load_project().errors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
