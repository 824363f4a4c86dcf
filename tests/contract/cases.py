"""The connectors under the contract suite, each wired to its fake (or to temp files) in-process.

A case is a name and a factory: ``make(tmp_path)`` is an async context manager yielding a harness,
the few handles the contract tests need. Adding a connector to the suite is adding one case here;
the tests in ``test_source_contract.py`` / ``test_destination_contract.py`` never change.

A hook that is None means the connector has no such failure mode (files and memory make no HTTP
calls, the local file destinations have no credential); the tests that need it skip with that reason.
Every fake shares one ``FakeClock``: its ``sleep`` never waits for real and records each wait.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors.core import Record, SourceSpec
from connectors.files import FileSpec, FilesSource, JSONLDestination, SQLiteDestination
from connectors.github import GitHubSource
from connectors.http import HttpSettings, Rate, RetryPolicy
from connectors.memory import MemoryDestination, MemorySource
from connectors.notion import NotionDestination, NotionSource
from tests.fakes.github import FakeClock, FakeGitHub
from tests.fakes.notion import FakeNotion

__all__ = [
    "DESTINATION_CASES",
    "SOURCE_CASES",
    "DestinationCase",
    "DestinationHarness",
    "SourceCase",
    "SourceHarness",
    "sample_records",
]

UTC = dt.UTC

# The toolkit's limiter paces in real (loop) time; the fakes' own limits are what a test exercises.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)
NOTION_API = "https://api.notion.com"


# --------------------------------------------------------------------------------------------------
# Harnesses


@dataclass
class SourceHarness:
    """What the source contract needs of one source case.

    Attributes:
        source: The source under test.
        spec: The spec the tests page through; its data must span at least two pages.
        expected_count: Records a full pass of ``spec`` yields.
        make_source: A FRESH source instance over the same data (a new process resuming a pass).
        item_for: The ``only_items`` entry that selects a record (GitHub: ``owner/repo``).
        missing_item: An ``only_items`` entry that selects nothing (and must not fail).
        ordered: Whether two passes return records in the same order (the API sorts).
        inject_failures: ``(n, status)``: the next n requests answer ``status``.
        revoke: Revoke the credential the source uses.
        revoked_status: The HTTP status the service answers a revoked credential with (401, unless the
            connector documents another; YouTube: Google answers a deleted API key with 400 keyInvalid).
        forbid: Answer the next request with a plain 403 (not a rate limit).
        rate_limit: ``(retry_after)``: answer the next request with 429 and ``Retry-After``.
        served: ``(status)`` -> how many responses the fake answered with that status.
        sleeps: Every wait of the source's HTTP client (fake time).
    """

    source: Any
    spec: SourceSpec
    expected_count: int
    make_source: Callable[[], Any]
    item_for: Callable[[Record], str] = lambda record: record.primary_key
    missing_item: str = "no-such-item"
    ordered: bool = True
    inject_failures: Callable[[int, int], None] | None = None
    revoke: Callable[[], None] | None = None
    revoked_status: int = 401
    forbid: Callable[[], None] | None = None
    rate_limit: Callable[[float], None] | None = None
    served: Callable[[int], int] | None = None
    sleeps: list[float] = field(default_factory=list)


@dataclass
class DestinationHarness:
    """What the destination contract needs of one destination case.

    Attributes:
        destination: The destination under test.
        records: Records valid for it (its schema has every property); at least three.
        rows: Reads every row back through the system: ``{primary_key: {property: value}}`` with the
            destination's bookkeeping (ids, sync stamps, the key column) left out; raises on a key
            stored twice.
        expected: What a record's properties read back as (the destination's documented encoding).
        cleared: What a property reads back as after None was written to it; None when the
            destination cannot clear properties.
        inject_failures: ``(n, status)``: the next n writes answer ``status``.
        revoke: Revoke the credential the destination uses.
        forbid: Answer the next write with a plain 403 (the credential lacks access).
        rate_limit: ``(retry_after)``: answer the next write with 429 and ``Retry-After``.
        served: ``(status)`` -> how many responses the fake answered with that status.
        sleeps: Every wait of the destination's HTTP client (fake time).
    """

    destination: Any
    records: list[Record]
    rows: Callable[[], Awaitable[dict[str, dict[str, Any]]]]
    expected: Callable[[Record], dict[str, Any]] = lambda record: dict(record.properties)
    cleared: Callable[[str], Any] | None = lambda name: None
    inject_failures: Callable[[int, int], None] | None = None
    revoke: Callable[[], None] | None = None
    forbid: Callable[[], None] | None = None
    rate_limit: Callable[[float], None] | None = None
    served: Callable[[int], int] | None = None
    sleeps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class SourceCase:
    name: str
    make: Callable[[Path], AbstractAsyncContextManager[SourceHarness]]


@dataclass(frozen=True)
class DestinationCase:
    name: str
    make: Callable[[Path], AbstractAsyncContextManager[DestinationHarness]]


def _unique(pairs: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, props in pairs:
        if key in out:
            raise AssertionError(f"key {key!r} is stored in more than one row")
        out[key] = props
    return out


# --------------------------------------------------------------------------------------------------
# Source data: 8 tasks, every neutral type, read 3 to a page by the files and memory sources

TASKS: list[dict[str, Any]] = [
    {
        "id": f"t{i:03d}",
        "title": f"Task {i}",
        "priority": i,
        "estimate": i + 0.5,
        "done": i % 2 == 0,
        "tags": ["a", "b"] if i % 3 else [],
        "due": dt.date(2024, 5, i + 1),
        "updated_at": dt.datetime(2024, 5, 1, 10, i, tzinfo=UTC),
        "owner": None if i == 4 else f"user{i}",
        "notes": f"Notes of task {i}",
    }
    for i in range(8)
]
TASK_TYPES = {
    "priority": "int",
    "estimate": "float",
    "done": "bool",
    "tags": "list",
    "due": "date",
    "updated_at": "datetime",
}
SMALL_PAGE = 3


def _task_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


@asynccontextmanager
async def _files_source(tmp_path: Path, fmt: str) -> AsyncIterator[SourceHarness]:
    path = tmp_path / f"tasks.{fmt}"
    with path.open("w", newline="", encoding="utf-8") as f:
        if fmt == "csv":
            writer = csv.DictWriter(f, fieldnames=list(TASKS[0]))
            writer.writeheader()
            for task in TASKS:
                writer.writerow({k: "" if v is None else _task_text(v) for k, v in task.items()})
        else:
            for task in TASKS:
                line = {k: v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for k, v in task.items()}
                f.write(json.dumps(line) + "\n")
    file_spec = FileSpec("tasks", str(path), "id", TASK_TYPES, body_column="notes")
    opened: list[FilesSource] = []

    def make() -> FilesSource:
        source = FilesSource([file_spec], page_size=SMALL_PAGE)
        opened.append(source)
        return source

    source = make()
    try:
        yield SourceHarness(source, source.specs()[0], len(TASKS), make)
    finally:
        for s in opened:
            s.close()


def files_csv_source(tmp_path: Path) -> AbstractAsyncContextManager[SourceHarness]:
    """FilesSource over a CSV (typed columns, an empty cell, a body column); no HTTP."""
    return _files_source(tmp_path, "csv")


def files_jsonl_source(tmp_path: Path) -> AbstractAsyncContextManager[SourceHarness]:
    """FilesSource over a JSONL file (JSON values, ISO dates typed); no HTTP."""
    return _files_source(tmp_path, "jsonl")


@asynccontextmanager
async def memory_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """MemorySource; no HTTP, no credential."""
    records = [
        Record(t["id"], {k: v for k, v in t.items() if k not in ("id", "notes")}, body=t["notes"]) for t in TASKS
    ]

    def make() -> MemorySource:
        return MemorySource({"tasks": records}, page_size=SMALL_PAGE)

    source = make()
    yield SourceHarness(source, source.specs()[0], len(records), make)


# --------------------------------------------------------------------------------------------------
# GitHub: a fresh FakeGitHub (fresh random token, so no per-credential state or ETag leaks) per case


def _github_hooks(fake: FakeGitHub, clock: FakeClock) -> dict[str, Any]:
    return {
        "item_for": lambda record: str(record.properties["Full name"]),
        "missing_item": "acme/no-such-repo",
        "inject_failures": lambda n, status: fake.fail_next(n, status=status),
        "revoke": fake.revoke_token,
        "forbid": lambda: fake.fail_next(1, status=403),
        "rate_limit": lambda retry_after: fake.secondary_rate_limit(1, status=429, retry_after=retry_after),
        "served": lambda status: fake.statuses()[status],
        "sleeps": clock.sleeps,
    }


def _github_factory(fake: FakeGitHub, clock: FakeClock, **kwargs: Any) -> Callable[[], GitHubSource]:
    def make() -> GitHubSource:
        return GitHubSource(
            token=fake.token,
            http=HttpSettings(
                transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock
            ),
            **kwargs,
        )

    return make


@asynccontextmanager
async def github_org_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """GitHubSource on an org of 101 repos: two listing pages of GitHub's fixed 100 (Link header)."""
    clock = FakeClock()
    fake = FakeGitHub(clock=clock.clock)
    fake.add_repos("acme", 101)
    make = _github_factory(fake, clock, orgs=["acme"])
    source = make()
    yield SourceHarness(source, source.specs()[0], 101, make, **_github_hooks(fake, clock))


@asynccontextmanager
async def github_named_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """GitHubSource on 5 named repos, 2 to a page (offset cursors)."""
    clock = FakeClock()
    fake = FakeGitHub(clock=clock.clock)
    names = [r.full_name for r in fake.add_repos("acme", 5)]
    make = _github_factory(fake, clock, repos=names, named_page_size=2)
    source = make()
    yield SourceHarness(source, source.specs()[0], len(names), make, **_github_hooks(fake, clock))


# --------------------------------------------------------------------------------------------------
# Notion


def _notion_options(fake: FakeNotion, clock: FakeClock) -> dict[str, Any]:
    return {
        "token": fake.token,
        "token_env": None,
        "base_url": NOTION_API,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock
        ),
        "rate": FAST,
    }


def _notion_served(fake: FakeNotion) -> Callable[[int], int]:
    return lambda status: sum(1 for r in fake.log if r.status == status)


NOTION_SOURCE_SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Stars": "number",
    "Score": "number",
    "Done": "checkbox",
    "Tags": {"type": "multi_select", "options": ["a", "b"]},
    "Due": "date",
    "Seen": "date",
    "Edited": "last_edited_time",
}


@asynccontextmanager
async def notion_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """NotionSource on a data source of 5 pages, 2 to a query page (Notion's next_cursor)."""
    clock = FakeClock()
    fake = FakeNotion(rate=None, clock=clock.clock)
    ds_id = fake.add_database(NOTION_SOURCE_SCHEMA, title="Tasks").data_source_ids[0]
    for i in range(5):
        fake.add_page(
            ds_id,
            {
                "Name": f"Task {i}",
                "Stars": i,
                "Score": i + 0.25,
                "Done": i % 2 == 0,
                "Tags": ["a", "b"][: i % 3],
                "Due": dt.date(2024, 5, i + 1),
                "Seen": dt.datetime(2024, 5, 1, 10, i, tzinfo=UTC),
            },
        )

    def make() -> NotionSource:
        return NotionSource(
            ds_id,
            page_size=2,
            now=lambda: dt.datetime.fromtimestamp(clock.now, UTC),
            **_notion_options(fake, clock),
        )

    source = make()
    yield SourceHarness(
        source,
        source.specs()[0],
        5,
        make,
        missing_item="00000000-0000-4000-8000-000000000000",  # a well-formed page id nobody has
        inject_failures=lambda n, status: fake.fail_next(n, status),
        revoke=lambda: fake.revoke_token(fake.token),
        forbid=lambda: fake.fail_next(1, 403),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after)),
        served=_notion_served(fake),
        sleeps=clock.sleeps,
    )


# --------------------------------------------------------------------------------------------------
# Destinations


def sample_records(n: int = 4) -> list[Record]:
    """Records of every neutral type, valid for every destination case (Notion's schema has them)."""
    return [
        Record(
            f"k{i:03d}",
            {
                "Name": f"Item {i}",
                "Count": i,
                "Score": i + 0.5,
                "Done": i % 2 == 1,
                "Tags": ["a", "c"] if i % 2 else ["b"],
                "Due": dt.date(2024, 6, i + 1),
                "Updated": dt.datetime(2024, 6, 1, 9, i, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "Notes": f"Line one of {i}\nline two",
            },
            body=f"Body of item {i}",
        )
        for i in range(n)
    ]


def _flat_properties(row: dict[str, Any], fixed: set[str]) -> dict[str, Any]:
    """A ``read_rows`` dict without its fixed fields (a property named like one is ``property:<name>``)."""
    out = {}
    for name, value in row.items():
        if name in fixed:
            continue
        out[name.removeprefix("property:")] = value
    return out


@asynccontextmanager
async def sqlite_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """SQLiteDestination: typed columns; None clears a column. No HTTP, no credential."""
    dest = SQLiteDestination(tmp_path / "dest.sqlite", "items")

    async def rows() -> dict[str, dict[str, Any]]:
        fixed = {"id", dest.key_column, "body", "synced_at"}
        return _unique([(r[dest.key_column], _flat_properties(r, fixed)) for r in dest.read_rows()])

    yield DestinationHarness(dest, sample_records(), rows)


@asynccontextmanager
async def jsonl_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """JSONLDestination: tagged dates; None clears. No HTTP, no credential."""
    dest = JSONLDestination(tmp_path / "dest.jsonl")

    async def rows() -> dict[str, dict[str, Any]]:
        fixed = {"id", "key", "body", "synced_at"}
        return _unique([(r["key"], _flat_properties(r, fixed)) for r in dest.read_rows()])

    yield DestinationHarness(dest, sample_records(), rows)


@asynccontextmanager
async def memory_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """MemoryDestination: values kept as sent; None clears. Its credential can be revoked (no HTTP)."""
    dest = MemoryDestination(rate_limit_key="memory-destination")

    async def rows() -> dict[str, dict[str, Any]]:
        return _unique([(row.key, dict(row.properties)) for row in dest.rows.values()])

    def revoke() -> None:
        dest.credential = None  # type: ignore[assignment]  # what a revoked token looks like to it

    yield DestinationHarness(dest, sample_records(), rows, revoke=revoke)


NOTION_DESTINATION_SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Key": "rich_text",
    "Count": "number",
    "Score": "number",
    "Done": "checkbox",
    "Tags": {"type": "multi_select", "options": ["a", "b", "c"]},
    "Due": "date",
    "Updated": "date",
    "Notes": "rich_text",
    "Last synced": "date",
}
NOTION_BOOKKEEPING = {"Key", "Last synced"}  # the key and the sync stamp, written by the destination


def _notion_cleared(name: str) -> Any:
    # README "Writing: encodings": None unchecks a checkbox (it cannot be empty) and empties a
    # multi-select, which reads back as []; every other type reads back as None.
    return {"Done": False, "Tags": []}.get(name)


@asynccontextmanager
async def notion_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """NotionDestination on a database with a property per sample property; rows read back with
    NotionSource (the page id is its key there; our key is the ``Key`` property)."""
    clock = FakeClock()
    fake = FakeNotion(rate=None, clock=clock.clock)
    db = fake.add_database(NOTION_DESTINATION_SCHEMA, title="Items")
    options = _notion_options(fake, clock)
    dest = NotionDestination(db.id, key_property="Key", title_property="Name", database_id_env=None, **options)

    # Rows are read back with a second integration token, so revoking the destination's does not
    # blind the test.
    reader_options = {**options, "token": fake.add_token()}

    async def rows() -> dict[str, dict[str, Any]]:
        reader = NotionSource(db.data_source_ids[0], incremental=False, **reader_options)
        records = await reader.fetch(reader.specs()[0])
        return _unique(
            [
                (str(r.properties["Key"]), {k: v for k, v in r.properties.items() if k not in NOTION_BOOKKEEPING})
                for r in records
            ]
        )

    yield DestinationHarness(
        dest,
        sample_records(),
        rows,
        cleared=_notion_cleared,
        # Writes only (creates and updates). 503 is never ambiguous, so even a create is resent; after
        # a 500/502/504 a create is not (Notion may have acted) and the engine's reconcile adopts it.
        inject_failures=lambda n, status: fake.fail_next(n, status, path=r"^/v1/pages"),
        revoke=lambda: fake.revoke_token(fake.token),
        forbid=lambda: fake.fail_next(1, 403, path=r"^/v1/pages"),  # restricted_resource
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after), path=r"^/v1/pages"),
        served=_notion_served(fake),
        sleeps=clock.sleeps,
    )


# --------------------------------------------------------------------------------------------------
# The registry

SOURCE_CASES = [
    SourceCase("files-csv", files_csv_source),
    SourceCase("files-jsonl", files_jsonl_source),
    SourceCase("memory", memory_source),
    SourceCase("github-org", github_org_source),
    SourceCase("github-named", github_named_source),
    SourceCase("notion", notion_source),
]

DESTINATION_CASES = [
    DestinationCase("sqlite", sqlite_destination),
    DestinationCase("jsonl", jsonl_destination),
    DestinationCase("memory", memory_destination),
    DestinationCase("notion", notion_destination),
]


# Notion over its hosted MCP server (OAuth): the same contract, through the fake MCP server.
from tests.connectors.notion_mcp.contract_cases import NOTION_MCP_DESTINATION, NOTION_MCP_SOURCE  # noqa: E402

SOURCE_CASES.append(NOTION_MCP_SOURCE)
DESTINATION_CASES.append(NOTION_MCP_DESTINATION)

# The connectors whose cases live next to their own tests. Their modules import this one, so they are
# imported as modules (a partially initialized one when a test there was imported first) and their
# factories looked up when a case runs.
from tests.connectors.asana import contract_cases as _asana  # noqa: E402
from tests.connectors.contentful import contract_cases as _contentful  # noqa: E402
from tests.connectors.jira import contract_cases as _jira  # noqa: E402
from tests.connectors.luma import cases as _luma  # noqa: E402
from tests.connectors.youtube import cases as _youtube  # noqa: E402


def asana_destination(tmp_path: Path) -> AbstractAsyncContextManager[DestinationHarness]:
    """AsanaDestination: custom fields by name, the key in a Text field (``tests/connectors/asana``)."""
    return _asana.asana_destination(tmp_path)


def jira_source(tmp_path: Path) -> AbstractAsyncContextManager[SourceHarness]:
    """JiraSource: one project, 2 issues a page with nextPageToken (``tests/connectors/jira``)."""
    return _jira.jira_source(tmp_path)


def jira_destination(tmp_path: Path) -> AbstractAsyncContextManager[DestinationHarness]:
    """JiraDestination: the key in an issue entity property (``tests/connectors/jira``)."""
    return _jira.jira_destination(tmp_path)


def contentful_source(tmp_path: Path) -> AbstractAsyncContextManager[SourceHarness]:
    """ContentfulSource: the CDA Sync API (``tests/connectors/contentful``)."""
    return _contentful.contentful_source(tmp_path)


def contentful_destination(tmp_path: Path) -> AbstractAsyncContextManager[DestinationHarness]:
    """ContentfulDestination: entries keyed by a ``key`` field (``tests/connectors/contentful``)."""
    return _contentful.contentful_destination(tmp_path)


@asynccontextmanager
async def youtube_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """YouTubeSource: a channel's uploads (``tests/connectors/youtube``).

    Google answers a deleted API key with 400 ``keyInvalid``, not 401 (``test_youtube_errors.py``): still
    an auth failure, never retried, so the revoked-credential test expects a 400 to be served.
    """
    async with _youtube.youtube_source(tmp_path) as harness:
        harness.revoked_status = 400
        yield harness


def luma_source(tmp_path: Path) -> AbstractAsyncContextManager[SourceHarness]:
    """LumaSource: a calendar's events (``tests/connectors/luma``)."""
    return _luma.luma_source(tmp_path)


def luma_destination(tmp_path: Path) -> AbstractAsyncContextManager[DestinationHarness]:
    """LumaDestination: ``stores_keys = False`` (an event has no field for our key), so the suite's
    checks of the listing skip themselves; rows are read back by name (``tests/connectors/luma``)."""
    return _luma.luma_destination(tmp_path)


SOURCE_CASES += [
    SourceCase("jira", jira_source),
    SourceCase("contentful", contentful_source),
    SourceCase("youtube", youtube_source),
    SourceCase("luma", luma_source),
]
DESTINATION_CASES += [
    DestinationCase("asana", asana_destination),
    DestinationCase("jira", jira_destination),
    DestinationCase("contentful", contentful_destination),
    DestinationCase("luma", luma_destination),
]

# Spotify and ListenBrainz (music connectors keyed by ISRC): cases in their own test folders.
from tests.connectors.listenbrainz import cases as _listenbrainz  # noqa: E402
from tests.connectors.spotify import cases as _spotify  # noqa: E402

SOURCE_CASES += [
    SourceCase("spotify", lambda tmp_path: _spotify.spotify_source(tmp_path)),
    SourceCase("listenbrainz", lambda tmp_path: _listenbrainz.listenbrainz_source(tmp_path)),
]
DESTINATION_CASES += [
    DestinationCase("spotify", lambda tmp_path: _spotify.spotify_destination(tmp_path)),
    DestinationCase("listenbrainz", lambda tmp_path: _listenbrainz.listenbrainz_destination(tmp_path)),
]
