"""``durable_sync.connectors.content`` for ported connectors: the shared content columns.

``content_record`` builds this platform's ``Record`` (so the engine accepts it as it is) with
durable-sync's column names and caps; ``pack_cursor``/``unpack_cursor`` are its JSON cursors.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.core import Record

__all__ = [
    "P_AUTHOR",
    "P_AUTHORS",
    "P_DATE",
    "P_SOURCE",
    "P_SOURCE_ID",
    "P_STATUS",
    "P_TYPE",
    "P_URL",
    "content_record",
    "pack_cursor",
    "unpack_cursor",
]

P_TYPE = "Type"
P_SOURCE = "Source"
P_SOURCE_ID = "Source ID"
P_URL = "URL"
P_DATE = "Date"
P_STATUS = "Status"
P_AUTHOR = "Author"
P_AUTHORS = "Authors"

_MAX_TEXT = 2000  # durable-sync's cap on the title and author columns


def pack_cursor(**fields: Any) -> str:
    """A paging cursor holding ``fields`` (JSON text)."""
    return json.dumps(fields)


def unpack_cursor(cursor: str) -> dict[str, Any]:
    """The fields of a cursor made by ``pack_cursor``."""
    fields: dict[str, Any] = json.loads(cursor)
    return fields


def content_record(
    *,
    primary_key: str,
    title_property: str,
    title: str,
    item_type: str,
    source: str,
    url: str | None = None,
    date: str | None = None,
    status: str = "Published",
    author: str = "",
    authors: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Record:
    """A record with the shared content columns (and ``extra``); the key is also the Source ID column."""
    props: dict[str, Any] = {
        title_property: (title or "")[:_MAX_TEXT],
        P_TYPE: item_type,
        P_SOURCE: source,
        P_SOURCE_ID: primary_key,
        P_URL: url,
        P_DATE: date,
        P_STATUS: status,
        P_AUTHOR: (author or "")[:_MAX_TEXT],
        P_AUTHORS: list(authors or []),
    }
    if extra:
        props.update(extra)
    return Record(primary_key, props)
