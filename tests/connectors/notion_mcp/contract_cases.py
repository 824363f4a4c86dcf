"""Contract-suite cases for NotionMcpSource and NotionMcpDestination (for ``tests/contract/cases.py``).

To run the contract suite on them, ``tests/contract/cases.py`` appends them to its registries (at
its end, after its own definitions, which these cases use)::

    from tests.connectors.notion_mcp.contract_cases import NOTION_MCP_DESTINATION, NOTION_MCP_SOURCE

    SOURCE_CASES.append(NOTION_MCP_SOURCE)
    DESTINATION_CASES.append(NOTION_MCP_DESTINATION)

How the failure hooks map onto MCP: server errors, 403s and their retries happen at the HTTP level of
the MCP endpoint (``fail_next_http``, on the write tools for the destination); a 429 is Notion's,
behind the hosted server, which passes it on as a ``rate_limited`` tool result whose
``retry_after_seconds`` the client waits out; a revoked token is refused by the MCP endpoint (401).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from connectors.http import HttpSettings
from connectors.notion.mcp import NotionMcpDestination, NotionMcpSource
from tests.contract import cases as C
from tests.fakes.github import FakeClock
from tests.fakes.notion import FakeNotion
from tests.fakes.notion_mcp import IN_PROCESS_URL, FakeNotionMcp

WRITES = ("notion-create-pages", "notion-update-page")


def _mcp_options(mcp: FakeNotionMcp, clock: FakeClock, token: str) -> dict[str, Any]:
    return {
        "auth": token,
        "mcp_url": IN_PROCESS_URL,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=mcp.app), retry=C.NO_JITTER, sleep=clock.sleep, clock=clock.clock
        ),
        "rate": C.FAST,
    }


def _served(mcp: FakeNotionMcp, notion: FakeNotion) -> Callable[[int], int]:
    """Answers with ``status``: the MCP endpoint's, and for 429 Notion's (passed on as tool results)."""

    def served(status: int) -> int:
        rest = sum(1 for r in notion.log if r.status == 429) if status == 429 else 0
        return mcp.served[status] + rest

    return served


@asynccontextmanager
async def notion_mcp_source(tmp_path: Path) -> AsyncIterator[C.SourceHarness]:
    clock = FakeClock()
    notion = FakeNotion(rate=None, clock=clock.clock)
    mcp = FakeNotionMcp(notion, sleep=clock.sleep)
    ds_id = notion.add_database(C.NOTION_SOURCE_SCHEMA, title="Tasks").data_source_ids[0]
    for i in range(5):
        notion.add_page(
            ds_id,
            {
                "Name": f"Task {i}",
                "Stars": i,
                "Score": i + 0.25,
                "Done": i % 2 == 0,
                "Tags": ["a", "b"][: i % 3],
                "Due": dt.date(2024, 5, i + 1),
                "Seen": dt.datetime(2024, 5, 1, 10, i, tzinfo=C.UTC),
            },
        )

    def make() -> NotionMcpSource:
        return NotionMcpSource(
            ds_id,
            page_size=2,
            now=lambda: dt.datetime.fromtimestamp(clock.now, C.UTC),
            **_mcp_options(mcp, clock, notion.token),
        )

    source = make()
    yield C.SourceHarness(
        source,
        source.specs()[0],
        5,
        make,
        missing_item="00000000-0000-4000-8000-000000000000",
        inject_failures=lambda n, status: mcp.fail_next_http(n, status),
        revoke=lambda: notion.revoke_token(notion.token),
        forbid=lambda: mcp.fail_next_http(1, 403),
        rate_limit=lambda retry_after: notion.fail_next(1, 429, retry_after=int(retry_after), path=r"/query$"),
        served=_served(mcp, notion),
        sleeps=clock.sleeps,
    )


@asynccontextmanager
async def notion_mcp_destination(tmp_path: Path) -> AsyncIterator[C.DestinationHarness]:
    clock = FakeClock()
    notion = FakeNotion(rate=None, clock=clock.clock)
    mcp = FakeNotionMcp(notion, sleep=clock.sleep)
    db = notion.add_database(C.NOTION_DESTINATION_SCHEMA, title="Items")
    dest = NotionMcpDestination(
        db.id, key_property="Key", title_property="Name", **_mcp_options(mcp, clock, notion.token)
    )
    reader_token = notion.add_token()

    async def rows() -> dict[str, dict[str, Any]]:
        reader = NotionMcpSource(db.data_source_ids[0], **_mcp_options(mcp, clock, reader_token))
        records = await reader.fetch(reader.specs()[0])
        return C._unique(
            [
                (str(r.properties["Key"]), {k: v for k, v in r.properties.items() if k not in C.NOTION_BOOKKEEPING})
                for r in records
            ]
        )

    yield C.DestinationHarness(
        dest,
        C.sample_records(),
        rows,
        cleared=C._notion_cleared,
        inject_failures=lambda n, status: mcp.fail_next_http(n, status, tool=WRITES),
        revoke=lambda: notion.revoke_token(notion.token),
        forbid=lambda: mcp.fail_next_http(1, 403, tool=WRITES),
        rate_limit=lambda retry_after: notion.fail_next(1, 429, retry_after=int(retry_after), path=r"^/v1/pages"),
        served=_served(mcp, notion),
        sleeps=clock.sleeps,
    )


NOTION_MCP_SOURCE = C.SourceCase("notion-mcp", notion_mcp_source)
NOTION_MCP_DESTINATION = C.DestinationCase("notion-mcp", notion_mcp_destination)
