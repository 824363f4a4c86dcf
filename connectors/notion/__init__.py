"""Notion: a destination (pages of a database, keyed on our primary key) and a source, over REST.

- ``NotionDestination`` (``destination.py``): creates and updates pages of one data source
  (Notion-Version 2025-09-03), writing each neutral value by the target property's type.
- ``NotionSource`` (``source.py``): the pages of a data source as records, paged 100 at a time and
  read incrementally by ``last_edited_time``.
- ``NotionClient`` (``client.py``): the typed REST client over ``connectors.http``.
- ``encode.py`` / ``decode.py``: neutral values to and from Notion property values (shared with a
  later MCP variant); ``schema.py``: ``infer_schema`` for ``ensure_schema``.

See ``README.md`` in this folder for the integration setup, the database to create, encodings, limits,
rate limits, trash behaviour and data sources. Nothing here imports Dagster.
"""

from connectors.notion.client import DataSourceRef, NextCursorPagination, NotionClient
from connectors.notion.destination import NotionDestination, TruncationReport
from connectors.notion.encode import Truncation
from connectors.notion.schema import Column, Kind, Role, Schema, infer_schema
from connectors.notion.source import NotionSource

__all__ = [
    "Column",
    "DataSourceRef",
    "Kind",
    "NextCursorPagination",
    "NotionClient",
    "NotionDestination",
    "NotionSource",
    "Role",
    "Schema",
    "Truncation",
    "TruncationReport",
    "infer_schema",
]
