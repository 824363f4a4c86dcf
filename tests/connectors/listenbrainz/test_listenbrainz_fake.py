"""The fake ListenBrainz + MusicBrainz answer as their documentation says (checked without the connector)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.fakes.listenbrainz import FakeListenBrainz

UA = {"User-Agent": "durable-sync-tests/1.0 ( tests@example.com )"}


def call(fake: FakeListenBrainz, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as c:
            return await c.request(method, url, **kwargs)

    return asyncio.run(go())


def test_feedback_pages_with_total_count_and_a_post_needs_a_valid_token() -> None:
    fake = FakeListenBrainz(rate_limit=30, window=10)
    rec = fake.add_recording("Glory Box", "Portishead", "Dummy", isrcs=["GBAGS9400025"])
    url = f"https://api.listenbrainz.org/1/feedback/user/{fake.user}/get-feedback"
    body = {"recording_mbid": rec.mbid, "score": 1}
    post = "https://api.listenbrainz.org/1/feedback/recording-feedback"

    assert call(fake, "POST", post, json=body).json() == {
        "code": 401,
        "error": "You need to provide an Authorization header.",
    }
    assert call(fake, "POST", post, json=body, headers={"Authorization": "Token nope"}).status_code == 401
    ok = call(fake, "POST", post, json=body, headers={"Authorization": f"Token {fake.token}"})
    assert ok.json() == {"status": "ok"} and ok.headers["X-RateLimit-Remaining"] == "29"
    assert (
        call(
            fake, "POST", post, json={**body, "score": 2}, headers={"Authorization": f"Token {fake.token}"}
        ).status_code
        == 400
    )

    page = call(fake, "GET", url, params={"score": 1, "metadata": "true"}).json()
    assert (page["count"], page["offset"], page["total_count"]) == (1, 0, 1)
    assert page["feedback"][0]["track_metadata"]["track_name"] == "Glory Box"
    assert call(fake, "GET", url.replace(fake.user, "nobody")).status_code == 404


def test_musicbrainz_lookups_need_a_user_agent_and_answer_404_and_400() -> None:
    fake = FakeListenBrainz()
    rec = fake.add_recording("Glory Box", "Portishead", isrcs=["GBAGS9400025"])
    mb = "https://musicbrainz.org/ws/2"

    blocked = call(fake, "GET", f"{mb}/isrc/GBAGS9400025", params={"fmt": "json"})
    assert blocked.status_code == 403  # httpx's default User-Agent
    found = call(fake, "GET", f"{mb}/isrc/GBAGS9400025", params={"fmt": "json"}, headers=UA).json()
    assert [r["id"] for r in found["recordings"]] == [rec.mbid]
    assert call(fake, "GET", f"{mb}/isrc/GBAGS9400026", params={"fmt": "json"}, headers=UA).status_code == 404
    assert call(fake, "GET", f"{mb}/isrc/nope", params={"fmt": "json"}, headers=UA).json()["error"] == "Invalid isrc."
    with_isrcs = call(fake, "GET", f"{mb}/recording/{rec.mbid}", params={"inc": "isrcs", "fmt": "json"}, headers=UA)
    assert with_isrcs.json()["isrcs"] == ["GBAGS9400025"]
