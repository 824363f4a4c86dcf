"""ContentfulMcpDestination at the session level and its pseudo-XML scraping; the fake's own contract."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import httpx
import pytest

from connectors.contentful.mcp import ContentfulMcpDestination, entry_id_of, fields_of, version_of
from connectors.core import AuthError, ConfigError, Record, RecordError
from connectors.http import HttpSettings
from connectors.mcp import open_mcp_session
from tests.connectors.contentful_mcp.conftest import CONTENT_TYPE, FAST, FIELD_MAP, SPACE, DestinationFactory
from tests.fakes.contentful import FakeContentful, FakeEnvironment
from tests.fakes.contentful_mcp import IN_PROCESS_URL, FakeContentfulMcp, serve

NOW = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
URN = "crn:contentful:::content:spaces/s1/environments/master/entries/"


@pytest.mark.parametrize(
    ("text", "entry_id", "version"),
    [
        (
            f"Entry created successfully:\n<entry><sys><space><id>s1</id></space><id>abc</id><publishedVersion>4"
            f"</publishedVersion><version>6</version></sys><urn>{URN}abc</urn><*>x</*></entry>",
            "abc",
            6,
        ),
        ("Done. <sys><space><id>s1</id></space>\n  <id>X_1.y-z</id><version> 2 </version></sys>", "X_1.y-z", 2),
        ('Here is the entry: {"sys": {"id": "json1", "version": 3, "publishedVersion": 9}}', "json1", 3),
        ("Entry created, no details.", None, None),
    ],
)
def test_scraping_ids_and_versions(text: str, entry_id: str | None, version: int | None) -> None:
    assert entry_id_of(text) == entry_id
    assert version_of(text) == version


def test_fields_are_read_from_the_fields_tag_or_json() -> None:
    assert fields_of('x <fields>{"title": {"en-US": "T"}}</fields> <*>') == {"title": {"en-US": "T"}}
    assert fields_of('ok {"sys": {"id": "a"}, "fields": {"n": {"en-US": 1}}}') == {"n": {"en-US": 1}}
    assert fields_of("<fields>not json</fields>") is None


async def test_tools_are_refused_before_get_initial_context(mcp: FakeContentfulMcp) -> None:
    async with open_mcp_session(
        IN_PROCESS_URL, auth=mcp.token, transport=httpx.ASGITransport(app=mcp.app), rate=FAST
    ) as session:
        early = await session.call("get_entry", {"spaceId": SPACE, "entryId": "x"}, check=False)
        assert early.is_error and "get_initial_context" in early.text
        await session.call("get_initial_context", {})
        missing = await session.call("get_entry", {"spaceId": SPACE, "entryId": "x"}, check=False)
        assert missing.is_error and "could not be found" in missing.text  # the CMA 404, as the server words it


async def test_entries_created_over_mcp_are_entries_of_the_fake(
    make_dest: DestinationFactory, contentful: FakeContentful, env: FakeEnvironment
) -> None:
    dest = make_dest()
    async with dest.connect() as session:
        entry_id = await session.create(Record("k", {"Name": "Hello", "Views": 3}), NOW)
        assert await session.query_existing_ids() == {}
    assert contentful.values(env, entry_id) == {"title": "Hello", "views": 3}
    assert contentful.requests("cma", "PUT", rf"/entries/{entry_id}$")  # through the CMA


async def test_an_answer_without_an_id_is_a_record_error_quoting_it(
    make_dest: DestinationFactory, mcp: FakeContentfulMcp
) -> None:
    mcp.answer_override["create_entry"] = "Entry created successfully (details withheld) " + "x" * 500
    async with make_dest().connect() as session:
        with pytest.raises(RecordError) as info:
            await session.create(Record("k", {"Name": "Hello"}), NOW)
    assert "details withheld" in str(info.value) and "x" * 300 not in str(info.value)


async def test_the_id_falls_back_to_the_sys_id_without_a_urn(contentful: FakeContentful, env: FakeEnvironment) -> None:
    mcp = FakeContentfulMcp(contentful, urn=False)
    dest = ContentfulMcpDestination(
        SPACE, CONTENT_TYPE, FIELD_MAP, auth=mcp.token, mcp_url=IN_PROCESS_URL,
        http=HttpSettings(transport=httpx.ASGITransport(app=mcp.app)),
        rate=FAST,
    )  # fmt: skip
    async with dest.connect() as session:
        entry_id = await session.create(Record("k", {"Name": "No URN"}), NOW)
        assert await session.update(entry_id, Record("k", {"Name": "Still no URN"}), NOW)
    assert contentful.values(env, entry_id)["title"] == "Still no URN"


async def test_an_unknown_field_or_content_type_is_a_config_error_at_connect(mcp: FakeContentfulMcp) -> None:
    common: dict[str, Any] = {
        "auth": mcp.token,
        "mcp_url": IN_PROCESS_URL,
        "http": HttpSettings(transport=httpx.ASGITransport(app=mcp.app)),
        "rate": FAST,
    }
    with pytest.raises(ConfigError, match="no field 'nope'"):
        async with ContentfulMcpDestination(SPACE, CONTENT_TYPE, {"X": "nope"}, **common).connect():
            pass
    with pytest.raises(ConfigError, match="no content type 'missing'"):
        async with ContentfulMcpDestination(SPACE, "missing", {"X": "title"}, **common).connect():
            pass


async def test_a_deleted_entry_is_a_record_error(
    make_dest: DestinationFactory, contentful: FakeContentful, env: FakeEnvironment
) -> None:
    async with make_dest().connect() as session:
        entry_id = await session.create(Record("k", {"Name": "Gone soon"}), NOW)
        contentful.delete_entry(env, entry_id)
        with pytest.raises(RecordError, match="no longer exists"):
            await session.update(entry_id, Record("k", {"Name": "x"}), NOW)


async def test_401_is_an_auth_error(make_dest: DestinationFactory) -> None:
    dest = make_dest(auth="wrong-token-0123456789abcdef")
    with pytest.raises(AuthError) as info:
        async with dest.connect():
            pass
    assert dest.is_auth_error(info.value) and "wrong-token" not in str(info.value)


def test_configuration_and_credentials(mcp: FakeContentfulMcp) -> None:
    class Store:
        def __init__(self, refresh: str) -> None:
            self.refresh = refresh

        def load(self, account: str) -> tuple[object, int]:
            class Token:
                access_token = "at"
                refresh_token = self.refresh

            return Token(), 1

    dest = ContentfulMcpDestination(SPACE, CONTENT_TYPE, FIELD_MAP, token_store=Store("r1"))  # type: ignore[arg-type]
    assert dest.configured and dest.config_hint == "configured"
    assert dest.credential_key == "contentful-mcp:contentful-mcp"
    assert dest.credential_fingerprint() == hashlib.sha256(b"r1").hexdigest()
    dest.token_store = Store("r2")  # type: ignore[assignment]
    assert dest.credential_fingerprint() == hashlib.sha256(b"r2").hexdigest()  # a new login changes it
    assert dest.stores_keys is False and dest.max_concurrency == 1
    assert dest.describe() == f"https://app.contentful.com/spaces/{SPACE}/entries?contentTypeId={CONTENT_TYPE}"
    bare = ContentfulMcpDestination("", CONTENT_TYPE, FIELD_MAP)
    assert not bare.configured and "OAuth login" in bare.config_hint and "space_id" in bare.config_hint


async def test_over_loopback(contentful: FakeContentful, env: FakeEnvironment) -> None:
    mcp = FakeContentfulMcp(contentful)
    with serve(mcp) as url:
        dest = ContentfulMcpDestination(SPACE, CONTENT_TYPE, FIELD_MAP, auth=mcp.token, mcp_url=url, rate=FAST)
        async with dest.connect() as session:
            entry_id = await session.create(Record("k", {"Name": "Over loopback"}), NOW)
    assert contentful.values(env, entry_id)["title"] == "Over loopback"
