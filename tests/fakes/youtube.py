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
  ``pageToken``): newest upload first; opaque ``nextPageToken`` / ``prevPageToken`` (``EAAa…``);
  ``pageInfo``. Item ids are base64 of ``<playlist id>.<16 hex>``; public items carry
  ``videoOwnerChannelId``/``Title`` and thumbnails. A private video is listed as "Private video", a
  deleted one as "Deleted video" ("This video is unavailable.", ``privacyStatusUnspecified``):
  no thumbnails, no ``videoOwnerChannelId``, no ``videoPublishedAt``. Unknown playlist: 404
  ``playlistNotFound``; a private one (``restrict_playlist``): 403 ``playlistItemsNotAccessible``
  (domain ``youtube.parameter``); a token of another playlist or garbage: 400 ``invalidPageToken``.
- ``GET /youtube/v3/videos`` (``part`` of snippet/statistics/contentDetails/liveStreamingDetails,
  ``id`` = at most 50 comma-separated ids; more answers 400): public and unlisted videos only, in the
  order asked; counts as decimal strings; ``likeCount`` missing when likes are hidden,
  ``commentCount`` when comments are off; ``contentDetails.duration`` in ISO 8601 (``PT1H2M3S``);
  ``snippet.liveBroadcastContent`` ``none``/``upcoming``/``live`` (``set_live``; ``P0D`` then).
- Real id shapes: channel ``UC`` + 22 characters (the last one of ``AQgw``), uploads ``UU`` + the
  same 22, video ids of 11 (the last one of ``AEIMQUYcgkosw048``), etags of 27 base64url characters.
- The API key as the ``key`` query parameter or the ``X-Goog-Api-Key`` header. No key: 403
  ``forbidden`` (``PERMISSION_DENIED``); an unknown or revoked key: 400 "API key not valid" with
  today's shape (``errors[].reason`` ``badRequest``, ``status`` ``INVALID_ARGUMENT``,
  ``details[]`` ErrorInfo ``API_KEY_INVALID``; ``error_details=False`` leaves ``details`` out, as
  older answers did); the API not enabled (``api_enabled = False``): 403 ``accessNotConfigured``
  with ErrorInfo ``SERVICE_DISABLED``.
- A daily quota per project (all keys of the fake): each call costs its documented units (1 for
  these lists, 100 for ``search``), invalid requests at least 1; it resets at midnight
  America/Los_Angeles on the injected clock. Exhausted: 403 ``quotaExceeded`` (domain ``youtube.quota``,
  Google's message with its HTML anchor), which costs nothing.
- Error bodies ``{"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status",
  "details"}}`` (``status``/``details`` where Google sends them).

Test helpers: channels and videos (``add_channel``, ``add_video(s)``, ``set_stats``, ``make_private``,
``mark_deleted``, ``delete_video``, ``set_live``, ``restrict_playlist``), keys (``add_key``,
``revoke_key``, ``rotate_key``), quota (``quota_used``, ``exhaust_quota``), faults (``fail_next``) and
the request log ``fake.calls`` (the key is kept out of
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
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.common import Fault, FaultQueue, RequestLog, TokenRegistry
from tests.fakes.loopback import serve_app

__all__ = ["QUOTA_COSTS", "FakeChannel", "FakeVideo", "FakeYouTube", "YouTubeCall", "serve"]

PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA_COSTS = {"channels": 1, "playlistItems": 1, "videos": 1, "search": 100}
MAX_RESULTS = 50
DEFAULT_MAX_RESULTS = 5
MAX_IDS = 50
QUOTA_MESSAGE = (
    'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">'
    "quota</a>."
)
"""Google's text, HTML anchor included (JSON-escaped as \u003ca …\u003e on the wire)."""
KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
NOT_ACCESSIBLE_MESSAGE = "The request is not properly authorized to retrieve the specified playlist."
PROJECT_NUMBER = "123456789012"
VIDEO_ID_LAST = "AEIMQUYcgkosw048"
"""An 11-character video id is 64 bits in base64url, so its last character carries 4 bits: one of these."""
CHANNEL_ID_LAST = "AQgw"
"""A channel id is ``UC`` + 128 bits in 22 base64url characters: the last carries 2 bits."""

Json = dict[str, Any]
_ID_CHARS = string.ascii_letters + string.digits + "-_"


def _random_id(n: int, rng: Any = secrets) -> str:
    return "".join(rng.choice(_ID_CHARS) for _ in range(n))


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _etag(data: Any) -> str:
    """Google's etag shape: 27 base64url characters, e.g. ``Bdx4f4ps3xCOOo1WZ91nTLkRZ_c``."""
    digest = hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


JSON_TYPE = "application/json; charset=UTF-8"
_GOOGLE_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "=": "\\u003d", "'": "\\u0027"}


def google_json(data: Any) -> bytes:
    r"""JSON as Google's front ends write it.

    JSON as Google's front ends write it: indented by two spaces, UTF-8, and ``<>&='`` escaped as
    ``\u003c`` etc. (they occur only inside strings, so escaping the whole text is safe).
    """
    text = json.dumps(data, ensure_ascii=False, indent=2)
    for char, escape in _GOOGLE_ESCAPES.items():
        text = text.replace(char, escape)
    return (text + "\n").encode()


def _video_id(rng: Any) -> str:
    return _random_id(10, rng) + rng.choice(VIDEO_ID_LAST)


def _playlist_item_id(playlist_id: str, video_id: str) -> str:
    """A playlist item id as YouTube makes it: base64 of ``<playlist id>.<16 upper-case hex>``."""
    suffix = hashlib.sha1(f"{playlist_id}/{video_id}".encode()).hexdigest()[:16].upper()
    return base64.b64encode(f"{playlist_id}.{suffix}".encode()).decode()


def _thumbnails(video_id: str) -> Json:
    sizes = {"default": (120, 90), "medium": (320, 180), "high": (480, 360)}
    names = {"default": "default", "medium": "mqdefault", "high": "hqdefault"}
    return {
        size: {"url": f"https://i.ytimg.com/vi/{video_id}/{names[size]}.jpg", "width": w, "height": h}
        for size, (w, h) in sizes.items()
    }


@dataclass
class FakeChannel:
    """A channel: id, handle, title and uploads playlist."""

    id: str
    handle: str
    title: str
    uploads: str

    @property
    def custom_url(self) -> str:
        """The channel's custom URL (its handle, lower case)."""
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
    privacy: str = "public"  # public | unlisted | private | deleted (still listed in a playlist)
    live: str = "none"  # snippet.liveBroadcastContent: none | upcoming | live


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
    """Google's error body.

    Google's error body: ``{"error": {"code", "message", "errors": [{"message", "domain", "reason",
    (location, locationType)}], ("status", "details")}}``. ``location``/``locationType`` and
    ``error_extra`` go into the ``errors[]`` entry, everything else next to ``code``.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "youtube.api",
        location: str | None = None,
        locationType: str | None = None,  # Google's field name
        error_extra: Json | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain, self.extra = code, reason, message, domain, extra
        self.entry: Json = dict(error_extra or {})
        if location is not None:
            self.entry.update(location=location, locationType=locationType or "parameter")

    def body(self) -> Json:
        entry: Json = {"message": self.message, "domain": self.domain, "reason": self.reason, **self.entry}
        error: Json = {"code": self.status, "message": self.message, "errors": [entry]}
        error.update(self.extra)
        return {"error": error}


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
        """An empty fake with one valid API key (``self.key``)."""
        self._rng: Any = random.Random(seed) if seed is not None else secrets
        self.clock = clock
        # Keys are random even with a seed: the HTTP toolkit keeps per-credential state (limiter, blocks)
        # for the whole process, so two tests must never share a key.
        self.key = key or "AIza" + _random_id(35)
        self._keys = TokenRegistry()
        self.keys = self._keys.owners.keys()  # the valid keys (a live, read-only set view)
        self.revoked = self._keys.revoked
        self._keys.add(self.key)
        self.daily_quota = daily_quota
        self.channels: dict[str, FakeChannel] = {}
        self.videos: dict[str, FakeVideo] = {}
        self.playlists: dict[str, list[str]] = {}  # uploads playlist id -> video ids, newest first
        self.restricted: set[str] = set()  # playlists answering 403 playlistItemsNotAccessible
        self.api_enabled = True  # False: every call answers 403 accessNotConfigured (SERVICE_DISABLED)
        self.error_details = True  # False: bodies without details[], errors[] only (as 2020-era answers were quoted)
        self.calls: RequestLog[YouTubeCall] = RequestLog()
        self._quota_day: dt.date | None = None
        self._quota_used = 0
        self._faults = FaultQueue()  # matched against the resource (``videos``), not the path
        self._order = itertools.count()
        self._inserted: dict[str, int] = {}
        self._lock = threading.RLock()
        self.app = Starlette(routes=[Route("/youtube/v3/{resource}", self._endpoint, methods=["GET"])])

    # -- keys ------------------------------------------------------------------------------------

    def add_key(self, key: str | None = None) -> str:
        """Accept a further API key (default: a new random one) and return it."""
        return self._keys.add(key or "AIza" + _random_id(35))

    def revoke_key(self, key: str | None = None) -> None:
        """Delete a key in the console: it answers 400 "API key not valid" (``API_KEY_INVALID``) from now on."""
        self._keys.revoke(key or self.key)

    def rotate_key(self) -> str:
        """Revoke the current key and make a new one the current key."""
        self.key = self._keys.rotate(self.key, "AIza" + _random_id(35))
        return self.key

    # -- channels and videos ---------------------------------------------------------------------

    def add_channel(
        self, handle: str = "@acme", *, title: str | None = None, channel_id: str | None = None
    ) -> FakeChannel:
        """A channel with this handle (and an uploads playlist)."""
        handle = handle if handle.startswith("@") else "@" + handle
        channel_id = channel_id or "UC" + _random_id(21, self._rng) + self._rng.choice(CHANNEL_ID_LAST)
        channel = FakeChannel(channel_id, handle, title or handle.lstrip("@").title(), "UU" + channel_id[2:])
        self.channels[channel_id] = channel
        self.playlists[channel.uploads] = []
        return channel

    def add_video(
        self, channel: FakeChannel, *, published: dt.datetime, video_id: str | None = None, **fields: Any
    ) -> FakeVideo:
        """Upload a video; the uploads playlist stays newest first."""
        video_id = video_id or _video_id(self._rng)
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
        """Set a video's ``views``, ``likes`` or ``comments``."""
        video = self.videos[video_id]
        for name, value in counts.items():
            if name not in ("views", "likes", "comments"):
                raise AttributeError(name)
            setattr(video, name, value)
        return video

    def make_private(self, video_id: str) -> None:
        """Make a video private: the playlist lists it as "Private video", without its details."""
        self.videos[video_id].privacy = "private"

    def mark_deleted(self, video_id: str) -> None:
        """Delete a video but leave its playlist entry.

        Delete a video but leave its playlist entry, as YouTube does: listed as "Deleted video",
        no longer returned by ``videos.list``. (``delete_video`` removes the entry too.)
        """
        self.videos[video_id].privacy = "deleted"

    def set_live(self, video_id: str, state: str) -> FakeVideo:
        """``upcoming`` (a scheduled stream or premiere) or ``live``: duration ``P0D``; ``none`` when over."""
        if state not in ("none", "upcoming", "live"):
            raise ValueError(state)
        video = self.videos[video_id]
        video.live = state
        if state != "none":
            video.duration = "P0D"
        return video

    def restrict_playlist(self, playlist_id: str) -> None:
        """Make a playlist inaccessible to an API key.

        The playlist answers 403 ``playlistItemsNotAccessible`` (domain ``youtube.parameter``), as a
        private playlist does to an API key.
        """
        self.restricted.add(playlist_id)

    def delete_video(self, video_id: str) -> None:
        """Delete a video and its playlist entry."""
        video = self.videos.pop(video_id)
        uploads = next(c.uploads for c in self.channels.values() if c.id == video.channel_id)
        self.playlists[uploads].remove(video_id)

    def uploads(self, channel: FakeChannel) -> list[FakeVideo]:
        """A channel's uploads, newest first."""
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
        """Fail the next ``n`` requests.

        Answer the next ``n`` requests (to ``resource``, a glob such as ``videos``) with ``status``
        (and a ``Retry-After`` header when given).
        """
        message = {503: "The service is currently unavailable.", 500: "Backend Error"}.get(status, reason)
        self._faults.add(Fault(status, glob=resource, retry_after=retry_after, message=message, code=reason), n)

    # -- the log ---------------------------------------------------------------------------------

    def count(self, resource: str | None = None, *, status: int | None = None) -> int:
        """Calls to ``resource`` (a glob; all if None), answered ``status`` if given."""
        return sum(
            1
            for c in self.calls
            if (resource is None or fnmatch.fnmatchcase(c.path.rsplit("/", 1)[-1], resource))
            and (status is None or c.status == status)
        )

    def statuses(self) -> Counter[int]:
        """How many calls were answered with each status."""
        return Counter(c.status for c in self.calls)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
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
                    # Google's current answer: errors[].reason is the generic "badRequest"; what it
                    # means is in details[] (ErrorInfo API_KEY_INVALID). Before 2020 it was "keyInvalid".
                    raise _Fail(
                        400,
                        "badRequest",
                        KEY_INVALID_MESSAGE,
                        domain="global",
                        status="INVALID_ARGUMENT",
                        details=[
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                                "metadata": {"service": "youtube.googleapis.com"},
                            },
                            {
                                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                                "locale": "en-US",
                                "message": KEY_INVALID_MESSAGE,
                            },
                        ],
                    )
                if not self.api_enabled:
                    console = (
                        "https://console.developers.google.com/apis/api/youtube.googleapis.com/overview"
                        f"?project={PROJECT_NUMBER}"
                    )
                    message = (
                        f"YouTube Data API v3 has not been used in project {PROJECT_NUMBER} before or it is disabled. "
                        f"Enable it by visiting {console} then retry. If you enabled this API recently, wait a few "
                        "minutes for the action to propagate to our systems and retry."
                    )
                    raise _Fail(
                        403,
                        "accessNotConfigured",
                        message,
                        domain="usageLimits",
                        status="PERMISSION_DENIED",
                        error_extra={"extendedHelp": console},
                        details=[
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "SERVICE_DISABLED",
                                "domain": "googleapis.com",
                                "metadata": {
                                    "service": "youtube.googleapis.com",
                                    "consumer": f"projects/{PROJECT_NUMBER}",
                                },
                            }
                        ],
                    )
                self._roll()
                cost = QUOTA_COSTS.get(resource, 1)
                if self._quota_used + cost > self.daily_quota:
                    raise _Fail(403, "quotaExceeded", QUOTA_MESSAGE, domain="youtube.quota")
                fault = self._faults.take("GET", resource)
                if fault is not None:
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(fault.retry_after)
                    raise _Fail(fault.status, fault.code or "backendError", fault.message or "", domain="global")
                # Every request that gets this far costs its units, valid or not.
                self._quota_used += cost
                units = cost
                handler = {"channels": self._channels, "playlistItems": self._playlist_items, "videos": self._videos}
                if resource not in handler:
                    raise _Fail(404, "notFound", "Not Found", domain="global")
                status, body = 200, handler[resource](params)
            except _Fail as fail:
                status, body = fail.status, fail.body()
                if not self.error_details:
                    body["error"].pop("details", None)
            self.calls.append(YouTubeCall("GET", request.url.path, status, params, via, units, str(request.url)))
        return Response(google_json(body), status_code=status, headers=headers, media_type=JSON_TYPE)

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
        """A page token in YouTube's look.

        A page token in YouTube's look (``EAAaBlBUOkNBbw``-like: ``EAAa`` + base64url of ``PT:…``),
        long and opaque; it names its playlist so another playlist's token is refused.
        """
        raw = json.dumps([playlist_id, offset], separators=(",", ":")).encode()
        inner = b"PT:" + base64.b64encode(raw).rstrip(b"=")
        return "EAAa" + base64.urlsafe_b64encode(inner).decode().rstrip("=")

    @staticmethod
    def _untoken(token: str, playlist_id: str) -> int:
        try:
            body = token.removeprefix("EAAa")
            inner = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if not token.startswith("EAAa") or not inner.startswith(b"PT:"):
                raise ValueError
            encoded = inner.removeprefix(b"PT:")
            owner, offset = json.loads(base64.b64decode(encoded + b"=" * (-len(encoded) % 4)))
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
        if playlist_id in self.restricted:
            raise _Fail(
                403,
                "playlistItemsNotAccessible",
                NOT_ACCESSIBLE_MESSAGE,
                domain="youtube.parameter",
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
            hidden = video.privacy in ("private", "deleted")
            item: Json = {
                "kind": "youtube#playlistItem",
                "etag": _etag([playlist_id, video_id, video.privacy, video.title]),
                "id": _playlist_item_id(playlist_id, video_id),
            }
            channel = self.channels[video.channel_id]
            if "snippet" in parts:
                snippet: Json = {
                    "publishedAt": _iso(video.published),  # when it was added to the playlist
                    "channelId": video.channel_id,
                    "title": video.title,
                    "description": video.description,
                    "thumbnails": _thumbnails(video_id),
                    "channelTitle": channel.title,
                    "playlistId": playlist_id,
                    "position": position,
                    "resourceId": {"kind": "youtube#video", "videoId": video_id},
                    "videoOwnerChannelTitle": channel.title,
                    "videoOwnerChannelId": video.channel_id,
                }
                if hidden:
                    # What YouTube shows in place of a private or deleted video: no thumbnails, no owner.
                    snippet.update(
                        title="Private video" if video.privacy == "private" else "Deleted video",
                        description="This video is private."
                        if video.privacy == "private"
                        else "This video is unavailable.",
                        thumbnails={},
                    )
                    del snippet["videoOwnerChannelTitle"], snippet["videoOwnerChannelId"]
                item["snippet"] = snippet
            if "contentDetails" in parts:
                details: Json = {"videoId": video_id}
                if not hidden:
                    details["videoPublishedAt"] = _iso(video.published)
                item["contentDetails"] = details
            if "status" in parts:
                privacy = "privacyStatusUnspecified" if video.privacy == "deleted" else video.privacy
                item["status"] = {"privacyStatus": privacy}
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
        parts = self._parts(params, {"id", "snippet", "statistics", "contentDetails", "status", "liveStreamingDetails"})
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
            if video is None or video.privacy in ("private", "deleted"):
                continue  # private, deleted and unknown ids are simply not returned
            item: Json = {
                "kind": "youtube#video",
                "etag": _etag([video_id, video.views, video.likes, video.comments, video.title, video.live]),
                "id": video_id,
            }
            if "snippet" in parts:
                snippet: Json = {
                    "publishedAt": _iso(video.published),
                    "channelId": video.channel_id,
                    "title": video.title,
                    "description": video.description,
                    "thumbnails": _thumbnails(video_id),
                    "channelTitle": self.channels[video.channel_id].title,
                    "categoryId": "28",
                    "liveBroadcastContent": video.live,
                    "localized": {"title": video.title, "description": video.description},
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
                    "contentRating": {},
                    "projection": "rectangular",
                }
            if "liveStreamingDetails" in parts and video.live != "none":
                item["liveStreamingDetails"] = {"scheduledStartTime": _iso(video.published)}
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
