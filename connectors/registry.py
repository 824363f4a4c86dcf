"""Connector discovery through entry points.

Two groups: ``durable_sync_dagster.sources`` and ``durable_sync_dagster.destinations`` — not
durable-sync's ``durable_sync.*`` names, so the two packages installed side by side never resolve one
name to the other's class (``connectors.compat.registry`` reads durable-sync's groups, through the
same :class:`EntryPointGroups`). Each entry resolves to a class (not an instance). A package may
register a name that a core connector already uses; the last one registered wins, so a connector can
be overridden on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = [
    "DESTINATIONS_GROUP",
    "SOURCES_GROUP",
    "ConnectorInfo",
    "EntryPointGroups",
    "destination_names",
    "discover",
    "load_destination",
    "load_source",
    "source_names",
]

SOURCES_GROUP = "durable_sync_dagster.sources"
DESTINATIONS_GROUP = "durable_sync_dagster.destinations"


def dist_name(ep: EntryPoint) -> str:
    """The name of the distribution that registered ``ep`` ("" when unknown)."""
    dist = getattr(ep, "dist", None)
    return str(getattr(dist, "name", "") or "")


@dataclass(frozen=True)
class EntryPointGroups:
    """A source group and a destination group of entry points, read apart.

    Attributes:
        sources: The source group.
        destinations: The destination group.
        skipped: Distributions whose entries are left out (lowercase names).
        label: Says which connectors in errors (``"ported "``: "no ported source connector named ...").
        check: Called with an entry before it is loaded (raise to refuse it).
    """

    sources: str
    destinations: str
    skipped: frozenset[str] = frozenset()
    label: str = ""
    check: Callable[[EntryPoint], None] | None = None

    def entries(self, group: str) -> dict[str, EntryPoint]:
        """The entries of ``group`` by name; the last one registered under a name wins."""
        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=group):
            if dist_name(ep).lower() not in self.skipped:
                found[ep.name] = ep
        return found

    def source_names(self) -> list[str]:
        """The registered source names (nothing is imported)."""
        return sorted(self.entries(self.sources))

    def destination_names(self) -> list[str]:
        """The registered destination names (nothing is imported)."""
        return sorted(self.entries(self.destinations))

    def load_source(self, name: str) -> Any:
        """The source class registered as ``name``; LookupError lists the installed ones."""
        return self._load(self.sources, "source", name)

    def load_destination(self, name: str) -> Any:
        """The destination class registered as ``name``; LookupError lists the installed ones."""
        return self._load(self.destinations, "destination", name)

    def _load(self, group: str, kind: str, name: str) -> Any:
        entries = self.entries(group)
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise LookupError(f"no {self.label}{kind} connector named {name!r} (installed: {known})")
        if self.check is not None:
            self.check(entries[name])
        return entries[name].load()

    def names(self) -> Iterator[tuple[str, EntryPoint | None, EntryPoint | None]]:
        """Every registered name with its source and destination entries (either may be None), sorted."""
        sources, dests = self.entries(self.sources), self.entries(self.destinations)
        for name in sorted(set(sources) | set(dests)):
            yield name, sources.get(name), dests.get(name)


_GROUPS = EntryPointGroups(SOURCES_GROUP, DESTINATIONS_GROUP)


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


source_names = _GROUPS.source_names
destination_names = _GROUPS.destination_names
load_source = _GROUPS.load_source
load_destination = _GROUPS.load_destination


def discover() -> list[ConnectorInfo]:
    """Every connector name with its source/destination classes and distribution."""
    out = []
    for name, source, dest in _GROUPS.names():
        dist = getattr(source or dest, "dist", None)
        out.append(
            ConnectorInfo(
                name=name,
                source=source.value if source else None,
                destination=dest.value if dest else None,
                distribution=getattr(dist, "name", None),
                version=getattr(dist, "version", None),
            )
        )
    return out
