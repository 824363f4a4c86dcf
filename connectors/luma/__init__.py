"""Luma: calendar events as a source and as a destination, over Luma's public API (``x-luma-api-key``).

- ``LumaSource``: the calendar's events (``events`` spec), paged by ``pagination_cursor``; all events by
  default, no rolling window.
- ``LumaDestination``: creates (``event/create`` → ``api_id``) and updates (``event/update`` with
  ``event_id``) events. Luma cannot store our key, so the engine's link map is the only record
  (``stores_keys = False``); creates go one at a time and are never resent after an ambiguous failure.
- ``LumaClient``: the typed client (200 requests a minute per key, a 429 blocks the key for a minute).

See ``README.md`` in this folder for the API key, limits, properties and the create-then-link crash window.
"""

from connectors.luma.client import HasMorePagination, LumaClient
from connectors.luma.destination import LumaDestination, encode_event
from connectors.luma.source import LumaSource, event_record, event_url

__all__ = [
    "HasMorePagination",
    "LumaClient",
    "LumaDestination",
    "LumaSource",
    "encode_event",
    "event_record",
    "event_url",
]
