"""The code location of ``bench/freshness_bench.py`` (loaded by the real dagster-daemon and run workers).

One route, ``fresh``: the real ``GitHubSource`` over the fake GitHub the bench serves on a loopback
port (``GITHUB_API_URL``, ``GITHUB_TOKEN``, org ``FRESH_ORG``), written to a JSONL file. Each
create or update also appends ``{"key", "description", "t"}`` to ``$FRESH_DIR/writes.jsonl``: ``t``
is the wall-clock time of the destination write, what the bench measures up to. The interval is a
day, so after the first pass only webhooks start runs. Not a test.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from connectors.files import JSONLDestination
from connectors.github import GitHubSource
from sync_assets import Route, build_definitions, sensors

DIR = Path(os.environ.get("FRESH_DIR", "/nonexistent"))


def _note(record) -> None:
    line = json.dumps(
        {"key": record.primary_key, "description": record.properties.get("Description"), "t": time.time()}
    )
    with (DIR / "writes.jsonl").open("a") as f:
        f.write(line + "\n")


class TimedJSONL(JSONLDestination):
    """A JSONL destination that notes when each write happened."""

    @asynccontextmanager
    async def connect(self):
        async with super().connect() as session:
            create, update = session.create, session.update

            async def timed_create(record, synced_at):
                out = await create(record, synced_at)
                _note(record)
                return out

            async def timed_update(existing_id, record, synced_at):
                out = await update(existing_id, record, synced_at)
                _note(record)
                return out

            session.create, session.update = timed_create, timed_update
            yield session


# Experiments only: another sync-now sensor interval (FRESH_SYNC_NOW_INTERVAL seconds).
if os.environ.get("FRESH_SYNC_NOW_INTERVAL"):
    sensors.SYNC_NOW_INTERVAL_SECONDS = int(os.environ["FRESH_SYNC_NOW_INTERVAL"])

routes = [
    Route(
        GitHubSource(
            orgs=[os.environ.get("FRESH_ORG", "acme")],
            base_url=os.environ.get("GITHUB_API_URL", "http://127.0.0.1:9"),
            interval_minutes=24 * 60,
            fetch_readme=False,
            fetch_contributors=False,
        ),
        TimedJSONL(DIR / "dest.jsonl"),
        name="fresh",
    )
]
defs = build_definitions(routes)
