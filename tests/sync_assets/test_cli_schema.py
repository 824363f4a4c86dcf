"""durable-sync schema ROUTE [--apply] and the schema part of durable-sync plan."""

from __future__ import annotations

import json
import sqlite3

import httpx

from connectors.core import Record
from connectors.files import FileSpec, FilesSource, SQLiteDestination
from connectors.http import HttpSettings, Rate
from connectors.memory import MemorySource
from connectors.notion import NotionDestination
from sync_assets.cli import main
from sync_assets.routes import Route
from tests.fakes.common import FakeTime
from tests.fakes.notion import FakeNotion

CSV = "id,title,points,due,tags,secret,done\n1,a,3,2024-01-02,x|y,s1,\n2,b,4,,z,s2,\n"


def run_cli(capsys, store, *args, routes):
    code = main(["--state-url", store.url, *args], routes=routes)
    out = capsys.readouterr()
    return code, out.out, out.err


def columns(path, table: str) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return {row[1]: row[2] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    finally:
        conn.close()


def files_route(tmp_path) -> Route:
    (tmp_path / "tasks.csv").write_text(CSV)
    spec = FileSpec(
        "tasks",
        "tasks.csv",
        "id",
        types={"points": "int", "due": "date", "tags": "list", "done": "bool"},
        list_separator="|",
    )
    source = FilesSource([spec], base_dir=tmp_path)

    def label(record: Record) -> Record:  # the transform is opaque: only its output counts
        return Record(record.primary_key, {**record.properties, "Label": f"#{record.properties['title']}"})

    owns = {"title", "points", "due", "tags", "done", "Label"}  # "secret" is not written by this route
    return Route(source, SQLiteDestination(tmp_path / "out.sqlite", "tasks"), transform=label, owns=owns)


def test_schema_plans_then_applies_once_from_the_sample_the_transform_and_owns(capsys, sqlite_store, tmp_path):
    route = files_route(tmp_path)
    code, out, _ = run_cli(capsys, sqlite_store, "schema", route.name, routes=[route])
    assert code == 0
    assert "would create 7" in out and "create 'tasks' (table" in out
    for name in ("title", "points", "due", "tags", "done", "Label"):
        assert f"create {name!r}" in out
    assert "secret" not in out  # owns keeps it out
    assert "--apply creates them" in out
    assert not (tmp_path / "out.sqlite").exists()  # the plan wrote nothing

    code, out, _ = run_cli(capsys, sqlite_store, "schema", route.name, "--apply", routes=[route])
    assert code == 0 and "created 7" in out
    cols = columns(tmp_path / "out.sqlite", "tasks")
    assert {"title", "points", "due", "tags", "done", "Label"} <= set(cols) and "secret" not in cols

    code, out, _ = run_cli(capsys, sqlite_store, "schema", route.name, "--apply", "--json", routes=[route])
    report = json.loads(out)
    assert code == 0 and report["applied"] is True and report["changes"] == []  # idempotent


def test_plan_shows_the_schema_part_first(capsys, sqlite_store, tmp_path):
    route = files_route(tmp_path)
    code, out, _ = run_cli(capsys, sqlite_store, "plan", route.name, "--spec", "tasks", routes=[route])
    assert code == 0
    assert out.index("schema of") < out.index("plan for") and "would create 7" in out
    assert not (tmp_path / "out.sqlite").exists()
    code, out, _ = run_cli(capsys, sqlite_store, "plan", route.name, "--spec", "tasks", "--json", routes=[route])
    assert json.loads(out)["schema"]["changes"][0]["name"] == "tasks"


def test_schema_against_notion_reports_a_mismatch_and_leaves_it_alone(capsys, sqlite_store):
    time = FakeTime()
    fake = FakeNotion(rate=None, clock=time.clock)
    db = fake.add_database({"Name": "title", "Key": "rich_text", "Stars": "rich_text"}, title="Repos")
    (ds_id,) = db.data_source_ids
    dest = NotionDestination(
        db.id,
        token=fake.token,
        token_env=None,
        database_id_env=None,
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app), sleep=time.sleep, clock=time.clock),
        rate=Rate(10_000, 1, burst=10_000),
    )
    source = MemorySource({"all": [Record("1", {"Name": "a", "Stars": 3, "Topics": ["sync"]})]})
    route = Route(source, dest)
    code, out, _ = run_cli(capsys, sqlite_store, "schema", route.name, "--apply", routes=[route])
    assert code == 0
    assert "leave 'Stars' alone: it is a rich_text property" in out
    assert "create 'Topics' (multi_select" in out and "create 'Last synced' (date" in out
    types = {n: p["type"] for n, p in fake.data_sources[ds_id].properties.items()}
    assert types["Stars"] == "rich_text" and types["Topics"] == "multi_select"


def test_schema_needs_no_state_store(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_SYNC_STATE_URL", "postgresql://nobody@127.0.0.1:1/none")  # would fail to open
    route = files_route(tmp_path)
    assert main(["schema", route.name], routes=[route]) == 0
    assert "would create 7" in capsys.readouterr().out


def test_a_destination_without_the_capability_is_one_line_and_status_2(capsys, sqlite_store):
    from connectors.memory import MemoryDestination

    route = Route(MemorySource({"all": [Record("1", {"Name": "a"})]}), MemoryDestination())
    code, _, err = run_cli(capsys, sqlite_store, "schema", route.name, routes=[route])
    assert code == 2 and "cannot create its schema" in err
