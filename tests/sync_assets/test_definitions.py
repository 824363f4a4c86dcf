"""The deployment's Dagster graph loads and has the expected shape (a snapshot of names)."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest

from connectors.core import ConfigError, Record
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.factory import build_definitions
from sync_assets.routes import Route


@pytest.fixture
def project_defs():
    import sync_assets.definitions as module

    return importlib.reload(module).load_definitions()


def test_definitions_load_and_validate(project_defs):
    repo = project_defs.get_repository_def()
    repo.load_all_definitions()
    dg.Definitions.validate_loadable(project_defs)


def test_asset_graph_snapshot(project_defs):
    graph = project_defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"files", "files_to_sqlite", "files_to_sqlite_link_report"}
    route = graph.get(dg.AssetKey("files_to_sqlite"))
    assert {k.to_user_string() for k in route.parent_keys} == {"files"}
    assert {k.to_user_string() for k in route.child_keys} == {"files_to_sqlite_link_report"}
    assert isinstance(route.partitions_def, dg.DynamicPartitionsDefinition)
    assert route.partitions_def.name == "files_to_sqlite"
    assert {c.name for c in route.check_keys} == {
        "no_failed_records",
        "no_duplicate_keys",
        "not_paused",
        "not_overdue",
        "no_lasting_pause",
    }
    assert graph.get(dg.AssetKey("files")).is_external


def test_jobs_sensors_schedules_snapshot(project_defs):
    repo = project_defs.get_repository_def()
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {"files_to_sqlite_sync"}
    assert {s.name for s in repo.sensor_defs} == {
        "files_to_sqlite_dispatcher",
        "durable_sync_sync_now",
        "durable_sync_auth_resume",
        "durable_sync_failures",
        "durable_sync_stale_runs",
        "durable_sync_freshness",
        "durable_sync_pause_escalation",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs)
    assert {s.name for s in repo.schedule_defs} == {"files_to_sqlite_reconcile"}
    job = repo.get_job("files_to_sqlite_sync")
    assert job.executor_def.name == "in_process"
    assert {n.name for n in job.nodes} == {"files_to_sqlite", "files_to_sqlite_link_report"}


def test_two_routes_with_one_name_fail_at_load_time():
    a = Route(MemorySource([Record("1", {})]), MemoryDestination(), name="same")
    b = Route(MemorySource([Record("1", {})], name="other"), MemoryDestination(), name="same")
    with pytest.raises(ConfigError, match="two routes are named 'same'"):
        build_definitions([a, b])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name!"}, "Route.name 'bad name!' is not a valid route name"),
        ({"source": object()}, "Route.source: .* lacks name, specs"),
        ({"destination": object()}, "Route.destination: .* lacks name, connect"),
    ],
)
def test_bad_route_configuration_names_the_field(kwargs, message):
    args = {"source": MemorySource([Record("1", {})]), "destination": MemoryDestination(), **kwargs}
    with pytest.raises(ConfigError, match=message):
        Route(**args)


def test_bad_spec_configuration_names_the_field():
    from connectors.core import SourceSpec

    with pytest.raises(ConfigError, match="interval_minutes must be a whole number >= 1"):
        SourceSpec("x", interval_minutes=0)
    with pytest.raises(ConfigError, match=r"SourceSpec\.key must be a non-empty string"):
        SourceSpec("  ")


def test_colliding_partition_keys_fail_at_load_time():
    route = Route(MemorySource({"a/b": [], "a|b": []}), MemoryDestination())
    with pytest.raises(ConfigError, match=r"both map to partition .a_b."):
        route.specs_by_partition()


def test_disabled_route_is_left_out_of_the_graph():
    on = Route(MemorySource([Record("1", {})]), MemoryDestination(), name="on")
    off = Route(MemorySource([Record("1", {})], name="m2"), MemoryDestination(), name="off", enabled=False)
    defs = build_definitions([on, off])
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"memory", "on"}


def test_every_route_joins_the_graph_when_configured(monkeypatch):
    """With every variable set (placeholder values), all routes load; with NOTION_TRANSPORT=mcp the
    Notion routes use the MCP destination and its OAuth login."""
    db = "0123456789abcdef0123456789abcdef"
    env = {
        "GITHUB_TOKEN": "x",
        "GITHUB_ORGS": "acme",
        "NOTION_TOKEN": "x",
        "NOTION_DATABASE_ID": db,
        "ASANA_PAT": "x",
        "ASANA_PROJECT_GID": "123",
        "JIRA_BASE_URL": "https://acme.atlassian.net",
        "JIRA_EMAIL": "a@acme.test",
        "JIRA_API_TOKEN": "x",
        "JIRA_PROJECTS": "ENG",
        "JIRA_NOTION_DATABASE_ID": db,
        "YOUTUBE_API_KEY": "x",
        "YOUTUBE_CHANNELS": "@acmechannel",
        "YOUTUBE_NOTION_DATABASE_ID": db,
        "LUMA_API_KEY": "x",
        "LUMA_ASANA_PROJECT_GID": "456",
        "CONTENTFUL_SPACE_ID": "space1",
        "CONTENTFUL_DELIVERY_TOKEN": "x",
        "CONTENTFUL_NOTION_DATABASE_ID": db,
        "SPOTIFY_ACCESS_TOKEN": "x",
        "LISTENBRAINZ_TOKEN": "x",
        "LISTENBRAINZ_USER": "acme-listener",
        "NOTION_TRANSPORT": "mcp",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import sync_assets.definitions as module

    module = importlib.reload(module)
    dg.Definitions.validate_loadable(module.load_definitions())
    names = {r.name for r in module.routes if r.enabled}
    assert names == {
        "files_to_sqlite",
        "github_to_notion",
        "github_to_asana",
        "jira_to_notion",
        "youtube_to_notion",
        "luma_to_asana",
        "contentful_to_notion",
        "spotify_to_listenbrainz",
    }
    by_name = {r.name: r for r in module.routes}
    assert type(by_name["github_to_notion"].destination).__name__ == "NotionMcpDestination"
    assert by_name["github_to_notion"].destination_scope == "credential:notion-mcp:notion-mcp"
    monkeypatch.delenv("NOTION_TRANSPORT")
    module = importlib.reload(module)
    assert type({r.name: r for r in module.routes}["github_to_notion"].destination).__name__ == "NotionDestination"
    for k in env:  # leave the module as the rest of the session expects it
        monkeypatch.delenv(k, raising=False)
    importlib.reload(module)


def test_resources_and_components_snapshot(project_defs):
    """The resources the UI lists (one per system, plus the state store and the link-map IO manager),
    and the demo route built from its component file, requiring the resource it names."""
    repo = project_defs.get_repository_def()
    systems = {"files", "demo_files", "github", "notion", "asana", "jira", "youtube", "luma", "contentful"}
    assert systems | {"sync_state", "link_map_io_manager"} <= set(repo.get_top_level_resources())
    demo = repo.asset_graph.get(dg.AssetKey("files_to_sqlite")).assets_def
    assert {"sync_state", "demo_files"} <= demo.required_resource_keys
    from sync_assets.project import DEFS_DIR

    assert (DEFS_DIR / "files_to_sqlite" / "defs.yaml").read_text().startswith("# The embedded demo")
