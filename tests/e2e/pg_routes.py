"""Routes of the PostgreSQL end-to-end test (loaded by the real webserver and daemon).

Two routes with several partitions each, over CSV files in ``$E2E_DIR``. The JSONL destination is
one that never deduplicates (a platform bug would show as a duplicate row) and can be slowed down
(``E2E_WRITE_DELAY`` seconds per write) so a pass lasts long enough to be killed mid-way. Each
fetch writes the worker's PID to ``$E2E_DIR/pid-<spec>`` so the test knows whom to SIGKILL.
"""

import asyncio
import os
from contextlib import asynccontextmanager
from pathlib import Path

from connectors.files import FileSpec, FilesSource, JSONLDestination, SQLiteDestination
from sync_assets import Route, build_definitions

DIR = Path(os.environ.get("E2E_DIR", "/nonexistent"))
DELAY = float(os.environ.get("E2E_WRITE_DELAY", "0"))


class PidFilesSource(FilesSource):
    async def fetch_page(self, spec, only_items, cursor):
        (DIR / f"pid-{spec.key}").write_text(str(os.getpid()))
        return await super().fetch_page(spec, only_items, cursor)


class SlowJSONL(JSONLDestination):
    @asynccontextmanager
    async def connect(self):
        async with super().connect() as session:
            create, update = session.create, session.update

            async def slow_create(record, synced_at):
                await asyncio.sleep(DELAY)
                return await create(record, synced_at)

            async def slow_update(existing_id, record, synced_at):
                await asyncio.sleep(DELAY)
                return await update(existing_id, record, synced_at)

            session.create, session.update = slow_create, slow_update
            yield session


def _specs(names):
    return [FileSpec(key=n, path=str(DIR / f"{n}.csv"), key_column="id", interval_minutes=60) for n in names]


routes = [
    Route(PidFilesSource(_specs(["a1", "a2", "a3"]), page_size=50), SlowJSONL(DIR / "a.jsonl"), name="pg_a"),
    Route(
        FilesSource(_specs(["b1", "b2"]), page_size=50, name="files_b"),
        SQLiteDestination(DIR / "b.sqlite3", table="b"),
        name="pg_b",
    ),
]
defs = build_definitions(routes)
