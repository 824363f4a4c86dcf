"""``durable_sync.schema`` for ported connectors: the neutral schema model and its inference.

The same names, values and rules as durable-sync 0.3 (``Kind`` and ``Role`` are ``str`` enums,
``Schema.by_name(name)`` finds one column), so a ported destination's ``ensure_schema`` reads the
schema it was written against. Inference: ``bool`` -> CHECKBOX (before ``int``), ``int``/``float`` ->
NUMBER, ``datetime`` -> DATE with time, ``date`` -> DATE, lists -> MULTI_SELECT, anything else TEXT;
SELECT only through ``overrides``; mixed kinds fall back to TEXT; an all-None column is left out
unless it is the title, key or synced column. Order: title, key, the rest first seen, synced last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from connectors.core import Record

__all__ = ["Column", "Kind", "Role", "Schema", "infer_schema"]


# (str, Enum), not StrEnum: str() of a member reads "Kind.TEXT" on durable-sync, and ported code may print it.
class Kind(str, Enum):  # noqa: UP042
    """Neutral column kinds (a ``str``, so values compare and serialise plainly)."""

    TEXT = "text"
    NUMBER = "number"
    CHECKBOX = "checkbox"
    MULTI_SELECT = "multi_select"
    SELECT = "select"
    DATE = "date"


class Role(str, Enum):  # noqa: UP042
    """A column's role in the sync."""

    TITLE = "title"
    KEY = "key"
    SYNCED = "synced"
    NORMAL = "normal"


@dataclass(frozen=True)
class Column:
    """One column: its name, kind, role and (for DATE) whether it holds a time."""

    name: str
    kind: Kind
    role: Role = Role.NORMAL
    has_time: bool = False


@dataclass(frozen=True)
class Schema:
    """An ordered, neutral description of a destination table, optionally named."""

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

    def by_name(self, name: str) -> Column | None:
        """The column called ``name``, or None."""
        return next((c for c in self.columns if c.name == name), None)


def _coerce_kind(value: Any) -> Kind:
    if isinstance(value, Kind):
        return value
    text = str(value).strip().lower()
    for kind in Kind:
        if text in (kind.value, kind.name.lower()):
            return kind
    raise ValueError(f"unknown column kind: {value!r}")


def _kind_of(value: Any) -> tuple[Kind, bool]:
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


def infer_schema(
    records: Iterable[Record],
    *,
    title: str,
    key: str | None = None,
    synced: str | None = None,
    overrides: dict[str, Any] | None = None,
    name: str | None = None,
) -> Schema:
    """The neutral schema of a sample of records (rules in the module docstring).

    Args:
        records: The sample.
        title: The title column (always present; TEXT unless observed or overridden otherwise).
        key: The key column (TEXT by default).
        synced: A DATE column the destination stamps at write time (always last).
        overrides: Column -> ``Kind`` (or its name or value).
        name: The schema's name.

    Raises:
        ValueError: An override names no kind.
    """
    forced = {col: _coerce_kind(kind) for col, kind in (overrides or {}).items()}
    observed: dict[str, set[tuple[Kind, bool]]] = {}
    for record in records:
        for col, value in record.properties.items():
            kinds = observed.setdefault(col, set())
            if value is not None:
                kinds.add(_kind_of(value))

    def resolve(col: str) -> tuple[Kind, bool] | None:
        if col in forced:
            return forced[col], False
        kinds = observed.get(col) or set()
        if not kinds:
            return None
        return next(iter(kinds)) if len(kinds) == 1 else (Kind.TEXT, False)

    columns: list[Column] = []
    placed: set[str] = set()

    def add(col: str, role: Role, default: tuple[Kind, bool] | None = None) -> None:
        if col in placed:
            return
        found = resolve(col) or default
        if found is None:
            return
        columns.append(Column(col, found[0], role, found[1]))
        placed.add(col)

    add(title, Role.TITLE, (Kind.TEXT, False))
    if key:
        add(key, Role.KEY, (Kind.TEXT, False))
    for col in [*observed, *forced]:
        if col != synced:
            add(col, Role.NORMAL)
    if synced:
        add(synced, Role.SYNCED, (Kind.DATE, False))
    return Schema(tuple(columns), name)
