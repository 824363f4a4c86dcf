"""JiraDestination against the fake: encodings, the atomic key, listing, updates, per-record errors."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.core import ConfigError, Record, RecordError
from connectors.jira import JiraDestination

SYNCED = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


async def create(dest: JiraDestination, record: Record) -> str:
    async with dest.connect() as session:
        return await session.create(record, SYNCED)


async def listing(dest: JiraDestination) -> list[tuple[str, str]]:
    async with dest.connect() as session:
        return [pair async for pair in session.query_existing_rows()]


async def test_create_writes_every_field_in_its_jira_shape_and_the_key_in_the_same_request(fake, make_dest):
    alice = fake.add_user("Alice")
    team = fake.add_custom_field("Team", "select", options=["Platform", "Data"])
    points = fake.add_custom_field("Story points", "number")
    dest = make_dest(
        batch=False,  # the single create's request is inspected; bulk: test_jira_bulk.py
        field_map={
            "Labels": "labels",
            "Priority": "priority",
            "Owner": "assignee",
            "Due": "duedate",
            "Components": "components",
            "Fix versions": "fixVersions",
            "Affects": "versions",
            "Team": "Team",  # a custom field by NAME
            "Points": points,
        },
    )
    record = Record(
        "gh-1",
        {
            "Summary": "Sync\nis slow",
            "Labels": ["needs triage", "perf"],
            "Priority": "High",
            "Owner": alice,
            "Due": dt.date(2024, 6, 30),
            "Components": ["API"],
            "Fix versions": ["2.0"],
            "Affects": "1.0",
            "Team": "Platform",
            "Points": 3,
            "Unmapped": "ignored",
        },
        body="What happens\n\nIt is slow.",
    )
    issue_id = await create(dest, record)
    issue = fake.issue(issue_id)
    f = issue.fields
    assert issue.key == "ENG-1" and f["issuetype"]["name"] == "Task"
    assert f["summary"] == "Sync is slow"  # Jira forbids newlines in a summary
    assert f["labels"] == ["needs_triage", "perf"]
    assert f["priority"]["name"] == "High"
    assert f["assignee"]["accountId"] == alice
    assert f["duedate"] == "2024-06-30"
    assert [c["name"] for c in f["components"]] == ["API"]  # objects, not strings (W27)
    assert [v["name"] for v in f["fixVersions"]] == ["2.0"]
    assert [v["name"] for v in f["versions"]] == ["1.0"]
    assert f[team]["value"] == "Platform"
    assert f[points] == 3
    assert fake.description_text(issue_id) == "What happens\n\nIt is slow."
    # The key rode along with the create: no second call could have failed in between (W15).
    assert issue.properties == {"durable-sync": {"pk": "gh-1"}}
    assert not fake.requests(path=r"/properties/")
    [post] = fake.requests("POST", r"/issue$")
    assert post.body["properties"] == [{"key": "durable-sync", "value": {"pk": "gh-1"}}]


async def test_update_puts_fields_and_never_touches_create_only_ones_or_the_key(fake, make_dest):
    dest = make_dest(create_only_properties={"Due"})
    issue_id = await create(
        dest, Record("k1", {"Summary": "Old", "Labels": ["a"], "Due": dt.date(2024, 1, 1)}, body="Old text")
    )
    async with dest.connect() as session:
        ok = await session.update(
            issue_id, Record("k1", {"Summary": "New", "Labels": [], "Due": dt.date(2030, 1, 1)}), SYNCED
        )
    assert ok is True
    issue = fake.issue(issue_id)
    assert issue.fields["summary"] == "New" and issue.fields["labels"] == []
    assert issue.fields["duedate"] == "2024-01-01"
    assert fake.description_text(issue_id) == "Old text"  # no body (None): the description is left alone
    async with dest.connect() as session:
        await session.update(issue_id, Record("k1", {"Summary": "New"}, body=""), SYNCED)
    assert issue.fields["description"] is None  # an empty body clears it
    put = fake.requests("PUT", rf"/issue/{issue_id}$")[0]
    assert set(put.body) == {"fields"} and "duedate" not in put.body["fields"]
    assert "description" not in put.body["fields"]
    assert issue.properties == {"durable-sync": {"pk": "k1"}}


async def test_updating_a_deleted_issue_is_a_record_error(fake, make_dest):
    dest = make_dest()
    issue_id = await create(dest, Record("k1", {"Summary": "x"}))
    fake.delete_issue(issue_id)
    async with dest.connect() as session:
        with pytest.raises(RecordError, match="not found"):
            await session.update(issue_id, Record("k1", {"Summary": "y"}), SYNCED)


async def test_listing_reads_our_key_inline_and_skips_issues_made_by_hand(fake, make_dest):
    fake.add_issue("ENG", "by hand")
    fake.add_issue("ENG", "made by durable-sync 0.3", properties={"durable-sync": {"pk": "legacy"}})
    fake.add_issue("OPS", "other project", properties={"durable-sync": {"pk": "elsewhere"}})
    dest = make_dest()
    ids = [await create(dest, Record(f"k{i}", {"Summary": f"s{i}"})) for i in range(3)]
    rows = await listing(dest)
    assert sorted(rows) == sorted([("legacy", fake.issue("ENG-2").id), *((f"k{i}", ids[i]) for i in range(3))])
    [search, *_] = fake.requests("POST", r"/search/jql$")
    assert search.body["jql"] == 'project = "ENG" ORDER BY created ASC'
    assert search.body["properties"] == ["durable-sync"]


async def test_listing_pages_with_next_page_tokens(fake, make_dest):
    for i in range(230):
        fake.add_issue("ENG", f"s{i}", properties={"durable-sync": {"pk": f"k{i}"}})
    rows = await listing(make_dest())
    assert len(rows) == 230 and len({k for k, _ in rows}) == 230
    pages = fake.requests("POST", r"/search/jql$")
    assert len(pages) == 3  # the fake caps pages at 100 when fields are asked for
    assert [bool(p.body.get("nextPageToken")) for p in pages] == [False, True, True]


async def test_a_listing_right_after_creates_finds_them_although_search_lags(fake, make_dest):
    fake.set_index_delay(300)  # new issues are invisible to search for five minutes
    dest = make_dest()
    ids = {f"k{i}": await create(dest, Record(f"k{i}", {"Summary": f"s{i}"})) for i in range(3)}
    assert not any(fake.searchable(i) for i in fake.issues("ENG"))
    assert dict(await listing(dest)) == ids
    [search] = fake.requests("POST", r"/search/jql$")
    assert sorted(search.body["reconcileIssues"]) == sorted(int(i) for i in ids.values())


async def test_a_new_process_finds_unindexed_issues_by_reading_past_the_newest_key(fake, make_dest):
    fake.set_index_delay(300)
    fake.add_issue("ENG", "old, indexed", properties={"durable-sync": {"pk": "old"}})
    ids = {f"k{i}": await create(make_dest(), Record(f"k{i}", {"Summary": f"s{i}"})) for i in range(4)}
    fake.move_issue(ids["k1"], "OPS")  # moved away: its old key answers, but it is not in ENG any more
    rows = dict(await listing(make_dest()))  # a fresh destination knows no ids for reconcileIssues
    assert rows == {"old": fake.issue("ENG-1").id, "k0": ids["k0"], "k2": ids["k2"], "k3": ids["k3"]}
    probes = fake.requests("GET", r"/issue/ENG-\d+$")
    assert [p.path.rsplit("/", 1)[1] for p in probes] == [f"ENG-{n}" for n in range(2, 11)]  # 4 found, 5 missing


async def test_bad_values_are_record_errors_naming_the_field_and_value(fake, make_dest):
    team = fake.add_custom_field("Team", "select", options=["Platform"])
    hidden = fake.add_custom_field("Secret", "text")
    fake.hide_field(hidden)
    dest = make_dest(
        field_map={"Team": team, "Owner": "assignee", "Secret": hidden, "Ghost": "No such field", "Due": "duedate"}
    )
    cases = {
        "option": (
            {"Team": "Nope"},
            r"Team \(customfield_\d+\) = \{\"value\": \"Nope\"\}: Option value 'Nope' is not valid",
        ),
        "account": ({"Owner": "bogus-account"}, r"Assignee \(assignee\) = .*bogus-account.*not valid"),
        "screen": ({"Secret": "x"}, r"cannot be set. It is not on the appropriate screen, or unknown"),
        "unknown": ({"Ghost": "x"}, r"field 'No such field' \(mapped from 'Ghost'\) does not exist"),
        "date": ({"Due": "next tuesday"}, r"'Due' -> Due date \(duedate\): \"next tuesday\" is not a date"),
        "no summary": ({"Summary": None}, r"no 'Summary'"),
    }
    async with dest.connect() as session:
        for name, (props, pattern) in cases.items():
            with pytest.raises(RecordError, match=pattern) as info:
                await session.create(Record(name, {"Summary": "s", **props}), SYNCED)
            assert info.value.primary_key == name
        # A None for an unknown field is nothing to write; the record goes through.
        await session.create(Record("fine", {"Summary": "s", "Ghost": None}), SYNCED)
    assert [i.properties["durable-sync"]["pk"] for i in fake.issues("ENG")] == ["fine"]


async def test_a_description_over_jiras_limit_is_a_record_error_or_truncated_on_request(fake, make_dest):
    body = "x" * 40_000
    with pytest.raises(RecordError, match="40000 characters, over Jira's limit of 32767"):
        await create(make_dest(), Record("long", {"Summary": "s"}, body=body))
    assert fake.counters.creates == 0  # refused before any request
    dest = make_dest(truncate_description=True)
    issue_id = await create(dest, Record("long", {"Summary": "s" * 300}, body=body))
    text = fake.description_text(issue_id)
    assert len(text) <= 32_767 and text.endswith("[truncated by durable-sync]")
    assert len(fake.issue(issue_id).fields["summary"]) == 255
    assert sorted(t.field for t in dest.truncations) == ["description", "summary"]


async def test_jira_itself_refuses_a_description_over_the_limit(fake, make_dest):
    # The local check counts blank lines between paragraphs; Jira's 400 is a record error too.
    dest = make_dest()
    async with dest.connect() as session:
        with pytest.raises(RecordError, match="exceeds the allowed limit"):
            await session.client.create_issue(
                {
                    "fields": {
                        "project": {"key": "ENG"},
                        "issuetype": {"name": "Task"},
                        "summary": "s",
                        "description": {
                            "type": "doc",
                            "version": 1,
                            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "y" * 32_768}]}],
                        },
                    }
                }
            )


async def test_connect_checks_the_project_and_issue_type(fake, make_dest):
    with pytest.raises(ConfigError, match="project NOPE not found"):
        async with make_dest("NOPE").connect():
            pass
    with pytest.raises(ConfigError, match=r"no issue type 'Epic'.*Task, Bug, Story"):
        async with make_dest(issue_type="Epic").connect():
            pass


def test_configuration_comes_from_the_environment(monkeypatch):
    for name in (
        "JIRA_BASE_URL",
        "JIRA_EMAIL",
        "JIRA_API_TOKEN",
        "JIRA_PROJECT_KEY",
        "JIRA_API_TOKEN_FILE",
        "JIRA_EMAIL_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    dest = JiraDestination()
    assert not dest.configured
    assert all(v in dest.config_hint for v in ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PROJECT_KEY"))
    monkeypatch.setenv("JIRA_BASE_URL", "https://acme.atlassian.net/")
    monkeypatch.setenv("JIRA_EMAIL", "me@example.com")
    monkeypatch.setenv("JIRA_API_TOKEN", "secret-token-1")
    assert not dest.configured and dest.config_hint.startswith("set JIRA_PROJECT_KEY")
    monkeypatch.setenv("JIRA_PROJECT_KEY", "eng")
    assert dest.configured and dest.config_hint == "configured"
    assert dest.describe() == "https://acme.atlassian.net/browse/ENG"
    assert dest.credential_key == "jira:JIRA_API_TOKEN"
    assert dest.rate_limit_key.startswith("jira:") and "secret" not in dest.rate_limit_key
    before = dest.credential_fingerprint()
    monkeypatch.setenv("JIRA_API_TOKEN", "secret-token-2")
    assert dest.credential_fingerprint() != before and dest.credential_key == "jira:JIRA_API_TOKEN"


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError):
        JiraDestination("not a key")
    with pytest.raises(ConfigError):
        JiraDestination("ENG", property_key="")


def test_field_kinds_follow_the_schema():
    from connectors.jira import field_kind

    assert field_kind("labels", {"type": "array", "items": "string", "system": "labels"}) == "labels"
    assert field_kind("components", {"type": "array", "items": "component"}) == "components"
    assert field_kind("fixVersions", {"type": "array", "items": "version"}) == "versions"
    assert field_kind("customfield_1", {"type": "option", "custom": "x:select"}) == "option"
    assert field_kind("customfield_2", {"type": "string", "custom": "x:textarea"}) == "adf"
    assert field_kind("status", {"type": "status"}) == "unsupported"
