"""A stateful fake of ListenBrainz's feedback API and of MusicBrainz's ISRC and recording lookups.

One Starlette app serves both hosts' paths (they do not overlap), so a connector that talks to both
through one transport uses ``httpx.ASGITransport(app=fake.app)`` with base URLs
``https://api.listenbrainz.org`` and ``https://musicbrainz.org/ws/2``. Written from the ListenBrainz API
documentation (listenbrainz.readthedocs.io) and the MusicBrainz web service documentation,
independently of ``connectors.listenbrainz``.

ListenBrainz, as documented:

- ``GET /1/feedback/user/<user>/get-feedback``: ``score`` (1 or -1; absent: both), ``count`` (default
  and most 100), ``offset``, ``metadata=true`` (adds ``track_metadata``: ``track_name``,
  ``artist_name``, ``release_name``, ``mbid_mapping``); ``{"count", "feedback": [{"created",
  "recording_mbid", "recording_msid", "score", "track_metadata", "user_id"}], "offset",
  "total_count"}``, newest first. Public (no token needed); an unknown user: 404.
- ``POST /1/feedback/recording-feedback`` with ``Authorization: Token <user token>`` and
  ``{"recording_mbid" | "recording_msid", "score"}``: 1 loves, -1 hates, 0 removes the feedback;
  ``{"status": "ok"}``. No header: 401 "You need to provide an Authorization header."; an unknown or
  reset token: 401 "Invalid authorization token."; a bad score or MBID: 400. Errors are
  ``{"code", "error"}``.
- Rate limiting on every answer (``X-RateLimit-Limit``, ``X-RateLimit-Remaining``,
  ``X-RateLimit-Reset-In`` seconds, ``X-RateLimit-Reset`` epoch): ``rate_limit`` requests per ``window``
  seconds per token (or per anonymous caller), clock-aligned windows; over it, 429 (its headers too).

MusicBrainz, as documented:

- ``GET /ws/2/isrc/<isrc>?fmt=json`` → ``{"isrc", "recordings": [{"id", "title", "length",
  "disambiguation", "video", "first-release-date"}]}``; unknown: 404 ``{"error": "Not Found", "help"}``;
  malformed: 400 ``{"error": "Invalid isrc."}``.
- ``GET /ws/2/recording/<mbid>?inc=isrcs&fmt=json`` → the recording with ``isrcs`` (a list); unknown:
  404; not a UUID: 400 "Invalid mbid.".
- A descriptive ``User-Agent`` is required: none or a library default (``python-httpx/…``): 403.
  ``mb_rate`` requests a second (off by default): over it, 503 with "exceeding the allowable rate limit".

Faults: ``fail_next(n, status, …)`` (ListenBrainz paths) and ``fail_next_mb(n, status, …)``. Every
request is in ``fake.log`` (``host`` says which service answered).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Unpack

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.common import Fault, FaultOptions, FaultQueue, FixedWindows, RequestLog, TokenBuckets
from tests.fakes.loopback import serve_app

__all__ = ["FakeListenBrainz", "FakeRecording", "LBCall", "mbid_for", "serve"]

Json = dict[str, Any]

MAX_COUNT = 100
MB_HELP = "For usage, please see: https://musicbrainz.org/development/mmd"
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


def mbid_for(seed: str) -> str:
    """A MusicBrainz id for ``seed`` (a UUID, as MBIDs are)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"musicbrainz:{seed}"))


@dataclass
class FakeRecording:
    """A MusicBrainz recording."""

    mbid: str
    title: str
    artist: str
    release: str
    isrcs: list[str] = field(default_factory=list)
    length: int = 215_000

    def json(self, *, with_isrcs: bool = False) -> Json:
        """The recording as MusicBrainz answers it."""
        body: Json = {
            "id": self.mbid,
            "title": self.title,
            "length": self.length,
            "disambiguation": "",
            "video": False,
            "first-release-date": "2020-01-01",
        }
        if with_isrcs:
            body["isrcs"] = list(self.isrcs)
        return body


@dataclass
class _Feedback:
    mbid: str
    score: int
    created: int
    order: int


class LBCall(NamedTuple):
    """One request the fake answered (the token is kept for leak checks, never printed)."""

    host: str  # "listenbrainz" or "musicbrainz"
    method: str
    path: str
    status: int
    params: dict[str, str]
    body: Any
    token: str | None
    user_agent: str | None


class _Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _new_token() -> str:
    return str(uuid.UUID(bytes=secrets.token_bytes(16)))  # ListenBrainz user tokens are UUIDs


class FakeListenBrainz:
    """The fake ListenBrainz (users, tokens, feedback) and MusicBrainz (recordings). See the module docstring.

    Args:
        user: The user whose token is ``self.token`` (default: a new random name, so that the HTTP
            toolkit's per-credential state, kept for the whole process, never leaks between fakes).
        clock: Epoch seconds: ``created`` of feedback and the rate windows follow it.
        rate_limit: ListenBrainz requests per ``window`` per token (None: no limit).
        window: The ListenBrainz rate window in seconds.
        mb_rate: MusicBrainz requests a second (None: no limit).
    """

    def __init__(
        self,
        *,
        user: str | None = None,
        clock: Callable[[], float] = time.time,
        rate_limit: int | None = None,
        window: float = 10.0,
        mb_rate: float | None = None,
    ) -> None:
        """One user with one token, no recordings, no feedback."""
        self.clock = clock
        self.rate_limit = rate_limit
        self.windows = FixedWindows(window)
        self.window = window
        self.mb_rate = mb_rate
        self._mb_buckets = TokenBuckets()
        user = user or f"listener-{secrets.token_hex(4)}"
        self.user = user
        self.tokens: dict[str, str] = {}  # token -> user
        self.feedback: dict[str, dict[str, _Feedback]] = {}
        self.token = self.add_user(user)
        self.recordings: dict[str, FakeRecording] = {}
        self.log: RequestLog[LBCall] = RequestLog()
        self._faults = FaultQueue()
        self._mb_faults = FaultQueue()
        self._order = itertools.count(1)
        self._lock = threading.RLock()
        self.app = Starlette(
            routes=[
                Route("/1/feedback/user/{user}/get-feedback", self._lb_endpoint, methods=["GET"]),
                Route("/1/feedback/recording-feedback", self._lb_endpoint, methods=["POST"]),
                Route("/ws/2/isrc/{isrc}", self._mb_endpoint, methods=["GET"]),
                Route("/ws/2/recording/{mbid}", self._mb_endpoint, methods=["GET"]),
            ]
        )

    # -- users, tokens, faults ---------------------------------------------------------------------

    def add_user(self, user: str) -> str:
        """Add a user (no feedback) and return a new token of theirs."""
        token = _new_token()
        self.tokens[token] = user
        self.feedback.setdefault(user, {})
        return token

    def reset_token(self, user: str | None = None) -> str:
        """The user resets their token (listenbrainz.org/settings): the old one answers 401."""
        user = user or self.user
        for token in [t for t, u in self.tokens.items() if u == user]:
            del self.tokens[token]
        token = _new_token()
        self.tokens[token] = user
        if user == self.user:
            self.token = token
        return token

    def fail_next(self, n: int = 1, status: int = 502, **options: Unpack[FaultOptions]) -> None:
        """Answer the next ``n`` matching ListenBrainz requests with ``status``."""
        self._faults.add(Fault.on(status, **options), n)

    def fail_next_mb(self, n: int = 1, status: int = 503, **options: Unpack[FaultOptions]) -> None:
        """Answer the next ``n`` matching MusicBrainz requests with ``status``."""
        self._mb_faults.add(Fault.on(status, **options), n)

    def count(
        self,
        path: str | None = None,
        *,
        host: str = "listenbrainz",
        method: str | None = None,
        status: int | None = None,
    ) -> int:
        """Requests of ``host`` whose path matches the regex ``path``, with ``method``/``status`` if given."""
        return sum(
            1
            for c in self.log
            if c.host == host
            and (path is None or re.search(path, c.path))
            and (method is None or c.method == method)
            and (status is None or c.status == status)
        )

    def writes(self) -> list[LBCall]:
        """The feedback POSTs answered 200."""
        return [c for c in self.log if c.host == "listenbrainz" and c.method == "POST" and c.status == 200]

    # -- recordings and feedback -------------------------------------------------------------------

    def add_recording(
        self, title: str, artist: str, release: str = "Album", *, isrcs: list[str] | None = None
    ) -> FakeRecording:
        """Add a MusicBrainz recording (its MBID derives from the title and artist)."""
        recording = FakeRecording(mbid_for(f"{title}:{artist}:{isrcs}"), title, artist, release, list(isrcs or []))
        self.recordings[recording.mbid] = recording
        return recording

    def love(self, recording: FakeRecording | str, user: str | None = None, *, created: int | None = None) -> None:
        """The user loves a recording (now, on the fake clock, unless ``created``)."""
        self._set(user or self.user, recording if isinstance(recording, str) else recording.mbid, 1, created)

    def _set(self, user: str, mbid: str, score: int, created: int | None = None) -> None:
        feedback = self.feedback.setdefault(user, {})
        if score == 0:
            feedback.pop(mbid, None)
            return
        existing = feedback.get(mbid)
        if existing is not None and existing.score == score:
            return  # the same score again changes nothing
        feedback[mbid] = _Feedback(
            mbid, score, created if created is not None else int(self.clock()), next(self._order)
        )

    def loved(self, user: str | None = None) -> list[str]:
        """The MBIDs the user loves, newest first."""
        items = [f for f in self.feedback.get(user or self.user, {}).values() if f.score == 1]
        return [f.mbid for f in sorted(items, key=lambda f: (f.created, f.order), reverse=True)]

    # -- ListenBrainz HTTP -------------------------------------------------------------------------

    def _rate_headers(self, key: str) -> dict[str, str]:
        if self.rate_limit is None:
            return {}
        now = self.clock()
        reset = (math.floor(now / self.window) + 1) * self.window
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - self.windows.used(key))),
            "X-RateLimit-Reset-In": str(max(1, math.ceil(reset - now))),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }

    async def _lb_endpoint(self, request: Request) -> JSONResponse:
        raw = await request.body()
        method, path = request.method, request.url.path
        params = dict(request.query_params)
        authorization = request.headers.get("authorization") or ""
        scheme, _, token = authorization.partition(" ")
        token = token.strip() if scheme.lower() == "token" else ""
        body: Any = None
        headers: dict[str, str] = {}
        with self._lock:
            key = token or "anonymous"
            try:
                if self.rate_limit is not None and self.windows.take(key, limit=self.rate_limit, now=self.clock()):
                    raise _Fail(429, "Too many requests. Please wait and try again.", self._rate_headers(key))
                headers = self._rate_headers(key)
                fault = self._faults.take(method, path)
                if fault is not None and not fault.after:
                    raise self._fault_error(fault)
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Fail(400, "Cannot parse JSON document.") from None
                if method == "GET":
                    result = self._get_feedback(request.path_params["user"], params)
                else:
                    result = self._post_feedback(authorization, token, body)
                if fault is not None:
                    raise self._fault_error(fault)
                status, response = 200, JSONResponse(result, headers=headers)
            except _Fail as fail:
                status = fail.status
                response = JSONResponse(
                    {"code": fail.status, "error": fail.message},
                    status_code=fail.status,
                    headers={**headers, **fail.headers},
                )
            self.log.append(LBCall("listenbrainz", method, path, status, params, body, token or None, None))
        return response

    @staticmethod
    def _fault_error(fault: Fault) -> _Fail:
        messages = {
            403: "Forbidden.",
            429: "Too many requests.",
            500: "An unknown error occured.",
            503: "Service Unavailable",
        }
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        return _Fail(fault.status, fault.message or messages.get(fault.status, "Bad Gateway"), headers)

    def _get_feedback(self, user: str, params: dict[str, str]) -> Json:
        if user not in self.feedback:
            raise _Fail(404, f"Cannot find user: {user}")
        try:
            count = min(MAX_COUNT, int(params.get("count", MAX_COUNT)))
            offset = int(params.get("offset", 0))
            score = int(params["score"]) if "score" in params else None
        except ValueError:
            raise _Fail(400, "Invalid count, offset or score argument.") from None
        if count < 0 or offset < 0:
            raise _Fail(400, "Count and offset must be positive.")
        if score not in (None, 1, -1):
            raise _Fail(400, "Score can have a value of 1 or -1.")
        metadata = params.get("metadata", "").lower() == "true"
        items = [f for f in self.feedback[user].values() if score is None or f.score == score]
        items.sort(key=lambda f: (f.created, f.order), reverse=True)
        chunk = items[offset : offset + count]
        return {
            "count": len(chunk),
            "feedback": [self._feedback_json(user, f, metadata) for f in chunk],
            "offset": offset,
            "total_count": len(items),
        }

    def _feedback_json(self, user: str, f: _Feedback, metadata: bool) -> Json:
        out: Json = {
            "created": f.created,
            "recording_mbid": f.mbid,
            "recording_msid": None,
            "score": f.score,
            "user_id": user,
        }
        if metadata:
            rec = self.recordings.get(f.mbid)
            out["track_metadata"] = (
                {
                    "artist_name": rec.artist,
                    "release_name": rec.release,
                    "track_name": rec.title,
                    "mbid_mapping": {
                        "recording_mbid": rec.mbid,
                        "release_mbid": mbid_for("release:" + rec.release),
                        "artist_mbids": [mbid_for("artist:" + rec.artist)],
                        "caa_id": None,
                        "caa_release_mbid": None,
                    },
                }
                if rec is not None
                else None
            )
        return out

    def _post_feedback(self, authorization: str, token: str, body: Any) -> Json:
        if not authorization:
            raise _Fail(401, "You need to provide an Authorization header.")
        user = self.tokens.get(token)
        if user is None:
            raise _Fail(401, "Invalid authorization token.")
        if not isinstance(body, dict):
            raise _Fail(400, "Invalid JSON document submitted.")
        mbid, score = body.get("recording_mbid"), body.get("score")
        if not isinstance(mbid, str) or not _UUID_RE.match(mbid):
            raise _Fail(400, "JSON document must contain either recording_msid or recording_mbid, a valid UUID.")
        if score not in (-1, 0, 1) or isinstance(score, bool):
            raise _Fail(400, "Score can have a value of 1, 0 or -1.")
        self._set(user, mbid, int(score))
        return {"status": "ok"}

    # -- MusicBrainz HTTP --------------------------------------------------------------------------

    async def _mb_endpoint(self, request: Request) -> JSONResponse:
        method, path = request.method, request.url.path
        params = dict(request.query_params)
        agent = request.headers.get("user-agent")
        with self._lock:
            try:
                if not agent or agent.lower().startswith(("python-httpx", "python-requests", "python-urllib")):
                    raise _Fail(403, "Your requests are being blocked: send a meaningful User-Agent.")
                if self.mb_rate is not None and self._mb_buckets.take(
                    "ip", rate=self.mb_rate, burst=1, now=self.clock()
                ):
                    raise _Fail(503, "Your requests are exceeding the allowable rate limit. " + MB_HELP)
                fault = self._mb_faults.take(method, path)
                if fault is not None:
                    raise self._fault_error(fault)
                if params.get("fmt") != "json" and "json" not in (request.headers.get("accept") or ""):
                    raise _Fail(406, "Not Acceptable: ask for fmt=json.")
                if "isrc" in request.path_params:
                    result = self._isrc(request.path_params["isrc"])
                else:
                    result = self._recording(request.path_params["mbid"], params.get("inc", ""))
                status, response = 200, JSONResponse(result)
            except _Fail as fail:
                status = fail.status
                response = JSONResponse({"error": fail.message, "help": MB_HELP}, status_code=fail.status)
            self.log.append(LBCall("musicbrainz", method, path, status, params, None, None, agent))
        return response

    def _isrc(self, isrc: str) -> Json:
        if not _ISRC_RE.match(isrc):
            raise _Fail(400, "Invalid isrc.")
        found = [r.json() for r in self.recordings.values() if isrc in r.isrcs]
        if not found:
            raise _Fail(404, "Not Found")
        return {"isrc": isrc, "recordings": found}

    def _recording(self, mbid: str, inc: str) -> Json:
        if not _UUID_RE.match(mbid):
            raise _Fail(400, "Invalid mbid.")
        recording = self.recordings.get(mbid)
        if recording is None:
            raise _Fail(404, "Not Found")
        return recording.json(with_isrcs="isrcs" in inc.split("+"))


@contextlib.contextmanager
def serve(fake: FakeListenBrainz, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``fake.app`` on 127.0.0.1 (a free port) in a thread; yields ``http://127.0.0.1:PORT``."""
    with serve_app(fake.app, name="listenbrainz", startup_timeout=startup_timeout) as url:
        yield url
