"""AsanaDestination against the fake: configuration, every encoding, per-record errors, the listing."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable

import pytest

from connectors.asana import AsanaDestination, parse_project_gid
from connectors.asana.encode import EncodeError, find_option, format_datetime, to_html_notes
from connectors.asana.settings import (
    ASANA_FREE_RATE,
    ASANA_PAID_RATE,
    FREE_REQUESTS_PER_MINUTE,
    MAX_NOTES_CHARS,
    PAID_REQUESTS_PER_MINUTE,
)
from connectors.core import AuthError, ConfigError, Record, RecordError, TransientError
from tests.connectors.asana.conftest import FakeTime
from tests.fakes.asana import FakeAsana, FakeProject, FakeUser

UTC = dt.UTC
MakeDest = Callable[..., AsanaDestination]


async def create(dest: AsanaDestination, record: Record, synced_at: dt.datetime) -> str:
    async with dest.connect() as session:
        return await session.create(record, synced_at)


async def update(dest: AsanaDestination, gid: str, record: Record, synced_at: dt.datetime) -> bool:
    async with dest.connect() as session:
        return await session.update(gid, record, synced_at)


async def listing(dest: AsanaDestination) -> list[tuple[str, str]]:
    async with dest.connect() as session:
        return [pair async for pair in session.query_existing_rows()]


# --------------------------------------------------------------------------------------------------
# Configuration


def test_configured_needs_the_token_and_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASANA_PAT", raising=False)
    monkeypatch.delenv("ASANA_PAT_FILE", raising=False)
    monkeypatch.delenv("ASANA_PROJECT_GID", raising=False)
    dest = AsanaDestination()
    assert not dest.configured
    assert "ASANA_PAT" in dest.config_hint and "ASANA_PROJECT_GID" in dest.config_hint
    monkeypatch.setenv("ASANA_PROJECT_GID", "1200000000000042")
    assert not dest.configured and "ASANA_PROJECT_GID" not in dest.config_hint  # the PAT is checked too (W18)
    monkeypatch.setenv("ASANA_PAT", "2/1/abc:def")
    assert dest.configured and dest.config_hint == "configured"
    assert dest.describe() == "https://app.asana.com/0/1200000000000042/list"
    monkeypatch.setenv("ASANA_PROJECT_GID", "not a project")
    assert not dest.configured and "not a project" in dest.config_hint


def test_project_gids_come_from_gids_and_both_url_shapes() -> None:
    assert parse_project_gid("1234") == "1234"
    assert parse_project_gid("https://app.asana.com/0/1234/list") == "1234"
    assert parse_project_gid("https://app.asana.com/0/1234/5678") == "1234"
    assert parse_project_gid("https://app.asana.com/1/99/project/1234/list") == "1234"
    with pytest.raises(ConfigError):
        parse_project_gid("tasks")


def test_credential_keys_rates_and_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASANA_PAT", "2/1/first:secret")
    dest = AsanaDestination("1")
    assert dest.credential_key == "asana:ASANA_PAT"  # stable across rotations: pauses are keyed on it
    assert dest.rate_limit_key.startswith("asana:") and "secret" not in dest.rate_limit_key
    assert dest.credential_fingerprint() == hashlib.sha256(b"2/1/first:secret").hexdigest()
    before = dest.rate_limit_key
    monkeypatch.setenv("ASANA_PAT", "2/1/second:secret")
    assert dest.rate_limit_key != before and dest.credential_key == "asana:ASANA_PAT"
    assert dest.rate == ASANA_FREE_RATE and AsanaDestination("1", paid=True).rate == ASANA_PAID_RATE
    assert dest.stores_keys and not AsanaDestination("1", key_field=None).stores_keys
    assert AsanaDestination.is_auth_error(RuntimeError("Asana: Not Authorized"))


@pytest.mark.parametrize(
    ("rate", "budget"), [(ASANA_FREE_RATE, FREE_REQUESTS_PER_MINUTE), (ASANA_PAID_RATE, PAID_REQUESTS_PER_MINUTE)]
)
def test_the_default_rates_never_exceed_the_published_budget_in_any_minute(rate, budget) -> None:
    # A token bucket admits at most its burst plus a minute's refill in any 60-second window.
    assert rate.capacity + rate.requests / rate.per_seconds * 60 <= budget


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        AsanaDestination("1", body_field="description")
    with pytest.raises(ConfigError):
        AsanaDestination("1", field_map={"Key": "Source ID"})


async def test_a_project_without_the_key_field_says_what_to_add(fake: FakeAsana, make_dest: MakeDest) -> None:
    bare = fake.add_project("Bare", {"Summary": "text"})
    with pytest.raises(ConfigError, match="Source ID"):
        async with make_dest(bare.gid).connect():
            pass
    typed = fake.add_project("Typed", {"Source ID": "number"})
    with pytest.raises(ConfigError, match="Text"):
        async with make_dest(typed.gid).connect():
            pass
    with pytest.raises(ConfigError, match="no project"):
        async with make_dest("999").connect():
            pass


# --------------------------------------------------------------------------------------------------
# Encodings


async def test_every_encoding_reads_back(
    fake: FakeAsana, project: FakeProject, dana: FakeUser, make_dest: MakeDest, synced_at: dt.datetime
) -> None:
    dest = make_dest(field_map={"Owner": "assignee", "Starts": "start_on", "Done": "completed", "Due": "due_on"})
    record = Record(
        "repo-1",
        {
            "Name": "acme/widgets",
            "Summary": "Widgets, & more <things>",
            "Stars": 42,
            "Priority": "high",  # option names match case-insensitively when unambiguous
            "Labels": ["bug", "docs", "bug"],
            "Released": dt.date(2024, 4, 30),
            "Reviewers": ["dana@example.com", fake.user.gid],
            "Owner": "DANA@example.com",
            "Starts": dt.date(2024, 5, 1),
            "Due": dt.date(2024, 5, 31),
            "Done": True,
        },
        body="Line one\n\nLine two & <three>",
    )
    gid = await create(dest, record, synced_at)
    values = fake.values(gid)
    assert values["name"] == "acme/widgets"
    assert values["notes"] == "Line one\n\nLine two & <three>"
    assert values["Source ID"] == "repo-1"
    assert values["Summary"] == "Widgets, & more <things>"
    assert values["Stars"] == 42
    assert values["Priority"] == "High"
    assert values["Labels"] == ["bug", "docs"]
    assert values["Released"] == "2024-04-30"
    assert values["Reviewers"] == ["dana@example.com", "pat@example.com"]
    assert values["assignee"] == "dana@example.com"
    assert (values["start_on"], values["due_on"], values["due_at"]) == ("2024-05-01", "2024-05-31", None)
    assert values["completed"] is True
    assert fake.task(gid).projects == [project.gid]

    # A datetime due date is due_at; None clears every kind of field; a missing body leaves notes alone.
    later = Record(
        "repo-1",
        {
            "Name": "acme/widgets",
            "Summary": None,
            "Stars": None,
            "Priority": None,
            "Labels": None,
            "Released": dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "Reviewers": None,
            "Owner": None,
            "Starts": None,
            "Due": dt.datetime(2024, 6, 2, 17, 0, tzinfo=UTC),
            "Done": None,
        },
    )
    assert await update(dest, gid, later, synced_at) is True
    values = fake.values(gid)
    assert values["notes"] == "Line one\n\nLine two & <three>"
    assert [values[k] for k in ("Summary", "Stars", "Priority", "assignee", "start_on")] == [None] * 5
    assert values["Labels"] == [] and values["Reviewers"] == []
    assert values["Released"] == "2024-06-01T07:30:00.000Z"
    assert (values["due_at"], values["due_on"]) == ("2024-06-02T17:00:00.000Z", "2024-06-02")
    assert values["completed"] is False

    await update(dest, gid, Record("repo-1", {"Due": None}), synced_at)
    assert (fake.values(gid)["due_on"], fake.values(gid)["due_at"]) == (None, None)
    # Users are resolved once per destination: dana's email was looked up a single time.
    assert len(fake.requests("GET", r"^/users/dana")) == 1


async def test_the_synced_field_is_stamped_with_the_write_time(
    fake: FakeAsana, make_dest: MakeDest, synced_at: dt.datetime, caplog: pytest.LogCaptureFixture
) -> None:
    gid = await create(make_dest(synced_field="Last synced"), Record("k", {"Name": "t", "Last synced": 1}), synced_at)
    assert fake.values(gid)["Last synced"] == "2024-05-01T12:00:00.000Z"
    other = await create(make_dest(synced_field="Stamped"), Record("k2", {"Name": "t"}), synced_at)
    assert fake.values(other)["Last synced"] is None
    assert any("'Stamped'" in r.getMessage() for r in caplog.records)


async def test_html_notes_escape_the_body_into_asanas_rich_text(
    fake: FakeAsana, make_dest: MakeDest, synced_at: dt.datetime
) -> None:
    dest = make_dest(body_field="html_notes")
    body = "a < b && c > d\nnext line \x07bell"
    gid = await create(dest, Record("k", {"Name": "t"}, body=body), synced_at)
    assert fake.task(gid).html_notes == "<body>a &lt; b &amp;&amp; c &gt; d\nnext line bell</body>"
    assert fake.values(gid)["notes"] == "a < b && c > d\nnext line bell"


def test_encoders_on_their_own() -> None:
    assert to_html_notes("<x>") == "<body>&lt;x&gt;</body>"
    assert format_datetime(dt.datetime(2024, 1, 2, 3, 4, 5, 678_900, tzinfo=UTC)) == "2024-01-02T03:04:05.678Z"
    field = {"name": "Kind", "enum_options": [{"gid": "1", "name": "a"}, {"gid": "2", "name": "A"}]}
    assert find_option(field, "A") == "2"
    with pytest.raises(EncodeError, match="several"):
        find_option({"name": "Kind", "enum_options": [{"gid": "1", "name": "Bug"}, {"gid": "2", "name": "BUG"}]}, "bug")


# --------------------------------------------------------------------------------------------------
# Bad input: per-record errors, warnings for what cannot be written


@pytest.mark.parametrize(
    ("properties", "body", "needles"),
    [
        ({"Priority": "Critical"}, None, ("Priority", "Critical", "'Low'")),
        ({"Priority": "Urgent"}, None, ("Priority", "Urgent", "disabled")),
        ({"Labels": ["bug", "wontfix"]}, None, ("Labels", "wontfix")),
        ({"Stars": "many"}, None, ("Stars", "number")),
        ({"Stars": "403 forbidden"}, None, ("Stars", "403")),  # quoted values never read as auth
        ({"Priority": 3}, None, ("Priority", "option name")),
        ({"Released": "last tuesday"}, None, ("Released", "ISO")),
        ({"Summary": ["a", "b"]}, None, ("Summary", "text")),
        ({"Name": "t"}, "x" * (MAX_NOTES_CHARS + 1), ("notes", str(MAX_NOTES_CHARS + 1))),
        ({"assignee": "nobody@example.com"}, None, ("assignee", "nobody@example.com")),
        ({"assignee": "bob"}, None, ("assignee", "neither a user gid nor an email")),
        ({"completed": "yes"}, None, ("completed", "bool")),
        ({"start_on": dt.datetime(2024, 5, 1, tzinfo=UTC)}, None, ("start_on", "date")),
    ],
)
async def test_a_value_that_does_not_fit_is_that_records_error(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination, synced_at, properties, body, needles
) -> None:
    with pytest.raises(RecordError) as info:
        await create(dest, Record("bad", properties, body=body), synced_at)
    assert info.value.primary_key == "bad"
    for needle in needles:
        assert needle in str(info.value)
    assert not dest.is_auth_error(info.value)
    assert fake.tasks(project.gid) == [] and fake.requests("POST") == []


async def test_a_user_lookup_refused_with_403_is_that_records_error(
    fake: FakeAsana, dest: AsanaDestination, synced_at
) -> None:
    fake.fail_next(1, 403, message="Forbidden", path=r"^/users/")
    with pytest.raises(RecordError, match=r"outsider@example\.com") as info:
        await create(dest, Record("k", {"Name": "t", "assignee": "outsider@example.com"}), synced_at)
    assert not dest.is_auth_error(info.value)


async def test_unknown_and_computed_fields_are_dropped_with_one_warning_per_session(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination, synced_at, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.asana")
    async with dest.connect() as session:
        for key in ("a", "b"):
            await session.create(Record(key, {"Name": key, "Nope": 1, "Score": 5, "Stars": 3}), synced_at)
    dropped = [r.getMessage() for r in caplog.records if "is not written" in r.getMessage()]
    assert len(dropped) == 2 and any("'Nope'" in m for m in dropped) and any("formula" in m for m in dropped)
    assert [fake.values(t.gid)["Stars"] for t in fake.tasks(project.gid)] == [3, 3]


async def test_a_locked_field_is_a_record_error_not_a_revoked_token(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination, synced_at
) -> None:
    with pytest.raises(RecordError, match="locked") as info:
        await create(dest, Record("k", {"Name": "t", "Audit": "x"}), synced_at)
    assert not isinstance(info.value, AuthError)
    assert not dest.is_auth_error(info.value)


async def test_any_other_403_and_a_revoked_token_are_auth_errors_without_the_token(
    fake: FakeAsana, project: FakeProject, make_dest, synced_at, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dest = make_dest(batch=False)  # one request per write; the batched 403 is in test_asana_batch.py
    gid = await create(dest, Record("k", {"Name": "t"}), synced_at)
    fake.fail_next(1, 403, message="Forbidden", method="PUT")
    with pytest.raises(AuthError) as forbidden:
        await update(dest, gid, Record("k", {"Name": "u"}), synced_at)
    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as revoked:
        await create(dest, Record("k2", {"Name": "t"}), synced_at)
    for err in (forbidden.value, revoked.value):
        assert dest.is_auth_error(err) and fake.token not in str(err)
    assert "Not Authorized" in str(revoked.value)
    secret = fake.token.split(":", 1)[1]
    assert all(secret not in r.getMessage() for r in caplog.records)


async def test_an_update_of_a_deleted_task_is_a_record_error(
    fake: FakeAsana, dest: AsanaDestination, synced_at
) -> None:
    gid = await create(dest, Record("k", {"Name": "t"}), synced_at)
    fake.delete_task(gid)
    with pytest.raises(RecordError, match="not found"):
        await update(dest, gid, Record("k", {"Name": "u"}), synced_at)


# --------------------------------------------------------------------------------------------------
# HTTP behaviour: 429, ambiguous creates


async def test_a_429_waits_the_retry_after_then_succeeds(
    fake: FakeAsana, project: FakeProject, make_dest, time: FakeTime, synced_at
) -> None:
    dest = make_dest(batch=False)  # POST /tasks answers 201; a batched 429 is in test_asana_batch.py
    fake.fail_next(1, 429, retry_after=30, method="POST")
    start = time.now
    await create(dest, Record("k", {"Name": "t"}), synced_at)
    assert 30 in time.sleeps and time.now - start >= 30
    assert [r.status for r in fake.requests("POST")] == [429, 201]
    assert len(fake.tasks(project.gid)) == 1


async def test_a_create_whose_answer_was_lost_is_never_resent(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination, synced_at
) -> None:
    fake.fail_next(1, 502, after=True, method="POST")
    with pytest.raises(TransientError):
        await create(dest, Record("k", {"Name": "t"}), synced_at)
    assert len(fake.requests("POST")) == 1 and len(fake.tasks(project.gid)) == 1
    assert await listing(dest) == [("k", fake.tasks(project.gid)[0].gid)]  # so a reconcile adopts it


# --------------------------------------------------------------------------------------------------
# The listing


async def test_the_listing_pages_through_every_keyed_task(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination
) -> None:
    expected = [(str(i), fake.add_task(project.gid, f"t{i}", custom={"Source ID": str(i)}).gid) for i in range(250)]
    fake.add_task(project.gid, "added by hand")
    assert await listing(dest) == expected
    pages = fake.requests("GET", rf"^/projects/{project.gid}/tasks$")
    assert len(pages) == 3 and all(r.query["limit"] == "100" for r in pages)
    assert "custom_fields.text_value" in pages[0].query["opt_fields"]


async def test_an_expired_offset_restarts_the_listing_once_without_repeating_tasks(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination, caplog: pytest.LogCaptureFixture
) -> None:
    expected = {(str(i), fake.add_task(project.gid, custom={"Source ID": str(i)}).gid) for i in range(250)}
    got: list[tuple[str, str]] = []
    async with dest.connect() as session:
        async for pair in session.query_existing_rows():
            got.append(pair)
            if len(got) == 100:
                fake.expire_offsets()  # the data "changed" under the token
    assert len(got) == 250 and set(got) == expected
    assert any("expired" in r.getMessage() for r in caplog.records)
    statuses = [r.status for r in fake.requests("GET", r"/tasks$")]
    assert statuses.count(400) == 1


async def test_an_offset_that_expires_twice_fails_the_listing_as_transient(
    fake: FakeAsana, project: FakeProject, dest: AsanaDestination
) -> None:
    for i in range(150):
        fake.add_task(project.gid, custom={"Source ID": str(i)})
    fake.offset_ttl = -1  # every offset token is stale by the time it comes back
    with pytest.raises(TransientError, match="expired twice"):
        await listing(dest)


async def test_without_a_key_field_nothing_is_listed_and_no_key_is_written(
    fake: FakeAsana, project: FakeProject, make_dest: MakeDest, synced_at
) -> None:
    dest = make_dest(key_field=None)
    gid = await create(dest, Record("k", {"Name": "t"}), synced_at)
    assert fake.values(gid)["Source ID"] is None
    assert await listing(dest) == []
