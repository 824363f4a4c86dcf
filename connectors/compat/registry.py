"""``durable_sync.registry`` for ported connectors: durable-sync's entry-point groups, read apart.

durable-sync 0.3 and its contrib packages register connectors in ``durable_sync.sources`` and
``durable_sync.destinations``. This module lists and loads those, leaving out the ``durable-sync``
distribution's own (they run on Temporal; this platform has its own GitHub, Notion, ... connectors)
and this project's. A loaded class is refused when its distribution requires a durable-sync whose
contract is newer than ``CONTRACT_VERSION`` (a requirement that durable-sync 0.3.0 does not meet).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from connectors.core import ConfigError

__all__ = [
    "DESTINATION_GROUP",
    "SOURCE_GROUP",
    "ConnectorInfo",
    "destination_names",
    "discover",
    "load_destination",
    "load_source",
    "source_names",
]

SOURCE_GROUP = "durable_sync.sources"
DESTINATION_GROUP = "durable_sync.destinations"

# The distributions whose entries are not ported connectors: durable-sync itself and this project.
_SKIPPED = frozenset({"durable-sync", "durable_sync", "durable-sync-dagster", "durable_sync_dagster"})
_IMPLEMENTS = "0.3.0"  # the durable-sync release whose contract connectors.compat implements


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(getattr(dist, "name", "") or "")


def _entries(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        if _dist_name(ep).lower() not in _SKIPPED:
            found[ep.name] = ep  # the last one wins, as in durable-sync
    return found


def source_names() -> list[str]:
    """Ported source connectors registered in durable-sync's group (nothing is imported)."""
    return sorted(_entries(SOURCE_GROUP))


def destination_names() -> list[str]:
    """Ported destination connectors registered in durable-sync's group (nothing is imported)."""
    return sorted(_entries(DESTINATION_GROUP))


def _check_requirement(ep: EntryPoint) -> None:
    dist = getattr(ep, "dist", None)
    for raw in (getattr(dist, "requires", None) or []) if dist is not None else []:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            continue
        if req.name.lower().replace("_", "-") != "durable-sync" or req.marker is not None:
            continue
        if req.specifier and not req.specifier.contains(_IMPLEMENTS, prereleases=True):
            raise ConfigError(
                f"{_dist_name(ep)} requires {raw}; connectors.compat implements durable-sync {_IMPLEMENTS}'s contract"
            )


def _load(group: str, kind: str, name: str) -> Any:
    entries = _entries(group)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise LookupError(f"no ported {kind} connector named {name!r} (installed: {known})")
    _check_requirement(entries[name])
    return entries[name].load()


def load_source(name: str) -> Any:
    """The source class registered as ``name``; LookupError lists the installed ones."""
    return _load(SOURCE_GROUP, "source", name)


def load_destination(name: str) -> Any:
    """The destination class registered as ``name``; LookupError lists the installed ones."""
    return _load(DESTINATION_GROUP, "destination", name)


@dataclass(frozen=True)
class ConnectorInfo:
    """One ported connector name, what it offers and which distribution provides it."""

    name: str
    source: str | None
    destination: str | None
    distribution: str
    version: str

    @property
    def kinds(self) -> str:
        """What it offers: ``source``, ``destination`` or ``source+destination``."""
        return "+".join(k for k, v in (("source", self.source), ("destination", self.destination)) if v)


def discover() -> list[ConnectorInfo]:
    """Every ported connector registered in durable-sync's groups (nothing is imported)."""
    sources, dests = _entries(SOURCE_GROUP), _entries(DESTINATION_GROUP)
    out = []
    for name in sorted(set(sources) | set(dests)):
        ep = sources.get(name) or dests[name]
        dist = getattr(ep, "dist", None)
        out.append(
            ConnectorInfo(
                name=name,
                source=sources[name].value if name in sources else None,
                destination=dests[name].value if name in dests else None,
                distribution=_dist_name(ep),
                version=str(getattr(dist, "version", "") or ""),
            )
        )
    return out
