"""A stateful fake of Luma's public API (the events of one calendar), as a Starlette app.

Use it in-process through ``httpx.ASGITransport(app=fake.app)`` (base URL ``https://public-api.luma.com``)
or on a loopback port with ``with serve(fake) as base_url: ...``. Written from Luma's API reference,
independently of ``connectors.luma``.

What it enforces, as Luma does:

- ``x-luma-api-key`` on every request: a missing, unknown or revoked key answers 401.
- 200 requests a minute per key (GET and POST together, a sliding minute on the injected ``clock``).
  The request over the limit answers 429 and BLOCKS the key for 60 seconds: every request until then
  answers 429 with ``Retry-After`` (whole seconds left). ``X-RateLimit-Limit/Remaining/Reset`` on
  every answer.
- ``GET /v1/calendar/list-events``: ``pagination_limit`` (1-100, default 50), ``pagination_cursor``
  (opaque; a garbage cursor answers 400), ``after`` / ``before`` on the start time (ISO 8601);
  ``{"entries": [{"api_id", "event": {…}, "tags": []}], "has_more", "next_cursor"}``, sorted by start
  time. Entries carry no hosts.
- ``GET /v1/event/get?api_id=`` → ``{"event": {…}, "hosts": [...]}``; 404 when unknown.
- ``POST /v1/event/create`` → ``{"api_id": "evt-…"}``; ``POST /v1/event/update`` with ``event_id`` →
  ``{}`` (404 when unknown). Validation answers 400 ``{"message": …}``: a name is required (at most
  ``max_name`` characters); ``start_at`` / ``end_at`` must be ISO 8601 with ``T`` and an offset
  (``2024-05-01 10:00:00+00:00``, Python's ``str(datetime)``, is rejected); the end not before the
  start; ``timezone`` an IANA name. A create without ``end_at`` lasts an hour.
- Times are returned in UTC with milliseconds (``2024-05-01T17:00:00.000Z``); ``url`` is the slug.
- Shapes as Luma's reference shows them: ids are a prefix and 15 letters and digits (``evt-…``,
  ``cal-…``, ``usr-…`` for hosts, ``tag-…``); an event carries ``calendar_api_id``, ``user_api_id``,
  ``cover_url``, ``duration_interval`` (ISO 8601, ``PT1H``), ``geo_address_json`` / ``geo_latitude`` /
  ``geo_longitude`` (null for an online event, which has a ``meeting_url``), ``series_api_id``,
  ``visibility``; list entries carry their ``tags`` as ``{"api_id", "name"}``. Errors are
  ``{"message": "…"}``.

Faults: ``fail_next`` (before or ``after`` the request took effect), ``lose_next_create`` (the event
IS created, then the connection drops or a 504 comes back: the client cannot know), ``block`` (the
key is blocked now), and ``after_create`` hooks (called once an event exists, before the answer is
sent: where a test makes the client's process "die"). Every request is in ``fake.log``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import math
import random
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.common import Fault, FaultOptions, FaultQueue, RequestLog, TokenRegistry
from tests.fakes.loopback import serve_app

__all__ = ["FakeEvent", "FakeLuma", "LumaCall", "serve"]

Json = dict[str, Any]

RATE_LIMIT = 200
RATE_WINDOW = 60.0
BLOCK_SECONDS = 60.0
MAX_NAME = 255
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
DISCONNECT = 0  # a fault "status" meaning: drop the connection instead of answering

_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$")


def _utc_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_ALNUM = string.ascii_letters + string.digits


def luma_id(prefix: str, seed: str) -> str:
    """A Luma id for ``seed``: ``<prefix>-`` and 15 letters and digits (``evt-HQ36IFDwncocuGy``)."""
    digest = int.from_bytes(hashlib.sha256(f"{prefix}:{seed}".encode()).digest(), "big")
    chars = []
    for _ in range(15):
        digest, index = divmod(digest, len(_ALNUM))
        chars.append(_ALNUM[index])
    return f"{prefix}-{''.join(chars)}"


def _duration(start: dt.datetime, end: dt.datetime) -> str:
    """``duration_interval``: the event's length as an ISO 8601 duration (``PT1H30M``, ``P1DT2H``)."""
    seconds = max(0, int((end - start).total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return ("P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")) if (days or time) else "PT0S"


@dataclass
class FakeEvent:
    """An event as stored, with its JSON views."""

    api_id: str
    name: str
    start: dt.datetime
    end: dt.datetime
    timezone: str
    slug: str
    description_md: str = ""
    visibility: str = "public"
    hosts: list[str] = field(default_factory=list)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    calendar_api_id: str = "cal-0000000000000000"
    tags: list[str] = field(default_factory=list)
    geo: Json | None = None  # geo_address_json of an in-person event; None for an online one

    def json(self) -> Json:
        """The event as Luma answers it."""
        geo = self.geo or {}
        return {
            "api_id": self.api_id,
            "calendar_api_id": self.calendar_api_id,
            "user_api_id": luma_id("usr", self.hosts[0] if self.hosts else "owner"),
            "created_at": _utc_text(self.created_at),
            "cover_url": f"https://images.lumacdn.com/event-covers/{self.api_id[-2:].lower()}/"
            f"{luma_id('img', self.api_id)[4:].lower()}.png",
            "name": self.name,
            "description": self.description_md,
            "description_md": self.description_md,
            "series_api_id": None,
            "start_at": _utc_text(self.start),
            "duration_interval": _duration(self.start, self.end),
            "end_at": _utc_text(self.end),
            "geo_latitude": str(geo["latitude"]) if "latitude" in geo else None,
            "geo_longitude": str(geo["longitude"]) if "longitude" in geo else None,
            "geo_address_json": (
                {k: v for k, v in geo.items() if k not in ("latitude", "longitude")} if self.geo is not None else None
            ),
            "url": self.slug,
            "timezone": self.timezone,
            "visibility": self.visibility,
            "meeting_url": None if self.geo is not None else "https://us02web.zoom.us/j/8123456789",
            "zoom_meeting_url": None,
        }

    def tags_json(self) -> list[Json]:
        """The event's tags as Luma answers them."""
        return [{"api_id": luma_id("tag", name), "name": name} for name in self.tags]

    def hosts_json(self) -> list[Json]:
        """The event's hosts as Luma answers them."""
        return [
            {
                "api_id": luma_id("usr", name),
                "name": name,
                "first_name": name.split(" ")[0],
                "last_name": " ".join(name.split(" ")[1:]),
                "email": name.lower().replace(" ", ".") + "@example.com",
                "avatar_url": "https://images.lumacdn.com/avatar.png",
            }
            for name in self.hosts
        ]


class LumaCall(NamedTuple):
    """One request the fake answered (the key is kept for leak checks, never printed)."""

    method: str
    path: str
    status: int
    params: dict[str, str]
    body: Any
    key: str | None


def _new_key() -> str:
    return "secret-" + secrets.token_urlsafe(18)


class _Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class FakeLuma:
    """The fake API. See the module docstring.

    Args:
        key: The valid API key (default: a random ``secret-…``); more with ``add_key``.
        clock: Epoch seconds: the rate window, the block and ``created_at`` follow it.
        rate_limit: Requests per ``window`` per key (None: no limit).
        window: The rate window in seconds.
        block_seconds: How long a key is blocked after going over the limit.
        max_name: Longest event name accepted.
        seed: Seed of the ids and slugs (deterministic tests).
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        clock: Callable[[], float] = time.time,
        rate_limit: int | None = RATE_LIMIT,
        window: float = RATE_WINDOW,
        block_seconds: float = BLOCK_SECONDS,
        max_name: int = MAX_NAME,
        seed: int | None = 11,
    ) -> None:
        """An empty calendar with one valid API key (``self.key``)."""
        self._rng = random.Random(seed)
        self.calendar_api_id = f"cal-{self._token(15)}"  # the calendar the key belongs to
        self.clock = clock
        # Keys are random even with a seed: the HTTP toolkit keeps per-credential state (limiter, the
        # 429 block) for the whole process, so two tests must never share a key.
        self.key = key or _new_key()
        self._keys = TokenRegistry()
        self.keys = self._keys.owners.keys()  # the valid keys (a live, read-only set view)
        self.revoked = self._keys.revoked
        self._keys.add(self.key)
        self.rate_limit = rate_limit
        self.window = window
        self.block_seconds = block_seconds
        self.max_name = max_name
        self.events: dict[str, FakeEvent] = {}
        self.log: RequestLog[LumaCall] = RequestLog()
        self.after_create: list[Callable[[FakeEvent], None]] = []
        self._recent: dict[str, collections.deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._faults = FaultQueue()
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self.app = Starlette(
            routes=[
                Route("/v1/calendar/list-events", self._endpoint, methods=["GET"]),
                Route("/v1/event/get", self._endpoint, methods=["GET"]),
                Route("/v1/event/create", self._endpoint, methods=["POST"]),
                Route("/v1/event/update", self._endpoint, methods=["POST"]),
            ]
        )

    def _token(self, n: int) -> str:
        return "".join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    # -- keys, limits, faults --------------------------------------------------------------------

    def add_key(self, key: str | None = None) -> str:
        """Accept a further API key (default: a new random one) and return it."""
        return self._keys.add(key or _new_key())

    def revoke_key(self, key: str | None = None) -> None:
        """Revoke a key (default: the current one): it answers 401 from now on."""
        self._keys.revoke(key or self.key)

    def rotate_key(self) -> str:
        """Revoke the current key and make a new one the current key."""
        self.key = self._keys.rotate(self.key, _new_key())
        return self.key

    def block(self, key: str | None = None, seconds: float | None = None) -> None:
        """Block a key now, as after going over the limit."""
        key = key or self.key
        self._blocked_until[key] = self.clock() + (self.block_seconds if seconds is None else seconds)

    def blocked_until(self, key: str | None = None) -> float:
        """Until when a key (default: the current one) is blocked (0.0: not blocked)."""
        return self._blocked_until.get(key or self.key, 0.0)

    def fail_next(self, n: int = 1, status: int = 502, **options: Unpack[FaultOptions]) -> None:
        """Answer the next ``n`` matching requests with ``status`` (a Luma ``{"message": ...}`` body).

        Args:
            n: How many requests fail.
            status: HTTP status (502, 503, 429, 500, ...; ``DISCONNECT`` drops the connection).
            **options: ``message``, ``retry_after``, ``after``, ``method``, ``path``: see ``FaultOptions``.
        """
        self._faults.add(Fault.on(status, **options), n)

    def lose_next_create(self, mode: str = "disconnect") -> None:
        """Lose the answer of the next create, after it takes effect.

        The next create takes effect, then its answer is lost: the connection drops (``disconnect``;
        in-process an ``httpx.RemoteProtocolError``, over a socket uvicorn's 500) or a ``504`` comes back.
        """
        status = {"disconnect": DISCONNECT, "504": 504}[mode]
        self.fail_next(1, status, path=r"^/v1/event/create$", method="POST", after=True)

    # -- events ----------------------------------------------------------------------------------

    def add_event(
        self,
        name: str,
        start: dt.datetime,
        end: dt.datetime | None = None,
        *,
        timezone: str = "UTC",
        hosts: list[str] | None = None,
        description_md: str = "",
        slug: str | None = None,
        tags: list[str] | None = None,
        geo: Json | None = None,
    ) -> FakeEvent:
        """Add an event as its host would.

        Add an event as its host would. ``geo``: a ``geo_address_json`` (``address``, ``city``,
        ``full_address``, …, plus ``latitude`` / ``longitude``) for an in-person event.
        """
        api_id = f"evt-{self._token(15)}"
        event = FakeEvent(
            api_id,
            name,
            start,
            end or start + dt.timedelta(hours=1),
            timezone,
            slug or self._token(8).lower(),
            description_md,
            hosts=list(hosts or []),
            created_at=dt.datetime.fromtimestamp(self.clock(), dt.UTC),
            calendar_api_id=self.calendar_api_id,
            tags=list(tags or []),
            geo=dict(geo) if geo is not None else None,
        )
        self.events[api_id] = event
        return event

    def named(self, name: str) -> list[FakeEvent]:
        """The events with this name."""
        return [e for e in self.events.values() if e.name == name]

    def sorted_events(self) -> list[FakeEvent]:
        """Every event, by start time."""
        return sorted(self.events.values(), key=lambda e: (e.start, e.api_id))

    # -- the log ---------------------------------------------------------------------------------

    def count(self, path: str | None = None, *, method: str | None = None, status: int | None = None) -> int:
        """Requests whose path matches the regex ``path`` (all if None), with ``method``/``status`` if given."""
        return sum(
            1
            for c in self.log
            if (path is None or re.search(path, c.path))
            and (method is None or c.method == method)
            and (status is None or c.status == status)
        )

    # -- HTTP ------------------------------------------------------------------------------------

    def _rate_headers(self, key: str) -> dict[str, str]:
        if self.rate_limit is None:
            return {}
        recent = self._recent.get(key) or collections.deque()
        reset = (recent[0] + self.window) if recent else self.clock()
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - len(recent))),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }

    def _take(self, key: str) -> None:
        if self.rate_limit is None:
            return
        now = self.clock()
        until = self._blocked_until.get(key, 0.0)
        if until > now:
            raise _Fail(429, "Rate limited: too many requests; try again later.", self._retry(until - now, key))
        recent = self._recent.setdefault(key, collections.deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.rate_limit:
            self._blocked_until[key] = now + self.block_seconds
            raise _Fail(429, "Rate limited: too many requests; try again later.", self._retry(self.block_seconds, key))
        recent.append(now)

    def _retry(self, seconds: float, key: str) -> dict[str, str]:
        return {**self._rate_headers(key), "Retry-After": str(max(1, math.ceil(seconds)))}

    async def _endpoint(self, request: Request) -> JSONResponse:
        raw = await request.body()
        method, path = request.method, request.url.path
        params = dict(request.query_params)
        key = request.headers.get("x-luma-api-key")
        body: Any = None
        lost = False
        headers: dict[str, str] = {}
        with self._lock:
            try:
                if not key or key not in self.keys:
                    raise _Fail(401, "Invalid API key. Find yours in your calendar's settings (requires Luma Plus).")
                self._take(key)
                headers = self._rate_headers(key)
                fault = self._faults.take(method, path)
                if fault is not None and not fault.after:
                    raise self._fault_error(fault)
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Fail(400, "Invalid JSON body.") from None
                    if not isinstance(body, dict):
                        raise _Fail(400, "The body must be a JSON object.")
                handler = {
                    "/v1/calendar/list-events": self._list,
                    "/v1/event/get": self._get,
                    "/v1/event/create": self._create,
                    "/v1/event/update": self._update,
                }[path]
                result = handler(params, body or {})
                if fault is not None:  # after=True: it happened; the answer is lost
                    if fault.status == DISCONNECT:
                        lost = True
                        raise _Fail(DISCONNECT, "disconnected")
                    raise self._fault_error(fault)
                status, response = 200, JSONResponse(result, headers=headers)
            except _Fail as fail:
                status = fail.status
                response = JSONResponse(
                    {"message": fail.message}, status_code=fail.status or 500, headers={**headers, **fail.headers}
                )
            self.log.append(LumaCall(method, path, status, params, body, key))
        if lost:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return response

    def _fault_error(self, fault: Fault) -> _Fail:
        messages = {
            429: "Rate limited.",
            500: "Internal server error.",
            502: "Bad gateway.",
            503: "Service unavailable.",
            504: "Gateway timeout.",
        }
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return _Fail(fault.status, fault.message or messages.get(fault.status, "Error."), headers)

    # -- handlers --------------------------------------------------------------------------------

    @staticmethod
    def _when(value: Any, field_name: str) -> dt.datetime:
        if not isinstance(value, str) or not _ISO_RE.match(value):
            raise _Fail(
                400, f"Invalid {field_name}: expected an ISO 8601 datetime with a timezone offset, got {value!r}."
            )
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Fail(400, f"Invalid {field_name}: {value!r} is not a valid date.") from None

    @staticmethod
    def _zone(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _Fail(400, "Invalid timezone: expected an IANA timezone such as America/New_York.")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _Fail(400, f"Invalid timezone: {value!r} is not an IANA timezone.") from None
        return value

    def _name(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _Fail(400, "Invalid name: an event needs a name.")
        if len(value) > self.max_name:
            raise _Fail(400, f"Invalid name: at most {self.max_name} characters.")
        return value

    def _cursor(self, event: FakeEvent) -> str:
        raw = json.dumps([_utc_text(event.start), event.api_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _uncursor(cursor: str) -> tuple[dt.datetime, str]:
        try:
            start, api_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            return dt.datetime.fromisoformat(start.replace("Z", "+00:00")), str(api_id)
        except (ValueError, TypeError):
            raise _Fail(400, "Invalid pagination_cursor.") from None

    def _list(self, params: dict[str, str], body: Json) -> Json:
        try:
            limit = int(params.get("pagination_limit", DEFAULT_LIMIT))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_LIMIT:
            raise _Fail(400, f"Invalid pagination_limit: must be between 1 and {MAX_LIMIT}.")
        events = self.sorted_events()
        if params.get("after"):
            after = self._when(params["after"], "after")
            events = [e for e in events if e.start >= after]
        if params.get("before"):
            before = self._when(params["before"], "before")
            events = [e for e in events if e.start < before]
        if params.get("pagination_cursor"):
            start, api_id = self._uncursor(params["pagination_cursor"])
            events = [e for e in events if (e.start, e.api_id) > (start, api_id)]
        chunk = events[:limit]
        has_more = len(events) > limit
        return {
            "entries": [{"api_id": e.api_id, "event": e.json(), "tags": e.tags_json()} for e in chunk],
            "has_more": has_more,
            "next_cursor": self._cursor(chunk[-1]) if has_more and chunk else None,
        }

    def _get(self, params: dict[str, str], body: Json) -> Json:
        event = self.events.get(params.get("api_id") or params.get("event_id") or "")
        if event is None:
            raise _Fail(404, "Event not found.")
        return {"event": event.json(), "hosts": event.hosts_json()}

    def _create(self, params: dict[str, str], body: Json) -> Json:
        name = self._name(body.get("name"))
        if "start_at" not in body:
            raise _Fail(400, "Invalid start_at: required.")
        start = self._when(body["start_at"], "start_at")
        end = self._when(body["end_at"], "end_at") if body.get("end_at") is not None else start + dt.timedelta(hours=1)
        if end < start:
            raise _Fail(400, "Invalid end_at: the event cannot end before it starts.")
        zone = self._zone(body.get("timezone", "UTC"))
        event = self.add_event(name, start, end, timezone=zone, description_md=str(body.get("description_md") or ""))
        if isinstance(body.get("visibility"), str):
            event.visibility = body["visibility"]
        for hook in list(self.after_create):
            hook(event)
        return {"api_id": event.api_id}

    def _update(self, params: dict[str, str], body: Json) -> Json:
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise _Fail(400, "Invalid event_id: required.")
        event = self.events.get(event_id)
        if event is None:
            raise _Fail(404, "Event not found.")
        name = self._name(body["name"]) if "name" in body else event.name
        start = self._when(body["start_at"], "start_at") if "start_at" in body else event.start
        end = self._when(body["end_at"], "end_at") if "end_at" in body else event.end
        if end < start:
            raise _Fail(400, "Invalid end_at: the event cannot end before it starts.")
        zone = self._zone(body["timezone"]) if "timezone" in body else event.timezone
        event.name, event.start, event.end, event.timezone = name, start, end, zone
        if "description_md" in body:
            event.description_md = str(body["description_md"] or "")
        if isinstance(body.get("visibility"), str):
            event.visibility = body["visibility"]
        return {}


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeLuma, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``fake.app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields ``http://127.0.0.1:PORT``."""
    with serve_app(fake.app, name="luma", startup_timeout=startup_timeout) as url:
        yield url
