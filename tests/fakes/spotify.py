"""A stateful fake of the Spotify Web API (the user's saved tracks and track search), as a Starlette app.

Use it in-process through ``httpx.ASGITransport(app=fake.app)`` (base URL ``https://api.spotify.com/v1``)
or on a loopback port with ``with serve(fake) as base_url: ...`` (the API root is ``base_url + "/v1"``).
Written from Spotify's Web API reference, independently of ``connectors.spotify``.

What it does as Spotify does:

- ``Authorization: Bearer <access token>`` on every request. No header: 401 "No token provided"; an
  unknown token: 401 "Invalid access token"; an expired or revoked one (``expire_token``): 401 "The
  access token expired". A token without a needed scope (``user-library-read`` to list,
  ``user-library-modify`` to save): 403 "Insufficient client scope". Errors are
  ``{"error": {"status", "message"}}``.
- ``GET /v1/me/tracks``: ``limit`` 1-50 (default 20; otherwise 400 "Invalid limit"), ``offset`` >= 0;
  ``{"href", "items": [{"added_at", "track"}], "limit", "next", "offset", "previous", "total"}``,
  most recently saved first; ``next`` / ``previous`` are full URLs (null at the ends).
- ``PUT /v1/me/tracks``: ``{"ids": [...]}`` (or ``?ids=`` comma-separated), at most 50 (else 400
  "Too many ids requested"); an id that is not 22 base62 characters: 400 "Invalid base62 id"; an
  unknown one: 404 "Non existing id"; saving a saved track changes nothing (not its ``added_at``).
  Answers 200 with an empty body.
- ``GET /v1/search``: ``q`` (required, else 400 "No search query"), ``type=track``, ``limit`` 1-50,
  ``offset``; ``isrc:<ISRC>`` matches the ISRC (any case), ``track:"…"`` / ``artist:"…"`` match words of
  the name / an artist (case-insensitive); ``{"tracks": {"href", "items", "limit", "next", "offset",
  "previous", "total"}}``.
- Track objects as the reference shows them: 22-character base62 ids, ``uri`` ``spotify:track:<id>``,
  ``album`` (``album_type``, ``id``, ``name``, ``release_date``, ``images``, ``artists``), ``artists``,
  ``duration_ms``, ``explicit``, ``external_ids.isrc`` (absent for a local file, which has
  ``is_local: true`` and a null id), ``external_urls.spotify``, ``popularity``, ``track_number``.
- A rolling-window rate limit per token (``rate_limit`` requests per ``window`` seconds, off by
  default): over it, 429 with ``Retry-After`` in seconds.

Faults: ``fail_next(n, status, retry_after=, method=, path=, after=)``. Every request is in ``fake.log``;
``count(path, method=, status=)`` counts them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Unpack
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import Fault, FaultOptions, FaultQueue, RequestLog, TokenRegistry, bearer_token
from tests.fakes.loopback import serve_app

__all__ = ["FakeSpotify", "FakeTrack", "SpotifyCall", "serve", "spotify_id"]

Json = dict[str, Any]

API = "https://api.spotify.com/v1"
READ_SCOPE = "user-library-read"
MODIFY_SCOPE = "user-library-modify"
ALL_SCOPES = frozenset({READ_SCOPE, MODIFY_SCOPE})
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
_BASE62 = string.digits + string.ascii_letters
_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")


def spotify_id(seed: str) -> str:
    """A Spotify id for ``seed``: 22 base62 characters (``4iV5W9uYEdYUVa79Axb7Rh``)."""
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(22):
        n, i = divmod(n, 62)
        chars.append(_BASE62[i])
    return "".join(chars)


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeTrack:
    """A catalogue track (``id`` None and ``local`` True for a local file)."""

    id: str | None
    name: str
    artists: list[str]
    album: str
    isrc: str | None
    duration_ms: int = 215_000
    release_date: str = "2020-01-01"
    local: bool = False

    def json(self) -> Json:
        """The track object as Spotify answers it."""
        artists = [
            {
                "external_urls": {"spotify": f"https://open.spotify.com/artist/{spotify_id('artist:' + a)}"},
                "href": f"{API}/artists/{spotify_id('artist:' + a)}",
                "id": spotify_id("artist:" + a),
                "name": a,
                "type": "artist",
                "uri": f"spotify:artist:{spotify_id('artist:' + a)}",
            }
            for a in self.artists
        ]
        album_id = spotify_id("album:" + self.album)
        body: Json = {
            "album": {
                "album_type": "album",
                "artists": artists[:1],
                "available_markets": ["DE", "GB", "US"],
                "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
                "href": f"{API}/albums/{album_id}",
                "id": album_id,
                "images": [
                    {"height": 640, "url": f"https://i.scdn.co/image/ab67616d0000b273{album_id[:16]}", "width": 640}
                ],
                "name": self.album,
                "release_date": self.release_date,
                "release_date_precision": "day",
                "total_tracks": 12,
                "type": "album",
                "uri": f"spotify:album:{album_id}",
            },
            "artists": artists,
            "available_markets": ["DE", "GB", "US"],
            "disc_number": 1,
            "duration_ms": self.duration_ms,
            "explicit": False,
            "external_ids": {"isrc": self.isrc} if self.isrc else {},
            "external_urls": {"spotify": f"https://open.spotify.com/track/{self.id}"} if self.id else {},
            "href": f"{API}/tracks/{self.id}" if self.id else None,
            "id": self.id,
            "is_local": self.local,
            "name": self.name,
            "popularity": 61,
            "preview_url": None,
            "track_number": 3,
            "type": "track",
            "uri": f"spotify:track:{self.id}" if self.id else f"spotify:local:::{self.name}:215",
        }
        return body


class SpotifyCall(NamedTuple):
    """One request the fake answered (the token is kept for leak checks, never printed)."""

    method: str
    path: str
    status: int
    params: dict[str, str]
    body: Any
    token: str | None


class _Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _new_token() -> str:
    return "test-spotify-" + secrets.token_urlsafe(18)


@dataclass
class _Saved:
    track_id: str
    added_at: dt.datetime
    order: int = 0


class FakeSpotify:
    """The fake API: a catalogue, one user's library, tokens with scopes. See the module docstring.

    Args:
        clock: Epoch seconds: ``added_at`` of saves and the rate window follow it.
        rate_limit: Requests per ``window`` per token (None: no limit).
        window: The rolling window in seconds.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, rate_limit: int | None = None, window: float = 30.0
    ) -> None:
        """An empty catalogue and library, with one valid token (``self.token``) holding both scopes."""
        self.clock = clock
        self.rate_limit = rate_limit
        self.window = window
        self._tokens = TokenRegistry()
        self.scopes: dict[str, frozenset[str]] = {}
        self.token = self.add_token()
        self.expired: set[str] = set()
        self.catalog: dict[str, FakeTrack] = {}
        self.local_files: list[FakeTrack] = []
        self.library: dict[str, _Saved] = {}  # track id (or "local:<name>") -> save
        self.log: RequestLog[SpotifyCall] = RequestLog()
        self._faults = FaultQueue()
        self._recent: dict[str, collections.deque[float]] = {}
        self._order = itertools.count(1)
        self._lock = threading.RLock()
        self.app = Starlette(
            routes=[
                Route("/v1/me/tracks", self._endpoint, methods=["GET", "PUT"]),
                Route("/v1/search", self._endpoint, methods=["GET"]),
            ]
        )

    # -- tokens, faults ----------------------------------------------------------------------------

    def add_token(self, token: str | None = None, scopes: frozenset[str] | set[str] = ALL_SCOPES) -> str:
        """Accept a further access token (default: a new random one) with these scopes, and return it."""
        token = self._tokens.add(token or _new_token(), "user")
        self.scopes[token] = frozenset(scopes)
        return token

    def expire_token(self, token: str | None = None) -> None:
        """The token (default: the current one) expired: 401 "The access token expired" from now on."""
        token = token or self.token
        self._tokens.revoke(token)
        self.expired.add(token)

    def fail_next(self, n: int = 1, status: int = 502, **options: Unpack[FaultOptions]) -> None:
        """Answer the next ``n`` matching requests with ``status`` (a Spotify error body)."""
        self._faults.add(Fault.on(status, **options), n)

    def count(self, path: str | None = None, *, method: str | None = None, status: int | None = None) -> int:
        """Requests whose path matches the regex ``path`` (all if None), with ``method``/``status`` if given."""
        return sum(
            1
            for c in self.log
            if (path is None or re.search(path, c.path))
            and (method is None or c.method == method)
            and (status is None or c.status == status)
        )

    def writes(self) -> list[SpotifyCall]:
        """The PUTs answered 200."""
        return [c for c in self.log if c.method == "PUT" and c.status == 200]

    # -- catalogue and library ---------------------------------------------------------------------

    def add_track(self, name: str, artists: list[str] | str, album: str = "Album", *, isrc: str | None) -> FakeTrack:
        """Add a catalogue track (its id derives from the name, artists and ISRC)."""
        names = [artists] if isinstance(artists, str) else list(artists)
        track = FakeTrack(spotify_id(f"track:{name}:{names}:{isrc}"), name, names, album, isrc)
        assert track.id is not None
        self.catalog[track.id] = track
        return track

    def save(self, track: FakeTrack | str, added_at: dt.datetime | None = None) -> None:
        """Save a track as the user would (now, on the fake clock, unless ``added_at``)."""
        track_id = track if isinstance(track, str) else track.id
        assert track_id is not None
        if track_id not in self.library:
            when = added_at or dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            self.library[track_id] = _Saved(track_id, when, next(self._order))

    def save_local_file(self, name: str, artist: str) -> None:
        """A local file in the library: no id, no ISRC."""
        track = FakeTrack(None, name, [artist], "", None, local=True)
        self.local_files.append(track)
        key = f"local:{name}"
        self.library[key] = _Saved(key, dt.datetime.fromtimestamp(self.clock(), dt.UTC), next(self._order))

    def unsave(self, track: FakeTrack | str) -> None:
        """Remove a track from the library as the user would."""
        self.library.pop(track if isinstance(track, str) else str(track.id), None)

    def saved_ids(self) -> list[str]:
        """Ids of the saved catalogue tracks, most recently saved first."""
        return [s.track_id for s in self._sorted() if not s.track_id.startswith("local:")]

    def _sorted(self) -> list[_Saved]:
        return sorted(self.library.values(), key=lambda s: (s.added_at, s.order), reverse=True)

    def _track_json(self, saved: _Saved) -> Json:
        if saved.track_id.startswith("local:"):
            name = saved.track_id.removeprefix("local:")
            return next(t for t in self.local_files if t.name == name).json()
        return self.catalog[saved.track_id].json()

    # -- HTTP --------------------------------------------------------------------------------------

    def _take(self, token: str) -> None:
        if self.rate_limit is None:
            return
        now = self.clock()
        recent = self._recent.setdefault(token, collections.deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.rate_limit:
            wait = recent[0] + self.window - now
            raise _Fail(429, "API rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})
        recent.append(now)

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        method, path = request.method, request.url.path
        params = dict(request.query_params)
        authorization = request.headers.get("authorization")
        token = bearer_token(authorization)
        body: Any = None
        with self._lock:
            try:
                if not authorization:
                    raise _Fail(401, "No token provided")
                if token in self.expired:
                    raise _Fail(401, "The access token expired")
                if not token or token not in self._tokens:
                    raise _Fail(401, "Invalid access token")
                self._take(token)
                fault = self._faults.take(method, path)
                if fault is not None and not fault.after:
                    raise self._fault_error(fault)
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Fail(400, "Error parsing JSON.") from None
                result = self._handle(method, path, params, body, self.scopes.get(token, frozenset()), request)
                if fault is not None:
                    raise self._fault_error(fault)
                status = 200
                response: Response = (
                    Response(status_code=200) if result is None else JSONResponse(result, status_code=200)
                )
            except _Fail as fail:
                status = fail.status
                response = JSONResponse(
                    {"error": {"status": fail.status, "message": fail.message}},
                    status_code=fail.status,
                    headers=fail.headers,
                )
            self.log.append(SpotifyCall(method, path, status, params, body, token))
        return response

    @staticmethod
    def _fault_error(fault: Fault) -> _Fail:
        messages = {429: "API rate limit exceeded", 403: "Forbidden", 500: "Server error", 503: "Service unavailable"}
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        return _Fail(fault.status, fault.message or messages.get(fault.status, "Bad gateway"), headers)

    def _handle(
        self, method: str, path: str, params: dict[str, str], body: Any, scopes: frozenset[str], request: Request
    ) -> Json | None:
        if path == "/v1/search":
            return self._search(params)
        if method == "GET":
            if READ_SCOPE not in scopes:
                raise _Fail(403, "Insufficient client scope")
            return self._list(params)
        if MODIFY_SCOPE not in scopes:
            raise _Fail(403, "Insufficient client scope")
        return self._save(params, body)

    @staticmethod
    def _int(params: dict[str, str], name: str, default: int, low: int, high: int, message: str) -> int:
        try:
            value = int(params.get(name, default))
        except ValueError:
            raise _Fail(400, message) from None
        if not low <= value <= high:
            raise _Fail(400, message)
        return value

    def _page(self, url: str, params: dict[str, str], items: list[Json], offset: int, limit: int) -> Json:
        def link(at: int) -> str:
            return f"{API}{url}?{urlencode({**{k: v for k, v in params.items() if k not in ('offset', 'limit')}, 'offset': at, 'limit': limit})}"

        chunk = items[offset : offset + limit]
        return {
            "href": link(offset),
            "items": chunk,
            "limit": limit,
            "next": link(offset + limit) if offset + limit < len(items) else None,
            "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "total": len(items),
        }

    def _list(self, params: dict[str, str]) -> Json:
        limit = self._int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, "Invalid limit")
        offset = self._int(params, "offset", 0, 0, 100_000, "Invalid offset")
        items = [{"added_at": _stamp(s.added_at), "track": self._track_json(s)} for s in self._sorted()]
        return self._page("/me/tracks", params, items, offset, limit)

    def _save(self, params: dict[str, str], body: Any) -> None:
        ids = body.get("ids") if isinstance(body, dict) else None
        if ids is None and params.get("ids"):
            ids = params["ids"].split(",")
        if not isinstance(ids, list) or not ids:
            raise _Fail(400, "Missing required field: ids")
        if len(ids) > MAX_LIMIT:
            raise _Fail(400, "Too many ids requested")
        for track_id in ids:
            if not isinstance(track_id, str) or not _ID_RE.match(track_id):
                raise _Fail(400, "Invalid base62 id")
            if track_id not in self.catalog:
                raise _Fail(404, "Non existing id")
        for track_id in ids:
            self.save(track_id)
        return None

    def _search(self, params: dict[str, str]) -> Json:
        q = params.get("q", "").strip()
        if not q:
            raise _Fail(400, "No search query")
        if params.get("type") != "track":
            raise _Fail(400, "Bad search type field")
        limit = self._int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, "Invalid limit")
        offset = self._int(params, "offset", 0, 0, 1000, "Invalid offset")
        filters = dict(re.findall(r'(isrc|track|artist):("[^"]*"|\S+)', q))
        found = []
        for track in self.catalog.values():
            if "isrc" in filters and (track.isrc or "").upper() != filters["isrc"].strip('"').upper():
                continue
            if "track" in filters and not _words_in(filters["track"], track.name):
                continue
            if "artist" in filters and not any(_words_in(filters["artist"], a) for a in track.artists):
                continue
            if not filters and not _words_in(q, track.name):
                continue
            found.append(track.json())
        return {"tracks": self._page("/search", params, found, offset, limit)}


def _words_in(query: str, text: str) -> bool:
    words = re.findall(r"\w+", query.strip('"').lower())
    have = set(re.findall(r"\w+", text.lower()))
    return bool(words) and all(w in have for w in words)


@contextlib.contextmanager
def serve(fake: FakeSpotify, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``fake.app`` on 127.0.0.1 (a free port) in a thread; yields ``http://127.0.0.1:PORT``."""
    with serve_app(fake.app, name="spotify", startup_timeout=startup_timeout) as url:
        yield url
