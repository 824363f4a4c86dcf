"""``NotionSource``: the pages of a Notion data source as records, paged, read incrementally.

One spec, ``ds:<id>`` (the id as configured: a data source id or a database id, resolved like the
destination's). Records: ``primary_key`` = the page id; ``properties`` = every property decoded to
neutral values (decode.py); no body (reading blocks would cost one request per page).

Paging: ``POST /v1/data_sources/{id}/query``, 100 pages per call, sorted by ``last_edited_time``
ascending (then creation order). A page edited during a pass moves behind the cursor and is read
again rather than skipped. Pages in the trash are not returned.

Cursor (opaque to the engine, documented for operators)::

    {"v": 1, "start_cursor": "<Notion's next_cursor>", "since": "<ISO time or null>", "high": "<ISO time>"}

``since`` is the pass's filter, fixed for the whole pass (so a resumed pass asks the same question):
``{"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since}}``. ``high`` is the newest
``last_edited_time`` seen so far.

One query reaches at most 10,000 pages (then Notion stops paging and marks the answer
``request_status: incomplete``). Past that the pass goes on with a new query from ``high``: the cursor
then has ``"start_cursor": ""`` and ``"after": high`` (the query's ``on_or_after``; ``since`` stays the
pass's own). Pages edited within the minute of ``high`` are read twice, which changes nothing.

Incremental passes: when a pass ends, the source remembers ``high`` per spec in ``watermarks`` (a
mapping you may make durable, e.g. a dict backed by a file or the state store). A pass that starts
without a cursor then reads only pages edited since ``high - lookback`` (Notion rounds edit times to
the minute and its index lags writes slightly). At least every ``full_scan_every`` a pass reads
everything, so records whose write failed are offered again; ``reset()`` forces the next pass to.
With the default in-memory mapping, a new process starts with a full pass.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, MutableMapping
from typing import Any, TypedDict, Unpack

from connectors.core import ConfigError, EnrichContext, EnrichHook, Record, SourceSpec, checked_hook, enrich_records
from connectors.http import CredentialMembers, HttpSettings, Json, NotFound, Rate, TokenCredentials
from connectors.notion.client import DataSourceRef, NotionClient, NotionCredentials, normalize_id
from connectors.notion.decode import decode_properties, parse_timestamp
from connectors.notion.settings import (
    CURSOR_VERSION,
    DEFAULT_FULL_SCAN_EVERY_HOURS,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_LOOKBACK_SECONDS,
    NOTION_API_BASE,
    NOTION_RATE,
    PAGE_SIZE,
    TOKEN_ENV,
)
from connectors.watermarks import PendingWatermarks, WatermarkedPagedSource, WatermarkMembers

__all__ = ["NotionPassArgs", "NotionSource"]

logger = logging.getLogger(__name__)

SORTS = ({"timestamp": "last_edited_time", "direction": "ascending"},)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NotionPassArgs(TypedDict, total=False):
    """How often and how far back ``NotionSource`` and ``NotionMcpSource`` read (the same passes).

    Declared once for the two sources (``**passes: Unpack[NotionPassArgs]``); the meaning and defaults
    are ``NotionSource``'s.
    """

    interval_minutes: int
    lookback: dt.timedelta
    full_scan_every: dt.timedelta
    watermarks: MutableMapping[str, str] | None
    now: Callable[[], dt.datetime]
    page_size: int
    enrich: EnrichHook | None
    name: str


class _NotionPasses(WatermarkMembers):
    """The one spec ``ds:<id>`` of both Notion sources and its watermark, set by :meth:`_init_passes`."""

    def _init_passes(
        self,
        owner: str,
        data_source_id: str,
        *,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        lookback: dt.timedelta = dt.timedelta(seconds=DEFAULT_LOOKBACK_SECONDS),
        full_scan_every: dt.timedelta = dt.timedelta(hours=DEFAULT_FULL_SCAN_EVERY_HOURS),
        watermarks: MutableMapping[str, str] | None = None,
        now: Callable[[], dt.datetime] = _utcnow,
        page_size: int = PAGE_SIZE,
        enrich: EnrichHook | None = None,
        name: str = "notion",
    ) -> None:
        self.enrich: EnrichHook | None = checked_hook(enrich, f"{owner} {name!r}")
        if not 1 <= page_size <= PAGE_SIZE:
            raise ConfigError(f"{owner}: page_size must be within 1..{PAGE_SIZE}, got {page_size!r}")
        self.id = normalize_id(data_source_id, what="data_source_id")
        self.name = name
        self.interval_minutes = interval_minutes
        self.lookback = lookback
        self.full_scan_every = full_scan_every
        self._state = PendingWatermarks(watermarks, owner=f"{owner} {name}")
        self.now = now
        self.page_size = page_size

    @property
    def spec_key(self) -> str:
        """The key of the one spec (``ds:<id>``)."""
        return f"ds:{self.id}"

    def specs(self) -> list[SourceSpec]:
        """The units of work, one partition each."""
        return [SourceSpec(self.spec_key, self.interval_minutes, {"id": self.id})]

    def reset(self, spec_key: str | None = None) -> None:
        """Forget the watermark(s): the next pass reads every page."""
        self._state.reset(spec_key)

    def _incremental_mark(self, spec_key: str, mark: str) -> str | None:
        """The stored ``mark`` of ``spec_key`` (where the next pass may start), or None for a full scan.

        None when nothing is stored yet, or ``full_scan_every`` has passed since the last full scan.
        """
        state = self._state.load(spec_key)
        value, full_at = state.get(mark), state.get("full_at")
        if not value or not full_at:
            return None
        try:
            if self.now() - parse_timestamp(full_at) >= self.full_scan_every:
                return None
        except ValueError:
            return None
        return str(value)

    async def _enriched(self, client: Any, spec: SourceSpec, records: list[Record]) -> list[Record]:
        """The page's records after the ``enrich`` hook, run while ``client`` is open."""
        ctx = EnrichContext(client, spec, self.name)
        return await enrich_records(self.enrich, records, ctx, owner=f"Notion source {self.name!r}")


class NotionSource(WatermarkedPagedSource, _NotionPasses, CredentialMembers[TokenCredentials]):
    """Pages of one Notion data source (or database) as records.

    Args:
        data_source_id: A data source id or a database id (or a Notion URL of either).
        token: The integration token; default: the ``token_env`` variable, read at each use.
        token_env: Environment variable of the token.
        interval_minutes: How often the spec syncs.
        incremental: Read only pages edited since the last complete pass (see the module docstring).
        lookback: Subtracted from the last pass's newest edit time.
        full_scan_every: Longest time between passes that read every page.
        watermarks: Where the newest edit time per spec is kept (default: in memory).
        now: The current time (aware), injectable for tests.
        page_size: Pages per query (at most 100).
        enrich: A per-record hook ``(record, EnrichContext) -> record | None`` (sync or async) run while the
            page's client is open (``ctx.client``: a ``NotionClient``, or over MCP the ``McpSession``, for
            extra calls such as a page's blocks); a raise fails that record only.
        name: Source name.
        base_url, rate, http: As for ``NotionClient``.
        **passes: ``interval_minutes`` to ``name`` above (``NotionPassArgs``, shared with ``NotionMcpSource``).
    """

    def __init__(
        self,
        data_source_id: str,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        incremental: bool = True,
        base_url: str = NOTION_API_BASE,
        rate: Rate | None = NOTION_RATE,
        http: HttpSettings | None = None,
        **passes: Unpack[NotionPassArgs],
    ) -> None:
        """Check the arguments; nothing is read or sent yet."""
        self._init_passes("NotionSource", data_source_id, **passes)
        self.incremental = incremental
        self.credentials = NotionCredentials(token, token_env)
        self.base_url = base_url
        self.rate = rate
        self.http = http
        self._target: DataSourceRef | None = None
        self._warned = False
        self._complete: dict[str, bool] = {}  # spec key -> its last pass read every page

    # -- configuration ----------------------------------------------------------------------------

    def pass_was_complete(self, spec_key: str) -> bool:
        """Whether the last pass of ``spec_key`` read every page (a full scan), not only recent edits.

        Notion's query leaves trashed pages out, so a page missing from a complete pass is in the
        trash or gone: ``on_missing`` marks its row then (``CompletePassSource``).
        """
        return self._complete.get(spec_key, False)

    def token(self) -> str | None:
        """The integration token now (the one given, else the variable's)."""
        return self.credentials.token()

    # -- watermarks -------------------------------------------------------------------------------

    def watermark(self, spec_key: str | None = None) -> dt.datetime | None:
        """The newest ``last_edited_time`` seen by the last complete pass of a spec."""
        state = self._state.load(spec_key or self.spec_key)
        high = state.get("high")
        return parse_timestamp(high) if high else None

    def _since_for_new_pass(self, spec_key: str) -> str | None:
        high = self._incremental_mark(spec_key, "high") if self.incremental else None
        if high is None:
            return None
        try:
            since = parse_timestamp(high) - self.lookback
        except ValueError:
            return None
        return since.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def _finish_pass(self, spec_key: str, since: str | None, high: str | None) -> None:
        state = self._state.load(spec_key)
        if high is None:
            high = state.get("high")
        if since is None:
            state["full_at"] = self.now().astimezone(dt.UTC).isoformat()
        if high is not None:
            state["high"] = high
        if state:
            # Held until the engine commits the pass: a plan (dry run) or a pass that fails must not
            # move the watermark past changes it never wrote.
            self._state.hold(spec_key, state)

    # -- reading ----------------------------------------------------------------------------------

    def _client(self) -> NotionClient:
        token = self.token()
        if not token:
            raise ConfigError(f"NotionSource {self.name!r}: set {self.credentials.hint}")
        return NotionClient(token, base_url=self.base_url, rate=self.rate, http=self.http)

    async def _data_source_id(self, client: NotionClient) -> str:
        if self._target is None:
            self._target = await client.resolve(self.id, expect="data_source")
            if len(self._target.siblings) > 1 and not self._warned:
                self._warned = True
                logger.warning(
                    "Notion database %s has %d data sources; reading the first, %s",
                    self._target.database_id,
                    len(self._target.siblings),
                    self._target.data_source_id,
                )
        return self._target.data_source_id

    def _record(self, page: Json) -> Record | None:
        page_id = page.get("id")
        if not page_id or page.get("in_trash") or page.get("archived"):
            return None
        if page.get("object", "page") != "page":
            return None  # a wiki's query lists its child data sources among its pages: no rows
        return Record(str(page_id), decode_properties(page.get("properties") or {}))

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One query page of records and the cursor of the next (None after the last).

        ``only_items`` (page ids) are read one by one with ``GET /v1/pages/{id}``; pages not found or
        in the trash are left out; the watermark is not touched.
        """
        async with self._client() as client:
            data_source_id = await self._data_source_id(client)
            if only_items is not None:
                return await self._enriched(
                    client, spec, await self._fetch_items(client, data_source_id, only_items)
                ), None
            if cursor is None:
                start, since, high, after = None, self._since_for_new_pass(spec.key), None, None
                self._complete[spec.key] = since is None
            else:
                start, since, high, after = self._decode_cursor(spec.key, cursor)
            bound = after or since  # ``after`` (past a capped query) is never older than ``since``
            query_filter = (
                {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": bound}} if bound else None
            )
            body = await client.query_data_source(
                data_source_id, filter=query_filter, sorts=SORTS, start_cursor=start, page_size=self.page_size
            )
            records: list[Record] = []
            for page in body.get("results") or []:
                if not isinstance(page, dict):
                    continue
                edited = page.get("last_edited_time")
                if isinstance(edited, str) and (high is None or parse_timestamp(edited) > parse_timestamp(high)):
                    high = edited
                record = self._record(page)
                if record is not None:
                    records.append(record)
            records = await self._enriched(client, spec, records)
        next_start = client.pagination.next_token(body)
        request_status = body.get("request_status")
        capped = isinstance(request_status, dict) and request_status.get("type") == "incomplete"
        if next_start is None and capped:
            # One query reaches at most 10,000 pages; sorted by edit time, the rest are those edited at
            # or after the newest edit time seen: a new query from there (the same minute is read twice;
            # a record offered again changes nothing).
            if high is not None and high != after:
                state = {"v": CURSOR_VERSION, "start_cursor": "", "since": since, "high": high, "after": high}
                return records, json.dumps(state, sort_keys=True, separators=(",", ":"))
            logger.warning(
                "Notion source %s: more than 10,000 pages were edited within one minute (%s); Notion's query "
                "cannot read past them, so this pass misses some pages (they are read once edited again)",
                self.name,
                high,
            )
        if next_start is None:
            self._finish_pass(spec.key, since, high)
            return records, None
        state = {"v": CURSOR_VERSION, "start_cursor": next_start, "since": since, "high": high}
        if after:
            state["after"] = after
        return records, json.dumps(state, sort_keys=True, separators=(",", ":"))

    def _decode_cursor(self, spec_key: str, cursor: str) -> tuple[str | None, str | None, str | None, str | None]:
        """(start_cursor or None for a new query, since, high, after) of a cursor of ours."""
        try:
            state = json.loads(cursor)
            if state.get("v") != CURSOR_VERSION or not isinstance(state.get("start_cursor"), str):
                raise ValueError("wrong version or no start_cursor")
        except (ValueError, AttributeError) as err:
            raise ConfigError(f"NotionSource {spec_key}: cursor {cursor[:200]!r} is not one of ours ({err})") from None
        return state["start_cursor"] or None, state.get("since"), state.get("high"), state.get("after")

    async def _fetch_items(self, client: NotionClient, data_source_id: str, page_ids: list[str]) -> list[Record]:
        records: list[Record] = []
        for raw_id in page_ids:
            try:
                page = await client.retrieve_page(normalize_id(raw_id, what="page id"))
            except (NotFound, ConfigError) as err:
                logger.info("Notion source %s: page %s skipped: %s", self.name, raw_id, err)
                continue
            parent = page.get("parent") or {}
            if parent.get("data_source_id") not in (None, data_source_id):
                logger.info("Notion source %s: page %s belongs to another data source; skipped", self.name, raw_id)
                continue
            record = self._record(page)
            if record is not None:
                records.append(record)
        return records
