"""``LumaSource``: the events of a Luma calendar as records, paged by ``pagination_cursor``.

One spec, ``events``. ``GET /v1/calendar/list-events`` with ``pagination_limit`` (50) and, when
configured, ``after`` / ``before``; by default EVERY event of the calendar, past ones included — no
rolling window that would drop an event 21 days after it started (durable-sync's W3).

Hosts: list-events does not return them (``entries[].event`` has no hosts; ``event/get`` does), so
with ``fetch_hosts=True`` (the default) each event costs one ``GET /v1/event/get`` — read 4 at a time
through the shared per-key limiter. Entries that already carry ``hosts`` are not fetched again.
``fetch_hosts=False`` leaves ``Hosts`` out of the records (the destination keeps what it had) and makes
a pass cost one request per 50 events.

Cursor (opaque to the engine)::

    {"v": 1, "cursor": "<Luma's next_cursor>", "after": "<ISO or null>", "before": "<ISO or null>"}

The filter rides in the cursor, so a resumed pass asks the same question.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from connectors.core import (
    ConfigError,
    EnrichContext,
    EnrichHook,
    Record,
    SourceSpec,
    check_count,
    checked_hook,
    enrich_records,
)
from connectors.http import HttpSettings, Json, Rate, drain_pages
from connectors.luma.client import LumaClient, LumaConnector
from connectors.luma.settings import (
    API_BASE,
    DEFAULT_INTERVAL_MINUTES,
    EVENT_URL_BASE,
    HOSTS_CONCURRENCY,
    LUMA_RATE,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    TOKEN_ENV,
    UNTITLED,
)
from connectors.watermarks import parse_time

__all__ = ["CURSOR_VERSION", "LumaSource", "event_record", "event_url", "parse_time"]

logger = logging.getLogger(__name__)

CURSOR_VERSION = 1


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _inner_event(body: Json) -> Json:
    """The event object of an entry or an ``event/get`` body (``{event: {...}}``), or the body itself."""
    inner = body.get("event")
    return inner if isinstance(inner, dict) else body


def event_url(url: Any) -> str | None:
    """``https://lu.ma/<slug>`` for a slug; an absolute URL as given; None without one."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if url.startswith(("http://", "https://")):
        return url
    return EVENT_URL_BASE + url.lstrip("/")


def _host_names(hosts: Any) -> list[str]:
    names: list[str] = []
    for host in hosts or []:
        if not isinstance(host, dict):
            continue
        name = host.get("name") or " ".join(p for p in (host.get("first_name"), host.get("last_name")) if p)
        if isinstance(name, str) and name.strip() and name.strip() not in names:
            names.append(name.strip())
    return names


def event_record(event: Json, *, now: dt.datetime, hosts: Any = None, api_id: str | None = None) -> Record | None:
    """One Luma event as a record; None without an id.

    Properties: Name (str), URL (str | None), Start / End (aware datetimes | None), Timezone (IANA
    name | None), Status (``Scheduled`` when the start is after ``now``, else ``Published``) and,
    when ``hosts`` is given, Hosts (list of names). Body: the Markdown description, if any.
    """
    key = api_id or event.get("api_id") or event.get("id")
    if not isinstance(key, str) or not key:
        return None
    start = parse_time(event.get("start_at"))
    name = event.get("name")
    properties: dict[str, Any] = {
        "Name": name.strip() if isinstance(name, str) and name.strip() else UNTITLED,
        "URL": event_url(event.get("url")),
        "Start": start,
        "End": parse_time(event.get("end_at")),
        "Timezone": event.get("timezone") if isinstance(event.get("timezone"), str) else None,
        "Status": "Scheduled" if start is not None and start > now else "Published",
    }
    if hosts is not None:
        properties["Hosts"] = _host_names(hosts)
    description = event.get("description_md") or event.get("description")
    body = description if isinstance(description, str) and description.strip() else None
    return Record(key, properties, body=body)


class LumaSource(LumaConnector):
    """Events of the Luma calendar a key belongs to.

    Args:
        token: The API key; default: the ``token_env`` variable (or ``<token_env>_FILE``), read at each use.
        token_env: Environment variable of the key.
        interval_minutes: How often the spec syncs.
        after: Only events starting at or after this ISO time (default: all events).
        before: Only events starting before this ISO time (default: no bound).
        fetch_hosts: Read each event's hosts with ``event/get`` (one request per event).
        enrich: A per-record hook ``(record, EnrichContext) -> record | None`` (sync or async) run while
            the page's ``LumaClient`` is open (``ctx.client`` for extra calls); a raise fails that record only.
        page_size: ``pagination_limit``.
        now: The current time (aware), for ``Status``; injectable for tests.
        name: Source name.
        base_url, rate, http: As for ``LumaClient``.
    """

    incremental = False  # Luma has no "updated since" filter: every pass lists the calendar

    def __init__(
        self,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        after: str | dt.datetime | None = None,
        before: str | dt.datetime | None = None,
        fetch_hosts: bool = True,
        enrich: EnrichHook | None = None,
        page_size: int = PAGE_SIZE,
        now: Callable[[], dt.datetime] = _utcnow,
        name: str = "luma",
        base_url: str = API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = LUMA_RATE,
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        check_count("LumaSource", "interval_minutes", interval_minutes)
        check_count("LumaSource", "page_size", page_size, most=MAX_PAGE_SIZE)
        self.after = self._bound("after", after)
        self.before = self._bound("before", before)
        self.interval_minutes = interval_minutes
        self.fetch_hosts = fetch_hosts
        self.enrich: EnrichHook | None = checked_hook(enrich, f"LumaSource {name!r}")
        self.page_size = page_size
        self.now = now
        self.name = name
        self._init_connection(token, token_env, base_url, http, rate)

    def __repr__(self) -> str:  # never the key
        """Name the connector, never its secret."""
        return f"LumaSource(name={self.name!r}, after={self.after!r})"

    @staticmethod
    def _bound(what: str, value: str | dt.datetime | None) -> str | None:
        if value is None:
            return None
        when = value if isinstance(value, dt.datetime) else parse_time(str(value))
        if when is None or when.tzinfo is None:
            raise ConfigError(f"LumaSource.{what} must be an ISO 8601 time with an offset, got {value!r}")
        return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

    # -- credential -----------------------------------------------------------------------------

    def specs(self) -> list[SourceSpec]:
        """The units of work, one partition each."""
        return [SourceSpec("events", self.interval_minutes, {"after": self.after, "before": self.before})]

    # -- reading ----------------------------------------------------------------------------------

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None = None, cursor: str | None = None
    ) -> tuple[list[Record], str | None]:
        """One page of events (start time ascending, as Luma lists them) and the next cursor.

        ``only_items`` (event ``api_id`` s) are read one by one with ``event/get``; unknown ids (404)
        are skipped.
        """
        async with self._open_client(f"LumaSource {self.name!r}: no API key: {self.config_hint}") as client:
            ctx = EnrichContext(client, spec, self.name)
            owner = f"Luma source {self.name!r}"
            if only_items is not None:
                return await enrich_records(
                    self.enrich, await self._targeted(client, only_items), ctx, owner=owner
                ), None
            if cursor is None:
                token, after, before = None, self.after, self.before
            else:
                token, after, before = self._decode(cursor)
            body = await client.list_events(cursor=token, limit=self.page_size, after=after, before=before)
            records = await self._records(client, [e for e in body.get("entries") or [] if isinstance(e, dict)])
            records = await enrich_records(self.enrich, records, ctx, owner=owner)
            next_token = client.pagination.next_token(body)
        if next_token is None:
            return records, None
        state = {"v": CURSOR_VERSION, "cursor": next_token, "after": after, "before": before}
        return records, json.dumps(state, sort_keys=True, separators=(",", ":"))

    def _decode(self, cursor: str) -> tuple[str, str | None, str | None]:
        try:
            state = json.loads(cursor)
            if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
                raise ValueError("not a version-1 cursor")
            token = state["cursor"]
            if not isinstance(token, str) or not token:
                raise ValueError("no cursor")
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"LumaSource {self.name!r}: cursor {cursor[:200]!r} is not one of ours ({err}); start a full pass"
            ) from None
        return token, state.get("after"), state.get("before")

    async def _records(self, client: LumaClient, entries: list[Json]) -> list[Record]:
        now = self.now()
        pairs: list[tuple[str, Json, Any]] = []
        for entry in entries:
            event = _inner_event(entry)
            api_id = entry.get("api_id") or event.get("api_id") or event.get("id")
            if not isinstance(api_id, str) or not api_id:
                logger.warning("Luma: skipping a list entry without an api_id")
                continue
            hosts = entry.get("hosts", event.get("hosts"))
            pairs.append((api_id, event, hosts))
        if self.fetch_hosts:
            missing = [i for i, (_, _, hosts) in enumerate(pairs) if hosts is None]
            fetched = await self._hosts(client, [pairs[i][0] for i in missing])
            for i, hosts in zip(missing, fetched, strict=True):
                api_id, event, _ = pairs[i]
                pairs[i] = (api_id, event, hosts if hosts is not None else [])
        out = []
        for api_id, event, hosts in pairs:
            record = event_record(event, now=now, hosts=hosts if self.fetch_hosts else None, api_id=api_id)
            if record is not None:
                out.append(record)
        return out

    async def _hosts(self, client: LumaClient, api_ids: list[str]) -> list[Any]:
        semaphore = asyncio.Semaphore(HOSTS_CONCURRENCY)

        async def one(api_id: str) -> Any:
            async with semaphore:
                body = await client.get_event(api_id)
            return (body or {}).get("hosts") if body is not None else None

        return list(await asyncio.gather(*(one(i) for i in api_ids)))

    async def _targeted(self, client: LumaClient, items: Iterable[str]) -> list[Record]:
        now = self.now()
        out: list[Record] = []
        for raw in dict.fromkeys(str(i).strip() for i in items):
            if not raw:
                continue
            body = await client.get_event(raw)
            if body is None:
                logger.info("Luma source %s: event %s not found; skipped", self.name, raw)
                continue
            event = _inner_event(body)
            hosts = body.get("hosts", event.get("hosts")) if self.fetch_hosts else None
            record = event_record(event, now=now, hosts=(hosts or []) if self.fetch_hosts else None, api_id=raw)
            if record is not None:
                out.append(record)
        return out

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (a drain over :meth:`fetch_page`)."""
        return await drain_pages(self.fetch_page, spec, only_items)
