"""Tests of connectors.http: retries, waits, per-credential limits, typed errors and redaction.

Fakes, not mocks: stateful fake APIs behind ``httpx.MockTransport`` / ``httpx.ASGITransport``, and a fake
clock whose ``sleep`` records the wait, so nothing really sleeps and nothing asserts wall-clock time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.core import (
    AuthError,
    ConfigError,
    RateLimited,
    RecordError,
    TransientError,
    auth_error_in_chain,
)
from connectors.http import (
    REDACTED,
    HTTPAuthError,
    HTTPRateLimited,
    HTTPRecordError,
    HTTPTransientError,
    NotFound,
    Rate,
    RetryPolicy,
    make_client,
    raise_for_status,
    redact_headers,
    redact_text,
    redact_url,
    retry_options,
)

START = 1_700_000_000.0  # a whole second, so HTTP dates (1 s resolution) round-trip exactly
BASE_URL = "https://api.example.com"
EXACT = RetryPolicy(jitter=0)

# --------------------------------------------------------------------------------------------------
# Fakes


class FakeTime:
    """An epoch clock that moves only when someone sleeps; every sleep is recorded.

    The clock advances after yielding once, so a concurrent task sees the time as it was when the
    sleeper started waiting (as with real time).
    """

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, target)


Step = httpx.Response | type[httpx.TransportError] | Callable[[httpx.Request], httpx.Response]


class ScriptedAPI:
    """Answers each request with the next scripted step, then ``200 {"ok": true}``; records what it got.

    A step is a response, a transport-error class (raised, as a broken connection would), or a function
    of the request.
    """

    def __init__(self, *script: Step, time: FakeTime | None = None, repeat: Step | None = None) -> None:
        self.script = list(script)
        self.repeat = repeat
        self.time = time
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.arrivals: list[float] = []

    @property
    def hits(self) -> int:
        return len(self.requests)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.content)
        self.arrivals.append(self.time.now if self.time else 0.0)
        step = self.script.pop(0) if self.script else self.repeat
        if step is None:
            return httpx.Response(200, json={"ok": True})
        if isinstance(step, httpx.Response):
            # Responses are single-use; hand out a copy so a repeated step can be answered again.
            return httpx.Response(step.status_code, headers=step.headers, content=step.content)
        if isinstance(step, type):
            raise step("timed out" if issubclass(step, httpx.TimeoutException) else "reset", request=request)
        return step(request)


def new_credential() -> str:
    return f"test:{uuid.uuid4().hex}"


def client_for(
    api: Any, time: FakeTime, *, retry: RetryPolicy = EXACT, service: str = "Example", **kwargs: Any
) -> httpx.AsyncClient:
    transport = kwargs.pop("transport", None) or httpx.MockTransport(api)
    return make_client(
        service=service,
        base_url=kwargs.pop("base_url", BASE_URL),
        transport=transport,
        retry=retry,
        sleep=time.sleep,
        clock=time.clock,
        **kwargs,
    )


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


# --------------------------------------------------------------------------------------------------
# Waits the server names


async def test_429_with_retry_after_seconds_waits_that_long_then_succeeds() -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.Response(429, headers={"Retry-After": "7"}), time=time)
    async with client_for(api, time) as client:
        response = await client.get("/items")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert time.sleeps == [7.0]
    assert api.arrivals == [START, START + 7]


async def test_429_with_retry_after_http_date_waits_until_that_date() -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.Response(429, headers={"Retry-After": http_date(START + 42)}), time=time)
    async with client_for(api, time) as client:
        response = await client.get("/items")
    assert response.status_code == 200
    assert time.sleeps == [42.0]


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        pytest.param({"X-RateLimit-Reset": str(int(START) + 30)}, 30.0, id="epoch-reset"),
        pytest.param({"X-Contentful-RateLimit-Reset": "7"}, 7.0, id="contentful-delta-seconds"),
        pytest.param(
            {"X-RateLimit-Reset": dt.datetime.fromtimestamp(START + 12, dt.UTC).isoformat()},
            12.0,
            id="jira-iso-timestamp",
        ),
        pytest.param({"Retry-After": "3", "X-RateLimit-Reset": str(int(START) + 30)}, 3.0, id="retry-after-wins"),
    ],
)
async def test_429_reset_headers_are_honoured_as_hints(headers: dict[str, str], expected_wait: float) -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.Response(429, headers=headers), time=time)
    async with client_for(api, time) as client:
        assert (await client.get("/items")).status_code == 200
    assert time.sleeps == [expected_wait]


async def test_github_rate_limited_403_waits_until_reset() -> None:
    time = FakeTime()
    limited = httpx.Response(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(START) + 55)},
        json={"message": "API rate limit exceeded for user ID 1."},
    )
    api = ScriptedAPI(limited, time=time)
    async with client_for(api, time, service="GitHub") as client:
        response = await client.get("/orgs/acme/repos")
    assert response.status_code == 200
    assert time.sleeps == [55.0]
    assert api.arrivals == [START, START + 55]


async def test_github_403_with_retry_after_waits_that_long() -> None:
    time = FakeTime()
    api = ScriptedAPI(
        httpx.Response(403, headers={"retry-after": "30"}, json={"message": "secondary rate limit"}),
        time=time,
    )
    async with client_for(api, time, service="GitHub") as client:
        assert (await client.get("/search/issues")).status_code == 200
    assert time.sleeps == [30.0]


async def test_github_secondary_limit_403_without_headers_waits_at_least_a_minute() -> None:
    time = FakeTime()
    body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}
    api = ScriptedAPI(httpx.Response(403, json=body), time=time)
    async with client_for(api, time, service="GitHub") as client:
        assert (await client.get("/search/issues")).status_code == 200
    assert time.sleeps == [60.0]


async def test_wait_above_the_cap_raises_rate_limited_at_once_without_sleeping() -> None:
    time = FakeTime()
    credential = new_credential()
    reset_in_15_minutes = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(START) + 900)}
    api = ScriptedAPI(httpx.Response(403, headers=reset_in_15_minutes, json={"message": "rate limit"}), time=time)
    async with client_for(api, time, service="GitHub", credential=credential) as client:
        with pytest.raises(HTTPRateLimited) as raised:
            await client.get("/orgs/acme/repos")
    assert isinstance(raised.value, RateLimited)
    assert raised.value.retry_after == 900.0
    assert raised.value.status_code == 429  # a rate limit, whatever status carried it...
    assert " -> 403: " in str(raised.value)  # ...while the message keeps the wire status
    assert time.sleeps == []
    assert api.hits == 1
    assert not auth_error_in_chain(raised.value)

    # Every other client on the credential now fails fast, without reaching the API.
    async with client_for(api, time, service="GitHub", credential=credential) as other:
        with pytest.raises(RateLimited) as again:
            await other.get("/orgs/acme/members")
    assert again.value.retry_after == 900.0
    assert api.hits == 1
    assert time.sleeps == []


# --------------------------------------------------------------------------------------------------
# Server errors and broken connections


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
async def test_server_errors_are_retried_with_exponential_backoff(status: int) -> None:
    time = FakeTime()
    api = ScriptedAPI(*[httpx.Response(status)] * 4, time=time)
    async with client_for(api, time) as client:
        response = await client.get("/items")
    assert response.status_code == 200
    assert api.hits == 5
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_backoff_is_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.5)
    rng = random.Random(7)
    for failures in range(1, 5):
        delay = policy.backoff(failures, rng)
        nominal = 2 ** (failures - 1)
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    assert all(policy.backoff(20, rng) <= 10.0 for _ in range(50))


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError],
)
async def test_timeouts_and_connection_resets_are_retried(error: type[httpx.TransportError]) -> None:
    time = FakeTime()
    api = ScriptedAPI(error, error, time=time)
    async with client_for(api, time) as client:
        response = await client.get("/items")
    assert response.status_code == 200
    assert api.hits == 3
    assert time.sleeps == [1.0, 2.0]


async def test_exhausted_429_raises_rate_limited_with_the_servers_retry_after() -> None:
    time = FakeTime()
    api = ScriptedAPI(time=time, repeat=httpx.Response(429, headers={"Retry-After": "2"}, text="slow down"))
    async with client_for(api, time, retry=RetryPolicy(max_attempts=3, jitter=0)) as client:
        with pytest.raises(HTTPRateLimited) as raised:
            await client.get("/items")
    assert api.hits == 3
    assert time.sleeps == [2.0, 2.0]
    assert raised.value.retry_after == 2.0
    assert raised.value.status_code == 429
    assert str(raised.value) == "Example GET /items -> 429: slow down"


async def test_exhausted_429_without_a_hint_raises_rate_limited_with_the_next_backoff() -> None:
    time = FakeTime()
    api = ScriptedAPI(time=time, repeat=httpx.Response(429))
    async with client_for(api, time, retry=RetryPolicy(max_attempts=3, jitter=0)) as client:
        with pytest.raises(RateLimited) as raised:
            await client.get("/items")
    assert time.sleeps == [1.0, 2.0]
    assert raised.value.retry_after == 4.0


async def test_exhausted_503_raises_transient_error_carrying_status_and_hint() -> None:
    time = FakeTime()
    api = ScriptedAPI(time=time, repeat=httpx.Response(503, headers={"Retry-After": "5"}, text="down for maintenance"))
    async with client_for(api, time, retry=RetryPolicy(max_attempts=3, jitter=0)) as client:
        with pytest.raises(HTTPTransientError) as raised:
            await client.get("/items")
    assert isinstance(raised.value, TransientError)
    assert raised.value.status_code == 503
    assert raised.value.retry_after == 5.0
    assert api.hits == 3
    assert str(raised.value) == "Example GET /items -> 503: down for maintenance"


async def test_exhausted_timeouts_raise_transient_error_with_the_cause_chained() -> None:
    time = FakeTime()
    api = ScriptedAPI(time=time, repeat=httpx.ReadTimeout)
    async with client_for(api, time, retry=RetryPolicy(max_attempts=4, jitter=0)) as client:
        with pytest.raises(HTTPTransientError) as raised:
            await client.get("/repos/acme/widgets/issues/403")
    assert api.hits == 4
    assert raised.value.status_code == 0
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert str(raised.value).startswith("Example GET /repos/acme/widgets/issues/403 -> ReadTimeout")
    # A path that happens to contain 403 is not an auth failure.
    assert not auth_error_in_chain(raised.value)


async def test_unsupported_protocol_is_a_config_error_not_retried() -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.UnsupportedProtocol, time=time)
    async with client_for(api, time) as client:
        with pytest.raises(ConfigError):
            await client.get("/items")
    assert api.hits == 1


# --------------------------------------------------------------------------------------------------
# Request bodies and per-request options


async def test_post_body_is_resent_identically_on_retry() -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.Response(503), httpx.Response(429, headers={"Retry-After": "1"}), time=time)
    payload = {
        "parent": {"data_source_id": "ds-1"},
        "properties": {"Name": {"title": [{"text": {"content": "x"}}]}},
    }
    async with client_for(api, time) as client:
        response = await client.post("/v1/pages", json=payload)
    assert response.status_code == 200
    assert api.hits == 3
    assert api.bodies[0] == api.bodies[1] == api.bodies[2] != b""


async def test_streamed_post_body_is_read_once_and_resent() -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.Response(502), time=time)
    chunks_read: list[bytes] = []

    async def upload() -> AsyncIterator[bytes]:
        for chunk in (b"line one\n", b"line two\n"):
            chunks_read.append(chunk)
            yield chunk

    async with client_for(api, time) as client:
        response = await client.post("/upload", content=upload())
    assert response.status_code == 200
    assert api.bodies == [b"line one\nline two\n"] * 2
    assert chunks_read == [b"line one\n", b"line two\n"]


async def test_non_idempotent_request_can_opt_out_of_ambiguous_retries() -> None:
    time = FakeTime()
    no_ambiguous = retry_options(retry_ambiguous=False)
    api = ScriptedAPI(httpx.ReadTimeout, httpx.Response(502), httpx.Response(503), httpx.ConnectError, time=time)
    async with client_for(api, time) as client:
        # A read timeout after sending: the server may have created it; not retried.
        with pytest.raises(TransientError):
            await client.post("/v1/pages", json={"a": 1}, extensions=no_ambiguous)
        # A 502: returned, not retried; raise_for_status makes it a TransientError.
        response = await client.post("/v1/pages", json={"a": 1}, extensions=no_ambiguous)
        assert response.status_code == 502
        with pytest.raises(HTTPTransientError):
            raise_for_status(response)
        # 503 (not processed) and a failed connect (never sent) are still retried.
        assert (await client.post("/v1/pages", json={"a": 1}, extensions=no_ambiguous)).status_code == 200
    assert api.hits == 5
    assert time.sleeps == [1.0, 2.0]


def test_retry_options_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError):
        retry_options(retry_everything=True)


# --------------------------------------------------------------------------------------------------
# Auth failures


async def test_plain_403_is_an_auth_error_and_is_not_retried() -> None:
    time = FakeTime()
    credential = new_credential()
    api = ScriptedAPI(httpx.Response(403, json={"message": "Resource not accessible by integration"}), time=time)
    async with client_for(api, time, service="GitHub", credential=credential) as client:
        response = await client.get("/orgs/acme/repos")
        with pytest.raises(HTTPAuthError) as raised:
            raise_for_status(response)
    assert api.hits == 1
    assert time.sleeps == []
    err = raised.value
    assert isinstance(err, AuthError)
    assert err.status_code == 403
    assert err.credential == credential
    assert str(err) == 'GitHub GET /orgs/acme/repos -> 403: {"message":"Resource not accessible by integration"}'
    assert auth_error_in_chain(err)


async def test_401_is_an_auth_error_found_in_the_chain() -> None:
    time = FakeTime()
    api = ScriptedAPI(httpx.Response(401, json={"code": "unauthorized"}), time=time)
    async with client_for(api, time, service="Notion") as client:
        response = await client.post("/v1/data_sources/ds-1/query", json={})
    assert api.hits == 1
    with pytest.raises(RuntimeError) as wrapped:
        try:
            raise_for_status(response)
        except AuthError as err:
            assert err.status_code == 401  # type: ignore[attr-defined]
            assert err.message == str(err)  # type: ignore[attr-defined]
            raise RuntimeError("pass failed") from err
    assert auth_error_in_chain(wrapped.value)


@pytest.mark.parametrize(
    ("status", "error_class", "core_class"),
    [
        (400, HTTPRecordError, RecordError),
        (401, HTTPAuthError, AuthError),
        (403, HTTPAuthError, AuthError),
        (404, NotFound, RecordError),
        (409, HTTPTransientError, TransientError),
        (410, NotFound, RecordError),
        (422, HTTPRecordError, RecordError),
        (429, HTTPRateLimited, RateLimited),
        (500, HTTPTransientError, TransientError),
        (529, HTTPTransientError, TransientError),
    ],
)
def test_raise_for_status_maps_every_status_onto_the_tree(
    status: int, error_class: type[Exception], core_class: type[Exception]
) -> None:
    request = httpx.Request("PATCH", f"{BASE_URL}/v1/pages/abc?key=SHOULD-NOT-SHOW")
    response = httpx.Response(status, text="  nope\n  (details)  ", request=request)
    with pytest.raises(error_class) as raised:
        raise_for_status(response, service="Notion")
    err = raised.value
    assert isinstance(err, core_class)
    assert err.status_code == status  # type: ignore[attr-defined]
    assert err.body == "nope (details)"  # type: ignore[attr-defined]
    assert str(err) == f"Notion PATCH /v1/pages/abc -> {status}: nope (details)"
    assert auth_error_in_chain(err) is (status in (401, 403))


@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_raise_for_status_lets_successes_and_not_modified_through(status: int) -> None:
    raise_for_status(httpx.Response(status, request=httpx.Request("GET", BASE_URL)), service="GitHub")


def test_raise_for_status_on_a_rate_limited_403_gives_rate_limited_with_reset() -> None:
    request = httpx.Request("GET", "https://api.github.com/user")
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(START) + 600)}
    response = httpx.Response(403, headers=headers, text="rate limit", request=request)
    with pytest.raises(HTTPRateLimited) as raised:
        raise_for_status(response, service="GitHub", clock=lambda: START)
    assert raised.value.retry_after == 600.0
    assert not auth_error_in_chain(raised.value)


def test_error_body_is_truncated_to_600_characters() -> None:
    request = httpx.Request("POST", f"{BASE_URL}/v1/pages")
    response = httpx.Response(400, text="x" * 5000, request=request)
    with pytest.raises(HTTPRecordError) as raised:
        raise_for_status(response, service="Notion")
    assert len(raised.value.body) == 600
    assert str(raised.value) == "Notion POST /v1/pages -> 400: " + "x" * 600


# --------------------------------------------------------------------------------------------------
# Per-credential limits


async def test_shared_limiter_paces_two_clients_on_one_credential() -> None:
    time = FakeTime()
    credential = new_credential()
    api = ScriptedAPI(time=time)
    rate = Rate(2, per_seconds=60)  # a bucket of 2; the next token comes 30 s later
    async with (
        client_for(api, time, credential=credential, rate=rate) as first,
        client_for(api, time, credential=credential, rate=rate) as second,
        client_for(api, time, credential=new_credential(), rate=rate) as unrelated,
    ):
        await first.get("/a")
        await second.get("/b")
        third = asyncio.create_task(first.get("/c"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not third.done()  # each client has used one token, but the bucket is the credential's
        assert api.hits == 2
        await unrelated.get("/d")  # another credential is not held back
        assert api.hits == 3
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third


async def test_blocked_until_after_429_holds_back_a_concurrent_request_on_another_client() -> None:
    time = FakeTime()
    credential = new_credential()
    first_limited = asyncio.Event()

    def limited(request: httpx.Request) -> httpx.Response:
        first_limited.set()
        return httpx.Response(429, headers={"Retry-After": "5"})

    api = ScriptedAPI(limited, time=time)
    async with (
        client_for(api, time, credential=credential) as first,
        client_for(api, time, credential=credential) as second,
    ):

        async def second_request() -> httpx.Response:
            await first_limited.wait()  # start while the first request waits out its 429
            return await second.get("/b")

        responses = await asyncio.gather(first.get("/a"), second_request())

    assert [r.status_code for r in responses] == [200, 200]
    assert time.sleeps == [5.0, 5.0]  # the second request waited for the block too
    paths = [r.url.path for r in api.requests]
    assert paths == ["/a", "/a", "/b"]
    assert api.arrivals == [START, START + 5, START + 5]


async def test_max_concurrent_caps_requests_in_flight_per_method_class() -> None:
    time = FakeTime()
    credential = new_credential()
    in_flight = {"GET": 0, "POST": 0}
    peak = {"GET": 0, "POST": 0}

    async def slow(request: httpx.Request) -> httpx.Response:
        in_flight[request.method] += 1
        peak[request.method] = max(peak[request.method], in_flight[request.method])
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight[request.method] -= 1
        return httpx.Response(200)

    async with (
        client_for(slow, time, credential=credential, max_concurrent=3, max_concurrent_writes=1) as a,
        client_for(slow, time, credential=credential) as b,
    ):
        calls = [c.get(f"/r{i}") for i, c in enumerate([a, b] * 4)]
        calls += [c.post(f"/w{i}") for i, c in enumerate([a, b] * 2)]
        responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses)
    assert peak == {"GET": 3, "POST": 1}


def test_credential_limits_work_in_a_new_event_loop() -> None:
    # Each asyncio.run stands for a new Dagster run in the same process. aiolimiter and
    # asyncio.Semaphore bind to the first loop; reusing them on a second one would warn (an error
    # under filterwarnings=error) or, for a 1-per-minute rate, stall the second run for a minute.
    credential = new_credential()
    hits: list[str] = []

    async def api(request: httpx.Request) -> httpx.Response:
        hits.append(request.url.path)
        await asyncio.sleep(0)
        return httpx.Response(200)

    async def one_run(path: str) -> None:
        async with make_client(
            service="Example",
            base_url=BASE_URL,
            credential=credential,
            rate=Rate(1, per_seconds=60),
            max_concurrent=1,
            transport=httpx.MockTransport(api),
        ) as client:
            response = await asyncio.wait_for(client.get(path), timeout=5)
            assert response.status_code == 200

    asyncio.run(one_run("/first"))
    asyncio.run(one_run("/second"))
    assert hits == ["/first", "/second"]


def test_rate_spec_validation_and_burst() -> None:
    assert Rate(3, 1).capacity == 3
    assert Rate(0.5, 1).capacity == 1
    assert Rate(5000, 3600, burst=100).capacity == 100
    limiter = Rate(5000, 3600, burst=100).limiter()
    assert limiter.max_rate == 100
    assert limiter.max_rate / limiter.time_period == pytest.approx(5000 / 3600)
    for bad in (lambda: Rate(0, 1), lambda: Rate(1, 0), lambda: Rate(1, 1, burst=0)):
        with pytest.raises(ConfigError):
            bad()
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)


# --------------------------------------------------------------------------------------------------
# A Starlette fake with Notion's rate-limit and overload answers


def notion_like_app() -> tuple[Starlette, dict[str, int]]:
    state = {"calls": 0}

    async def query(request: Request) -> JSONResponse:
        state["calls"] += 1
        if state["calls"] == 1:
            error = {"object": "error", "status": 429, "code": "rate_limited", "message": "Rate limited."}
            return JSONResponse(error, status_code=429, headers={"Retry-After": "2"})
        if state["calls"] == 2:
            error = {"object": "error", "status": 529, "code": "service_overload", "message": "Overloaded."}
            return JSONResponse(error, status_code=529, headers={"Retry-After": "1"})
        body = await request.json()
        return JSONResponse({"object": "list", "results": [], "has_more": False, "echo": body})

    routes = [Route("/v1/data_sources/{data_source_id}/query", query, methods=["POST"])]
    return Starlette(routes=routes), state


async def test_fake_notion_rate_limit_then_overload_then_success_over_asgi() -> None:
    time = FakeTime()
    app, state = notion_like_app()
    async with client_for(None, time, service="Notion", transport=httpx.ASGITransport(app=app)) as client:
        response = await client.post("/v1/data_sources/ds-1/query", json={"page_size": 100})
        raise_for_status(response)
    assert response.json()["echo"] == {"page_size": 100}
    assert state["calls"] == 3
    assert time.sleeps == [2.0, 1.0]


# --------------------------------------------------------------------------------------------------
# Redaction


SECRETS = ("YT-SECRET-KEY-123", "SECRET-TOKEN-456", "LUMA-SECRET-789")


def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server that quotes the request back, credentials and all, as careless APIs do."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=f"bad request {request.url} with headers {dict(request.headers)}")

    return answer


async def test_secrets_never_appear_in_error_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors.http")
    time = FakeTime()

    def timeout_quoting_url(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out reading {request.url}", request=request)

    api = ScriptedAPI(
        echo(503),
        timeout_quoting_url,
        echo(403),
        time=time,
        repeat=echo(503),
    )
    headers = {"Authorization": "Bearer SECRET-TOKEN-456", "x-luma-api-key": "LUMA-SECRET-789"}
    errors: list[BaseException] = []
    async with client_for(api, time, service="YouTube", headers=headers) as client:
        response = await client.get("/youtube/v3/playlistItems", params={"key": "YT-SECRET-KEY-123", "part": "id"})
        with pytest.raises(AuthError) as auth:
            raise_for_status(response)
        errors.append(auth.value)
        with pytest.raises(TransientError) as transient:
            await client.get("/youtube/v3/channels", params={"key": "YT-SECRET-KEY-123"})
        errors.append(transient.value)
    api.repeat = timeout_quoting_url
    async with client_for(api, time, service="YouTube", headers=headers, retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(TransientError) as timed_out:
            await client.get("/youtube/v3/videos", params={"key": "YT-SECRET-KEY-123"})
        errors.append(timed_out.value)
    assert "timed out reading https://api.example.com/youtube/v3/videos?key=" in str(timed_out.value)

    assert "YT-SECRET-KEY-123" in str(api.requests[0].url)  # the request really carried the secrets
    assert api.requests[0].headers["authorization"] == "Bearer SECRET-TOKEN-456"
    assert auth.value.url == f"{BASE_URL}/youtube/v3/playlistItems?key={REDACTED}&part={REDACTED}"  # type: ignore[attr-defined]
    assert REDACTED in auth.value.body  # type: ignore[attr-defined]
    assert auth_error_in_chain(auth.value)
    texts = [caplog.text]
    for err in errors:
        texts += [str(err), repr(err), err.body, err.url]  # type: ignore[attr-defined]
    assert caplog.records, "retries are logged"
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


async def test_userinfo_and_basic_auth_never_appear_in_errors() -> None:
    time = FakeTime()
    api = ScriptedAPI(echo(404), time=time)
    async with client_for(api, time, base_url="https://bob:hunter2-pass@api.example.com") as client:
        response = await client.get("/things/1")
    assert api.requests[0].headers["authorization"].startswith("Basic ")  # httpx turned userinfo into auth
    with pytest.raises(NotFound) as raised:
        raise_for_status(response)
    err = raised.value
    for text in (str(err), err.body, err.url):
        assert "hunter2-pass" not in text
        assert api.requests[0].headers["authorization"].split()[1] not in text


def test_redact_url_masks_userinfo_and_every_query_value() -> None:
    assert (
        redact_url("https://bob:hunter2@www.googleapis.com:8443/youtube/v3/videos?key=SECRET&part=snippet")
        == f"https://{REDACTED}@www.googleapis.com:8443/youtube/v3/videos?key={REDACTED}&part={REDACTED}"
    )
    assert redact_url(httpx.URL("https://api.github.com/user")) == "https://api.github.com/user"
    assert redact_url("/v1/pages?token=abc") == f"/v1/pages?token={REDACTED}"


def test_redact_headers_masks_credentials_and_token_like_names() -> None:
    headers = {
        "Authorization": "Bearer SECRET",
        "Cookie": "session=SECRET",
        "x-api-key": "SECRET",
        "x-luma-api-key": "SECRET",
        "X-Notion-Token": "SECRET",
        "Client-Secret": "SECRET",
        "Accept": "application/json",
        "Notion-Version": "2025-09-03",
    }
    redacted = redact_headers(headers)
    assert "SECRET" not in str(redacted)
    assert redacted["Accept"] == "application/json"
    assert redacted["Notion-Version"] == "2025-09-03"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefghijklmnop1234",
        "token ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789",  # built: no token-shaped literal in the repo
        '{"access_token": "ya29.A0ARrdaM-secretvalue"}',
        "client_secret=s3cr3t-value&grant_type=refresh_token",
        "key AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
        "notion secret_" + "abcdefghijklmnopqrstuvwxyz0123456789",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        # The hosted Notion MCP server's OAuth tokens (workers-oauth-provider): "<user>:<grant>:<secret>".
        "Authorization: Bearer 5d6f0c2a-1b3e-4c5d-8e9f-0a1b2c3d4e5f:grantabcd:" + "xyzsecretpart" * 2,
        "refused 5d6f0c2a-1b3e-4c5d-8e9f-0a1b2c3d4e5f:grantabcd:" + "xyzsecretpart" * 2 + " (expired)",
    ],
)
def test_redact_text_masks_token_looking_strings(text: str) -> None:
    redacted = redact_text(text)
    assert REDACTED in redacted
    for fragment in ("abcdefghijklmnop", "ya29", "s3cr3t", "AIzaSy", "SflKxw", "sflKxw", "grantabcd", "xyzsecret"):
        assert fragment not in redacted


def test_redact_text_masks_known_secrets_before_truncating() -> None:
    text = "x" * 595 + "SECRET-TOKEN-456"
    redacted = redact_text(text, ["SECRET-TOKEN-456"])
    assert "SECRET" not in redacted
    assert len(redacted) == 600


async def test_httpx_own_request_log_never_shows_a_key_in_a_url(caplog):
    import logging

    client = make_client(service="Test", transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})))
    with caplog.at_level(logging.INFO, logger="httpx"):
        async with client:
            await client.get("https://api.example.test/v3/videos?part=statistics&key=SUPERSECRETKEY")
    assert "HTTP Request" in caplog.text
    assert "SUPERSECRETKEY" not in caplog.text
