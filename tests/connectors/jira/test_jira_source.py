"""JiraSource against the fake: paging with nextPageToken, records, targeted refreshes, moved issues."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.core import AuthError, ConfigError, SourceSpec
from tests.fakes.jira import FakeJira


def seed(fake: FakeJira, n: int, project: str = "ENG", **kwargs) -> list[str]:
    return [fake.add_issue(project, f"Issue {i}", created=fake.clock() - 10_000 + i, **kwargs).id for i in range(n)]


async def drain(source, spec: SourceSpec, only_items=None) -> tuple[list, int]:
    records, pages, cursor = [], 0, None
    while True:
        page, cursor = await source.fetch_page(spec, only_items, cursor)
        records.extend(page)
        pages += 1
        if cursor is None:
            return records, pages


def test_specs_are_one_per_query_and_project():
    from connectors.jira import JiraSource

    source = JiraSource({"bugs": "project = ENG AND issuetype = Bug"}, ["ops"], base_url_env=None)
    assert [s.key for s in source.specs()] == ["jql:bugs", "project:OPS"]
    assert source.specs()[1].params["jql"] == 'project = "OPS" ORDER BY created ASC'
    with pytest.raises(ConfigError):
        JiraSource({"bad slug!": "project = ENG"})
    with pytest.raises(ConfigError):
        JiraSource(projects=["not a key"])
    empty = JiraSource()  # nothing to read: not configured, and it says what to set
    assert not empty.configured and "JIRA_PROJECTS" in empty.config_hint and empty.specs() == []


async def test_pages_to_the_end_with_next_page_tokens_and_never_calls_the_removed_search(fake, make_source):
    ids = seed(fake, 250)
    source = make_source()
    records, pages = await drain(source, source.specs()[0])
    assert [r.primary_key for r in records] == ids  # created ASC, each once
    assert pages == 3
    searches = fake.requests("POST", r"/search/jql$")
    assert len(searches) == 3
    assert [bool(r.body.get("nextPageToken")) for r in searches] == [False, True, True]
    assert all(r.body["fields"] for r in searches)  # without fields Jira returns only ids
    assert not fake.requests(path=r"/rest/api/\d/search$")


async def test_a_stored_cursor_resumes_in_a_fresh_source(fake, make_source):
    ids = seed(fake, 150)
    spec = make_source().specs()[0]
    first, cursor = await make_source().fetch_page(spec, None, None)
    assert cursor is not None and json.loads(cursor)["v"] == 1
    rest, end = await make_source().fetch_page(spec, None, cursor)
    assert end is None
    assert [r.primary_key for r in first + rest] == ids


async def test_an_expired_page_token_restarts_the_pass(fake, make_source, clock):
    ids = seed(fake, 150)
    source = make_source()
    spec = source.specs()[0]
    _, cursor = await source.fetch_page(spec, None, None)
    clock.now += 8 * 24 * 3600  # Jira's tokens live 7 days
    records, cursor = await source.fetch_page(spec, None, cursor)
    assert [r.primary_key for r in records] == ids[:100]  # page one again
    assert cursor is not None


async def test_a_cursor_of_another_jql_restarts_the_pass(fake, make_source):
    seed(fake, 150)
    _, cursor = await make_source(queries={"q": "project = ENG ORDER BY created ASC"}, projects=None).fetch_page(
        SourceSpec("jql:q", 30, {"jql": "project = ENG ORDER BY created ASC"}), None, None
    )
    source = make_source()
    records, _ = await source.fetch_page(source.specs()[0], None, cursor)
    assert len(records) == 100 and records[0].properties["Summary"] == "Issue 0"


async def test_issue_fields_become_neutral_values_and_the_description_text(fake, make_source):
    alice = fake.add_user("Alice Example")
    issue = fake.add_issue(
        "ENG",
        "Fix the sync",
        description="Steps\n\n1. run it",
        issue_type="Bug",
        status="In Progress",
        priority="High",
        labels=["sync", "p1"],
        assignee=alice,
        components=["API"],
        fix_versions=["2.0"],
        due="2024-06-30",
    )
    source = make_source()
    [record], _ = await drain(source, source.specs()[0])
    assert record.primary_key == issue.id
    props = record.properties
    assert props["Summary"] == "Fix the sync"
    assert props["Issue Key"] == "ENG-1"
    assert props["Project"] == "ENG"
    assert props["Issue Type"] == "Bug"
    assert props["Status"] == "In Progress"
    assert props["Priority"] == "High"
    assert props["Assignee"] == "Alice Example"
    assert props["Reporter"] == "Sync-Bot"
    assert props["Labels"] == ["sync", "p1"]
    assert props["Components"] == ["API"]
    assert props["Fix versions"] == ["2.0"]
    assert props["Due"] == dt.date(2024, 6, 30)
    assert isinstance(props["Created"], dt.datetime) and props["Created"].tzinfo is not None
    assert props["Created"] == dt.datetime.fromtimestamp(issue.created, dt.UTC).replace(microsecond=0)
    assert props["URL"] == "https://acme.atlassian.net/browse/ENG-1"
    assert record.body == "Steps\n\n1. run it"


async def test_unassigned_issues_read_as_none_and_narrowed_fields_leave_properties_out(fake, make_source):
    fake.add_issue("ENG", "No owner", priority=None)
    source = make_source()
    [record], _ = await drain(source, source.specs()[0])
    assert record.properties["Assignee"] is None and record.properties["Priority"] is None and record.body is None
    narrow = make_source(fields=["summary"])
    [record], _ = await drain(narrow, narrow.specs()[0])
    assert set(record.properties) == {"Summary", "Issue Key", "URL"}


async def test_custom_fields_decode_to_neutral_values(fake, make_source):
    team = fake.add_custom_field("Team", "select", options=["Platform"])
    fake.add_issue("ENG", "x", custom={team: {"value": "Platform", "id": "1"}})
    source = make_source(custom_fields={"Team": team})
    [record], _ = await drain(source, source.specs()[0])
    assert record.properties["Team"] == "Platform"


async def test_targeted_refresh_beyond_100_ids_pages_every_batch(fake, make_source):
    ids = seed(fake, 260)
    source = make_source(page_size=40)
    wanted = ids[5:255]  # 250 ids: 3 batches of <= 100, each paged by 40
    records, pages = await drain(source, source.specs()[0], only_items=wanted)
    assert sorted(r.primary_key for r in records) == sorted(wanted)
    assert pages == 3 + 3 + 2  # 100 -> 3 pages, 100 -> 3, 50 -> 2
    queries = [r.body["jql"] for r in fake.requests("POST", r"/search/jql$")]
    assert all(q.startswith("id in (") and 'AND (project = "ENG")' in q for q in queries)


async def test_targeted_refresh_takes_keys_skips_missing_ones_and_stays_in_the_spec(fake, make_source):
    eng = seed(fake, 3)
    ops = seed(fake, 1, project="OPS")
    source = make_source()
    records, _ = await drain(source, source.specs()[0], only_items=["ENG-2", "ENG-99", eng[2], ops[0], "not an id"])
    assert sorted(r.primary_key for r in records) == sorted([eng[1], eng[2]])


async def test_a_moved_issue_keeps_its_primary_key(fake, make_source):
    fake.add_project("NEW")
    [issue_id] = seed(fake, 1)
    source = make_source(projects=["ENG", "NEW"])
    eng, new = source.specs()
    [before], _ = await drain(source, eng)
    fake.move_issue(issue_id, "NEW")
    assert (await drain(source, eng))[0] == []
    [after], _ = await drain(source, new)
    assert after.primary_key == before.primary_key == issue_id
    assert (before.properties["Issue Key"], after.properties["Issue Key"]) == ("ENG-1", "NEW-1")
    assert after.properties["URL"].endswith("/browse/NEW-1")
    # A targeted refresh by the old key still finds it (Jira resolves moved keys).
    [again], _ = await drain(source, new, only_items=["ENG-1"])
    assert again.primary_key == issue_id


async def test_a_revoked_token_is_an_auth_error_without_the_token(fake, make_source):
    seed(fake, 1)
    source = make_source()
    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as info:
        await source.fetch_page(source.specs()[0], None, None)
    assert fake.token not in str(info.value) and fake.email not in str(info.value)
    assert source.credential_key == source.rate_limit_key  # an explicit token names its own slot


def test_credentials_come_from_the_environment_at_each_use(monkeypatch):
    from connectors.jira import JiraSource

    source = JiraSource(projects=["ENG"])
    for name in ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_API_TOKEN_FILE", "JIRA_EMAIL_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert not source.configured and "JIRA_API_TOKEN" in source.config_hint
    monkeypatch.setenv("JIRA_BASE_URL", "acme.atlassian.net/")
    monkeypatch.setenv("JIRA_EMAIL", "me@example.com")
    monkeypatch.setenv("JIRA_API_TOKEN", "tok-1")
    assert source.configured and source.credential_key == "jira:JIRA_API_TOKEN"
    first = (source.rate_limit_key, source.credential_fingerprint())
    monkeypatch.setenv("JIRA_API_TOKEN", "tok-2")
    assert source.credential_key == "jira:JIRA_API_TOKEN"
    assert (source.rate_limit_key, source.credential_fingerprint()) != first
    assert "tok-2" not in source.rate_limit_key
