"""ListenBrainz: a user's loved recordings as a source and as a destination, keyed by ISRC.

- ``ListenBrainzSource``: the loved recordings of a user (spec ``loved``), 100 a page by ``offset``;
  each recording MBID resolved to an ISRC with MusicBrainz (cacheable).
- ``ListenBrainzDestination``: resolves a record's ISRC to a recording with MusicBrainz and loves it
  (score 1); the engine's link map holds ISRC → MBID (``stores_keys = False``).
- ``ListenBrainzClient`` / ``MusicBrainzClient``: the typed clients (``Authorization: Token``; the
  ``X-RateLimit-*`` window honoured; MusicBrainz at one request a second with a descriptive User-Agent).

See ``README.md`` in this folder for the token, limits and quirks.
"""

from connectors.listenbrainz.client import (
    ListenBrainzClient,
    ListenBrainzCredentials,
    MusicBrainzClient,
    TotalCountPagination,
    first_isrc,
    first_recording_mbid,
)
from connectors.listenbrainz.destination import ListenBrainzDestination
from connectors.listenbrainz.source import ListenBrainzSource, loved_record

__all__ = [
    "ListenBrainzClient",
    "ListenBrainzCredentials",
    "ListenBrainzDestination",
    "ListenBrainzSource",
    "MusicBrainzClient",
    "TotalCountPagination",
    "first_isrc",
    "first_recording_mbid",
    "loved_record",
]
