"""``YouTubeSource``: the uploads of YouTube channels as records, with statistics, read incrementally.

One spec per channel, ``channel:<UC… id or @handle>``. A pass walks the channel's uploads playlist
(``channels.list`` → ``contentDetails.relatedPlaylists.uploads``, resolved once and cached), 50 items
per ``playlistItems.list`` page, and reads those 50 videos with ONE ``videos.list`` call for their
snippet, statistics and duration: 2 quota units per 50 videos (never ``search.list``, 100 units).

Refresh policy (no rolling window, so no video's statistics ever freeze — durable-sync's W3):

- **Full refresh**: at least every ``full_refresh_every`` (default a day), a pass walks EVERY page
  of the uploads, so the views, likes and comments of all videos are refreshed.
- **Incremental** passes in between: the uploads playlist is newest first, so paging stops at the
  first video published before (newest seen - ``lookback``). A pass over a quiet channel costs 2
  units (one page, one ``videos.list``) and still refreshes the recent videos' statistics.

Durable state lives in ``watermarks`` (a ``MutableMapping[str, str]``; pass the state store's
``BlobMapping`` so it survives a new process), one JSON value per spec::

    {"channel_id": "UC…", "uploads": "UU…", "newest": "<ISO time>", "full_at": "<ISO time>"}

plus the quota meter's ``youtube:quota:<key digest>`` entry (``{"day", "units", "exhausted"}``).

Cursor (opaque to the engine; the playlist and the pass's mode ride along, so a resumed pass in a
new process asks the same question without a ``channels.list``)::

    {"v": 1, "playlist": "UU…", "token": "<nextPageToken>", "mode": "full"|"incremental",
     "since": "<ISO time or null>", "high": "<ISO time or null>"}

Quota: every pass's units are counted (:meth:`YouTubeSource.quota_used`, :meth:`pass_metadata`); a
``quotaExceeded`` answer raises ``YouTubeQuotaExceeded`` (a ``RateLimited`` whose ``retry_after``
runs to midnight Pacific), so the orchestrator defers the partition instead of pausing it; later
passes the same day fail fast without spending a unit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, MutableMapping, Sequence
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
from connectors.http import Clock, CredentialMembers, HttpSettings, Json, NotFound, Rate, TokenCredentials, drain_pages
from connectors.watermarks import PendingWatermarks, WatermarkMembers, parse_time
from connectors.youtube.client import QuotaMeter, YouTubeClient, YouTubeCredentials, token_digest
from connectors.youtube.settings import (
    API_BASE,
    DEFAULT_FULL_REFRESH_EVERY,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_LOOKBACK,
    DEFAULT_QUOTA_BUDGET,
    DESCRIPTION_MAX_CHARS,
    LIVE_STATES,
    PAGE_SIZE,
    RATE,
    TOKEN_ENV,
    WATCH_URL,
)

__all__ = [
    "CURSOR_VERSION",
    "YouTubeSource",
    "format_duration",
    "normalize_channel",
    "parse_duration",
    "video_record",
]

logger = logging.getLogger(__name__)

CURSOR_VERSION = 1
MODES = ("full", "incremental")

_CHANNEL_ID_RE = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
# Handles are 3-30 characters: letters and digits of any of the scripts YouTube supports (not only
# Latin: @日本語チャンネル is a handle), underscores, hyphens, periods and the middle dot.
_HANDLE_RE = re.compile(r"^@[\w.·-]{3,30}$")
_VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
_URL_RE = re.compile(r"youtube\.com/(?:channel/(?P<id>UC[A-Za-z0-9_-]{22})|(?P<handle>@[^/?#\s]{3,90}))")
_DURATION_RE = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


# --------------------------------------------------------------------------------------------------
# Values


def normalize_channel(value: str) -> str:
    """A channel reference as the API takes it: a ``UC…`` id or an ``@handle``.

    Accepts channel URLs (``https://www.youtube.com/@acme``, ``…/channel/UC…``) and a handle without
    its ``@``.

    Raises:
        ConfigError: Not a channel id, handle or channel URL.
    """
    text = str(value or "").strip()
    match = _URL_RE.search(text)
    if match:
        # A URL copied from a browser percent-encodes a non-Latin handle (/@%E6%97%A5…).
        found = match.group("id") or urllib.parse.unquote(match.group("handle"))
        if _CHANNEL_ID_RE.match(found) or _HANDLE_RE.match(found):
            return found
    if _CHANNEL_ID_RE.match(text) or _HANDLE_RE.match(text):
        return text
    if _HANDLE_RE.match("@" + text) and not text.startswith("UC"):
        return "@" + text
    raise ConfigError(
        f"YouTube: {value!r} is not a channel id (UC followed by 22 characters), an @handle or a channel URL"
    )


def parse_duration(value: Any) -> int | None:
    """Seconds of an ISO 8601 duration as YouTube gives it; None if it is not one.

    Seconds of an ISO 8601 duration as YouTube gives it (``PT1H2M3S``, ``P1DT2M``, ``P0D``); None if
    it is not one.
    """
    if not isinstance(value, str):
        return None
    match = _DURATION_RE.match(value.strip())
    if not match or value.strip() in ("P", "PT"):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    total = parts["w"] * 604800 + parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    return round(total)


def format_duration(seconds: int) -> str:
    """YouTube's way of showing a length: ``0:42``, ``4:05``, ``1:02:03``."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def _count(value: Any) -> int | None:
    """A statistic (Google sends them as decimal strings); None when hidden or disabled."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def video_record(video: Json) -> Record | None:
    """One ``videos.list`` item (snippet, statistics, contentDetails) as a record; None without an id.

    Properties: Title, URL, Published (aware datetime), Views/Likes/Comments (int, None when hidden or
    disabled), Duration (seconds; None while a stream is live or upcoming, whose ``P0D`` is a length
    not known yet), Duration text, Description (<= 2000 characters, None when empty), Channel, Tags
    (list of str).
    """
    video_id = video.get("id")
    if not isinstance(video_id, str) or not video_id:
        return None
    snippet = video.get("snippet") or {}
    stats = video.get("statistics") or {}
    details = video.get("contentDetails") or {}
    seconds = parse_duration(details.get("duration"))
    if seconds == 0 and snippet.get("liveBroadcastContent") in LIVE_STATES:
        seconds = None  # P0D of a stream in progress or scheduled: not known yet, not zero
    description = str(snippet.get("description") or "")[:DESCRIPTION_MAX_CHARS]
    properties: dict[str, Any] = {
        "Title": str(snippet.get("title") or ""),
        "URL": WATCH_URL.format(id=video_id),
        "Published": parse_time(snippet.get("publishedAt")),
        "Views": _count(stats.get("viewCount")),
        "Likes": _count(stats.get("likeCount")),
        "Comments": _count(stats.get("commentCount")),
        "Duration": seconds,
        "Duration text": format_duration(seconds) if seconds is not None else None,
        "Description": description or None,
        "Channel": str(snippet.get("channelTitle") or ""),
        "Tags": [str(tag) for tag in snippet.get("tags") or [] if isinstance(tag, str)],
    }
    return Record(video_id, properties)


def _item_video_id(item: Json) -> str | None:
    details = item.get("contentDetails") or {}
    video_id = details.get("videoId") or ((item.get("snippet") or {}).get("resourceId") or {}).get("videoId")
    return str(video_id) if video_id else None


def _item_published(item: Json) -> dt.datetime | None:
    # videoPublishedAt is absent for private and deleted videos: they never stop a walk.
    return parse_time((item.get("contentDetails") or {}).get("videoPublishedAt"))


# --------------------------------------------------------------------------------------------------
# The source


class YouTubeSource(WatermarkMembers, CredentialMembers[TokenCredentials]):
    """The uploads of YouTube channels, one record per video (see the module docstring).

    Args:
        channels: ``UC…`` channel ids, ``@handles`` or channel URLs; one spec each.
        token: The API key; default: the ``token_env`` variable (or ``<token_env>_FILE``), read at
            each use.
        token_env: Environment variable of the API key.
        interval_minutes: How often each channel syncs.
        full_refresh_every: Longest time between passes that walk every upload (statistics refresh
            of ALL videos). ``timedelta(0)``: every pass is full.
        lookback: An incremental pass also re-reads videos published this long before the newest.
        watermarks: Durable state (see the module docstring); default: in memory, so a new process
            starts with a full pass.
        quota_budget: Units a day this source may spend per API key; a call over it is not sent
            (``YouTubeQuotaExceeded``). The project's quota is 10,000 by default.
        page_size: Playlist items per page (at most 50).
        enrich: A per-record hook ``(record, EnrichContext) -> record | None`` (sync or async) run while
            the page's ``YouTubeClient`` is open (``ctx.client`` for extra calls, metered against the
            quota like the source's own); a raise fails that record only.
        name: Source name.
        base_url, rate, http: As for ``YouTubeClient`` (``http.clock`` also decides the quota day and
            when a full refresh is due).
    """

    incremental = True

    def __init__(
        self,
        channels: Sequence[str],
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        full_refresh_every: dt.timedelta = DEFAULT_FULL_REFRESH_EVERY,
        lookback: dt.timedelta = DEFAULT_LOOKBACK,
        watermarks: MutableMapping[str, str] | None = None,
        quota_budget: int = DEFAULT_QUOTA_BUDGET,
        page_size: int = PAGE_SIZE,
        enrich: EnrichHook | None = None,
        name: str = "youtube",
        base_url: str = API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = RATE,
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        if isinstance(channels, str):
            channels = [channels]  # one channel given bare: a list of its characters would be nonsense
        self.channels = list(dict.fromkeys(normalize_channel(c) for c in channels))
        check_count("YouTubeSource", "interval_minutes", interval_minutes)
        if not isinstance(full_refresh_every, dt.timedelta) or full_refresh_every < dt.timedelta(0):
            raise ConfigError(f"YouTubeSource.full_refresh_every must be a timedelta >= 0, got {full_refresh_every!r}")
        if not isinstance(lookback, dt.timedelta) or lookback < dt.timedelta(0):
            raise ConfigError(f"YouTubeSource.lookback must be a timedelta >= 0, got {lookback!r}")
        check_count("YouTubeSource", "page_size", page_size, most=PAGE_SIZE)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"YouTubeSource.name must be a non-empty string, got {name!r}")
        self.name = name
        self.interval_minutes = interval_minutes
        self.full_refresh_every = full_refresh_every
        self.lookback = lookback
        self._state = PendingWatermarks(watermarks, owner=f"YouTube source {name}")
        self.quota_budget = quota_budget
        QuotaMeter(quota_budget, clock=time.time)  # validates the budget now, not at the first page
        self.page_size = page_size
        self.enrich: EnrichHook | None = checked_hook(enrich, f"YouTubeSource {name!r}")
        self.credentials = YouTubeCredentials(token, token_env)
        self.base_url = base_url.rstrip("/")
        self.http = http or HttpSettings()
        self.rate = rate
        self.clock: Clock = self.http.clock or time.time
        self._meters: dict[str, QuotaMeter] = {}
        self._pass_units: dict[str, int] = {}
        self._pass_mode: dict[str, str] = {}
        self.requests_sent = 0
        """Requests that reached the API through this source (for tests and benchmarks)."""

    def __repr__(self) -> str:  # never the key
        """Name the connector, never its secret."""
        return f"YouTubeSource(name={self.name!r}, channels={self.channels!r})"

    # -- credential -----------------------------------------------------------------------------

    def api_key(self) -> str | None:
        """The key now: the one given, else the environment's (so a rotated key is seen)."""
        return self.credentials.token()

    @property
    def configured(self) -> bool:
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return bool(self.channels) and bool(self.api_key())

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        if not self.channels:
            return "give YouTubeSource channels=['UC…' or '@handle', ...]"
        return (
            f"set {self.credentials.token_env or 'token'} to a YouTube Data API v3 key (Google Cloud console → APIs & "
            "Services → Credentials → Create credentials → API key, with the YouTube Data API v3 enabled)"
        )

    # -- specs and state --------------------------------------------------------------------------

    def specs(self) -> list[SourceSpec]:
        """The units of work, one partition each."""
        return [SourceSpec(f"channel:{c}", self.interval_minutes, {"channel": c}) for c in self.channels]

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def watermark(self, spec_key: str) -> dt.datetime | None:
        """The publish time of the newest video a complete pass of the spec has seen."""
        return parse_time(self._state.load(spec_key).get("newest"))

    def last_full_refresh(self, spec_key: str) -> dt.datetime | None:
        """When a pass of the spec last walked every upload."""
        return parse_time(self._state.load(spec_key).get("full_at"))

    def reset(self, spec_key: str | None = None) -> None:
        """Forget the incremental state: the next pass walks every upload.

        Forget the incremental state (the next pass walks every upload); the resolved uploads
        playlist stays cached.
        """
        keys = [spec_key] if spec_key is not None else [s.key for s in self.specs()]
        for key in keys:
            state = self._state.load(key)
            if state.pop("newest", None) is not None or state.pop("full_at", None) is not None:
                self._state.save(key, state)
            elif key in self.watermarks and not state:
                del self.watermarks[key]

    def _plan(self, spec_key: str) -> tuple[str, dt.datetime | None]:
        """The mode of a new pass and, when incremental, the publish time that stops its walk."""
        state = self._state.load(spec_key)
        newest, full_at = parse_time(state.get("newest")), parse_time(state.get("full_at"))
        if newest is None or full_at is None or self._now() - full_at >= self.full_refresh_every:
            return "full", None
        return "incremental", newest - self.lookback

    def _finish(self, spec_key: str, mode: str, high: dt.datetime | None) -> None:
        state = self._state.load(spec_key)
        newest = parse_time(state.get("newest"))
        if high is not None and (newest is None or high > newest):
            state["newest"] = _iso(high)
        if mode == "full":
            state["full_at"] = _iso(self._now())
        self._state.save(spec_key, state)

    # -- quota ----------------------------------------------------------------------------------------

    def _meter(self, api_key: str) -> QuotaMeter:
        digest = token_digest(api_key)[:12]
        meter = self._meters.get(digest)
        if meter is None:
            meter = self._meters[digest] = QuotaMeter(
                self.quota_budget, clock=self.clock, state=self.watermarks, key=f"youtube:quota:{digest}"
            )
        return meter

    def quota_used(self, spec_key: str) -> int:
        """Quota units spent by the current (or last) pass of the spec, in this process."""
        return self._pass_units.get(spec_key, 0)

    def pass_metadata(self, spec: SourceSpec) -> dict[str, Any]:
        """What the pass cost, for the asset's metadata (JSON-friendly values; no record content).

        ``quota_units`` (this pass), ``quota_units_today`` (this key since midnight Pacific, as
        counted here), ``quota_budget``, ``quota_resets_at``, ``refresh`` (``full`` or
        ``incremental``) and ``last_full_refresh``. The engine prefixes them with the source's name
        (``youtube_quota_units``) on the asset materialization.
        """
        key = self.api_key()
        meter = self._meter(key) if key else None
        full_at = self.last_full_refresh(spec.key)
        return {
            "quota_units": self.quota_used(spec.key),
            "quota_units_today": meter.used_today if meter else 0,
            "quota_budget": self.quota_budget,
            "quota_resets_at": meter.resets_at.isoformat() if meter else None,
            "refresh": self._pass_mode.get(spec.key),
            "last_full_refresh": _iso(full_at),
        }

    # -- reading ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _client(self, spec_key: str) -> AsyncIterator[YouTubeClient]:
        key = self.api_key()
        if not key:
            raise ConfigError(f"YouTube source {self.name!r}: no API key: {self.config_hint}")
        client = YouTubeClient(
            key,
            base_url=self.base_url,
            http=self.http,
            rate=self.rate,
            meter=self._meter(key),
        )
        try:
            async with client:
                yield client
        finally:
            self._pass_units[spec_key] = self._pass_units.get(spec_key, 0) + client.units
            self.requests_sent += client.requests
            client.meter.flush()

    def _channel(self, spec: SourceSpec) -> str:
        return normalize_channel(str(spec.params.get("channel") or spec.key.removeprefix("channel:")))

    async def _resolve(self, client: YouTubeClient, spec: SourceSpec, *, fresh: bool = False) -> tuple[str, str]:
        """(channel id, uploads playlist id) of the spec's channel, cached in ``watermarks``."""
        state = self._state.load(spec.key)
        if not fresh and state.get("uploads") and state.get("channel_id"):
            return str(state["channel_id"]), str(state["uploads"])
        ref = self._channel(spec)
        channel = await client.channel(ref)
        related = ((channel or {}).get("contentDetails") or {}).get("relatedPlaylists") or {}
        uploads = related.get("uploads") if isinstance(related, dict) else None
        if channel is None or not uploads:
            raise ConfigError(f"YouTube source {self.name!r}: no channel {ref!r} (check the id or @handle)")
        state["channel_id"], state["uploads"] = str(channel["id"]), str(uploads)
        self._state.save(spec.key, state)
        return state["channel_id"], state["uploads"]

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None = None, cursor: str | None = None
    ) -> tuple[list[Record], str | None]:
        """One page of up to 50 videos (newest first) and the cursor of the next (None at the end).

        ``only_items`` (video ids) are read with ``videos.list``, ALL of them in calls of 50; ids of
        other channels or unknown to Google are left out; the state is not touched.
        """
        if only_items is None and cursor is None:
            self._pass_units[spec.key] = 0
        async with self._client(spec.key) as client:
            ctx = EnrichContext(client, spec, self.name)
            owner = f"YouTube source {self.name!r}"
            if only_items is not None:
                targeted = await self._targeted(client, spec, only_items)
                return await enrich_records(self.enrich, targeted, ctx, owner=owner), None
            if cursor is None:
                mode, since = self._plan(spec.key)
                self._pass_mode[spec.key] = mode
                _, playlist = await self._resolve(client, spec)
                token, high = None, None
            else:
                playlist, token, mode, since, high = self._decode(spec.key, cursor)
            try:
                body = await client.playlist_items(playlist, token, max_results=self.page_size)
            except NotFound:
                if cursor is not None:
                    raise
                # A stale cached id (channel re-created) or a channel without uploads: resolve again.
                _, fresh = await self._resolve(client, spec, fresh=True)
                if fresh == playlist:
                    logger.info("YouTube %s: the uploads playlist %s is empty or gone", spec.key, playlist)
                    self._finish(spec.key, mode, None)
                    return [], None
                playlist = fresh
                body = await client.playlist_items(playlist, None, max_results=self.page_size)

            ids: list[str] = []
            stopped = False
            for item in body.get("items") or []:
                if not isinstance(item, dict):
                    continue
                video_id = _item_video_id(item)
                published = _item_published(item)
                if published is not None and (high is None or published > high):
                    high = published
                if since is not None and published is not None and published < since:
                    stopped = True  # newest first: everything after this is older still
                    break
                if video_id:
                    ids.append(video_id)
            videos = await client.videos(ids) if ids else []
            records = [r for r in (video_record(v) for v in videos) if r is not None]
            records = await enrich_records(self.enrich, records, ctx, owner=owner)
        next_token = body.get("nextPageToken")
        if stopped or not isinstance(next_token, str) or not next_token:
            self._finish(spec.key, mode, high)
            return records, None
        state = {"v": CURSOR_VERSION, "playlist": playlist, "token": next_token, "mode": mode}
        state.update({"since": _iso(since), "high": _iso(high)})
        return records, json.dumps(state, sort_keys=True, separators=(",", ":"))

    def _decode(self, spec_key: str, cursor: str) -> tuple[str, str, str, dt.datetime | None, dt.datetime | None]:
        try:
            state = json.loads(cursor)
            if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
                raise ValueError("not a version-1 cursor")
            playlist, token, mode = state["playlist"], state["token"], state.get("mode")
            if not isinstance(playlist, str) or not isinstance(token, str) or mode not in MODES:
                raise ValueError("playlist, token or mode missing")
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"YouTube source {self.name!r}: cursor {cursor[:200]!r} of {spec_key} is not one of ours ({err}); "
                "start a full pass"
            ) from None
        return playlist, token, mode, parse_time(state.get("since")), parse_time(state.get("high"))

    async def _targeted(self, client: YouTubeClient, spec: SourceSpec, items: Iterable[str]) -> list[Record]:
        ids: list[str] = []
        for raw in items:
            text = str(raw).strip()
            if _VIDEO_ID_RE.match(text):
                ids.append(text)
            else:
                logger.debug("YouTube %s: ignoring targeted item %r (not a video id)", spec.key, text)
        if not ids:
            return []
        channel_id, _ = await self._resolve(client, spec)
        videos = await client.videos(ids)
        mine = [v for v in videos if (v.get("snippet") or {}).get("channelId") == channel_id]
        if len(mine) < len(videos):
            logger.debug("YouTube %s: %d targeted videos belong to other channels", spec.key, len(videos) - len(mine))
        return [r for r in (video_record(v) for v in mine) if r is not None]

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (a drain over :meth:`fetch_page`)."""
        return await drain_pages(self.fetch_page, spec, only_items)
