"""``SQLiteTableSource``: the rows of a ``SQLiteDestination`` table, read back as records.

The other half of a local two-way pair (``sync_assets.routes.TwoWayRoute``): a table that one route
writes is read by the other, keyed by its row ``id`` — the id ``SQLiteDestination`` returns for the
row, so a record's key here is its destination id there. Properties are the table's property columns
decoded to the neutral types that were written (``SQLiteDestination.read_rows``); the fixed columns
(``id``, the key column, ``body``, ``synced_at``) are not properties. One spec, ``table:<table>``; a
pass reads the whole table (a local file: no paging needed).
"""

from __future__ import annotations

import asyncio

from connectors.core import Record, SourceSpec
from connectors.files.settings import DEFAULT_INTERVAL_MINUTES
from connectors.files.sqlite import SQLiteDestination

__all__ = ["SQLiteTableSource"]


class SQLiteTableSource:
    """The rows of the table a ``SQLiteDestination`` writes, keyed by row id.

    Args:
        table: The destination whose table is read (its file, table and key column).
        name: Source name (default: the destination's).
        interval_minutes: How often the spec syncs.
    """

    incremental = False

    def __init__(
        self, table: SQLiteDestination, *, name: str | None = None, interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    ) -> None:
        """Read ``table``'s file when a pass asks, not before."""
        self.table = table
        self.name = name or table.name
        self.interval_minutes = interval_minutes

    def specs(self) -> list[SourceSpec]:
        """One spec, ``table:<table>``."""
        return [SourceSpec(f"table:{self.table.table}", self.interval_minutes)]

    def _records(self, only_items: list[str] | None) -> list[Record]:
        fixed = {"id", self.table.key_column, "body", "synced_at"}
        wanted = set(only_items) if only_items is not None else None
        out = []
        for row in self.table.read_rows():
            if wanted is not None and row["id"] not in wanted:
                continue
            properties = {
                (name.removeprefix("property:") if name.startswith("property:") else name): value
                for name, value in row.items()
                if name not in fixed or name.startswith("property:")
            }
            out.append(Record(row["id"], properties, row.get("body")))
        return out

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every row of the table (only those whose id is in ``only_items`` when given)."""
        return await asyncio.to_thread(self._records, only_items)
