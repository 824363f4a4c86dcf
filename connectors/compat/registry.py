"""``durable_sync.registry`` for ported connectors: durable-sync's entry-point groups, read apart.

durable-sync 0.3 and its contrib packages register connectors in ``durable_sync.sources`` and
``durable_sync.destinations``. This module lists and loads those, leaving out the ``durable-sync``
distribution's own (they run on Temporal; this platform has its own GitHub, Notion, ... connectors)
and this project's. A loaded class is refused when its distribution requires a durable-sync whose
contract is newer than ``CONTRACT_VERSION`` (a requirement that durable-sync 0.3.0 does not meet).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint

from packaging.requirements import InvalidRequirement, Requirement

from connectors.core import ConfigError
from connectors.registry import EntryPointGroups, dist_name

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
                f"{dist_name(ep)} requires {raw}; connectors.compat implements durable-sync {_IMPLEMENTS}'s contract"
            )


_GROUPS = EntryPointGroups(SOURCE_GROUP, DESTINATION_GROUP, skipped=_SKIPPED, label="ported ", check=_check_requirement)


source_names = _GROUPS.source_names
destination_names = _GROUPS.destination_names
load_source = _GROUPS.load_source
load_destination = _GROUPS.load_destination


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
    out = []
    for name, source, dest in _GROUPS.names():
        ep = source or dest
        dist = getattr(ep, "dist", None)
        out.append(
            ConnectorInfo(
                name=name,
                source=source.value if source else None,
                destination=dest.value if dest else None,
                distribution=dist_name(ep) if ep else "",
                version=str(getattr(dist, "version", "") or ""),
            )
        )
    return out
