"""``ListenBrainzSource``: a user's loved recordings as records keyed by ISRC.

One spec, ``loved``: ``GET /1/feedback/user/<user>/get-feedback?score=1&metadata=true``, 100 a page,
newest first. ListenBrainz keys feedback by MusicBrainz recording MBID; to emit records on the key
every music connector shares, each MBID is resolved to an ISRC with MusicBrainz
(``GET /ws/2/recording/<MBID>?inc=isrcs``, its first ISRC). A recording without an MBID (feedback on
an unmatched listen) or without an ISRC is left out and counted in a warning.

MusicBrainz allows one request a second, so a first pass over 500 loved recordings takes over eight
minutes; pass ``isrc_cache`` (a durable ``MutableMapping``, e.g. the state store's) and later passes
ask MusicBrainz only about recordings loved since. Recordings found without an ISRC are asked again
on each pass (MusicBrainz editors add ISRCs).

Properties: ``Name``, ``Artist``, ``Album`` (from ListenBrainz's ``track_metadata``, None when it has
none), ``URL`` (the recording on musicbrainz.org), ``Loved`` (aware datetime), ``ISRC`` and
``Recording MBID``. The cursor is the offset of the next page (``"100"``). Reading feedback is public:
the source sends no token. ``only_items`` (ISRCs) pages through every loved recording and keeps those.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import MutableMapping
from typing import Any, Unpack

from connectors.core import ConfigError, Record, SourceSpec, check_count
from connectors.http import Json, NotFound, drain_pages, offset_of
from connectors.listenbrainz.client import ListenBrainzConnection, ListenBrainzConnector, MusicBrainzClient
from connectors.listenbrainz.settings import (
    DEFAULT_INTERVAL_MINUTES,
    PAGE_SIZE,
    RECORDING_URL_BASE,
    UNTITLED,
    USER_ENV,
)

__all__ = ["ListenBrainzSource", "loved_record"]

logger = logging.getLogger(__name__)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def loved_record(feedback: Json, isrc: str) -> Record:
    """One loved-feedback item as a record keyed by ``isrc`` (its recording's ISRC)."""
    mbid = str(feedback.get("recording_mbid") or "")
    meta = feedback.get("track_metadata")
    meta = meta if isinstance(meta, dict) else {}
    created = feedback.get("created")
    loved = (
        dt.datetime.fromtimestamp(created, dt.UTC)
        if isinstance(created, int | float) and not isinstance(created, bool)
        else None
    )
    properties: dict[str, Any] = {
        "Name": _text(meta.get("track_name")) or UNTITLED,
        "Artist": _text(meta.get("artist_name")),
        "Album": _text(meta.get("release_name")),
        "URL": RECORDING_URL_BASE + mbid if mbid else None,
        "Loved": loved,
        "ISRC": isrc,
        "Recording MBID": mbid or None,
    }
    return Record(isrc, properties)


class ListenBrainzSource(ListenBrainzConnector):
    """The loved recordings of a ListenBrainz user.

    Args:
        user: The ListenBrainz user name whose loved recordings are read.
        interval_minutes: How often the spec syncs.
        page_size: ``count`` of get-feedback (1..100).
        isrc_cache: A durable ``MBID -> ISRC`` mapping (default: in memory, for this instance only).
        name: Source name.
        connection: ``user_agent``, ``base_url``, ``musicbrainz_url``, ``http``, ``rate``,
            ``musicbrainz_rate`` (:class:`~connectors.listenbrainz.client.ListenBrainzConnection`).
    """

    incremental = False  # get-feedback has no "since" filter: every pass reads the loved list

    def __init__(
        self,
        user: str | None,
        *,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        page_size: int = PAGE_SIZE,
        isrc_cache: MutableMapping[str, str] | None = None,
        name: str = "listenbrainz",
        **connection: Unpack[ListenBrainzConnection],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        self.interval_minutes = check_count("ListenBrainzSource", "interval_minutes", interval_minutes)
        self.page_size = check_count("ListenBrainzSource", "page_size", page_size, most=PAGE_SIZE)
        self.isrc_cache: MutableMapping[str, str] = isrc_cache if isrc_cache is not None else {}
        self.name = name
        # Reading feedback is public: no token, so nothing to revoke and nothing secret to pause on.
        self._init_user_connection(user, None, None, **connection)

    @property
    def configured(self) -> bool:
        """Whether a user is named (no token is needed to read)."""
        return self.user is not None

    @property
    def config_hint(self) -> str:
        """What to set."""
        return "configured" if self.configured else f"set {USER_ENV} (the ListenBrainz user whose loves are read)"

    def specs(self) -> list[SourceSpec]:
        """One unit of work: the user's loved recordings."""
        return [SourceSpec("loved", self.interval_minutes, {"user": self.user})]

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None = None, cursor: str | None = None
    ) -> tuple[list[Record], str | None]:
        """One page of loved recordings (newest first) and the next cursor (the next offset), or None."""
        if self.user is None:
            raise ConfigError(f"ListenBrainzSource {self.name!r}: {self.config_hint}")
        user = self.user
        async with self._open_clients(None) as (lb, mb):
            if only_items is not None:
                wanted = {str(i).strip().upper() for i in only_items if str(i).strip()}
                out: list[Record] = []
                try:
                    loved = [item async for item in lb.all_loved(user)]
                except NotFound:
                    raise ConfigError(f"ListenBrainzSource {self.name!r}: ListenBrainz has no user {user!r}") from None
                for item in loved:
                    isrc = await self._isrc(mb, item)
                    if isrc in wanted:
                        out.append(loved_record(item, isrc))
                        wanted.discard(isrc)
                return out, None
            offset = offset_of(cursor, f"ListenBrainzSource {self.name!r}")
            try:
                body = await lb.loved(user, offset=offset, count=self.page_size)
            except NotFound:
                raise ConfigError(f"ListenBrainzSource {self.name!r}: ListenBrainz has no user {user!r}") from None
            next_token = lb.pagination.next_token(body)
            records: dict[str, Record] = {}
            dropped = 0
            for item in body.get("feedback") or []:
                isrc = await self._isrc(mb, item) if isinstance(item, dict) else ""
                if not isrc:
                    dropped += 1
                elif isrc not in records:  # two loved recordings sharing an ISRC: the newest love wins
                    records[isrc] = loved_record(item, isrc)
        if dropped:
            logger.warning(
                "ListenBrainz source %s: %d loved recording(s) without an MBID or an ISRC left out (offset %d)",
                self.name,
                dropped,
                offset,
            )
        return list(records.values()), next_token

    async def _isrc(self, mb: MusicBrainzClient, item: Json) -> str:
        mbid = item.get("recording_mbid")
        if not isinstance(mbid, str) or not mbid:
            return ""
        cached = self.isrc_cache.get(mbid)
        if cached:
            return cached
        isrc = await mb.isrc_for_recording(mbid)
        if isrc:
            self.isrc_cache[mbid] = isrc
        return isrc

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (a drain over :meth:`fetch_page`)."""
        return await drain_pages(self.fetch_page, spec, only_items)
