"""``ListenBrainzDestination``: records keyed by ISRC loved on ListenBrainz.

The inverse of ``ListenBrainzSource``. ListenBrainz feedback is keyed by recording MBID, so ``create``
asks MusicBrainz for the recording of the record's ISRC (``GET /ws/2/isrc/<ISRC>``, its first
recording), then ``POST /1/feedback/recording-feedback`` with score 1, and returns the MBID as the
destination id. A record whose ISRC MusicBrainz does not know is SKIPPED (``False``, logged); a key
that is not an ISRC at all is a ``RecordError``.

ListenBrainz has nowhere to keep our key (its loves list MBIDs, and an ISRC → MBID lookup per loved
recording would cost a second each), so ``stores_keys = False``: the engine's link map
(ISRC → MBID) is the record of what was loved, and ``query_existing_ids`` is ``{}``. Instead, each
session reads the user's loved MBIDs once (lazily, on its first create) and does not love again what
the user already loves — a recording loved by hand, or loved by the other direction of a two-way
sync, costs no write.

"Loved" is all there is to write: ``update`` re-asserts the love (an idempotent POST), or writes
nothing when this session already read the recording as loved.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Unpack

from connectors.core import ConfigError, Record, RecordError
from connectors.isrc import is_isrc, normalize_isrc
from connectors.listenbrainz.client import (
    ListenBrainzClient,
    ListenBrainzConnection,
    ListenBrainzConnector,
    MusicBrainzClient,
)
from connectors.listenbrainz.settings import (
    MAX_CONCURRENCY,
    TOKEN_ENV,
    USER_ENV,
)

__all__ = ["ListenBrainzDestination"]

logger = logging.getLogger(__name__)


class ListenBrainzDestination(ListenBrainzConnector):
    """The loved recordings of a ListenBrainz user, linked by ISRC in the engine's link map.

    Args:
        user: The ListenBrainz user name the token belongs to.
        token: The user token; default: the ``token_env`` variable (or ``<token_env>_FILE``), read at each use.
        token_env: Environment variable of the token.
        create_only_properties: Written on create, never on update (nothing is written but the love).
        name: Destination name.
        connection: ``user_agent``, ``base_url``, ``musicbrainz_url``, ``http``, ``rate``,
            ``musicbrainz_rate`` (:class:`~connectors.listenbrainz.client.ListenBrainzConnection`).
    """

    stores_keys = False
    max_concurrency = MAX_CONCURRENCY
    max_value_length: int | None = None

    def __init__(
        self,
        user: str | None,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        create_only_properties: Iterable[str] = (),
        name: str = "listenbrainz",
        **connection: Unpack[ListenBrainzConnection],
    ) -> None:
        """Remember the arguments; nothing is read or sent yet."""
        self.create_only_properties = set(create_only_properties)
        self.name = name
        self._init_user_connection(user, token, token_env, **connection)

    @property
    def configured(self) -> bool:
        """Whether the token and the user are set."""
        return self.credentials.configured and self.user is not None

    @property
    def config_hint(self) -> str:
        """What to set."""
        missing = [] if self.credentials.configured else [self.credentials.hint]
        if self.user is None:
            missing.append(f"{USER_ENV} (the user the token belongs to)")
        return "configured" if not missing else "set " + " and ".join(missing)

    def describe(self) -> str:
        """Where the records go."""
        return f"the loved recordings of ListenBrainz user {self.user} (linked by the state store's link map)"

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_ListenBrainzSession]:
        """A session on the user's feedback (the clients close with it)."""
        token = self.token()
        if not token or self.user is None:
            raise ConfigError(f"ListenBrainzDestination {self.name!r}: {self.config_hint}")
        async with self._open_clients(token) as (lb, mb):
            yield _ListenBrainzSession(self.user, lb, mb)


class _ListenBrainzSession:
    def __init__(self, user: str, lb: ListenBrainzClient, mb: MusicBrainzClient) -> None:
        self.user = user
        self.lb = lb
        self.mb = mb
        self.loved: set[str] | None = None  # the user's loved MBIDs, read once on the first create

    async def query_existing_ids(self) -> dict[str, str]:
        """Always ``{}``: loves carry no key of ours, so the link map is the record of them."""
        return {}

    async def create(self, record: Record, synced_at: dt.datetime) -> str | bool:
        """Love the record's recording; its MBID, or False when MusicBrainz knows no recording for the ISRC."""
        isrc = normalize_isrc(record.primary_key)
        if not is_isrc(isrc):
            raise RecordError(
                f"ListenBrainz: {record.primary_key[:40]!r} is not an ISRC (12 characters, e.g. USRC17607839)",
                primary_key=record.primary_key,
            )
        mbid = await self.mb.recording_for_isrc(isrc)
        if mbid is None:
            logger.info("ListenBrainz: MusicBrainz has no recording for ISRC %s; skipped", isrc)
            return False
        if self.loved is None:
            self.loved = {
                str(i["recording_mbid"]) async for i in self.lb.all_loved(self.user) if i.get("recording_mbid")
            }
        if mbid not in self.loved:
            await self.lb.love(mbid)
            self.loved.add(mbid)
        return mbid

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Make sure the recording is still loved (an idempotent POST, skipped when just read as loved)."""
        if self.loved is None or existing_id not in self.loved:
            await self.lb.love(existing_id)
            if self.loved is not None:
                self.loved.add(existing_id)
        return True
