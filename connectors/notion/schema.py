"""Schema inference for ``NotionDestination.ensure_schema`` (durable-sync's ``infer_schema``, §2.10).

``infer_schema`` is pure and deterministic: it looks at sample records and picks one kind per column:

- ``bool`` -> CHECKBOX (checked before int); ``int``/``float`` -> NUMBER; ``datetime`` -> DATE with time;
  ``date`` -> DATE; ``list`` -> MULTI_SELECT (the sampled values become its options); anything else
  -> TEXT. SELECT, URL, EMAIL and PHONE come only from ``overrides``. Mixed kinds fall back to TEXT
  (ints and floats are one kind, NUMBER; dates and datetimes too, DATE with time).
- A column whose values are all None is left out unless it is the title, key or synced column or
  has an override.
- Column order: the title (TEXT by default, written as Notion's title property), the key (TEXT),
  the others in first-seen order (override-only names last), then the synced column (DATE).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.core import ConfigError, Record
from connectors.notion.settings import MAX_ARRAY_ELEMENTS

__all__ = ["Column", "Kind", "Role", "Sample", "Schema", "infer_schema", "schema_to_properties", "value_kind"]


class Kind(enum.Enum):
    """The neutral kinds of value a column holds."""

    TEXT = "text"
    NUMBER = "number"
    CHECKBOX = "checkbox"
    MULTI_SELECT = "multi_select"
    SELECT = "select"
    DATE = "date"
    URL = "url"
    EMAIL = "email"
    PHONE = "phone_number"

    @classmethod
    def parse(cls, value: Kind | str) -> Kind:
        """A Kind from itself, its value or its name, case-insensitively.

        Raises:
            ValueError: Not a kind.
        """
        if isinstance(value, Kind):
            return value
        text = str(value).strip().lower()
        for kind in cls:
            if text in (kind.value, kind.name.lower()):
                return kind
        raise ValueError(f"unknown column kind {value!r}; one of {', '.join(k.value for k in cls)}")


class Role(enum.Enum):
    """What a column is for in a Notion database (title, key, synced stamp, plain property)."""

    TITLE = "title"
    KEY = "key"
    SYNCED = "synced"
    NORMAL = "normal"


@dataclass(frozen=True)
class Column:
    """One column of an inferred schema.

    Attributes:
        name: The property name.
        kind: Its kind.
        role: Title, key, synced stamp or a normal column.
        has_time: For DATE: whether values carry a time.
        options: For (MULTI_)SELECT: options to create up front (from the sample).
    """

    name: str
    kind: Kind
    role: Role = Role.NORMAL
    has_time: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    """An ordered set of columns, optionally named (the database title)."""

    columns: tuple[Column, ...]
    name: str | None = None

    def __iter__(self) -> Iterator[Column]:
        """The columns, in order."""
        return iter(self.columns)

    def __len__(self) -> int:
        """The number of columns."""
        return len(self.columns)

    @property
    def title(self) -> Column | None:
        """The title column, or None."""
        return next((c for c in self.columns if c.role is Role.TITLE), None)

    def by_name(self) -> dict[str, Column]:
        """The columns by name."""
        return {c.name: c for c in self.columns}


def value_kind(value: Any) -> tuple[Kind, bool]:
    """The kind of one non-None neutral value, and whether it is a date with a time."""
    if isinstance(value, bool):
        return Kind.CHECKBOX, False
    if isinstance(value, (int, float)):
        return Kind.NUMBER, False
    if isinstance(value, dt.datetime):
        return Kind.DATE, True
    if isinstance(value, dt.date):
        return Kind.DATE, False
    if isinstance(value, (list, tuple)):
        return Kind.MULTI_SELECT, False
    return Kind.TEXT, False


@dataclass(frozen=True)
class Sample:
    """What sample records say about their columns.

    Attributes:
        seen: Column -> the ``value_kind`` s of its non-None values, in first-seen order of the columns
            (an all-None column maps to an empty set).
        options: Column -> the distinct list items seen in it (MULTI_SELECT option candidates).
    """

    seen: dict[str, set[tuple[Kind, bool]]]
    options: dict[str, list[str]]

    @classmethod
    def of(cls, records: Iterable[Record]) -> Sample:
        """The sample of ``records``."""
        seen: dict[str, set[tuple[Kind, bool]]] = {}
        options: dict[str, list[str]] = {}
        for record in records:
            for col, value in record.properties.items():
                kinds = seen.setdefault(col, set())
                if value is None:
                    continue
                kind = value_kind(value)
                kinds.add(kind)
                if kind[0] is Kind.MULTI_SELECT:
                    listed = options.setdefault(col, [])
                    for item in value:
                        if _option(item) and item not in listed:
                            listed.append(item)
        return cls(seen, options)

    def kinds(self, col: str) -> set[Kind]:
        """The kinds seen in ``col`` (dates with and without a time are one kind)."""
        return {kind for kind, _ in self.seen.get(col, set())}

    def has_time(self, col: str) -> bool:
        """Whether a date with a time was seen in ``col``."""
        return any(has_time for _, has_time in self.seen.get(col, set()))

    def roles(
        self, *, title: str, key: str | None, synced: str | None, overridden: Collection[str]
    ) -> list[tuple[str, Role]]:
        """The columns of a schema in order, with their roles (the module docstring's rules).

        Title, key, the non-empty or overridden columns in first-seen order, the override-only ones,
        then the synced column.
        """
        special = {title, key, synced}
        out = [(title, Role.TITLE)]
        if key:
            out.append((key, Role.KEY))
        out += [(c, Role.NORMAL) for c, kinds in self.seen.items() if c not in special and (kinds or c in overridden)]
        out += [(c, Role.NORMAL) for c in overridden if c not in special and c not in self.seen]
        if synced:
            out.append((synced, Role.SYNCED))
        return out


def _option(item: Any) -> bool:
    # Notion refuses option names with a comma; empty and non-text items are no options.
    return isinstance(item, str) and bool(item) and "," not in item


def infer_schema(
    records: Iterable[Record],
    *,
    title: str,
    key: str | None = None,
    synced: str | None = None,
    overrides: Mapping[str, Kind | str] | None = None,
    name: str | None = None,
) -> Schema:
    """The schema that fits sample ``records`` (see the module docstring).

    Args:
        records: A sample of the source's records.
        title: The title column (the record property holding each row's title).
        key: The key column (holds ``Record.primary_key``; TEXT).
        synced: The synced-stamp column (DATE with time).
        overrides: Column -> kind (a ``Kind``, or its value or name in any case).
        name: The schema's name (the database title).

    Raises:
        ValueError: An override names no kind.
    """
    parsed = {col: Kind.parse(kind) for col, kind in (overrides or {}).items()}
    sample = Sample.of(records)

    def column(col: str, role: Role) -> Column:
        seen = sample.kinds(col)
        if col in parsed:
            kind = parsed[col]
        elif len(seen) == 1:
            kind = next(iter(seen))
        elif not seen:
            kind = Kind.DATE if role is Role.SYNCED else Kind.TEXT
        else:
            kind = Kind.TEXT
        if role is Role.TITLE:
            kind = Kind.TEXT  # Notion's title property is text; other values are written as text
        has_time = kind is Kind.DATE and (sample.has_time(col) or role is Role.SYNCED)
        opts = sample.options.get(col, [])[:MAX_ARRAY_ELEMENTS] if kind in (Kind.MULTI_SELECT, Kind.SELECT) else []
        return Column(col, kind, role, has_time, tuple(opts))

    roles = sample.roles(title=title, key=key, synced=synced, overridden=parsed)
    return Schema(tuple(column(col, role) for col, role in roles), name)


def schema_to_properties(schema: Schema) -> dict[str, Any]:
    """The ``properties`` of a Notion data source for ``schema`` (``POST /v1/databases``).

    Raises:
        ConfigError: The schema has no title column.
    """
    if schema.title is None:
        raise ConfigError("a Notion database needs a title column (Role.TITLE)")
    out: dict[str, Any] = {}
    for col in schema:
        if col.role is Role.TITLE:
            out[col.name] = {"title": {}}
        elif col.kind is Kind.TEXT:
            out[col.name] = {"rich_text": {}}
        elif col.kind is Kind.NUMBER:
            out[col.name] = {"number": {"format": "number"}}
        elif col.kind in (Kind.SELECT, Kind.MULTI_SELECT):
            out[col.name] = {col.kind.value: {"options": [{"name": o} for o in col.options]}}
        else:
            out[col.name] = {col.kind.value: {}}
    return out
