"""The routes this deployment runs, as Dagster definitions (``workspace.yaml`` loads ``defs``).

Edit ``routes`` to add yours. A route whose credentials are not configured is still listed (so
``durable-sync status`` can say what is missing) but kept out of the Dagster graph.
"""

from connectors.files import FileSpec, FilesSource, SQLiteDestination
from sync_assets.demo import demo_dir, seed_demo_data
from sync_assets.factory import build_definitions, link_report_asset
from sync_assets.routes import Route


def files_demo_route() -> Route:
    """The embedded demo: ``examples/tasks.csv`` (a working copy) into a SQLite table."""
    seed_demo_data()
    source = FilesSource(
        [
            FileSpec(
                key="tasks",
                path=str(demo_dir() / "tasks.csv"),
                key_column="id",
                types={
                    "priority": "int",
                    "estimate_hours": "float",
                    "done": "bool",
                    "tags": "list",
                    "due": "date",
                    "updated_at": "datetime",
                },
                body_column="notes",
                interval_minutes=5,
            )
        ]
    )
    destination = SQLiteDestination(demo_dir() / "demo.sqlite3", table="tasks", key_column="task_id")
    return Route(
        source,
        destination,
        name="files_to_sqlite",
        description="Demo: example tasks from a CSV file mirrored into a local SQLite table.",
    )


routes: list[Route] = [files_demo_route()]

defs = build_definitions(
    routes,
    assets=[link_report_asset(r) for r in routes if r.name == "files_to_sqlite"],
)
