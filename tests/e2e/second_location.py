"""A second code location for the end-to-end tests, loaded from one ``workspace.yaml`` next to
``sync_assets.definitions``: one files route of its own with eight specs.

Both locations share the deployment's state store, so both read the one sync-now inbox; each must
take only its own routes' requests. ``E2E_SECOND_DIR`` (its CSV files) is deliberately not in the
process environment: the test puts it in a ``.env`` file in the directory ``dagster dev`` runs from,
so the location loading at all shows that Dagster reads ``.env`` for its code locations.
"""

import os
from pathlib import Path

from connectors.files import FileSpec, FilesSource, SQLiteDestination
from sync_assets import Route, build_definitions

DIR = Path(os.environ["E2E_SECOND_DIR"])
SPECS = [f"s{i}" for i in range(1, 9)]

routes = [
    Route(
        FilesSource(
            [FileSpec(key=k, path=str(DIR / f"{k}.csv"), key_column="id", interval_minutes=720) for k in SPECS],
            name="files_second",
        ),
        SQLiteDestination(DIR / "second.sqlite3", table="rows"),
        name="e2e_second",
    )
]
defs = build_definitions(routes)
