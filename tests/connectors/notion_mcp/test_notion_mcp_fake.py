"""The fake Notion MCP server itself: SQL, the flat format, auth, and that it shares the REST fake's state."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from connectors.core import AuthError
from connectors.mcp import ToolResult, open_mcp_session
from tests.connectors.notion_mcp.conftest import FAST, StaticBearer
from tests.fakes.notion import FakeNotion
from tests.fakes.notion_mcp import IN_PROCESS_URL, FakeNotionMcp


async def call(fake: FakeNotionMcp, tool: str, arguments: dict[str, Any], token: str | None = None) -> ToolResult:
    async with open_mcp_session(
        IN_PROCESS_URL,
        auth=StaticBearer(token or fake.notion.token),
        transport=httpx.ASGITransport(app=fake.app),
        rate=FAST,
    ) as mcp:
        return await mcp.call(tool, arguments, check=False)


def envelope(result: ToolResult) -> dict[str, Any]:
    """A ``notion-fetch`` answer's JSON envelope (``metadata``, ``title``, ``url``, ``text``), as the hosted server's."""
    assert not result.is_error and result.structured is None, result.text
    data = json.loads(result.text)
    assert set(data) >= {"metadata", "title", "url", "text"} and isinstance(data["text"], str)
    return data


def sql(ds_id: str, query: str, params: list[Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"data_source_urls": [f"collection://{ds_id}"], "query": query}
    if params is not None:
        data["params"] = params
    return {"data": data}


async def test_sql_filters_orders_limits_and_binds_parameters(mcp_fake, notion, ds_id):
    for i in range(6):
        notion.add_page(ds_id, {"Name": f"n{i}", "Key": f"k{i}", "Stars": i, "Archived": i % 2 == 0})
    table = f'"collection://{ds_id}"'
    result = await call(
        mcp_fake,
        "notion-query-data-sources",
        sql(
            ds_id,
            f'SELECT "Key", "Stars" FROM {table} WHERE "Archived" = ? ORDER BY "Stars" DESC LIMIT 2 OFFSET 1',
            ["__YES__"],
        ),
    )
    assert result.structured == {"results": [{"Key": "k2", "Stars": 2}, {"Key": "k0", "Stars": 0}]}
    keyed = await call(mcp_fake, "notion-query-data-sources", sql(ds_id, f"SELECT * FROM {table} WHERE \"Key\" = 'k3'"))
    (row,) = keyed.data()["results"]
    assert row["url"].startswith("https://www.notion.so/") and row["userDefined:URL"] is None
    assert row["Languages"] == "[]" and row["date:Pushed at:start"] is None and row["Archived"] == "__NO__"


async def test_sql_is_read_only_and_errors_are_tool_errors(mcp_fake, ds_id):
    table = f'"collection://{ds_id}"'
    for statement in (f"DELETE FROM {table}", "SELECT nonsense FROM nowhere"):
        result = await call(mcp_fake, "notion-query-data-sources", sql(ds_id, statement))
        assert result.is_error and "SQL error" in result.text


async def test_the_flat_format_is_validated_like_the_hosted_tools(mcp_fake, notion, ds_id):
    bad = [
        ({"URL": "https://x"}, 'must be written as "userDefined:URL"'),
        ({"Stars": "12"}, "expected a number"),
        ({"Archived": "yes"}, '"__YES__" or "__NO__"'),
        ({"Archived": True}, "Input validation error"),  # the tool's input schema has no booleans
        ({"Nope": 1}, "Nope is not a property that exists."),
        ({"Edited": "2024-01-01"}, "last_edited_time property, which cannot be set"),
        ({"Languages": ["a,b"]}, "commas are not valid"),  # Notion's own (REST) message
    ]
    for properties, message in bad:
        result = await call(
            mcp_fake,
            "notion-create-pages",
            {"parent": {"data_source_id": ds_id}, "pages": [{"properties": properties}]},
        )
        assert result.is_error and message in result.text, (properties, result.text)
    assert notion.pages(ds_id) == []


async def test_created_pages_live_in_the_rest_fake(mcp_fake, notion: FakeNotion, db, ds_id):
    content = "\n\n".join(f"paragraph {i}" for i in range(150))  # more than 100 blocks: appended
    result = await call(
        mcp_fake,
        "notion-create-pages",
        {
            "parent": {"database_id": db.id},
            "pages": [
                {
                    "properties": {
                        "Name": "From MCP",
                        "Languages": '["Go", "Zig"]',
                        "date:Pushed at:start": "2024-05-01T10:00:00Z",
                        "date:Pushed at:is_datetime": 1,
                        "userDefined:URL": "https://example.com",
                        "Archived": "__YES__",
                    },
                    "content": content,
                }
            ],
        },
    )
    (page,) = result.data()["pages"]
    values = notion.values(page["id"])
    assert values["Name"] == "From MCP" and values["Languages"] == ["Go", "Zig"] and values["Archived"] is True
    assert values["Pushed at"] == "2024-05-01T10:00:00Z" and values["URL"] == "https://example.com"
    assert "Zig" in notion.options(ds_id, "Languages") and notion.body_text(page["id"]) == content
    updated = await call(
        mcp_fake,
        "notion-update-page",
        {"page_id": page["id"], "command": "update_properties", "properties": {"Languages": None}},
    )
    assert not updated.is_error and notion.values(page["id"])["Languages"] == []
    fetched = envelope(await call(mcp_fake, "notion-fetch", {"id": page["url"]}))
    assert fetched["metadata"] == {"type": "page"} and fetched["title"] == "From MCP"
    assert f'<parent-data-source url="collection://{ds_id}"/>' in fetched["text"]
    assert "paragraph 149" in fetched["text"]


async def test_fetch_shows_databases_data_sources_and_their_schema(mcp_fake, db, ds_id):
    database = envelope(await call(mcp_fake, "notion-fetch", {"id": db.id.replace("-", "")}))
    assert database["metadata"] == {"type": "database"}
    assert f'<database url="{{{{https://www.notion.so/{db.id.replace("-", "")}}}}}"' in database["text"]
    assert f'<data-source url="{{{{collection://{ds_id}}}}}">' in database["text"]
    assert "<data-source-state>" in database["text"]  # as the hosted server: each data source's whole state
    source = envelope(await call(mcp_fake, "notion-fetch", {"id": f"collection://{ds_id}"}))
    assert source["metadata"] == {"type": "data_source"}
    text = source["text"]
    state = json.loads(text.split("<data-source-state>")[1].split("</data-source-state>")[0])
    assert state["schema"]["Description"] == {"type": "text"}
    assert [o["name"] for o in state["schema"]["Language"]["options"]] == ["Python", "Go"]
    assert '"date:Pushed at:is_datetime" INTEGER' in text
    missing = await call(mcp_fake, "notion-fetch", {"id": "00000000-0000-4000-8000-000000000000"})
    assert missing.is_error and "Could not find" in missing.text


async def test_create_database_parses_the_ddl(mcp_fake, notion: FakeNotion):
    ddl = "CREATE TABLE (\"Key\" RICH_TEXT, \"Tags\" MULTI_SELECT('it''s':blue, 'b'), \"Due\" DATE, \"N\" NUMBER FORMAT 'dollar')"
    result = await call(mcp_fake, "notion-create-database", {"title": "Made", "schema": ddl})
    assert not result.is_error and "collection://" in result.text
    db = next(d for d in notion.databases.values() if d.title == "Made")
    props = notion.data_sources[db.data_source_ids[0]].properties
    assert {n: p["type"] for n, p in props.items()} == {
        "Name": "title",
        "Key": "rich_text",
        "Tags": "multi_select",
        "Due": "date",
        "N": "number",
    }
    assert notion.options(db.data_source_ids[0], "Tags") == ["it's", "b"]


async def test_bearer_tokens_are_checked_by_a_pluggable_validate(notion: FakeNotion, ds_id):
    fake = FakeNotionMcp(notion, validate=lambda token: token == "oauth-access-token")
    ok = await call(fake, "notion-fetch", {"id": f"collection://{ds_id}"}, token="oauth-access-token")
    assert not ok.is_error  # REST calls go out with the FakeNotion's own token
    with pytest.raises(AuthError):  # a token the validator rejects opens no session
        await call(fake, "notion-fetch", {"id": f"collection://{ds_id}"}, token=notion.token)


async def test_a_rejected_token_answers_401_with_www_authenticate(mcp_fake):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mcp_fake.app)) as client:
        response = await client.post(IN_PROCESS_URL, json={}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and "invalid_token" in response.headers["www-authenticate"]
