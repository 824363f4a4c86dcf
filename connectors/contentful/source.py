"""``ContentfulSource``: the entries of a Contentful space environment as records, read incrementally.

Specs: one per content type, ``type:<content type id>``, when ``content_types`` is given; otherwise a
single ``all`` spec with the entries of every content type.

Two modes, chosen by ``api`` (default: ``"cda"`` when a delivery token is set, else ``"cma"``):

- **CDA (published content) through the Sync API.** The first pass is an initial sync
  (``GET .../sync?initial=true``; a ``type:<ct>`` spec adds ``type=Entry&content_type=<ct>``), paged
  through ``nextPageUrl`` until the page that carries ``nextSyncUrl``; that URL's sync token is the
  incremental cursor. Every later pass starts from it and returns only what changed: entries
  published since (their latest published state) and, for the ``all`` spec, ``DeletedEntry`` items
  for entries unpublished or deleted since (a ``type=Entry`` sync carries no deletions). An
  unchanged space costs one request per pass.
- **CMA (drafts too).** Neither the CMA nor the Preview API implements the Sync API, so this mode
  pages ``GET .../entries`` ordered by ``sys.updatedAt,sys.id`` with keyset paging (``sys.updatedAt[gte]``
  plus ``sys.id[nin]`` for the entries already read at the same millisecond; never ``skip`` through a
  moving list, which loses entries edited meanwhile). Later passes ask for entries updated since the
  last pass's newest ``sys.updatedAt`` minus ``cma_lookback``. Deletions are not visible in this mode.

Cursors (opaque to the engine; documented for operators). They hold the position of the pass in
flight, never the incremental state, and replay in a fresh process::

    CDA: {"v": 1, "api": "cda", "page": "<sync_token of nextPageUrl>", "mode": "initial" | "delta"}
    CMA: {"v": 1, "api": "cma", "since": "<ISO or null>", "after": "<ISO>", "ids": [...], "tie": n,
          "high": "<ISO>", "started": "<ISO>"}

Watermarks: when the LAST page of a pass is read, the next sync token (CDA) or the newest
``sys.updatedAt`` no later than the pass's start (CMA) is stored per spec in ``watermarks``, a mapping
you should make durable (the default is in memory: a new process then starts with an initial sync).
Nothing is stored before, so a pass that crashes resumes from the engine's checkpointed cursor (page
tokens can be replayed) and skips no change. The engine reads one page ahead, so the token may be
stored while the last page is still being written; a crash then still resumes from the checkpoint,
which replays that page. A plan (dry run) reads pages too and so advances the token (README, Quirks).
``reset(spec_key)`` (a full refresh) forgets the watermark: the next pass is an initial sync.

Deletions (``DeletedEntry``): the engine never deletes, so by default they are only counted
(``pass_metadata``: ``deletions``) and logged. With ``deleted_property="Deleted"`` every record
carries ``Deleted: False`` and each deletion becomes a record holding only ``Deleted: True`` (the
other properties are left as they are in the destination).

Records: ``primary_key`` = the entry id; one property per field of the content type, named by field
id (ids survive renames; ``None`` when the entry has no value), decoded by the field's type
(decode.py) in ``default_locale`` (then ``fallback_locales``, then the first locale present); plus the
sys properties ``Name`` (the content type's display field), ``Content type``, ``Created``,
``Updated`` (aware datetimes), ``URL`` (``url_prefixes[<ct>] + <slug>``, when configured) and, in CMA
mode, ``Status`` (Draft, Published, Changed, Archived). A field named like a sys property wins.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.contentful.client import (
    Api,
    ContentfulClient,
    ContentfulDeliveryCredentials,
    ContentfulManagementCredentials,
)
from connectors.contentful.decode import MISSING, decode_value, parse_date, pick_locale
from connectors.contentful.encode import ContentTypeSpec
from connectors.contentful.settings import (
    CDA_BASE,
    CMA_BASE,
    CMA_TOKEN_ENV,
    CURSOR_VERSION,
    DEFAULT_CMA_LOOKBACK_SECONDS,
    DEFAULT_ENVIRONMENT,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_LOCALE,
    DELIVERY_TOKEN_ENV,
    LIST_PAGE_SIZE,
    MAX_LIMIT,
    MAX_TIE_IDS,
    SYNC_PAGE_SIZE,
)
from connectors.core import (
    ConfigError,
    EnrichContext,
    EnrichHook,
    Record,
    SourceSpec,
    TransientError,
    checked_hook,
    enrich_records,
)
from connectors.http import (
    Clock,
    HTTPRecordError,
    HttpSettings,
    Json,
    Rate,
    TokenCredentialMembers,
    TokenCredentials,
)
from connectors.watermarks import PendingWatermarks, WatermarkedPagedSource

__all__ = ["DEFAULT_SYS_PROPERTIES", "ContentfulSource"]

logger = logging.getLogger(__name__)

DEFAULT_SYS_PROPERTIES: dict[str, str] = {
    "Name": "displayField",
    "Content type": "contentType",
    "Created": "createdAt",
    "Updated": "updatedAt",
}
"""Record property -> what it holds. Also available: ``publishedAt``, ``firstPublishedAt``, ``url``,
``status``, ``id``."""
_SYS_KINDS = frozenset(
    {"displayField", "contentType", "createdAt", "updatedAt", "publishedAt", "firstPublishedAt", "url", "status", "id"}
)


@dataclass
class _PassCounts:
    mode: str = ""
    entries: int = 0
    deletions: int = 0
    skipped: int = 0
    requests: int = 0
    deleted_ids: list[str] = field(default_factory=list)


class ContentfulSource(WatermarkedPagedSource, TokenCredentialMembers):
    """Entries of one Contentful space environment as records (see the module docstring).

    Args:
        space_id: The space.
        environment: The environment id.
        content_types: One spec per content type id (``type:<id>``); None: one ``all`` spec.
        api: ``"cda"`` (published content, Sync API) or ``"cma"`` (drafts too); None: CDA when a
            delivery token is set, else CMA.
        default_locale: The locale values are read in.
        fallback_locales: Locales tried next, in order (then the first locale present).
        delivery_token: A CDA token; default: the ``delivery_token_env`` variable, read at each use.
        delivery_token_env: Environment variable of the CDA token.
        cma_token: A CMA personal access token; default: the ``cma_token_env`` variable.
        cma_token_env: Environment variable of the CMA token.
        watermarks: Where the sync token (CDA) / newest update time (CMA) per spec is kept; make it
            durable (default: in memory).
        interval_minutes: How often each spec syncs.
        url_prefixes: ``{content type id: URL prefix}``; ``URL`` = prefix + the entry's ``slug_field``.
        slug_field: The field appended to a URL prefix.
        sys_properties: Record property -> sys value (default :data:`DEFAULT_SYS_PROPERTIES`, plus
            ``URL`` when ``url_prefixes`` is set and ``Status`` in CMA mode); ``{}`` for none.
        deleted_property: Emit deletions as records with this bool property (see the module docstring).
        page_size: Items per Sync API page / entries per CMA page (at most 1000).
        cma_lookback: Subtracted from the last CMA pass's newest update time.
        enrich: A per-entry hook ``(record, EnrichContext) -> record | None`` (sync or async) run while the
            page's ``ContentfulClient`` is open (``ctx.client`` for extra calls); a raise fails that record
            only. Deletion records are not enriched.
        name: Source name.
        cda_base_url, cma_base_url: API bases (fakes in tests).
        transport, rate, retry, sleep, clock: As for ``ContentfulClient``.
    """

    incremental = True

    def __init__(
        self,
        space_id: str,
        *,
        environment: str = DEFAULT_ENVIRONMENT,
        content_types: Sequence[str] | None = None,
        api: Literal["cda", "cma"] | None = None,
        default_locale: str = DEFAULT_LOCALE,
        fallback_locales: Sequence[str] = (),
        delivery_token: str | None = None,
        delivery_token_env: str | None = DELIVERY_TOKEN_ENV,
        cma_token: str | None = None,
        cma_token_env: str | None = CMA_TOKEN_ENV,
        watermarks: MutableMapping[str, str] | None = None,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        url_prefixes: Mapping[str, str] | None = None,
        slug_field: str = "slug",
        sys_properties: Mapping[str, str] | None = None,
        deleted_property: str | None = None,
        page_size: int = SYNC_PAGE_SIZE,
        cma_lookback: dt.timedelta = dt.timedelta(seconds=DEFAULT_CMA_LOOKBACK_SECONDS),
        enrich: EnrichHook | None = None,
        name: str = "contentful",
        cda_base_url: str = CDA_BASE,
        cma_base_url: str = CMA_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = None,
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        if not space_id:
            raise ConfigError("ContentfulSource needs a space_id")
        if api not in (None, "cda", "cma"):
            raise ConfigError(f"ContentfulSource: api must be 'cda', 'cma' or None, got {api!r}")
        if not 1 <= page_size <= MAX_LIMIT:
            raise ConfigError(f"ContentfulSource: page_size must be within 1..{MAX_LIMIT}, got {page_size!r}")
        if content_types is not None:
            content_types = list(dict.fromkeys(content_types))
            if not content_types or not all(isinstance(c, str) and c for c in content_types):
                raise ConfigError("ContentfulSource: content_types must be non-empty content type ids (or None)")
        if sys_properties is not None:
            unknown = sorted(set(sys_properties.values()) - _SYS_KINDS)
            if unknown:
                raise ConfigError(
                    f"ContentfulSource: unknown sys_properties values {unknown}; use {sorted(_SYS_KINDS)}"
                )
        self.space_id = space_id
        self.environment = environment
        self.content_types = content_types
        self.api = api
        self.default_locale = default_locale
        self.locales = [default_locale, *[loc for loc in fallback_locales if loc != default_locale]]
        self.tokens: dict[Api, TokenCredentials] = {
            "cda": ContentfulDeliveryCredentials(delivery_token, delivery_token_env),
            "cma": ContentfulManagementCredentials(cma_token, cma_token_env),
        }
        self._state = PendingWatermarks(watermarks, owner=f"Contentful source {name}")
        self.interval_minutes = interval_minutes
        self.url_prefixes = dict(url_prefixes or {})
        self.slug_field = slug_field
        self.sys_properties = dict(sys_properties) if sys_properties is not None else None
        self.deleted_property = deleted_property
        self.page_size = page_size
        self.cma_lookback = cma_lookback
        self.enrich: EnrichHook | None = checked_hook(enrich, f"ContentfulSource {name!r}")
        self.name = name
        self.cda_base_url = cda_base_url
        self.cma_base_url = cma_base_url
        self.http = http or HttpSettings()
        self.rate = rate
        self._types: dict[str, ContentTypeSpec] = {}
        self._counts: dict[str, _PassCounts] = {}
        self._warned: set[str] = set()

    # -- configuration ----------------------------------------------------------------------------

    def specs(self) -> list[SourceSpec]:
        """The units of work, one partition each."""
        if self.content_types is None:
            return [SourceSpec("all", self.interval_minutes, {"content_type": None})]
        return [SourceSpec(f"type:{ct}", self.interval_minutes, {"content_type": ct}) for ct in self.content_types]

    def mode(self) -> Api:
        """The API this source reads now: the configured one, else CDA when a delivery token is set."""
        if self.api is not None:
            return self.api
        if self.tokens["cda"].token() or not self.tokens["cma"].token():
            return "cda"
        return "cma"

    @property
    def credentials(self) -> TokenCredentials:  # type: ignore[override]
        """The token of the current mode (the engine's credential members are that token's)."""
        return self.tokens[self.mode()]

    def deleted_keys(self, spec_key: str) -> list[str]:
        """Ids of the entries the last pass saw unpublished or deleted (``DeletedEntry``), for ``on_missing``."""
        counts = self._counts.get(spec_key)
        return list(counts.deleted_ids) if counts is not None else []

    def pass_metadata(self, spec: SourceSpec) -> dict[str, Any]:
        """What the last pass of ``spec`` read.

        What the last pass of ``spec`` read: mode (initial, delta, cma), entries, deletions,
        skipped items (assets, unknown types), requests.
        """
        counts = self._counts.get(spec.key)
        if counts is None:
            return {}
        return {
            "mode": counts.mode,
            "entries": counts.entries,
            "deletions": counts.deletions,
            "skipped": counts.skipped,
            "requests": counts.requests,
        }

    # -- watermarks -------------------------------------------------------------------------------

    def reset(self, spec_key: str | None = None) -> None:
        """Forget the watermark(s): the next pass is an initial sync (CDA) / reads every entry (CMA)."""
        self._state.reset(spec_key)

    def watermark(self, spec_key: str) -> Json:
        """The stored state of a spec (``{"api", "token"}`` or ``{"api", "high"}``), ``{}`` if none."""
        state = self._state.load(spec_key)
        return state if state.get("v") == CURSOR_VERSION else {}

    def _filter_of(self, spec: SourceSpec) -> str:
        content_type = self._spec_content_type(spec)
        return f"type:{content_type}" if content_type else "all"

    def _store(self, spec: SourceSpec, **state: Any) -> None:
        state.update(v=CURSOR_VERSION, filter=self._filter_of(spec))
        state["at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        # Held until the engine commits the pass: a plan (dry run) or a pass that fails must not
        # move the watermark past changes it never wrote.
        self._state.hold(spec.key, state)

    # -- reading ----------------------------------------------------------------------------------

    def _client(self, api: Api) -> ContentfulClient:
        token = self.tokens[api].token()
        if not token:
            raise ConfigError(f"ContentfulSource {self.name!r}: {self.config_hint}")
        return ContentfulClient(
            token,
            api=api,
            space_id=self.space_id,
            environment=self.environment,
            base_url=self.cda_base_url if api == "cda" else self.cma_base_url,
            http=self.http,
            rate=self.rate,
        )

    def _spec_content_type(self, spec: SourceSpec) -> str | None:
        if spec.key == "all":
            return None
        if spec.key.startswith("type:"):
            return spec.key.removeprefix("type:")
        raise ConfigError(f"ContentfulSource {self.name!r}: unknown spec {spec.key!r}")

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page of records and the cursor of the next (None after the last).

        ``only_items`` (entry ids) are read with ``sys.id[in]`` (every locale), those that exist (on the
        CDA: are published) in one page; the watermark is not touched.
        """
        api = self.mode()
        content_type = self._spec_content_type(spec)
        async with self._client(api) as client:
            if only_items is not None:
                entries = await client.entries_by_id(only_items, content_type=content_type)
                return await self._records(client, spec, entries, api), None
            if cursor is None:
                self._counts[spec.key] = _PassCounts()
            counts = self._counts.setdefault(spec.key, _PassCounts())
            counts.requests += 1
            if api == "cda":
                return await self._sync_page(client, spec, content_type, cursor, counts)
            return await self._cma_page(client, spec, content_type, cursor, counts)

    def _decode_cursor(self, spec: SourceSpec, cursor: str, api: Api) -> Json:
        try:
            state = json.loads(cursor)
            if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
                raise ValueError("not a version 1 cursor")
        except ValueError as err:
            raise ConfigError(
                f"ContentfulSource {spec.key}: cursor {cursor[:200]!r} is not one of ours ({err})"
            ) from None
        if state.get("api") != api:
            raise ConfigError(
                f"ContentfulSource {spec.key}: the pass in flight reads the {state.get('api')} but the source now "
                f"reads the {api}; run a full refresh"
            )
        return state

    @staticmethod
    def _encode_cursor(state: Json) -> str:
        return json.dumps({"v": CURSOR_VERSION, **state}, sort_keys=True, separators=(",", ":"))

    # -- CDA: the Sync API ------------------------------------------------------------------------

    async def _sync_page(
        self,
        client: ContentfulClient,
        spec: SourceSpec,
        content_type: str | None,
        cursor: str | None,
        counts: _PassCounts,
    ) -> tuple[list[Record], str | None]:
        if cursor is None:
            stored = self.watermark(spec.key)
            usable = stored.get("api") == "cda" and stored.get("filter") == self._filter_of(spec)
            token = stored.get("token") if usable else None
            counts.mode = "delta" if token else "initial"
        else:
            state = self._decode_cursor(spec, cursor, "cda")
            token = state.get("page")
            if not isinstance(token, str) or not token:
                raise ConfigError(f"ContentfulSource {spec.key}: cursor {cursor[:200]!r} holds no page token")
            counts.mode = counts.mode or str(state.get("mode") or "")
        try:
            body = await client.sync(token, content_type=content_type, limit=None if token else self.page_size)
        except HTTPRecordError as err:
            if token is None or err.status_code not in (400, 404, 410, 422):
                raise
            # Contentful no longer accepts the token (too old, or of another space): the only safe
            # way on is a new initial sync, which re-reads everything (unchanged records cost no write).
            logger.warning(
                "Contentful source %s: the sync token of %s was refused (%s); starting an initial sync",
                self.name,
                spec.key,
                err.status_code,
            )
            counts.mode = "initial"
            body = await client.sync(None, content_type=content_type, limit=self.page_size)
        records = await self._records(client, spec, [i for i in body.get("items") or [] if isinstance(i, dict)], "cda")
        next_page = client.pagination.next_page(body)
        if next_page is not None:
            return records, self._encode_cursor({"api": "cda", "page": next_page, "mode": counts.mode})
        next_sync = client.pagination.next_sync(body)
        if next_sync is None:
            raise TransientError(
                f"Contentful sync page of {spec.key} has neither nextPageUrl nor nextSyncUrl; trying again later"
            )
        # The last page: only now does the next pass start from the new token (see the module docstring).
        self._store(spec, api="cda", token=next_sync)
        return records, None

    # -- CMA: keyset paging over sys.updatedAt ----------------------------------------------------

    async def _cma_page(
        self,
        client: ContentfulClient,
        spec: SourceSpec,
        content_type: str | None,
        cursor: str | None,
        counts: _PassCounts,
    ) -> tuple[list[Record], str | None]:
        counts.mode = "cma"
        if cursor is None:
            since = self._since(spec)
            state: Json = {
                "since": since,
                "after": since,
                "ids": [],
                "tie": 0,
                "high": None,
                "started": _now_iso(self.http.clock),
            }
        else:
            state = self._decode_cursor(spec, cursor, "cma")
        limit = min(self.page_size, LIST_PAGE_SIZE)
        params: dict[str, Any] = {"order": "sys.updatedAt,sys.id", "limit": limit}
        if content_type is not None:
            params["content_type"] = content_type
        if state.get("after"):
            params["sys.updatedAt[gte]"] = state["after"]
        ids: list[str] = list(state.get("ids") or [])
        tie = int(state.get("tie") or 0)
        if ids:
            params["sys.id[nin]"] = ",".join(ids)
        elif tie:
            params["skip"] = tie  # over MAX_TIE_IDS entries at one instant (see settings.MAX_TIE_IDS)
        body = await client.entries(params)
        items = [i for i in body.get("items") or [] if isinstance(i, dict) and isinstance(i.get("sys"), dict)]
        records = await self._records(client, spec, items, "cma")
        high = state.get("high")
        for item in items:
            updated = item["sys"].get("updatedAt")
            if isinstance(updated, str) and (high is None or _later(updated, high)):
                high = updated
        if len(items) < limit:
            # Entries edited while this pass paged may have been passed over; the next pass starts no
            # later than this one did, so it reads them.
            started = state.get("started")
            if high is not None and isinstance(started, str) and _later(high, started):
                high = started
            self._store(spec, api="cma", high=high or self.watermark(spec.key).get("high"))
            return records, None
        last = str(items[-1]["sys"].get("updatedAt"))
        at_last = [str(i["sys"].get("id")) for i in items if i["sys"].get("updatedAt") == last]
        tie_ids: list[str] | None
        if last == state.get("after"):
            # The whole page sat at the instant the previous one ended at: widen the tie (staying in
            # skip mode once in it).
            in_skip_mode = not ids and tie > 0
            tie += len(at_last)
            tie_ids = None if in_skip_mode else [*ids, *at_last]
        else:
            tie, tie_ids = len(at_last), at_last
        if tie_ids is not None and len(tie_ids) > MAX_TIE_IDS:
            logger.warning(
                "Contentful source %s: over %d entries updated at %s; paging that instant with skip",
                self.name,
                MAX_TIE_IDS,
                last,
            )
            tie_ids = None
        next_state = {**state, "api": "cma", "after": last, "ids": tie_ids or [], "tie": tie, "high": high}
        return records, self._encode_cursor(next_state)

    def _since(self, spec: SourceSpec) -> str | None:
        stored = self.watermark(spec.key)
        if stored.get("api") != "cma" or stored.get("filter") != self._filter_of(spec) or not stored.get("high"):
            return None
        high = parse_date(stored["high"])
        if not isinstance(high, dt.datetime):
            return None
        since = high - self.cma_lookback
        return since.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # -- decoding ---------------------------------------------------------------------------------

    async def _content_type(self, client: ContentfulClient, content_type_id: str) -> ContentTypeSpec | None:
        spec = self._types.get(content_type_id)
        if spec is None:
            for data in await client.content_types():
                parsed = ContentTypeSpec.from_api(data)
                self._types[parsed.id] = parsed
            spec = self._types.get(content_type_id)
        return spec

    async def _records(self, client: ContentfulClient, spec: SourceSpec, items: list[Json], api: Api) -> list[Record]:
        counts = self._counts.setdefault(spec.key, _PassCounts())
        wanted = self._spec_content_type(spec)
        records: list[Record] = []
        for item in items:
            sys = item.get("sys") or {}
            kind = sys.get("type")
            entry_id = sys.get("id")
            if not entry_id:
                continue
            if kind == "DeletedEntry":
                counts.deletions += 1
                counts.deleted_ids.append(str(entry_id))
                logger.info("Contentful source %s: entry %s was unpublished or deleted", self.name, entry_id)
                if self.deleted_property:
                    records.append(Record(str(entry_id), {self.deleted_property: True}))
                continue
            if kind != "Entry":
                counts.skipped += 1  # Asset, DeletedAsset
                continue
            ct_id = ((sys.get("contentType") or {}).get("sys") or {}).get("id")
            if wanted is not None and ct_id != wanted:
                counts.skipped += 1
                continue
            content_type = await self._content_type(client, str(ct_id)) if ct_id else None
            if content_type is None:
                counts.skipped += 1
                self._warn(f"Contentful source {self.name}: entry {entry_id} has an unknown content type {ct_id!r}")
                continue
            if any(f not in content_type.fields for f in item.get("fields") or {}):
                # A field added since the content types were read: read them again (once per type).
                self._types.pop(content_type.id, None)
                content_type = await self._content_type(client, content_type.id) or content_type
            records.append(self._record(item, content_type, api))
            counts.entries += 1
        if self.enrich is None:
            return records
        # Entries only: a deletion record stands for an entry that is gone, there is nothing to enrich
        # (the Sync API lists an id once per answer, so moving deletions last reorders nothing that matters).
        deletions = [r for r in records if self.deleted_property and r.properties.keys() == {self.deleted_property}]
        entries = [r for r in records if not any(r is d for d in deletions)]
        ctx = EnrichContext(client, spec, self.name)
        return await enrich_records(self.enrich, entries, ctx, owner=f"Contentful source {self.name!r}") + deletions

    def _sys_properties(self, api: Api) -> dict[str, str]:
        if self.sys_properties is not None:
            return self.sys_properties
        out = dict(DEFAULT_SYS_PROPERTIES)
        if self.url_prefixes:
            out["URL"] = "url"
        if api == "cma":
            out["Status"] = "status"
        return out

    def _record(self, item: Json, content_type: ContentTypeSpec, api: Api) -> Record:
        sys: Json = item.get("sys") or {}
        raw_fields: Json = item.get("fields") or {}
        properties: dict[str, Any] = {}
        for field_id, field_spec in content_type.fields.items():
            if api == "cda" and field_spec.omitted:
                continue
            value = pick_locale(raw_fields.get(field_id), self.locales)
            properties[field_id] = None if value is MISSING else decode_value(field_spec, value)
        for field_id, by_locale in raw_fields.items():
            if field_id not in properties and field_id not in content_type.fields:
                value = pick_locale(by_locale, self.locales)
                properties[field_id] = None if value is MISSING else decode_value(None, value)
        for prop, what in self._sys_properties(api).items():
            if prop in properties:
                self._warn(f"Contentful source {self.name}: field {prop!r} shadows the sys property of that name")
                continue
            properties[prop] = self._sys_value(what, sys, properties, content_type)
        if self.deleted_property and self.deleted_property not in properties:
            properties[self.deleted_property] = False
        return Record(str(sys["id"]), properties)

    def _sys_value(self, what: str, sys: Json, properties: Mapping[str, Any], content_type: ContentTypeSpec) -> Any:
        if what == "id":
            return str(sys.get("id"))
        if what == "contentType":
            return content_type.id
        if what == "displayField":
            value = properties.get(content_type.display_field) if content_type.display_field else None
            return value if isinstance(value, str) else (None if value is None else str(value))
        if what in ("createdAt", "updatedAt", "publishedAt", "firstPublishedAt"):
            when = parse_date(sys.get(what))
            return when if isinstance(when, dt.datetime) else None
        if what == "url":
            prefix = self.url_prefixes.get(content_type.id)
            slug = properties.get(self.slug_field)
            return f"{prefix}{slug}" if prefix is not None and isinstance(slug, str) and slug else None
        if what == "status":
            return _status(sys)
        return None

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning("%s", message)


def _now_iso(clock: Clock | None) -> str:
    now = clock() if clock is not None else time.time()
    return dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _later(a: str, b: str) -> bool:
    pa, pb = parse_date(a), parse_date(b)
    if isinstance(pa, dt.datetime) and isinstance(pb, dt.datetime):
        return pa > pb
    return a > b


def _status(sys: Mapping[str, Any]) -> str:
    """Draft / Published / Changed (published, with newer draft edits) / Archived, as the web app says."""
    if sys.get("archivedVersion"):
        return "Archived"
    published = sys.get("publishedVersion")
    if not published:
        return "Draft" if "version" in sys else "Published"  # CDA entries carry no version: published
    version = sys.get("version")
    if isinstance(version, int) and isinstance(published, int) and version > published + 1:
        return "Changed"
    return "Published"
