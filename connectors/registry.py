"""Connector discovery through entry points.

Two groups: ``durable_sync_dagster.sources`` and ``durable_sync_dagster.destinations`` — not
durable-sync's ``durable_sync.*`` names, so the two packages installed side by side never resolve one
name to the other's class (``connectors.compat.registry`` reads durable-sync's groups). Each
entry resolves to a class (not an instance). A package may register a name that a core connector
already uses; the last one registered wins, so a connector can be overridden on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = [
    "DESTINATIONS_GROUP",
    "SOURCES_GROUP",
    "ConnectorInfo",
    "destination_names",
    "discover",
    "load_destination",
    "load_source",
    "source_names",
]

SOURCES_GROUP = "durable_sync_dagster.sources"
DESTINATIONS_GROUP = "durable_sync_dagster.destinations"


@dataclass(frozen=True)
class ConnectorInfo:
    """One connector name and what it offers."""

    name: str
    source: str | None  # "module:Class" of the source, if any
    destination: str | None
    distribution: str | None
    version: str | None

    @property
    def kinds(self) -> str:
        """What it offers: ``source``, ``destination`` or ``source+destination``."""
        return "+".join(k for k, v in (("source", self.source), ("destination", self.destination)) if v)


def _entries(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found[ep.name] = ep  # last one wins
    return found


def source_names() -> list[str]:
    """Registered source names (nothing is imported)."""
    return sorted(_entries(SOURCES_GROUP))


def destination_names() -> list[str]:
    """Registered destination names (nothing is imported)."""
    return sorted(_entries(DESTINATIONS_GROUP))


def _load(group: str, kind: str, name: str) -> Any:
    entries = _entries(group)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise LookupError(f"no {kind} connector named {name!r} (installed: {known})")
    return entries[name].load()


def load_source(name: str) -> Any:
    """The source class registered as ``name``; LookupError lists the installed ones."""
    return _load(SOURCES_GROUP, "source", name)


def load_destination(name: str) -> Any:
    """The destination class registered as ``name``; LookupError lists the installed ones."""
    return _load(DESTINATIONS_GROUP, "destination", name)


def discover() -> list[ConnectorInfo]:
    """Every connector name with its source/destination classes and distribution."""
    sources = _entries(SOURCES_GROUP)
    dests = _entries(DESTINATIONS_GROUP)
    out = []
    for name in sorted(set(sources) | set(dests)):
        ep = sources.get(name) or dests.get(name)
        dist = getattr(ep, "dist", None)
        out.append(
            ConnectorInfo(
                name=name,
                source=sources[name].value if name in sources else None,
                destination=dests[name].value if name in dests else None,
                distribution=getattr(dist, "name", None),
                version=getattr(dist, "version", None),
            )
        )
    return out
