"""``durable_sync.connectors.multi.MultiSource`` for ported connectors: several sources as one.

Each inner spec keeps its own partition, its key namespaced ``<source name>:<inner key>``; a page is
routed back to the source that owns the spec. Records come back as this platform's records.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from connectors.compat.adapters import CompatSource
from connectors.core import ConfigError, Record, SourceSpec

__all__ = ["MultiSource"]

_SEP = ":"


class MultiSource:
    """Several sources behind one (durable-sync's ``MultiSource``).

    Args:
        *sources: The sources; their names must be unique and free of ``:``.

    Raises:
        ConfigError: No source, a name used twice, or a name with ``:``.
    """

    name = "multi"

    def __init__(self, *sources: Any) -> None:
        """Bundle ``sources``."""
        if not sources:
            raise ConfigError("MultiSource needs at least one source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"MultiSource sources must have unique names, got {names}")
        bad = [n for n in names if _SEP in n]
        if bad:
            raise ConfigError(f"MultiSource source names must not contain {_SEP!r}: {bad}")
        self._by_name = {s.name: CompatSource(s) for s in sources}

    def specs(self) -> list[SourceSpec]:
        """Every inner source's specs, keys namespaced by source name (``luma:events``)."""
        return [
            dataclasses.replace(spec, key=f"{name}{_SEP}{spec.key}")
            for name, source in self._by_name.items()
            for spec in source.specs()
        ]

    def _route(self, spec: SourceSpec) -> tuple[CompatSource, SourceSpec]:
        name, _, inner_key = spec.key.partition(_SEP)
        source = self._by_name.get(name)
        if source is None:
            raise ConfigError(f"MultiSource: no source named {name!r} for spec key {spec.key!r}")
        return source, dataclasses.replace(spec, key=inner_key)

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """The records of ``spec`` from the source that owns it."""
        source, inner = self._route(spec)
        return await source.fetch(inner, only_items)

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page of ``spec`` (one page in all when the owning source cannot page)."""
        source, inner = self._route(spec)
        return await source.fetch_page(inner, only_items, cursor)

    def is_auth_error(self, err: BaseException) -> bool:
        """Whether any inner source calls ``err`` an auth failure."""
        return any(source.is_auth_error(err) for source in self._by_name.values())
