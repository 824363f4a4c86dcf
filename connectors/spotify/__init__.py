"""Spotify: the user's saved tracks as a source and as a destination, keyed by ISRC, over the Web API.

- ``SpotifySource``: the saved tracks ("Liked Songs", spec ``liked``), 50 a page by ``offset``,
  newest first; tracks without an ISRC are left out.
- ``SpotifyDestination``: finds a record's track by ISRC (then by title and artist) and saves it;
  the library is its listing (``stores_keys = True``).
- ``SpotifyClient``: the typed client (``Authorization: Bearer`` access token; 401/403 are auth
  failures, 429 waits out ``Retry-After``).

See ``README.md`` in this folder for the token, scopes, limits and quirks.
"""

from connectors.spotify.client import (
    OffsetNextPagination,
    SpotifyClient,
    SpotifyCredentials,
    first_track_id,
    track_isrc,
)
from connectors.spotify.destination import SpotifyDestination
from connectors.spotify.source import SpotifySource, saved_track_record

__all__ = [
    "OffsetNextPagination",
    "SpotifyClient",
    "SpotifyCredentials",
    "SpotifyDestination",
    "SpotifySource",
    "first_track_id",
    "saved_track_record",
    "track_isrc",
]
