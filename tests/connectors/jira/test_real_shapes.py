"""The Jira connectors against payloads in the shapes Jira Cloud really sends.

The fixtures below are written from Atlassian's REST v3 reference examples (issue, search/jql,
error bodies), the rate-limiting page (429 headers) and public reports of real traffic
(JRACLOUD-92184: the last page of ``/search/jql`` has no ``nextPageToken`` key at all; a failed
Basic login answers a plain-text 401 with ``X-Seraph-LoginReason``). Values are made up; shapes are
not: ids are numeric strings, timestamps carry Jira's offset without a colon
(``2024-03-01T10:15:30.000+0100``), ``assignee`` may be null, descriptions are ADF, there is no
``total`` and no ``renderedFields`` unless expanded.

Some tests replay recorded-style answers through ``httpx.MockTransport`` (the connector's own
transport hook, no patching); the others run against ``tests.fakes.jira``, which now renders the
same shapes.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import httpx
import pytest

from connectors.core import AuthError, Record, RecordError, SourceSpec
from connectors.http import HttpSettings
from connectors.jira import JiraClient, JiraDestination, JiraRejected, JiraSource, issue_record
from tests.connectors.jira.conftest import FAST, NO_JITTER, client_options
from tests.fakes.github import FakeClock
from tests.fakes.jira import SITE, FakeJira
from tests.fakes.replay import Answer
from tests.fakes.replay import Replay as RecordedReplay

PLUS_ONE = dt.timezone(dt.timedelta(hours=1))
MINUS_FIVE = dt.timezone(dt.timedelta(hours=-5))
PLUS_FIVE_THIRTY = dt.timezone(dt.timedelta(hours=5, minutes=30))

START_DATE = "customfield_10015"  # Jira Cloud's "Start date" (a date picker) on every site
DEADLINE = "customfield_10050"  # a date-time custom field
TEAM = "customfield_10001"  # a text field whose value happens to look like a date

CUSTOM_FIELDS = {"Start": START_DATE, "Deadline": DEADLINE, "Sprint label": TEAM}

# ``expand=schema`` puts the types of the returned fields at the top of a search answer.
SCHEMA = {
    START_DATE: {
        "type": "date",
        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker",
        "customId": 10015,
    },
    DEADLINE: {
        "type": "datetime",
        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datetime",
        "customId": 10050,
    },
    TEAM: {
        "type": "string",
        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
        "customId": 10001,
    },
}


def documented_issue(issue_id: str = "10002", key: str = "ED-1", **fields: Any) -> dict[str, Any]:
    """An issue of ``/search/jql`` as the v3 reference shows one (values ours)."""
    base = "https://your-domain.atlassian.net/rest/api/3"
    body = {
        "summary": "Main order flow broken",
        "status": {
            "self": f"{base}/status/3",
            "description": "This issue is being actively worked on at the moment by the assignee.",
            "iconUrl": "https://your-domain.atlassian.net/images/icons/statuses/inprogress.png",
            "name": "In Progress",
            "id": "3",
            "statusCategory": {
                "self": f"{base}/statuscategory/4",
                "id": 4,
                "key": "indeterminate",
                "colorName": "yellow",
                "name": "In Progress",
            },
        },
        "issuetype": {"self": f"{base}/issuetype/10001", "id": "10001", "name": "Task", "subtask": False},
        "priority": {"self": f"{base}/priority/3", "iconUrl": "", "name": "Medium", "id": "3"},
        "assignee": None,
        "reporter": {
            "self": f"{base}/user?accountId=5b10a2844c20165700ede21g",
            "accountId": "5b10a2844c20165700ede21g",
            "displayName": "Mia Krystof",
            "active": True,
            "timeZone": "Europe/Paris",
            "accountType": "atlassian",
        },
        "labels": ["checkout", "p1"],
        "components": [{"self": f"{base}/component/10000", "id": "10000", "name": "Checkout"}],
        "fixVersions": [],
        "duedate": "2024-03-15",
        "created": "2024-03-01T10:15:30.000+0100",
        "updated": "2024-03-02T08:00:00.000-0500",
        "project": {
            "self": f"{base}/project/10000",
            "id": "10000",
            "key": "ED",
            "name": "Edison",
            "projectTypeKey": "software",
        },
        "description": {
            "type": "doc",
            "version": 1,
            "content": [
                {
                    "type": "paragraph",
                    "content": [
                        {"type": "text", "text": "Orders fail at payment, see "},
                        {"type": "mention", "attrs": {"id": "5b10a2844c20165700ede21g", "text": "@Mia Krystof"}},
                    ],
                },
                {
                    "type": "bulletList",
                    "content": [
                        {
                            "type": "listItem",
                            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "card"}]}],
                        },
                        {
                            "type": "listItem",
                            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "wallet"}]}],
                        },
                    ],
                },
            ],
        },
        START_DATE: "2024-03-01",
        DEADLINE: "2024-03-05T17:45:00.000+0530",
        TEAM: "2024-03-01",
    }
    body.update(fields)
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": issue_id,
        "self": f"{base}/issue/{issue_id}",
        "key": key,
        "fields": body,
    }


# --------------------------------------------------------------------------------------------------
# Record building


def test_a_documented_issue_becomes_a_record_of_neutral_values():
    record = issue_record(
        documented_issue(), base_url="https://your-domain.atlassian.net", custom_fields=CUSTOM_FIELDS, schema=SCHEMA
    )
    assert isinstance(record, Record)
    props = record.properties
    assert record.primary_key == "10002"
    assert props["Issue Key"] == "ED-1" and props["URL"] == "https://your-domain.atlassian.net/browse/ED-1"
    assert props["Status"] == "In Progress" and props["Assignee"] is None and props["Reporter"] == "Mia Krystof"
    assert props["Due"] == dt.date(2024, 3, 15)
    # Jira's offset without a colon, kept: the instant and the wall time Jira showed.
    assert props["Created"] == dt.datetime(2024, 3, 1, 10, 15, 30, tzinfo=PLUS_ONE)
    assert props["Created"].utcoffset() == dt.timedelta(hours=1)
    assert props["Updated"].utcoffset() == dt.timedelta(hours=-5)
    assert props["Updated"] == dt.datetime(2024, 3, 2, 13, 0, tzinfo=dt.UTC)
    assert record.body == "Orders fail at payment, see @Mia Krystof\n\n- card\n- wallet"


def test_custom_date_and_date_time_fields_are_decoded_by_the_answers_schema():
    props = issue_record(documented_issue(), base_url=SITE, custom_fields=CUSTOM_FIELDS, schema=SCHEMA).properties  # type: ignore[union-attr]
    assert props["Start"] == dt.date(2024, 3, 1) and type(props["Start"]) is dt.date
    deadline = props["Deadline"]
    assert isinstance(deadline, dt.datetime) and deadline.tzinfo is not None
    assert deadline == dt.datetime(2024, 3, 5, 17, 45, tzinfo=PLUS_FIVE_THIRTY)
    assert deadline.utcoffset() == dt.timedelta(hours=5, minutes=30)
    # A text field stays text, even when its value looks like a date: the schema says "string".
    assert props["Sprint label"] == "2024-03-01"


def test_without_a_schema_custom_fields_in_jiras_date_renderings_are_still_typed():
    props = issue_record(documented_issue(), base_url=SITE, custom_fields=CUSTOM_FIELDS).properties  # type: ignore[union-attr]
    assert props["Start"] == dt.date(2024, 3, 1)
    assert props["Deadline"] == dt.datetime(2024, 3, 5, 12, 15, tzinfo=dt.UTC)
    assert props["Deadline"].utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_an_unparseable_date_time_is_kept_as_text_rather_than_failing_the_record():
    issue = documented_issue(**{DEADLINE: "2024-13-45T99:00:00.000+0100"})
    props = issue_record(issue, base_url=SITE, custom_fields=CUSTOM_FIELDS, schema=SCHEMA).properties  # type: ignore[union-attr]
    assert props["Deadline"] == "2024-13-45T99:00:00.000+0100"


# --------------------------------------------------------------------------------------------------
# Replayed answers: paging and errors


class Replay(RecordedReplay):
    """Answers requests, whatever their route, from one queue of (status, body, headers), each given once."""

    repeat_last = False

    def __init__(self, *answers: tuple[int, Any, dict[str, str]]) -> None:
        super().__init__()
        self.record(None, *(Answer(status, body, headers) for status, body, headers in answers))

    def key(self, request: httpx.Request) -> None:
        return None

    def miss(self, request: httpx.Request) -> httpx.Response:
        raise LookupError(f"no answer left for {request.method} {request.url}")  # an unplanned request fails the test

    def respond(self, request: httpx.Request, answer: Answer) -> httpx.Response:
        headers = {"X-AREQUESTID": f"{len(self.seen)}x62874x1", **answer.headers}
        if isinstance(answer.body, str):
            return httpx.Response(
                answer.status, text=answer.body, headers={"Content-Type": "text/plain;charset=UTF-8", **headers}
            )
        return httpx.Response(answer.status, json=answer.body, headers=headers)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.seen]


def replay_token() -> str:
    """A fresh token per client: the toolkit keeps limits and blocks per token for the whole process."""
    return "-".join(["replay", secrets.token_hex(8)])


def replay_source(replay: Replay, clock: FakeClock, *, token: str | None = None, **kwargs: Any) -> JiraSource:
    return JiraSource(
        projects=["ED"],
        base_url="https://your-domain.atlassian.net",
        email="sync-bot@example.com",
        token=token or replay_token(),
        base_url_env=None,
        email_env=None,
        token_env=None,
        http=HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock),
        rate=FAST,
        **kwargs,
    )


async def drain(source: JiraSource, spec: SourceSpec) -> tuple[list[Record], int]:
    records: list[Record] = []
    pages, cursor = 0, None
    while True:
        page, cursor = await source.fetch_page(spec, None, cursor)
        records.extend(page)
        pages += 1
        if cursor is None:
            return records, pages


async def test_paging_has_no_total_and_ends_on_is_last_without_a_token_key():
    replay = Replay(
        (200, {"issues": [documented_issue("10002", "ED-1"), documented_issue("10003", "ED-2")],
               "nextPageToken": "CAEaAggD", "isLast": False}, {}),
        # A short page that is not the last: Jira may return fewer than maxResults at any time.
        (200, {"issues": [documented_issue("10004", "ED-3")], "nextPageToken": "CAEaAggE", "isLast": False}, {}),
        # The last page: isLast, and no nextPageToken key at all (JRACLOUD-92184).
        (200, {"issues": [documented_issue("10005", "ED-4")], "isLast": True}, {}),
    )  # fmt: skip
    source = replay_source(replay, FakeClock())
    records, pages = await drain(source, source.specs()[0])
    assert [r.primary_key for r in records] == ["10002", "10003", "10004", "10005"]
    assert pages == 3 and not replay.unanswered()
    sent = replay.bodies()
    assert [b.get("nextPageToken") for b in sent] == [None, "CAEaAggD", "CAEaAggE"]
    assert all("startAt" not in b for b in sent)
    assert all(r.url.path == "/rest/api/3/search/jql" for r in replay.seen)


async def test_a_last_page_that_still_carries_a_token_ends_the_pass():
    replay = Replay((200, {"issues": [documented_issue()], "nextPageToken": "CAEaAggD", "isLast": True}, {}))
    source = replay_source(replay, FakeClock())
    records, pages = await drain(source, source.specs()[0])
    assert len(records) == 1 and pages == 1


async def test_the_source_asks_for_the_schema_only_when_it_decodes_custom_fields():
    replay = Replay(
        (200, {"issues": [documented_issue()], "isLast": True, "schema": SCHEMA}, {}),
        (200, {"issues": [documented_issue()], "isLast": True}, {}),
    )
    clock = FakeClock()
    typed = replay_source(replay, clock, custom_fields=CUSTOM_FIELDS)
    [record] = await typed.fetch(typed.specs()[0])
    assert record.properties["Start"] == dt.date(2024, 3, 1)
    assert record.properties["Sprint label"] == "2024-03-01"
    plain = replay_source(replay, clock)
    await plain.fetch(plain.specs()[0])
    first, second = replay.bodies()
    assert first["expand"] == "schema" and set(CUSTOM_FIELDS.values()) <= set(first["fields"])
    assert "expand" not in second


async def test_a_400_in_jiras_error_shape_keeps_the_messages_and_the_field_errors():
    body = {
        "errorMessages": ["Field 'priority' is required"],
        "errors": {START_DATE: "Error parsing date string: 2024-3-1", "labels": "The label 'a b' contains spaces."},
    }
    replay = Replay((400, body, {}))
    clock = FakeClock()
    token = replay_token()
    async with JiraClient(
        "https://your-domain.atlassian.net",
        "sync-bot@example.com",
        token,
        http=HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock),
        rate=FAST,
    ) as client:
        with pytest.raises(JiraRejected) as caught:
            await client.search('project = "ED"', fields=["summary"])
    err = caught.value
    assert isinstance(err, RecordError) and err.status_code == 400
    assert err.messages == ["Field 'priority' is required"]
    assert err.errors[START_DATE].startswith("Error parsing date string")
    assert START_DATE in str(err) and "required" in str(err)


async def test_a_burst_429_waits_the_retry_after_jira_names_and_then_reads_on():
    headers = {
        "Retry-After": "7",
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2023-11-14T22:14Z",
        "RateLimit-Reason": "jira-burst-based",
    }
    replay = Replay(
        (429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers),
        (200, {"issues": [documented_issue()], "isLast": True}, {}),
    )
    clock = FakeClock()
    source = replay_source(replay, clock)
    records = await source.fetch(source.specs()[0])
    assert len(records) == 1
    assert clock.sleeps == [7.0]  # Retry-After wins over the reset time, and is not jittered


async def test_a_429_with_only_a_reset_timestamp_waits_until_that_minute():
    clock = FakeClock(start=dt.datetime(2024, 3, 1, 9, 14, 20, tzinfo=dt.UTC).timestamp())
    headers = {"X-RateLimit-Reset": "2024-03-01T09:15Z", "RateLimit-Reason": "jira-per-issue-on-write"}
    replay = Replay(
        (429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers),
        (200, {"issues": [], "isLast": True}, {}),
    )
    source = replay_source(replay, clock)
    assert await source.fetch(source.specs()[0]) == []
    assert clock.sleeps == [40.0]


async def test_a_plain_text_401_for_a_bad_token_is_an_auth_error_that_names_no_secret():
    replay = Replay(
        (
            401,
            "Client must be authenticated to access this resource.",
            {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED", "WWW-Authenticate": 'OAuth realm="https%3A%2F%2Fx"'},
        )
    )
    token = replay_token()
    source = replay_source(replay, FakeClock(), token=token)
    with pytest.raises(AuthError) as caught:
        await source.fetch(source.specs()[0])
    assert source.is_auth_error(caught.value)
    text = str(caught.value)
    assert "401" in text and "Client must be authenticated" in text
    assert token not in text and "sync-bot@example.com" not in text
    assert len(replay.seen) == 1  # never retried


# --------------------------------------------------------------------------------------------------
# The fake renders the same shapes, and the connectors handle them end to end


@pytest.fixture
def shaped(clock: FakeClock) -> FakeJira:
    fake = FakeJira(clock=clock.clock, burst=None)  # the user's zone: +0100 by default
    fake.add_project("ENG", name="Engineering")
    fake.add_custom_field("Start date", "date", field_id=START_DATE)
    fake.add_custom_field("Deadline", "datetime", field_id=DEADLINE)
    fake.add_custom_field("Sprint label", "text", field_id=TEAM)
    return fake


def shaped_source(fake: FakeJira, clock: FakeClock, **kwargs: Any) -> JiraSource:
    options = client_options(fake, clock)
    options.update(kwargs)
    return JiraSource(projects=["ENG"], **options)


async def test_the_fake_answers_in_jiras_shapes(shaped: FakeJira, clock: FakeClock):
    shaped.add_issue("ENG", "first", created=clock.now - 100)
    shaped.add_issue("ENG", "second", created=clock.now - 50, assignee=None)
    auth = httpx.BasicAuth(shaped.email, shaped.token)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shaped.app), base_url=SITE, auth=auth) as http:
        query = {"jql": "project = ENG ORDER BY created ASC", "fields": ["status", "assignee", "created"]}
        first = await http.post("/rest/api/3/search/jql", json={**query, "maxResults": 1})
        page = first.json()
        last = (
            await http.post("/rest/api/3/search/jql", json={**query, "nextPageToken": page["nextPageToken"]})
        ).json()
        expanded = (await http.post("/rest/api/3/search/jql", json={**query, "expand": "renderedFields,schema"})).json()
        bad = await http.get("/rest/api/3/myself", auth=httpx.BasicAuth(shaped.email, "x" * 24))
    assert first.headers["X-AREQUESTID"] and "total" not in page and page["isLast"] is False
    issue = page["issues"][0]
    assert issue["id"].isdigit() and issue["key"] == "ENG-1" and issue["self"].endswith(f"/issue/{issue['id']}")
    assert "renderedFields" not in issue
    status = issue["fields"]["status"]
    assert status["statusCategory"]["key"] == "new" and status["statusCategory"]["colorName"] == "blue-gray"
    assert issue["fields"]["created"].endswith("+0100")
    assert last["isLast"] is True and "nextPageToken" not in last
    assert last["issues"][0]["fields"]["assignee"] is None
    assert "renderedFields" in expanded["issues"][0] and expanded["schema"]["created"]["type"] == "datetime"
    assert bad.status_code == 401 and bad.text == "Client must be authenticated to access this resource."
    assert bad.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"


async def test_custom_date_and_date_time_fields_from_the_fake_reach_records_typed(shaped: FakeJira, clock: FakeClock):
    shaped.add_issue(
        "ENG",
        "with dates",
        custom={START_DATE: "2024-03-01", DEADLINE: "2024-03-01T09:15:30.000+0000", TEAM: "2024-03-01"},
    )
    source = shaped_source(shaped, clock, custom_fields=CUSTOM_FIELDS)
    [record] = await source.fetch(source.specs()[0])
    deadline = record.properties["Deadline"]
    # Jira renders the instant in the user's zone: "2024-03-01T10:15:30.000+0100".
    assert deadline == dt.datetime(2024, 3, 1, 9, 15, 30, tzinfo=dt.UTC)
    assert deadline.utcoffset() == dt.timedelta(hours=1)
    assert record.properties["Start"] == dt.date(2024, 3, 1)
    assert record.properties["Sprint label"] == "2024-03-01"
    assert record.properties["Created"].utcoffset() == dt.timedelta(hours=1)
    [search] = shaped.requests("POST", r"/search/jql$")
    assert search.body["expand"] == "schema"


async def test_a_date_time_written_in_one_zone_reads_back_as_the_same_instant(shaped: FakeJira, clock: FakeClock):
    options = client_options(shaped, clock)
    dest = JiraDestination("ENG", field_map={"Deadline": DEADLINE, "Start": START_DATE}, project_env=None, **options)
    when = dt.datetime(2024, 3, 5, 17, 45, tzinfo=PLUS_FIVE_THIRTY)
    async with dest.connect() as session:
        issue_id = await session.create(
            Record("src-1", {"Summary": "dated", "Deadline": when, "Start": dt.date(2024, 3, 1)}),
            dt.datetime.now(dt.UTC),
        )
    assert shaped.issue(issue_id).fields[DEADLINE] == "2024-03-05T17:45:00.000+0530"
    source = shaped_source(shaped, clock, custom_fields={"Deadline": DEADLINE, "Start": START_DATE})
    [record] = await source.fetch(source.specs()[0])
    assert record.properties["Deadline"] == when  # same instant, now in the reader's +0100
    assert record.properties["Deadline"].utcoffset() == dt.timedelta(hours=1)
    assert record.properties["Start"] == dt.date(2024, 3, 1)


async def test_a_revoked_token_on_the_fake_pauses_with_a_plain_text_401(shaped: FakeJira, clock: FakeClock):
    shaped.add_issue("ENG", "x")
    source = shaped_source(shaped, clock)
    shaped.revoke_token(shaped.token)
    with pytest.raises(AuthError) as caught:
        await source.fetch(source.specs()[0])
    assert source.is_auth_error(caught.value)
    assert shaped.token not in str(caught.value) and shaped.email not in str(caught.value)
