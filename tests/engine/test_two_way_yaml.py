"""A two-way pair declared in one route file (``RouteComponent.two_way``): two routes, bound per run."""

from __future__ import annotations

import datetime as dt
import textwrap

from connectors.core import Record
from connectors.files import SQLiteDestination
from connectors.files.sqlite_table import SQLiteTableSource
from sync_assets.components import load_route_files
from sync_assets.engine import PassOptions, run_pass
from sync_assets.systems import FilesResource, bind_route, resource_keys

PAIR_YAML = """\
type: sync_assets.components.RouteComponent
attributes:
  name: tasks_to_todo
  source: {system: files, path: a.sqlite3, table: tasks}
  destination: {system: files, path: b.sqlite3, table: todo}
  on_missing: mark
  two_way:
    back_name: todo_to_tasks
    back_source: {system: files, path: b.sqlite3, table: todo}
    back_destination: {system: files, path: a.sqlite3, table: tasks}
    fields: {title: name}
    tie: b
"""


class _Resources:
    def __init__(self, files: FilesResource) -> None:
        self.files = files


async def test_one_file_declares_both_directions_and_they_sync_without_echo(tmp_path, store):
    path = tmp_path / "defs" / "tasks" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(PAIR_YAML))
    files = FilesResource(base_dir=str(tmp_path))
    there, back = load_route_files(path, {"files": files})
    assert (there.name, back.name) == ("tasks_to_todo", "todo_to_tasks")
    assert there.two_way is not None and there.two_way.pair == "tasks_to_todo_pair" and there.on_missing == "mark"
    assert there.two_way.tie == "b" and there.two_way.fields == (("title", "name"),)
    assert resource_keys(there) == {"files"}
    assert isinstance(back.source, SQLiteTableSource) and back.source.table.table == "todo"

    a = SQLiteDestination(tmp_path / "a.sqlite3", "tasks")
    async with a.connect() as session:
        await session.create(Record("hand-1", {"title": "from a"}), dt.datetime.now(dt.UTC))
    # As a run does: every end, the read-back source included, rebuilt from the run's resources.
    there, back = bind_route(there, _Resources(files)), bind_route(back, _Resources(files))
    assert there.two_way is not None and isinstance(there.two_way.peer_source, SQLiteTableSource)
    for route in (there, back, there, back):
        [partition] = route.specs_by_partition()
        result = await run_pass(route, partition, store, PassOptions())
    assert result.stats.created == 0 and result.stats.updated == 0
    rows = SQLiteDestination(tmp_path / "b.sqlite3", "todo").read_rows()
    assert [r["name"] for r in rows] == ["from a"] and len(a.read_rows()) == 1
