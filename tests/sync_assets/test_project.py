"""The code location as a Dagster user meets it: routes in YAML, resources, lazy and isolated loading."""

from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from sync_assets.components import RouteComponent
from sync_assets.project import DEFS_DIR, INVALID_GROUP, load_project
from sync_assets.systems import GitHubResource, NotionResource, default_resources

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHIPPED = {
    "files_to_sqlite",
    "github_to_notion",
    "github_to_asana",
    "jira_to_notion",
    "youtube_to_notion",
    "luma_to_asana",
    "contentful_to_notion",
    "spotify_to_listenbrainz",
}
SECRETS = [
    "GITHUB_TOKEN",
    "NOTION_TOKEN",
    "ASANA_PAT",
    "JIRA_API_TOKEN",
    "YOUTUBE_API_KEY",
    "LUMA_API_KEY",
    "CONTENTFUL_DELIVERY_TOKEN",
    "SPOTIFY_ACCESS_TOKEN",
    "LISTENBRAINZ_TOKEN",
]
SETTINGS = {
    "GITHUB_ORGS": "acme",
    "NOTION_DATABASE_ID": "0123456789abcdef0123456789abcdef",
    "ASANA_PROJECT_GID": "1200000000000001",
    "JIRA_BASE_URL": "https://acme.atlassian.net",
    "JIRA_EMAIL": "ops@acme.test",
    "JIRA_PROJECTS": "ENG",
    "JIRA_NOTION_DATABASE_ID": "0123456789abcdef0123456789abcdee",
    "YOUTUBE_CHANNELS": "@acmechannel",
    "YOUTUBE_NOTION_DATABASE_ID": "0123456789abcdef0123456789abcded",
    "LUMA_ASANA_PROJECT_GID": "1200000000000002",
    "CONTENTFUL_SPACE_ID": "space1",
    "CONTENTFUL_NOTION_DATABASE_ID": "0123456789abcdef0123456789abcdec",
    "LISTENBRAINZ_USER": "acme-listener",
}


def _clean_env(**extra: str) -> dict[str, str]:
    names = set(SECRETS) | set(SETTINGS) | {f"{s}_FILE" for s in SECRETS}
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("DURABLE_SYNC_")}
    env.update(extra)
    return env


def _files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_importing_and_loading_the_code_location_writes_nothing_and_reads_no_secret(tmp_path):
    """Every secret comes from a *_FILE variable whose file is watched with an audit hook: loading
    the definitions (all seven routes enabled) must not open one, nor create any file."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    env = _clean_env(DAGSTER_HOME=str(home), PYTHONPATH=str(REPO), **SETTINGS)
    for name in SECRETS:
        (secret_dir / name).write_text("test-secret-value\n")
        env[f"{name}_FILE"] = str(secret_dir / name)
    script = textwrap.dedent(
        f"""
        import sys
        opened = []
        def hook(event, args):
            if event == "open" and str(args[0]).startswith({str(secret_dir)!r}):
                opened.append(str(args[0]))
        sys.addaudithook(hook)
        import sync_assets.definitions as module
        defs = module.load_definitions()
        enabled = sorted(r.name for r in module.routes if r.enabled)
        resources = defs.get_repository_def().get_top_level_resources()
        token = resources["github"].config_schema.as_field().default_value["token"]
        print({{"opened": opened, "enabled": enabled, "github_token": token}})
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert result["opened"] == []
    assert set(result["enabled"]) == SHIPPED
    # The resource holds the variable's name (the file variant: only it is set), never a value.
    assert result["github_token"] == {"env": "GITHUB_TOKEN_FILE"}
    assert _files_in(home) == []
    assert _files_in(cwd) == []


def test_resources_declare_their_secrets_as_env_vars(monkeypatch):
    for name in SECRETS:
        monkeypatch.setenv(name, "test-secret-value")
    resources = default_resources()
    assert isinstance(resources["github"].token, dg.EnvVar)
    assert resources["github"].secret_envs() == {"token": "GITHUB_TOKEN"}
    assert resources["jira"].secret_envs() == {"api_token": "JIRA_API_TOKEN"}
    defs = load_project(resources=resources).definitions()
    top = defs.get_repository_def().get_top_level_resources()
    assert {"sync_state", "github", "notion", "asana", "jira", "youtube", "luma", "contentful"} <= set(top)
    # What the UI shows of a resource's configuration: the variable, never its value.
    config = top["notion"].config_schema.as_field().default_value
    assert config["token"] == {"env": "NOTION_TOKEN"}
    assert "test-secret-value" not in json.dumps(config)


def test_routes_name_the_resources_they_use(monkeypatch):
    for name in SECRETS:
        monkeypatch.setenv(name, "test-secret-value")
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    project = load_project()
    assert {r.name for r in project.routes if r.enabled} == SHIPPED
    graph = project.definitions().get_repository_def().asset_graph
    required = {
        name: graph.get(dg.AssetKey(name)).assets_def.required_resource_keys
        for name in ("github_to_notion", "jira_to_notion")
    }
    ours = {"sync_state", "github", "notion", "jira"}
    assert required["github_to_notion"] & ours == {"sync_state", "github", "notion"}
    assert required["jira_to_notion"] & ours == {"sync_state", "jira", "notion"}
    route = next(r for r in project.routes if r.name == "github_to_notion")
    assert route.source_binding is not None and route.source_binding.resource == "github"
    assert route.source_binding.envs == {"token": "GITHUB_TOKEN"}
    # Pauses stay keyed on the variable, as before resources.
    assert route.source_scope == "credential:github:GITHUB_TOKEN"
    assert route.destination_scope == "credential:notion:NOTION_TOKEN"


def test_an_unconfigured_route_names_the_variables_to_set(monkeypatch):
    for name in [*SECRETS, *SETTINGS]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    by_name = {r.name: r for r in load_project().routes}
    assert by_name["files_to_sqlite"].enabled
    reason = by_name["github_to_notion"].disabled_reason
    assert reason == "not configured: set GITHUB_TOKEN, NOTION_TOKEN, GITHUB_ORGS or GITHUB_REPOS, NOTION_DATABASE_ID"


def _write_route(defs_dir: Path, folder: str, text: str) -> Path:
    path = defs_dir / folder / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(text))
    return path


GOOD_ROUTE = """\
    type: sync_assets.components.RouteComponent
    attributes:
      name: people_to_sqlite
      description: People from a CSV file in a SQLite table.
      source:
        system: files
        files:
          - key: people
            path: people.csv
            key_column: id
            types: {age: int}
      destination:
        system: files
        path: people.sqlite3
        table: people
        key_column: person_id
"""


def test_a_bad_route_is_kept_out_and_the_others_load(tmp_path):
    defs_dir = tmp_path / "defs"
    _write_route(defs_dir, "people", GOOD_ROUTE)
    _write_route(
        defs_dir,
        "typo",
        """\
        type: sync_assets.components.RouteComponent
        attributes:
          name: typo_route
          source: {system: github, orgz: acme}
          destination: {system: notion, database_id: abc}
        """,
    )
    _write_route(defs_dir, "broken", "type: sync_assets.components.RouteComponent\nattributes: [unclosed\n")
    _write_route(
        defs_dir,
        "nowhere",
        """\
        type: sync_assets.components.RouteComponent
        attributes:
          name: nowhere_route
          source: {system: salesforce}
          destination: {system: notion, database_id: abc}
        """,
    )
    project = load_project(defs_dir, resources={**default_resources(), "files": _files(tmp_path)})
    assert [r.name for r in project.routes] == ["people_to_sqlite"]
    errors = {e.name: e for e in project.errors}
    assert set(errors) == {"typo_route", "broken", "nowhere_route"}
    assert "orgz is not an option here" in errors["typo_route"].error
    assert "options: orgs, repos" in errors["typo_route"].error
    assert "not valid YAML" in errors["broken"].error
    assert "resource 'salesforce', which is not defined" in errors["nowhere_route"].error
    assert errors["typo_route"].path.endswith("typo/defs.yaml")

    defs = project.definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    placeholder = graph.get(dg.AssetKey("typo_route"))
    assert placeholder.is_external and not placeholder.is_materializable
    spec = next(s for s in defs.assets if isinstance(s, dg.AssetSpec) and s.key == dg.AssetKey("typo_route"))
    assert spec.group_name == INVALID_GROUP
    assert "orgz is not an option here" in (spec.description or "")
    assert graph.get(dg.AssetKey("people_to_sqlite")).is_materializable


def _files(tmp_path: Path):
    from sync_assets.systems import FilesResource

    return FilesResource(base_dir=str(tmp_path / "data"))


def test_a_route_written_in_yaml_syncs(tmp_path):
    """What a new user does: one YAML file, then a materialization; the rows land, a second pass writes nothing."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "people.csv").write_text("id,name,age\n1,Ada,36\n2,Grace,45\n")
    defs_dir = tmp_path / "defs"
    _write_route(defs_dir, "people", GOOD_ROUTE)
    files = _files(tmp_path)
    project = load_project(defs_dir, resources={"files": files})
    defs = project.definitions()
    job = defs.resolve_job_def("people_to_sqlite_sync")
    resources = {"sync_state": _state(tmp_path), "files": files}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("people_to_sqlite", ["people"])
        first = job.execute_in_process(instance=instance, partition_key="people", resources=resources)
        second = job.execute_in_process(instance=instance, partition_key="people", resources=resources)
    assert first.success and second.success
    md = next(e.materialization.metadata for e in second.get_asset_materialization_events())
    assert md["created"].value == 0 and md["unchanged"].value == 2
    query = "select person_id, name, age from people order by person_id"
    rows = sqlite3.connect(data / "people.sqlite3").execute(query).fetchall()
    assert rows == [("1", "Ada", 36), ("2", "Grace", 45)]


def _state(tmp_path: Path):
    from sync_assets.resources import SyncStateResource

    return SyncStateResource(url=f"sqlite:///{tmp_path / 'state.sqlite3'}")


def test_the_python_api_is_still_a_few_lines(tmp_path):
    """The same route without YAML: a component built in Python (or a Route of connector objects)."""
    (tmp_path / "data").mkdir()
    component = RouteComponent(
        name="people_py",
        source={"system": "files", "files": [{"key": "people", "path": "people.csv", "key_column": "id"}]},
        destination={"system": "files", "path": "people.sqlite3", "table": "people", "key_column": "person_id"},
    )
    route = component.build_route({"files": _files(tmp_path)})
    assert route.enabled and route.name == "people_py"
    assert route.destination_binding is not None and route.destination_binding.options["table"] == "people"


def test_shipped_routes_are_component_files():
    files = sorted(p.parent.name for p in DEFS_DIR.rglob("defs.yaml"))
    assert set(files) == SHIPPED


def _dg(*args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = _clean_env(DAGSTER_HOME=str(REPO / ".dagster_home"), DAGSTER_DISABLE_TELEMETRY="1")
    return subprocess.run([str(BIN / "dg"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_dg_check_and_list_defs():
    check = _dg("check", "defs")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "All definitions loaded successfully" in check.stdout + check.stderr
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assets = {a["asset_key"] for a in data["assets"]}
    assert {"files", "files_to_sqlite", "files_to_sqlite_link_report"} <= assets
    assert "durable_sync_sync_now" in {s["name"] for s in data["sensors"]}


@pytest.mark.e2e
def test_dg_scaffold_defs_creates_a_route_that_loads(tmp_path):
    """``dg scaffold defs`` in a copy of the project: the new route's file loads as a route."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    shutil.copytree(REPO / "sync_assets", project / "sync_assets", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "connectors", project / "connectors", ignore=shutil.ignore_patterns("__pycache__"))
    made = _dg("scaffold", "defs", "sync_assets.components.RouteComponent", "my_route", cwd=project)
    assert made.returncode == 0, made.stdout + made.stderr
    path = project / "sync_assets" / "defs" / "my_route" / "defs.yaml"
    assert path.exists()
    loaded = load_project(project / "sync_assets" / "defs", resources={"files": _files(tmp_path)})
    assert "my_route" in {r.name for r in loaded.routes}
    assert not [e for e in loaded.errors if e.name == "my_route"]


def test_notion_over_mcp_is_chosen_by_the_resource(monkeypatch):
    monkeypatch.setenv("NOTION_DATABASE_ID", SETTINGS["NOTION_DATABASE_ID"])
    resources = {**default_resources(), "notion": NotionResource(transport="mcp")}
    route = RouteComponent(
        name="gh_mcp",
        source={"system": "github", "orgs": "acme"},
        destination={"system": "notion", "database_id": SETTINGS["NOTION_DATABASE_ID"]},
    ).build_route({**resources, "github": GitHubResource(token="test-token")})
    assert type(route.destination).__name__ == "NotionMcpDestination"
    assert route.destination_scope == "credential:notion-mcp:notion-mcp"


def test_status_lists_a_route_that_did_not_load(tmp_path, monkeypatch, capsys):
    """``durable-sync status`` shows the invalid route with its file; ``sync`` of it says why it cannot."""
    from sync_assets.cli import main

    defs_dir = tmp_path / "defs"
    _write_route(defs_dir, "people", GOOD_ROUTE)
    _write_route(
        defs_dir,
        "typo",
        """\
        type: sync_assets.components.RouteComponent
        attributes:
          name: typo_route
          source: {system: files, files: [{key: a, path: a.csv}]}
          destination: {system: files, path: a.sqlite3, table: a}
        """,
    )
    (tmp_path / "my_routes.py").write_text(
        "from pathlib import Path\n"
        "from sync_assets.project import load_project\n"
        f"_project = load_project(Path({str(defs_dir)!r}))\n"
        "routes, route_errors = _project.routes, _project.errors\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    state = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    assert main(["--state-url", state, "--module", "my_routes", "status", "--json"]) == 0
    report = {e["route"]: e for e in json.loads(capsys.readouterr().out)}
    assert report["people_to_sqlite"]["enabled"] is True
    assert "files.0.key_column Field required" in report["typo_route"]["invalid"]
    assert report["typo_route"]["path"].endswith("typo/defs.yaml")
    assert main(["--state-url", state, "--module", "my_routes", "status"]) == 0
    assert "typo_route: NOT LOADED" in capsys.readouterr().out
    assert main(["--state-url", state, "--module", "my_routes", "sync", "typo_route"]) == 2
    assert "route typo_route is not loaded" in capsys.readouterr().err


def test_the_readme_route_file_loads(tmp_path, monkeypatch):
    """The README's complete example is a route this code loads (and enables once its variables are set)."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("```yaml\n# sync_assets/defs/people/defs.yaml\n", 1)[1].split("```", 1)[0]
    path = _write_route(tmp_path / "defs", "people", block)
    monkeypatch.setenv("NOTION_TOKEN", "test-secret-value")
    monkeypatch.setenv("PEOPLE_NOTION_DATABASE_ID", SETTINGS["NOTION_DATABASE_ID"])
    project = load_project(path.parent.parent)
    assert project.errors == []
    (route,) = project.routes
    assert route.enabled and route.name == "people_to_notion"
    assert route.owns == frozenset({"Name", "Age", "Joined"})
    assert route.destination.create_only_properties == {"Created"}
    assert route.specs_by_partition()["people"].interval_minutes == 15


@pytest.mark.parametrize(
    ("variable", "value", "broken_route", "message"),
    [
        ("YOUTUBE_CHANNELS", "@x", "youtube_to_notion", "'@x' is not a channel id"),
        (
            "GITHUB_PAGE_SIZE",
            "abc",
            "github_to_notion",
            "resource 'github', which is misconfigured: GITHUB_PAGE_SIZE='abc'",
        ),
        ("GITHUB_INTERVAL_MINUTES", "soon", "github_to_asana", "interval_minutes"),
    ],
)
def test_one_malformed_value_keeps_out_only_the_routes_it_touches(monkeypatch, variable, value, broken_route, message):
    for name in SECRETS:
        monkeypatch.setenv(name, "test-secret-value")
    for name, setting in SETTINGS.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv(variable, value)
    project = load_project()
    errors = {e.name: e.error for e in project.errors}
    assert broken_route in errors and message in errors[broken_route]
    loaded = {r.name for r in project.routes if r.enabled}
    assert "files_to_sqlite" in loaded and "jira_to_notion" in loaded and broken_route not in loaded
    dg.Definitions.validate_loadable(project.definitions())


NOTION_JIRA_PAIR = """\
    type: sync_assets.components.RouteComponent
    attributes:
      name: notion_to_jira
      source: {system: notion, data_source_id: 0123456789abcdef0123456789abcdef}
      destination: {system: jira, project_key: ENG}
      two_way:
        back_name: jira_to_notion_tasks
        back_source: {system: jira, projects: ENG}
        back_destination:
          system: notion
          database_id: 0123456789abcdef0123456789abcdef
          title_property: Name
          key_property: Key
        fields: {Name: Summary, Priority: Priority}
        modified: [Edited, Updated]
"""


def test_a_notion_jira_pair_is_one_yaml_file(tmp_path, monkeypatch):
    """Notion ⇄ Jira declared in YAML: both directions, their connectors from the notion and jira resources."""
    for name in SECRETS:
        monkeypatch.setenv(name, "test-secret-value")
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    _write_route(tmp_path / "defs", "pair", NOTION_JIRA_PAIR)
    project = load_project(tmp_path / "defs")
    assert project.errors == []
    by_name = {r.name: r for r in project.routes}
    there, back = by_name["notion_to_jira"], by_name["jira_to_notion_tasks"]
    assert (type(there.source).__name__, type(there.destination).__name__) == ("NotionSource", "JiraDestination")
    assert (type(back.source).__name__, type(back.destination).__name__) == ("JiraSource", "NotionDestination")
    assert there.enabled and back.enabled
    assert there.two_way is not None and there.two_way.pair == back.two_way.pair
    graph = project.definitions().get_repository_def().asset_graph
    assert {"notion", "jira"} <= graph.get(dg.AssetKey("notion_to_jira")).assets_def.required_resource_keys
