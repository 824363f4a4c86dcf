"""Schema bootstrap of a route: what its destination lacks for the source's records, created on request.

``durable-sync schema ROUTE [--apply]`` and the first part of ``durable-sync plan``::

    sample   the first page(s) of one partition (``fetch_page`` with no cursor; nothing is committed,
             so an incremental source's watermark does not move); where a source declares types
             (``declared_types(spec_key)``, e.g. ``FileSpec.types``) an example value of the declared
             type fills each empty value, so a column whose sampled values are all empty still gets
             its type (and an empty sample is one record of the declared types)
    mapping  the route's transform and ``owns`` (``Route.build_transform``), applied record by record
             (the transform is opaque: only its output is looked at; a record it drops or fails on is
             left out of the sample)
    target   ``SchemaBootstrap.bootstrap_schema(sample, apply=)`` of the destination: it creates what
             is missing and never alters what exists (an existing column of another type is reported)

A destination without the capability (Jira's fields, Luma, Contentful's content types) answers
``SchemaNotSupported``. Plain Python: no Dagster.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.core import PagedSource, Record, SchemaBootstrap, SchemaChange, SyncError, describe_error
from sync_assets.routes import Route

__all__ = ["SAMPLE_PAGES", "SchemaNotSupported", "SchemaReport", "bootstrap_route", "sample_records"]

logger = logging.getLogger(__name__)

SAMPLE_PAGES = 1
"""Pages of the source read for the sample by default."""

# One value per declared type name (FileSpec.types, SQLiteDestination.types): its kind is what counts.
_EXAMPLES: dict[str, Any] = {
    "str": "",
    "int": 0,
    "float": 0.5,
    "bool": False,
    "date": dt.date(2000, 1, 1),
    "datetime": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    "list": [],
}
_DECLARED_KEY = "(declared types)"


class SchemaNotSupported(SyncError):
    """The route's destination cannot bootstrap its schema (no ``bootstrap_schema``)."""


@dataclass
class SchemaReport:
    """What a bootstrap found (and did, when applied).

    Attributes:
        route: The route's name.
        partition: The partition sampled.
        sampled: Records in the sample after the route's transform (the declared-types one included).
        changes: The destination's lines, in its order.
        applied: Whether the changes were made.
        dropped: Sampled records the transform dropped or failed on.
    """

    route: str
    partition: str
    sampled: int
    changes: list[SchemaChange] = field(default_factory=list)
    applied: bool = False
    dropped: int = 0

    @property
    def creates(self) -> list[SchemaChange]:
        """The ``create`` lines."""
        return [c for c in self.changes if c.action == "create"]

    def lines(self) -> list[str]:
        """The report for people, one line per change."""
        verb = "created" if self.applied else "would create"
        head = (
            f"schema of {self.route} (sampled {self.sampled} record(s) of {self.partition}): {verb} {len(self.creates)}"
        )
        others = len(self.changes) - len(self.creates)
        if others:
            head += f", {others} left alone"
        return [head] + [f"  {change}" for change in self.changes]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "route": self.route,
            "partition": self.partition,
            "sampled": self.sampled,
            "dropped": self.dropped,
            "applied": self.applied,
            "changes": [{"action": c.action, "name": c.name, "kind": c.kind, "detail": c.detail} for c in self.changes],
        }


def _declared_record(types: Mapping[str, str]) -> Record | None:
    properties = {name: _EXAMPLES[type_name] for name, type_name in types.items() if type_name in _EXAMPLES}
    return Record(_DECLARED_KEY, properties) if properties else None


def _filled(record: Record, example: Record) -> Record:
    properties = dict(record.properties)
    for name, value in example.properties.items():
        if properties.get(name) is None:
            properties[name] = value
    return Record(record.primary_key, properties, record.body)


async def sample_records(route: Route, partition: str, *, pages: int = SAMPLE_PAGES) -> tuple[list[Record], int]:
    """The route's records of the first ``pages`` page(s) of ``partition``, after its transform.

    Returns:
        The sample and how many records the transform dropped or failed on.
    """
    spec = route.spec_for(partition)
    source = route.source
    raw: list[Any] = []
    if isinstance(source, PagedSource):
        cursor: str | None = None
        for _ in range(max(1, pages)):
            records, cursor = await source.fetch_page(spec, None, cursor)
            raw.extend(records)
            if cursor is None:
                break
    else:
        raw.extend(await source.fetch(spec))
    declared = getattr(source, "declared_types", None)
    example = _declared_record(declared(spec.key) or {}) if callable(declared) else None
    if example is not None:
        # Declared types fill the values the sample left empty, in the sampled records themselves (the
        # transform may read any property); with nothing sampled, the example alone is the sample.
        raw = [_filled(item, example) if isinstance(item, Record) else item for item in raw] or [example]
    transform = route.build_transform()
    sample: list[Record] = []
    dropped = 0
    for item in raw:
        if not isinstance(item, Record):
            dropped += 1
            continue
        out: Record | None = item
        if transform is not None:
            try:
                out = await transform(item)
            except Exception as err:
                logger.info(
                    "schema sample of %s: record %s left out: %s", route.name, item.primary_key, describe_error(err)
                )
                out = None
        if out is None:
            dropped += 1
        else:
            sample.append(out)
    return sample, dropped


async def bootstrap_route(
    route: Route, partition: str | None = None, *, apply: bool = False, pages: int = SAMPLE_PAGES
) -> SchemaReport:
    """Sample ``route``'s source and ask its destination what it lacks (and, with ``apply``, to create it).

    Args:
        route: The route.
        partition: The partition to sample (default: the first, in partition-key order).
        apply: Create what is missing (without it nothing is written anywhere).
        pages: Source pages to sample.

    Raises:
        SchemaNotSupported: The destination has no ``bootstrap_schema``.
    """
    destination = route.destination
    if not isinstance(destination, SchemaBootstrap):
        raise SchemaNotSupported(
            f"route {route.name}: destination {getattr(destination, 'name', type(destination).__name__)!r} "
            "cannot create its schema (Notion, Notion over MCP, Asana and SQLite can); create its fields by hand"
        )
    partitions: Sequence[str] = sorted(route.specs_by_partition())
    key = partition or (partitions[0] if partitions else "")
    sample, dropped = await sample_records(route, key, pages=pages)
    changes = await destination.bootstrap_schema(sample, apply=apply)
    return SchemaReport(route.name, key, len(sample), list(changes), apply, dropped)
