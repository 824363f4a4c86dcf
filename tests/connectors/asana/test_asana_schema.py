"""AsanaDestination.bootstrap_schema: custom fields a sample needs, created in the workspace and added to the project."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.core import ConfigError, Record, SchemaBootstrap
from tests.fakes.asana import FakeAsana


def sample() -> list[Record]:
    return [
        Record("1", {"Name": "a", "Stars": 3, "Ratio": 0.5, "Labels": ["bug", "docs"], "Due": dt.date(2024, 1, 2)}),
        Record("2", {"Name": "b", "Stars": 4, "Labels": ["infra"], "Note": "x", "Flag": True, "due_on": None}),
    ]


def field_types(fake: FakeAsana, project_gid: str) -> dict[str, str]:
    return {fake.fields[g].name: fake.fields[g].kind for g in fake.projects[project_gid].field_gids}


async def test_plan_then_apply_creates_each_missing_field_once(fake: FakeAsana, make_dest):
    workspace = fake.add_workspace("Fresh")  # none of the fixture project's fields live here
    fake.user.workspaces.append(workspace)
    bare = fake.add_project("Bare", {"Stars": "number"}, workspace=workspace)
    dest = make_dest(bare.gid, synced_field="Last synced")
    assert isinstance(dest, SchemaBootstrap)

    planned = await dest.bootstrap_schema(sample(), apply=False)
    creates = {c.name: (c.kind, c.detail) for c in planned if c.action == "create"}
    assert creates == {
        "Ratio": ("number", "precision 2"),
        "Labels": ("multi_enum", "options bug, docs, infra"),
        "Due": ("date", ""),
        "Note": ("text", ""),
        "Source ID": ("text", ""),
        "Last synced": ("date", ""),
    }
    assert [(c.action, c.name) for c in planned if c.action != "create"] == [("skip", "Flag")]
    assert fake.requests("POST") == [] and set(field_types(fake, bare.gid)) == {"Stars"}

    applied = await dest.bootstrap_schema(sample(), apply=True)
    assert applied == planned
    types = field_types(fake, bare.gid)
    assert types == {
        "Stars": "number",
        "Ratio": "number",
        "Labels": "multi_enum",
        "Due": "date",
        "Note": "text",
        "Source ID": "text",
        "Last synced": "date",
    }
    labels = next(f for f in fake.fields.values() if f.name == "Labels")
    assert [o.name for o in labels.options] == ["bug", "docs", "infra"]

    posts = len(fake.requests("POST"))
    again = await dest.bootstrap_schema(sample(), apply=True)
    assert [c for c in again if c.action == "create"] == []
    assert len(fake.requests("POST")) == posts  # nothing sent the second time

    # The destination now connects (its key field exists) and writes into the new fields.
    async with dest.connect() as session:
        gid = await session.create(sample()[0], dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    assert fake.tasks_by_gid[gid].name == "a"


async def test_a_workspace_field_is_added_to_the_project_and_a_mismatch_is_left_alone(fake: FakeAsana, make_dest):
    other = fake.add_project("Other", {"Note": "text"})
    target = fake.add_project("Target", {"Source ID": "text", "Stars": "text"})
    dest = make_dest(target.gid)
    changes = await dest.bootstrap_schema([Record("1", {"Name": "a", "Note": "x", "Stars": 3})], apply=True)
    by_name = {c.name: c for c in changes}
    assert by_name["Note"].action == "create" and "workspace" in by_name["Note"].detail
    assert by_name["Stars"].action == "mismatch" and "a text field on the project" in str(by_name["Stars"])
    note_gid = next(g for g in other.field_gids if fake.fields[g].name == "Note")
    assert note_gid in target.field_gids  # the same field, not a second one named alike
    assert fake.fields[next(g for g in target.field_gids if fake.fields[g].name == "Stars")].kind == "text"
    assert fake.requests("POST", r"^/custom_fields$") == []


async def test_a_free_workspace_is_a_config_error(fake: FakeAsana, make_dest):
    free = fake.add_workspace("Free", premium=False)
    project = fake.add_project("Free project", workspace=free)
    fake.user.workspaces.append(free)
    with pytest.raises(ConfigError, match="without custom fields"):
        await make_dest(project.gid).bootstrap_schema(sample(), apply=False)
