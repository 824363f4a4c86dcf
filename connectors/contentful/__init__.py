"""Contentful: a source (the Sync API over the CDA, or the CMA for drafts) and a destination (the CMA).

- ``ContentfulSource`` (``source.py``): entries as records, one spec per content type (``type:<id>``) or
  one ``all`` spec; incremental through the Sync API's token (deltas, deletions) in CDA mode, through
  keyset paging on ``sys.updatedAt`` in CMA mode.
- ``ContentfulDestination`` (``destination.py``): entries of one content type with deterministic ids
  derived from our key (a retried create cannot duplicate), versioned read-merge-write updates that
  keep fields we do not manage, optional publish.
- ``ContentfulClient`` (``client.py``): the typed client over ``connectors.http``.
- ``encode.py`` / ``decode.py``: neutral values to and from Contentful field values and the key -> id
  mapping; pure, shared with a later MCP destination.

See ``README.md`` in this folder for tokens, env vars, incremental behaviour, deletions, locales,
encodings, ids, publishing, rate limits and quirks. Nothing here imports Dagster.
"""

from connectors.contentful.client import ContentfulClient, InvalidEntry, SyncTokenPagination, is_version_mismatch
from connectors.contentful.decode import decode_value, parse_date, pick_locale, rich_text_plain
from connectors.contentful.destination import ContentfulDestination
from connectors.contentful.encode import (
    ContentTypeSpec,
    FieldSpec,
    encode_fields,
    encode_value,
    entry_id_for,
    key_for_entry_id,
    merge_fields,
)
from connectors.contentful.source import DEFAULT_SYS_PROPERTIES, ContentfulSource

__all__ = [
    "DEFAULT_SYS_PROPERTIES",
    "ContentTypeSpec",
    "ContentfulClient",
    "ContentfulDestination",
    "ContentfulSource",
    "FieldSpec",
    "InvalidEntry",
    "SyncTokenPagination",
    "decode_value",
    "encode_fields",
    "encode_value",
    "entry_id_for",
    "is_version_mismatch",
    "key_for_entry_id",
    "merge_fields",
    "parse_date",
    "pick_locale",
    "rich_text_plain",
]
