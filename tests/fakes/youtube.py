"""A stateful fake of the YouTube Data API v3 (the three list calls a channel mirror needs), as a Starlette app.

Use it in-process::

    clock = FakeClock()                                   # tests.fakes.github
    fake = FakeYouTube(clock=clock.clock)
    channel = fake.add_channel("@acme")
    fake.add_videos(channel, 120)
    transport = httpx.ASGITransport(app=fake.app)         # base_url https://www.googleapis.com/youtube/v3

or on a loopback port (``with serve(fake) as base_url: ...``; the API root is ``base_url + "/youtube/v3"``).
It is written from Google's documentation, independently of ``connectors.youtube``.

What it does as Google does:

- ``GET /youtube/v3/channels`` (``part``, ``id`` = comma-separated UC… ids, or ``forHandle`` with or
  without ``@``, case-insensitive): ``contentDetails.relatedPlaylists.uploads`` is the uploads playlist;
  no match answers 200 without ``items``.
- ``GET /youtube/v3/playlistItems`` (``part``, ``playlistId``, ``maxResults`` 0-50, default 5,
  ``pageToken``): newest upload first; opaque ``nextPageToken`` / ``prevPageToken``; ``pageInfo``. A
  private upload is listed as "Private video" without ``videoPublishedAt``. Unknown playlist: 404
  ``playlistNotFound``; a token of another playlist or garbage: 400 ``invalidPageToken``.
- ``GET /youtube/v3/videos`` (``part`` of snippet/statistics/contentDetails, ``id`` = at most 50
  comma-separated ids; more answers 400): public and unlisted videos only, in the order asked; counts
  as decimal strings; ``likeCount`` missing when likes are hidden, ``commentCount`` when comments
  are off; ``contentDetails.duration`` in ISO 8601 (``PT1H2M3S``; ``P0D`` for a live stream).
- The API key as the ``key`` query parameter or the ``X-Goog-Api-Key`` header. No key: 403
  ``forbidden``; an unknown or revoked key: 400 "API key not valid" (reason ``keyInvalid``, and the
  newer ``details[].reason`` ``API_KEY_INVALID``).
- A daily quota per project (all keys of the fake): each call costs its documented units (1 for
  these lists, 100 for ``search``), invalid requests at least 1; it resets at midnight
  America/Los_Angeles on the injected clock. Exhausted: 403 ``quotaExceeded`` (domain ``youtube.quota``),
  which costs nothing.
- Error bodies ``{"error": {"code", "message", "errors": [{"message", "domain", "reason"}]}}``.

Test helpers: channels and videos (``add_channel``, ``add_video(s)``, ``set_stats``, ``make_private``,
``delete_video``), keys (``add_key``, ``revoke_key``, ``rotate_key``), quota (``quota_used``,
``exhaust_quota``), faults (``fail_next``) and the request log ``fake.calls`` (the key is kept out of
the logged params; ``key_via`` says how it came, ``url`` is the URL as received).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import random
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.loopback import serve_app

__all__ = ["QUOTA_COSTS", "FakeChannel", "FakeVideo", "FakeYouTube", "YouTubeCall", "serve"]

PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA_COSTS = {"channels": 1, "playlistItems": 1, "videos": 1, "search": 100}
MAX_RESULTS = 50
DEFAULT_MAX_RESULTS = 5
MAX_IDS = 50
QUOTA_MESSAGE = "The request cannot be completed because you have exceeded your quota."
KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."

Json = dict[str, Any]
_ID_CHARS = string.ascii_letters + string.digits + "-_"


def _random_id(n: int, rng: Any = secrets) -> str:
    return "".join(rng.choice(_ID_CHARS) for _ in range(n))


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _etag(data: Any) -> str:
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:27]


@dataclass
class FakeChannel:
    id: str
    handle: str
    title: str
    uploads: str

    @property
    def custom_url(self) -> str:
        return self.handle.lower()


@dataclass
class FakeVideo:
    """One upload. Change its counters through ``FakeYouTube.set_stats``."""

    id: str
    channel_id: str
    title: str
    published: dt.datetime
    description: str = ""
    tags: list[str] = field(default_factory=list)
    duration: str = "PT4M13S"
    views: int = 0
    likes: int | None = 0  # None: the owner hid the like count
    comments: int | None = 0  # None: comments are off
    privacy: str = "public"  # public | unlisted | private


class YouTubeCall(NamedTuple):
    """One request the fake answered."""

    method: str
    path: str
    status: int
    params: dict[str, str]
    key_via: str | None
    units: int
    url: str


class _Fail(Exception):
    def __init__(self, code: int, reason: str, message: str, *, domain: str = "youtube.api", **extra: Any) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain, self.extra = code, reason, message, domain, extra

    def body(self) -> Json:
        error: Json = {
            "code": self.status,
            "message": self.message,
            "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
        }
        error.update(self.extra)
        return {"error": error}


@dataclass
class _Fault:
    remaining: int
    status: int
    resource: str | None
    reason: str
    message: str
    retry_after: int | None = None


class FakeYouTube:
    """The fake API and its state. ``fake.app`` is the ASGI app.

    Args:
        key: The valid API key (default: a random ``AIza…``); more with ``add_key``.
        clock: Epoch seconds; decides the quota day (midnight America/Los_Angeles).
        daily_quota: Units a day for the project.
        seed: Seed of the ids the fake makes up (deterministic tests).
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        clock: Callable[[], float] = time.time,
        daily_quota: int = 10_000,
        seed: int | None = 7,
    ) -> None:
        self._rng: Any = random.Random(seed) if seed is not None else secrets
        self.clock = clock
        # Keys are random even with a seed: the HTTP toolkit keeps per-credential state (limiter, blocks)
        # for the whole process, so two tests must never share a key.
        self.key = key or "AIza" + _random_id(35)
        self.keys: set[str] = {self.key}
        self.revoked: set[str] = set()
        self.daily_quota = daily_quota
        self.channels: dict[str, FakeChannel] = {}
        self.videos: dict[str, FakeVideo] = {}
        self.playlists: dict[str, list[str]] = {}  # uploads playlist id -> video ids, newest first
        self.calls: list[YouTubeCall] = []
        self._quota_day: dt.date | None = None
        self._quota_used = 0
        self._faults: list[_Fault] = []
        self._order = itertools.count()
        self._inserted: dict[str, int] = {}
        self._lock = threading.RLock()
        self.app = Starlette(routes=[Route("/youtube/v3/{resource}", self._endpoint, methods=["GET"])])

    # -- keys ------------------------------------------------------------------------------------

    def add_key(self, key: str | None = None) -> str:
        key = key or "AIza" + _random_id(35)
        self.keys.add(key)
        self.revoked.discard(key)
        return key

    def revoke_key(self, key: str | None = None) -> None:
        """Delete a key in the console: it answers 400 ``keyInvalid`` from now on."""
        key = key or self.key
        self.keys.discard(key)
        self.revoked.add(key)

    def rotate_key(self) -> str:
        self.revoke_key(self.key)
        self.key = self.add_key()
        return self.key

    # -- channels and videos ---------------------------------------------------------------------

    def add_channel(
        self, handle: str = "@acme", *, title: str | None = None, channel_id: str | None = None
    ) -> FakeChannel:
        handle = handle if handle.startswith("@") else "@" + handle
        channel_id = channel_id or "UC" + _random_id(22, self._rng)
        channel = FakeChannel(channel_id, handle, title or handle.lstrip("@").title(), "UU" + channel_id[2:])
        self.channels[channel_id] = channel
        self.playlists[channel.uploads] = []
        return channel

    def add_video(
        self, channel: FakeChannel, *, published: dt.datetime, video_id: str | None = None, **fields: Any
    ) -> FakeVideo:
        """Upload a video; the uploads playlist stays newest first."""
        video_id = video_id or _random_id(11, self._rng)
        fields.setdefault("title", f"Video {len(self.playlists[channel.uploads]) + 1}")
        video = FakeVideo(id=video_id, channel_id=channel.id, published=published, **fields)
        self.videos[video_id] = video
        self._inserted[video_id] = next(self._order)
        ids = self.playlists[channel.uploads]
        ids.append(video_id)
        ids.sort(key=lambda v: (self.videos[v].published, self._inserted[v]), reverse=True)
        return video

    def add_videos(
        self,
        channel: FakeChannel,
        n: int,
        *,
        start: dt.datetime = dt.datetime(2024, 1, 1, 15, 0, tzinfo=dt.UTC),
        step: dt.timedelta = dt.timedelta(days=1),
        **fields: Any,
    ) -> list[FakeVideo]:
        """``n`` videos published ``step`` apart from ``start`` (the last is the newest), with stats."""
        out = []
        for i in range(n):
            values: dict[str, Any] = {
                "title": f"{channel.title} video {i:03d}",
                "description": f"About video {i}.",
                "tags": ["demo", f"t{i % 3}"],
                "duration": f"PT{i % 3}M{(i * 7) % 60}S" if i % 5 else f"PT1H{i % 60}M3S",
                "views": 1000 + i,
                "likes": 10 + i,
                "comments": i,
            }
            values.update(fields)
            out.append(self.add_video(channel, published=start + i * step, **values))
        return out

    def set_stats(self, video_id: str, **counts: Any) -> FakeVideo:
        video = self.videos[video_id]
        for name, value in counts.items():
            if name not in ("views", "likes", "comments"):
                raise AttributeError(name)
            setattr(video, name, value)
        return video

    def make_private(self, video_id: str) -> None:
        self.videos[video_id].privacy = "private"

    def delete_video(self, video_id: str) -> None:
        video = self.videos.pop(video_id)
        uploads = next(c.uploads for c in self.channels.values() if c.id == video.channel_id)
        self.playlists[uploads].remove(video_id)

    def uploads(self, channel: FakeChannel) -> list[FakeVideo]:
        return [self.videos[v] for v in self.playlists[channel.uploads]]

    # -- quota and faults ------------------------------------------------------------------------

    def _roll(self) -> None:
        today = dt.datetime.fromtimestamp(self.clock(), PACIFIC).date()
        if self._quota_day != today:
            self._quota_day, self._quota_used = today, 0

    @property
    def quota_used(self) -> int:
        """Units spent today (Pacific)."""
        with self._lock:
            self._roll()
            return self._quota_used

    def exhaust_quota(self) -> None:
        """Spend the rest of today's quota."""
        with self._lock:
            self._roll()
            self._quota_used = self.daily_quota

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        resource: str | None = None,
        reason: str = "backendError",
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``n`` requests (to ``resource``, a glob such as ``videos``) with ``status``
        (and a ``Retry-After`` header when given)."""
        message = {503: "The service is currently unavailable.", 500: "Backend Error"}.get(status, reason)
        self._faults.append(_Fault(n, status, resource, reason, message, retry_after))

    # -- the log ---------------------------------------------------------------------------------

    def count(self, resource: str | None = None, *, status: int | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if (resource is None or fnmatch.fnmatchcase(c.path.rsplit("/", 1)[-1], resource))
            and (status is None or c.status == status)
        )

    def statuses(self) -> Counter[int]:
        return Counter(c.status for c in self.calls)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        resource = request.path_params["resource"]
        params = dict(request.query_params)
        header_key = request.headers.get("x-goog-api-key")
        query_key = params.pop("key", None)
        key, via = (header_key, "header") if header_key else (query_key, "query" if query_key else None)
        units = 0
        headers: dict[str, str] = {}
        with self._lock:
            try:
                if not key:
                    raise _Fail(
                        403,
                        "forbidden",
                        "The request is missing a valid API key.",
                        domain="global",
                        status="PERMISSION_DENIED",
                    )
                if key not in self.keys:
                    raise _Fail(
                        400,
                        "keyInvalid",
                        KEY_INVALID_MESSAGE,
                        domain="usageLimits",
                        status="INVALID_ARGUMENT",
                        details=[
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                                "metadata": {"service": "youtube.googleapis.com"},
                            }
                        ],
                    )
                self._roll()
                cost = QUOTA_COSTS.get(resource, 1)
                if self._quota_used + cost > self.daily_quota:
                    raise _Fail(403, "quotaExceeded", QUOTA_MESSAGE, domain="youtube.quota")
                fault = next(
                    (f for f in self._faults if f.resource is None or fnmatch.fnmatchcase(resource, f.resource)), None
                )
                if fault is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(fault.retry_after)
                    raise _Fail(fault.status, fault.reason, fault.message, domain="global")
                # Every request that gets this far costs its units, valid or not.
                self._quota_used += cost
                units = cost
                handler = {"channels": self._channels, "playlistItems": self._playlist_items, "videos": self._videos}
                if resource not in handler:
                    raise _Fail(404, "notFound", "Not Found", domain="global")
                status, body = 200, handler[resource](params)
            except _Fail as fail:
                status, body = fail.status, fail.body()
            self.calls.append(YouTubeCall("GET", request.url.path, status, params, via, units, str(request.url)))
        return JSONResponse(body, status_code=status, headers=headers)

    @staticmethod
    def _parts(params: dict[str, str], allowed: set[str]) -> set[str]:
        raw = params.get("part")
        if not raw:
            raise _Fail(
                400,
                "required",
                "Required parameter: part",
                domain="global",
                location="part",
                locationType="parameter",
            )
        parts = {p.strip() for p in raw.split(",") if p.strip()}
        unknown = parts - allowed
        if unknown:
            bad = sorted(unknown)[0]
            raise _Fail(400, "unknownPart", f"'{bad}'", location="part", locationType="parameter")
        return parts

    @staticmethod
    def _max_results(params: dict[str, str], default: int) -> int:
        raw = params.get("maxResults")
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_RESULTS:
            raise _Fail(
                400,
                "invalidValue",
                f"Invalid value '{raw}'. Values must be within the range: [0, {MAX_RESULTS}]",
                domain="global",
                location="maxResults",
                locationType="parameter",
            )
        return value

    def _channels(self, params: dict[str, str]) -> Json:
        parts = self._parts(params, {"id", "snippet", "contentDetails", "statistics", "status"})
        if params.get("id"):
            wanted = [c.strip() for c in params["id"].split(",") if c.strip()]
            found = [self.channels[c] for c in wanted if c in self.channels]
        elif params.get("forHandle"):
            handle = params["forHandle"].strip().lower()
            handle = handle if handle.startswith("@") else "@" + handle
            found = [c for c in self.channels.values() if c.handle.lower() == handle]
        else:
            raise _Fail(400, "missingRequiredParameter", "No filter selected. Expected one of: id, forHandle, mine")
        items = []
        for channel in found:
            item: Json = {"kind": "youtube#channel", "etag": _etag(channel.id), "id": channel.id}
            if "snippet" in parts:
                item["snippet"] = {"title": channel.title, "customUrl": channel.custom_url, "description": ""}
            if "contentDetails" in parts:
                item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": channel.uploads}}
            items.append(item)
        body: Json = {
            "kind": "youtube#channelListResponse",
            "etag": _etag([c.id for c in found]),
            "pageInfo": {"totalResults": len(items), "resultsPerPage": DEFAULT_MAX_RESULTS},
        }
        if items:
            body["items"] = items  # Google leaves the key out when nothing matched
        return body

    @staticmethod
    def _token(playlist_id: str, offset: int) -> str:
        raw = json.dumps([playlist_id, offset], separators=(",", ":")).encode()
        return "EA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _untoken(token: str, playlist_id: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(token.removeprefix("EA") + "=" * (-len(token.removeprefix("EA")) % 4))
            owner, offset = json.loads(raw)
            if owner != playlist_id or not isinstance(offset, int) or offset < 0:
                raise ValueError
        except (ValueError, TypeError):
            raise _Fail(400, "invalidPageToken", "The request specifies an invalid page token.") from None
        return offset

    def _playlist_items(self, params: dict[str, str]) -> Json:
        parts = self._parts(params, {"id", "snippet", "contentDetails", "status"})
        playlist_id = params.get("playlistId", "")
        if not playlist_id:
            raise _Fail(400, "missingRequiredParameter", "No filter selected. Expected one of: playlistId, id")
        if playlist_id not in self.playlists:
            raise _Fail(
                404,
                "playlistNotFound",
                "The playlist identified with the request's playlistId parameter cannot be found.",
                domain="youtube.playlistItem",
                location="playlistId",
                locationType="parameter",
            )
        size = self._max_results(params, DEFAULT_MAX_RESULTS)
        offset = self._untoken(params["pageToken"], playlist_id) if params.get("pageToken") else 0
        ids = self.playlists[playlist_id]
        chunk = ids[offset : offset + size] if size else []
        items = []
        for position, video_id in enumerate(chunk, start=offset):
            video = self.videos[video_id]
            private = video.privacy == "private"
            item: Json = {"kind": "youtube#playlistItem", "etag": _etag([playlist_id, video_id]), "id": _etag(video_id)}
            if "snippet" in parts:
                item["snippet"] = {
                    "publishedAt": _iso(video.published),
                    "channelId": video.channel_id,
                    "title": "Private video" if private else video.title,
                    "description": "This video is private." if private else video.description,
                    "channelTitle": self.channels[video.channel_id].title,
                    "playlistId": playlist_id,
                    "position": position,
                    "resourceId": {"kind": "youtube#video", "videoId": video_id},
                }
            if "contentDetails" in parts:
                details: Json = {"videoId": video_id}
                if not private:
                    details["videoPublishedAt"] = _iso(video.published)
                item["contentDetails"] = details
            if "status" in parts:
                item["status"] = {"privacyStatus": video.privacy}
            items.append(item)
        body: Json = {
            "kind": "youtube#playlistItemListResponse",
            "etag": _etag([playlist_id, offset, size]),
            "items": items,
            "pageInfo": {"totalResults": len(ids), "resultsPerPage": size},
        }
        if size and offset + size < len(ids):
            body["nextPageToken"] = self._token(playlist_id, offset + size)
        if offset > 0:
            body["prevPageToken"] = self._token(playlist_id, max(0, offset - size))
        return body

    def _videos(self, params: dict[str, str]) -> Json:
        parts = self._parts(params, {"id", "snippet", "statistics", "contentDetails", "status"})
        if not params.get("id"):
            raise _Fail(400, "missingRequiredParameter", "No filter selected. Expected one of: id, chart, myRating")
        wanted = [v.strip() for v in params["id"].split(",") if v.strip()]
        if len(wanted) > MAX_IDS:
            raise _Fail(
                400,
                "invalidFilters",
                f"The request specifies {len(wanted)} video ids; at most {MAX_IDS} are allowed.",
                location="id",
                locationType="parameter",
            )
        items = []
        for video_id in wanted:
            video = self.videos.get(video_id)
            if video is None or video.privacy == "private":
                continue  # private and unknown ids are simply not returned
            item: Json = {"kind": "youtube#video", "etag": _etag([video_id, video.views]), "id": video_id}
            if "snippet" in parts:
                snippet: Json = {
                    "publishedAt": _iso(video.published),
                    "channelId": video.channel_id,
                    "title": video.title,
                    "description": video.description,
                    "channelTitle": self.channels[video.channel_id].title,
                    "categoryId": "28",
                    "liveBroadcastContent": "none",
                }
                if video.tags:
                    snippet["tags"] = list(video.tags)  # absent, not [], when a video has none
                item["snippet"] = snippet
            if "contentDetails" in parts:
                item["contentDetails"] = {
                    "duration": video.duration,
                    "dimension": "2d",
                    "definition": "hd",
                    "caption": "false",
                    "licensedContent": False,
                    "projection": "rectangular",
                }
            if "statistics" in parts:
                stats: Json = {"viewCount": str(video.views), "favoriteCount": "0"}
                if video.likes is not None:
                    stats["likeCount"] = str(video.likes)
                if video.comments is not None:
                    stats["commentCount"] = str(video.comments)
                item["statistics"] = stats
            items.append(item)
        return {
            "kind": "youtube#videoListResponse",
            "etag": _etag(wanted),
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeYouTube, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``fake.app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields ``http://127.0.0.1:PORT``."""
    with serve_app(fake.app, name="youtube", startup_timeout=startup_timeout) as url:
        yield url
