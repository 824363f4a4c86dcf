"""ContentfulDestination against the fake CMA: deterministic ids, versioned merges, publish, errors, listing."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest

from connectors.contentful import ContentfulDestination, InvalidEntry
from connectors.core import AuthError, ConfigError, Record, RecordError
from tests.connectors.contentful.conftest import FakeTime
from tests.fakes.contentful import FakeContentful, FakeEnvironment

MakeDest = Callable[..., ContentfulDestination]
UTC = dt.UTC


def post(key: str = "101", **overrides: Any) -> Record:
    properties: dict[str, Any] = {
        "Title": "Hello",
        "Slug": "hello",
        "Views": 12,
        "Score": 4.5,
        "Featured": True,
        "Published": dt.date(2024, 5, 1),
        "Tags": ["a", "b"],
        "Author": "author-1",
        "Summary": "Short",
    }
    properties.update(overrides)
    return Record(key, properties)


async def create(dest: ContentfulDestination, record: Record, synced_at: dt.datetime) -> str:
    async with dest.connect() as session:
        return await session.create(record, synced_at)


async def update(dest: ContentfulDestination, entry_id: str, record: Record, synced_at: dt.datetime) -> bool:
    async with dest.connect() as session:
        return await session.update(entry_id, record, synced_at)


def puts(fake: FakeContentful, entry_id: str) -> int:
    return len(fake.requests("cma", "PUT", rf"/entries/{entry_id}$"))


# --------------------------------------------------------------------------------------------------
# Creates


async def test_a_create_puts_the_deterministic_id_with_every_value_typed(make_dest: MakeDest, fake, env, synced_at):
    entry_id = await create(make_dest(), post(), synced_at)

    assert entry_id == "ds-101"
    assert fake.values(env, entry_id) == {
        "title": "Hello",
        "slug": "hello",
        "views": 12,
        "score": 4.5,
        "featured": True,
        "published": "2024-05-01",  # a raw date becomes ISO 8601, not an unserializable object
        "tags": ["a", "b"],
        "author": {"sys": {"type": "Link", "linkType": "Entry", "id": "author-1"}},
        "summary": "Short",
        "key": "101",
    }
    (created,) = fake.requests("cma", "PUT", r"/entries/ds-101$")
    assert created.headers["x-contentful-content-type"] == "article" and "x-contentful-version" not in created.headers
    assert not fake.entry(env, entry_id).published  # publish is off by default


async def test_a_create_of_an_existing_entry_updates_it_and_never_duplicates(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest()
    first = await create(dest, post(Views=1), synced_at)
    again = await create(dest, post(Views=2), synced_at)  # e.g. the link of the first create was lost

    assert first == again == "ds-101"
    assert len(fake.live_entries(env, "article")) == 1 and fake.values(env, first)["views"] == 2
    statuses = [r.status for r in fake.requests("cma", "PUT", r"/entries/ds-101$")]
    assert statuses == [201, 409, 200]  # create, create again (VersionMismatch), versioned update


async def test_localized_fields_are_written_in_the_default_locale_and_others_in_the_space_default(
    make_dest: MakeDest, fake, env, synced_at
):
    entry_id = await create(make_dest(default_locale="de-DE"), post(), synced_at)
    entry = fake.entry(env, entry_id)
    assert entry.fields["title"] == {"de-DE": "Hello"} and entry.fields["summary"] == {"de-DE": "Short"}
    assert entry.fields["views"] == {"en-US": 12}  # not localized: only the space's default locale


# --------------------------------------------------------------------------------------------------
# Updates


async def test_an_update_keeps_unmanaged_fields_and_other_locales(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    # A human edits a field we do not manage and translates the title.
    fake.edit_entry(env, entry_id, {"body": "Written by hand", "title": {"de-DE": "Hallo"}})

    await update(dest, entry_id, post(Title="Hello again", Views=13), synced_at)

    entry = fake.entry(env, entry_id)
    assert entry.fields["body"] == {"en-US": "Written by hand"}
    assert entry.fields["title"] == {"en-US": "Hello again", "de-DE": "Hallo"}
    assert fake.values(env, entry_id)["views"] == 13
    (versioned,) = [r for r in fake.requests("cma", "PUT", r"/entries/ds-101$") if r.status == 200]
    assert versioned.headers["x-contentful-version"] == "2"  # the version read just before


async def test_an_update_that_changes_nothing_writes_nothing(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    version = fake.entry(env, entry_id).version
    assert await update(dest, entry_id, post(), synced_at) is True
    assert fake.entry(env, entry_id).version == version and puts(fake, entry_id) == 1


async def test_none_removes_a_value_and_properties_absent_from_the_record_are_left_alone(
    make_dest: MakeDest, fake, env, synced_at
):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    await update(dest, entry_id, Record("101", {"Views": None, "Tags": []}), synced_at)
    values = fake.values(env, entry_id)
    assert "views" not in values and values["tags"] == [] and values["title"] == "Hello"


async def test_create_only_properties_are_not_updated(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest(create_only_properties={"Slug"})
    entry_id = await create(dest, post(), synced_at)
    await update(dest, entry_id, post(Slug="renamed"), synced_at)
    assert fake.values(env, entry_id)["slug"] == "hello"


async def test_a_version_conflict_is_read_again_and_retried(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    fake.fail_next(2, 409, api="cma", method="PUT", path=r"/entries/ds-101$")  # someone saves twice meanwhile

    await update(dest, entry_id, post(Views=50), synced_at)

    assert fake.values(env, entry_id)["views"] == 50
    assert len(fake.requests("cma", "GET", r"/entries/ds-101$")) == 3  # read, conflict, read, conflict, read


async def test_a_real_concurrent_save_is_merged_not_overwritten(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    async with dest.connect() as session:
        original = session.client.get_entry

        async def get_then_someone_saves(eid: str) -> Any:
            entry = await original(eid)
            if not fake.values(env, eid).get("body"):
                fake.edit_entry(env, eid, {"body": "saved meanwhile"})  # after our read, before our PUT
            return entry

        session.client.get_entry = get_then_someone_saves  # type: ignore[method-assign]
        await session.update(entry_id, post(Views=77), synced_at)

    values = fake.values(env, entry_id)
    assert values["views"] == 77 and values["body"] == "saved meanwhile"


async def test_conflicts_that_never_end_fail_only_that_record(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    fake.fail_next(10, 409, api="cma", method="PUT", path=r"/entries/ds-101$")
    with pytest.raises(RecordError, match="kept changing"):
        await update(dest, entry_id, post(Views=50), synced_at)


async def test_updating_a_deleted_entry_or_one_of_another_type_is_a_record_error(
    make_dest: MakeDest, fake, env, synced_at
):
    dest = make_dest()
    entry_id = await create(dest, post(), synced_at)
    fake.delete_entry(env, entry_id)
    with pytest.raises(RecordError, match="no longer exists"):
        await update(dest, entry_id, post(), synced_at)
    fake.add_entry(env, "author", {"name": "Ada"}, entry_id="ds-7")
    with pytest.raises(RecordError, match="its own id_prefix"):
        await create(dest, post("7"), synced_at)


# --------------------------------------------------------------------------------------------------
# Publish


async def test_publish_publishes_every_write(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest(publish=True)
    entry_id = await create(dest, post(), synced_at)
    entry = fake.entry(env, entry_id)
    assert entry.published and entry.published_fields is not None and entry.published_fields["views"] == {"en-US": 12}

    await update(dest, entry_id, post(Views=13), synced_at)
    assert entry.published_fields["views"] == {"en-US": 13} and entry.version == entry.published_version + 1
    published = len(fake.requests("cma", "PUT", r"/published$"))
    await update(dest, entry_id, post(Views=13), synced_at)  # nothing changed: no save, no publish
    assert len(fake.requests("cma", "PUT", r"/published$")) == published


async def test_a_rejected_publish_fails_the_record_and_keeps_the_draft(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest(publish=True)
    with pytest.raises(RecordError, match="saved as a draft but not published") as raised:
        await create(dest, post(Title=None), synced_at)  # title is required to publish
    assert "fields.title: required" in str(raised.value)
    entry = fake.entry(env, "ds-101")
    assert not entry.published and entry.fields["views"] == {"en-US": 12}

    await create(dest, post(), synced_at)  # fixed: the next pass's create meets the draft and publishes it
    assert entry.published and len(fake.live_entries(env, "article")) == 1


# --------------------------------------------------------------------------------------------------
# Bad input, configuration


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"Views": "many"}, r"'Views' -> field 'views' \(Integer\): needs a whole number"),
        ({"Title": "x" * 300}, "300 characters, over the limit of 256"),
        ({"Published": "soon"}, "is not a date"),
        ({"Featured": "yes"}, "needs true or false"),
        ({"Tags": ["ok", "x" * 257]}, "an item of 257 characters"),
        ({"Author": "no such id!"}, "is not a Contentful id"),
    ],
)
async def test_values_that_do_not_fit_are_record_errors_and_nothing_is_sent(
    make_dest: MakeDest, fake, env, synced_at, overrides, match
):
    with pytest.raises(RecordError, match=match) as raised:
        await create(make_dest(), post(**overrides), synced_at)
    assert raised.value.primary_key == "101"
    assert fake.requests("cma", "PUT") == []


async def test_a_field_removed_after_connect_is_a_per_record_422(make_dest: MakeDest, fake, env, synced_at):
    async with make_dest().connect() as session:
        fields = env.content_types["article"]["fields"]
        fields[:] = [f for f in fields if f["id"] != "summary"]  # someone edits the content model
        with pytest.raises(InvalidEntry, match=r"422 InvalidEntry: fields\.summary: unknown") as raised:
            await session.create(post(), synced_at)
        assert isinstance(raised.value, RecordError) and raised.value.errors[0]["name"] == "unknown"
        assert await session.create(post("102", Summary=None), synced_at) == "ds-102"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"field_map": {"Title": "title", "Extra": "nope"}}, r"no field 'nope' \(field_map\['Extra'\]\)"),
        ({"field_map": {"Where": "place"}}, "a Location field cannot be written"),
        ({"content_type": "missing"}, "has no content type 'missing'"),
        ({"key_field": "body"}, "needs a Symbol .* for key_field .found Text"),
        ({"body_field": "related"}, "for body_field .found Array<Link>"),
        ({"default_locale": "fr-FR"}, "has no locale 'fr-FR'"),
    ],
)
async def test_configuration_errors_surface_at_connect_naming_the_culprit(make_dest: MakeDest, env, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        async with make_dest(**kwargs).connect():
            pass


def test_constructor_checks():
    with pytest.raises(ConfigError, match="several properties"):
        ContentfulDestination("s", "article", {"A": "title", "B": "title"})
    with pytest.raises(ConfigError, match="also a field_map target"):
        ContentfulDestination("s", "article", {"A": "key"}, key_field="key")
    with pytest.raises(ConfigError, match="id_prefix"):
        ContentfulDestination("s", "article", {"A": "title"}, id_prefix="bad prefix")


async def test_keys_that_cannot_be_ids_are_hashed_and_need_the_key_field(make_dest: MakeDest, fake, env, synced_at):
    with pytest.raises(RecordError, match="set key_field"):
        await create(make_dest(key_field=None), post("acme/widgets"), synced_at)
    dest = make_dest()
    entry_id = await create(dest, post("acme/widgets"), synced_at)
    assert entry_id.startswith("ds-.") and fake.values(env, entry_id)["key"] == "acme/widgets"
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"acme/widgets": entry_id}


async def test_the_body_goes_to_the_body_field(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest(body_field="content")
    entry_id = await create(dest, Record("9", {"Title": "T"}, body="One\n\nTwo"), synced_at)
    assert [p["content"][0]["value"] for p in fake.values(env, entry_id)["content"]["content"]] == ["One", "Two"]


# --------------------------------------------------------------------------------------------------
# Listing


async def test_the_listing_names_our_entries_by_key(make_dest: MakeDest, fake, env, synced_at):
    dest = make_dest(key_field=None)
    created = {key: await create(dest, post(key), synced_at) for key in ("1", "2", "x-3")}
    fake.add_entry(env, "article", {"title": "by hand"})  # not ours: no prefix
    fake.add_entry(env, "author", {"name": "Ada"}, entry_id="ds-99")  # ours by prefix, another content type
    async with dest.connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]
    assert sorted(rows) == sorted(created.items())


async def test_the_listing_pages_and_reads_keys_from_the_key_field(make_dest: MakeDest, fake, env, synced_at):
    for i in range(130):  # two listing pages
        fake.add_entry(env, "article", {"title": f"t{i}", "key": f"k{i}"}, entry_id=f"ds-k{i}", publish=False)
    fake.add_entry(env, "article", {"title": "renamed key", "key": "real-key"}, entry_id="ds-other", publish=False)
    async with make_dest().connect() as session:
        ids = await session.query_existing_ids()
    assert len(ids) == 131 and ids["k129"] == "ds-k129" and ids["real-key"] == "ds-other"
    listing = fake.requests("cma", "GET", r"/entries$")
    assert len(listing) == 2 and "select=" in listing[0].query


# --------------------------------------------------------------------------------------------------
# Auth, rate limits, secrets


async def test_a_revoked_token_is_an_auth_error_at_connect(make_dest: MakeDest, fake, env, time: FakeTime):
    fake.revoke_token(fake.cma_token)
    dest = make_dest()
    with pytest.raises(AuthError) as raised:
        async with dest.connect():
            pass
    assert dest.is_auth_error(raised.value) and time.sleeps == []


async def test_a_429_on_a_write_is_waited_out_as_told(make_dest: MakeDest, fake, env, time: FakeTime, synced_at):
    fake.fail_next(1, 429, retry_after=7, api="cma", method="PUT")
    assert await create(make_dest(), post(), synced_at) == "ds-101"
    assert 7 in time.sleeps and len(fake.live_entries(env, "article")) == 1


async def test_the_token_is_never_in_errors_or_logs(make_dest: MakeDest, fake, env, synced_at, caplog):
    caplog.set_level(logging.DEBUG)
    dest = make_dest()
    with pytest.raises(RecordError) as invalid:
        async with dest.connect() as session:
            env.content_types["article"]["fields"].pop()  # make the server answer 422
            await session.create(post(), synced_at)
    fake.fail_next(10, 503, api="cma")
    with pytest.raises(Exception) as unavailable:
        await create(make_dest(retry=None), post("2"), synced_at)
    for text in (str(invalid.value), str(unavailable.value), caplog.text, dest.describe(), dest.credential_key):
        assert fake.cma_token not in text


def test_credentials_are_named_by_slot_and_fingerprinted(fake: FakeContentful, env: FakeEnvironment, monkeypatch):
    monkeypatch.setenv("CONTENTFUL_CMA_TOKEN", fake.cma_token)
    dest = ContentfulDestination("space1", "article", {"Title": "title"})
    assert dest.configured and dest.credential_key == "contentful:CONTENTFUL_CMA_TOKEN"
    assert dest.rate_limit_key.startswith("contentful-cma:") and fake.cma_token not in dest.rate_limit_key
    fingerprint = dest.credential_fingerprint()
    monkeypatch.setenv("CONTENTFUL_CMA_TOKEN", "CFPAT-rotated")
    assert dest.credential_fingerprint() != fingerprint and dest.credential_key == "contentful:CONTENTFUL_CMA_TOKEN"
    monkeypatch.delenv("CONTENTFUL_CMA_TOKEN")
    assert not dest.configured and "CONTENTFUL_CMA_TOKEN" in dest.config_hint
    assert dest.describe() == "https://app.contentful.com/spaces/space1/entries?contentTypeId=article"
