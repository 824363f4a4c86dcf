"""``SpotifySource``: the user's saved tracks ("Liked Songs") as records keyed by ISRC.

One spec, ``liked``: ``GET /me/tracks`` 50 at a time, newest first. Each saved track becomes a record
whose key is the track's ISRC, the identity every music service shares (a Spotify track id means
nothing to ListenBrainz); a track without an ISRC (a local file, some releases) is left out and
counted in a warning, because a record whose key cannot match across services would be created
again and again on the other side.

Properties: ``Name``, ``Artist`` (the artists joined with ", "), ``Artists`` (list), ``Album``,
``URL`` (open.spotify.com), ``Added`` (aware datetime: when the user saved it), ``ISRC`` and
``Spotify ID``. The cursor is the offset of the next page (``"50"``): it replays in a fresh process.

The listing has no ISRC filter, so ``only_items`` (ISRCs) pages through the library and keeps those.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.core import Record, SourceSpec, check_count
from connectors.http import HttpSettings, Json, Rate, drain_pages, offset_of
from connectors.spotify.client import SpotifyConnector, track_isrc
from connectors.spotify.settings import (
    API_BASE,
    DEFAULT_INTERVAL_MINUTES,
    PAGE_SIZE,
    SPOTIFY_RATE,
    TOKEN_ENV,
    TRACK_URL_BASE,
    UNTITLED,
)
from connectors.watermarks import parse_time

__all__ = ["SpotifySource", "saved_track_record"]

logger = logging.getLogger(__name__)


def _artists(track: Json) -> list[str]:
    names = []
    for artist in track.get("artists") or []:
        name = artist.get("name") if isinstance(artist, dict) else None
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return names


def saved_track_record(item: Json) -> Record | None:
    """One saved-track item (``{added_at, track}``) as a record keyed by ISRC; None without an ISRC."""
    track = item.get("track")
    if not isinstance(track, dict):
        return None
    isrc = track_isrc(track)
    if not isrc:
        return None
    names = _artists(track)
    album = track.get("album")
    album_name = album.get("name") if isinstance(album, dict) else None
    urls = track.get("external_urls")
    track_id = track.get("id") if isinstance(track.get("id"), str) else None
    url = urls.get("spotify") if isinstance(urls, dict) else None
    if not url and track_id:
        url = TRACK_URL_BASE + track_id
    name = track.get("name")
    properties: dict[str, Any] = {
        "Name": name.strip() if isinstance(name, str) and name.strip() else UNTITLED,
        "Artist": ", ".join(names) or None,
        "Artists": names,
        "Album": album_name if isinstance(album_name, str) and album_name else None,
        "URL": url if isinstance(url, str) else None,
        "Added": parse_time(item.get("added_at")),
        "ISRC": isrc,
        "Spotify ID": track_id,
    }
    return Record(isrc, properties)


class SpotifySource(SpotifyConnector):
    """The saved tracks of the Spotify user an access token belongs to.

    Args:
        token: The access token; default: the ``token_env`` variable (or ``<token_env>_FILE``), read at each use.
        token_env: Environment variable of the token.
        interval_minutes: How often the spec syncs.
        page_size: ``limit`` of the listing (1..50).
        name: Source name.
        base_url, rate, http: As for ``SpotifyClient``.
    """

    incremental = False  # the listing has no "saved since" filter: every pass reads the library

    def __init__(
        self,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        page_size: int = PAGE_SIZE,
        name: str = "spotify",
        base_url: str = API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = SPOTIFY_RATE,
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        self.interval_minutes = check_count("SpotifySource", "interval_minutes", interval_minutes)
        self.page_size = check_count("SpotifySource", "page_size", page_size, most=PAGE_SIZE)
        self.name = name
        self._init_connection(token, token_env, base_url, http, rate)

    def specs(self) -> list[SourceSpec]:
        """One unit of work: the user's saved tracks."""
        return [SourceSpec("liked", self.interval_minutes)]

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None = None, cursor: str | None = None
    ) -> tuple[list[Record], str | None]:
        """One page of saved tracks (newest first) and the next cursor (the next offset), or None."""
        async with self._open_client(f"SpotifySource {self.name!r}: no access token: {self.config_hint}") as client:
            if only_items is not None:
                wanted = {str(i).strip().upper() for i in only_items if str(i).strip()}
                out = []
                async for item in client.all_saved_tracks():
                    record = saved_track_record(item)
                    if record is not None and record.primary_key in wanted:
                        out.append(record)
                        wanted.discard(record.primary_key)
                return out, None
            offset = offset_of(cursor, f"SpotifySource {self.name!r}")
            body = await client.saved_tracks(offset=offset, limit=self.page_size)
            next_token = client.pagination.next_token(body)
        records, dropped = [], 0
        for item in body.get("items") or []:
            record = saved_track_record(item) if isinstance(item, dict) else None
            if record is None:
                dropped += 1
            else:
                records.append(record)
        if dropped:
            logger.warning(
                "Spotify source %s: %d saved track(s) without an ISRC left out (offset %d)", self.name, dropped, offset
            )
        return records, next_token

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (a drain over :meth:`fetch_page`)."""
        return await drain_pages(self.fetch_page, spec, only_items)
