"""The fake Spotify API answers as the Web API reference says (checked without the connector)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.fakes.spotify import FakeSpotify


def call(fake: FakeSpotify, method: str, path: str, token: str | None = "", **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token or fake.token}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fake.app), base_url="https://api.spotify.com"
        ) as c:
            return await c.request(method, path, headers=headers, **kwargs)

    return asyncio.run(go())


def test_errors_have_spotifys_shape() -> None:
    fake = FakeSpotify()
    assert call(fake, "GET", "/v1/me/tracks", token=None).json() == {
        "error": {"status": 401, "message": "No token provided"}
    }
    assert call(fake, "GET", "/v1/me/tracks", token="nope").json()["error"]["message"] == "Invalid access token"
    assert call(fake, "GET", "/v1/me/tracks", params={"limit": 51}).status_code == 400
    assert (
        call(fake, "PUT", "/v1/me/tracks", json={"ids": ["not-an-id"]}).json()["error"]["message"]
        == "Invalid base62 id"
    )
    assert call(fake, "PUT", "/v1/me/tracks", json={"ids": ["4iV5W9uYEdYUVa79Axb7Rh"] * 51}).status_code == 400
    assert call(fake, "GET", "/v1/search", params={"type": "track"}).json()["error"]["message"] == "No search query"
    fake.expire_token()
    assert call(fake, "GET", "/v1/me/tracks").json()["error"]["message"] == "The access token expired"


def test_a_page_names_the_next_one_and_a_save_is_idempotent() -> None:
    fake = FakeSpotify()
    tracks = [fake.add_track(f"Song {i}", "Band", isrc=f"USABC24{i:05d}") for i in range(3)]
    for t in tracks:
        fake.save(t)
    page = call(fake, "GET", "/v1/me/tracks", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert page["next"] == "https://api.spotify.com/v1/me/tracks?offset=2&limit=2" and page["previous"] is None
    track = page["items"][0]["track"]
    assert len(track["id"]) == 22 and track["uri"] == f"spotify:track:{track['id']}"
    before = [s.added_at for s in fake.library.values()]
    assert call(fake, "PUT", "/v1/me/tracks", json={"ids": [tracks[0].id]}).status_code == 200
    assert [s.added_at for s in fake.library.values()] == before
    found = call(fake, "GET", "/v1/search", params={"q": "isrc:usabc2400001", "type": "track"}).json()
    assert [t["id"] for t in found["tracks"]["items"]] == [tracks[1].id]
