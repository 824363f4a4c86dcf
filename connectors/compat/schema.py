"""``durable_sync.schema`` for ported connectors: the neutral schema model and its inference.

The same names, values and rules as durable-sync 0.3 (``Kind`` and ``Role`` are ``str`` enums,
``Schema.by_name(name)`` finds one column), so a ported destination's ``ensure_schema`` reads the
schema it was written against. Inference: ``bool`` -> CHECKBOX (before ``int``), ``int``/``float`` ->
NUMBER, ``datetime`` -> DATE with time, ``date`` -> DATE, lists -> MULTI_SELECT, anything else TEXT;
SELECT only through ``overrides``; mixed kinds fall back to TEXT; an all-None column is left out
unless it is the title, key or synced column. Order: title, key, the rest first seen, synced last.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from connectors.core import Record
from connectors.notion import schema as notion_schema

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
    # The sampling and the column order are Notion's; the kinds differ: here a column that mixes
    # dates with and without a time is TEXT, a title keeps its kind, a synced column has no time.
    sample = notion_schema.Sample.of(records)
    defaults = {Role.TITLE: Kind.TEXT, Role.KEY: Kind.TEXT, Role.SYNCED: Kind.DATE}

    def column(col: str, role: Role) -> Column:
        if col in forced:
            return Column(col, forced[col], role)
        kinds = sample.seen.get(col) or set()
        if not kinds:
            return Column(col, defaults[role], role)
        kind, has_time = next(iter(kinds)) if len(kinds) == 1 else (notion_schema.Kind.TEXT, False)
        return Column(col, Kind(kind.value), role, has_time)

    roles = sample.roles(title=title, key=key, synced=synced, overridden=forced)
    placed: dict[str, Column] = {}
    for col, role in roles:
        placed.setdefault(col, column(col, Role(role.value)))
    return Schema(tuple(placed.values()), name)
