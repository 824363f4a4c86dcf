"""``SpotifyDestination``: records keyed by ISRC saved as tracks in the user's library ("Liked Songs").

The inverse of ``SpotifySource``. A record's key is an ISRC; Spotify saves by its own track id, so:

- ``create`` finds the catalogue track: ``GET /search?q=isrc:<ISRC>&type=track``, and when that finds
  nothing, ``track:"<Name>" artist:"<Artist>"`` (a recording has many ISRCs across its releases and
  the one MusicBrainz knows is often not the one Spotify indexes); then ``PUT /me/tracks`` with the id,
  which is returned as the destination id. A record no search finds is SKIPPED (``False``, logged):
  the track is not on Spotify, which no retry changes.
- The library is its own listing: ``query_existing_rows`` pages ``GET /me/tracks`` and yields
  ``(ISRC, track id)`` for every saved track (``stores_keys = True``), so a track the user saved by
  hand is adopted on the first pass instead of saved twice.
- "Saved" is all there is to write, so ``update`` only makes sure the track is still saved: one
  idempotent ``PUT /me/tracks``, or nothing when this session's listing already showed it saved.

A record needs only its key (and, for the fallback search, ``Name`` / ``Artist``); other properties
are not written anywhere. Needs the ``user-library-modify`` scope (a 403 without it: ``AuthError``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable

from connectors.core import Record, RecordError
from connectors.http import HttpSettings, Rate, TokenClientDestination
from connectors.isrc import normalize_isrc
from connectors.spotify.client import SpotifyClient, SpotifyConnector, track_isrc
from connectors.spotify.settings import API_BASE, MAX_CONCURRENCY, SPOTIFY_RATE, TOKEN_ENV

__all__ = ["SpotifyDestination"]

logger = logging.getLogger(__name__)


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v)
    return str(value).strip() if value is not None else ""


class SpotifyDestination(TokenClientDestination[SpotifyClient, "_SpotifySession"], SpotifyConnector):
    """The saved tracks of the Spotify user an access token belongs to, keyed by ISRC.

    Args:
        token: The access token; default: the ``token_env`` variable (or ``<token_env>_FILE``), read at each use.
        token_env: Environment variable of the token.
        title_property: The record property holding the track title (for the fallback search).
        artist_property: The record property holding the artist(s) (for the fallback search).
        search_by_name: Fall back to a title and artist search when the ISRC finds nothing.
        create_only_properties: Written on create, never on update (nothing is written but the save).
        name: Destination name.
        base_url, rate, http: As for ``SpotifyClient``.
    """

    stores_keys = True  # the library lists every saved track with its ISRC
    max_concurrency = MAX_CONCURRENCY
    max_value_length: int | None = None

    def __init__(
        self,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        title_property: str = "Name",
        artist_property: str = "Artist",
        search_by_name: bool = True,
        create_only_properties: Iterable[str] = (),
        name: str = "spotify",
        base_url: str = API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = SPOTIFY_RATE,
    ) -> None:
        """Remember the arguments; nothing is read or sent yet."""
        self.title_property = title_property
        self.artist_property = artist_property
        self.search_by_name = search_by_name
        self.create_only_properties = set(create_only_properties)
        self.name = name
        self._init_connection(token, token_env, base_url, http, rate)

    def describe(self) -> str:
        """Where the records go."""
        return "the saved tracks (Liked Songs) of the Spotify user the access token belongs to"

    def _session(self, client: SpotifyClient) -> _SpotifySession:
        # A session on the user's library.
        return _SpotifySession(self, client)


class _SpotifySession:
    def __init__(self, dest: SpotifyDestination, client: SpotifyClient) -> None:
        self.dest = dest
        self.client = client
        self.listed: set[str] = set()  # track ids this session's listing showed saved

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """``(ISRC, track id)`` of every saved track that has an ISRC, newest first."""
        async for item in self.client.all_saved_tracks():
            track = item.get("track")
            if not isinstance(track, dict) or not isinstance(track.get("id"), str):
                continue
            isrc = track_isrc(track)
            if isrc:
                self.listed.add(track["id"])
                yield isrc, track["id"]

    async def query_existing_ids(self) -> dict[str, str]:
        """The listing as one mapping (the first, most recently saved, track of an ISRC wins)."""
        out: dict[str, str] = {}
        async for isrc, track_id in self.query_existing_rows():
            out.setdefault(isrc, track_id)
        return out

    async def create(self, record: Record, synced_at: dt.datetime) -> str | bool:
        """Find the track and save it; its Spotify id, or False when Spotify has no such track."""
        isrc = normalize_isrc(record.primary_key)
        if not isrc:
            raise RecordError("Spotify: the record has no ISRC for a key", primary_key=record.primary_key)
        track_id = await self.client.search_isrc(isrc)
        if track_id is None and self.dest.search_by_name:
            title = _text(record.properties.get(self.dest.title_property))
            if title:
                track_id = await self.client.search_name(title, _text(record.properties.get(self.dest.artist_property)))
                if track_id is not None:
                    logger.info(
                        "Spotify: ISRC %s not in the catalogue; matched %r by name as %s", isrc, title, track_id
                    )
        if track_id is None:
            logger.info("Spotify: no track for ISRC %s; skipped", isrc)
            return False
        await self.client.save([track_id])
        return track_id

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Make sure the track is still saved (an idempotent save, skipped when just listed as saved)."""
        if existing_id not in self.listed:
            await self.client.save([existing_id])
        return True
