"""AsanaDestination as a case of the shared contract suite (``tests/contract``), wired to the fake API.

``tests/contract/cases.py`` registers it at its end (as ``asana``), looking the factory up when a case
runs: this module imports that one.

The project has the key field (``Source ID``, Text), a ``Last synced`` Date field and a custom field
per sample property, typed as Asana would hold it. Asana has no checkbox custom field, so ``Done``
goes to the task's native ``completed`` (``field_map``); the title goes to the task name. Rows are
read back from the fake's state (there is no Asana source), each custom value decoded from its field's
type: number -> int/float as sent, multi-enum -> option names, date -> ``date`` or (with a time)
an aware UTC ``datetime``, the same instant as the one sent.

Failures are injected on the task writes only (``POST /batch``, which carries them by default, or
``POST /tasks``, ``PUT /tasks/{gid}``); a revoked
personal access token answers 401 from the next call on (reading the project at connect).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connectors.asana import AsanaDestination
from tests.connectors.asana.conftest import START, client_options, merge_options
from tests.contract import cases as C
from tests.fakes.asana import FakeAsana, FakeCustomField, FakeProject, FakeTask
from tests.fakes.github import FakeClock

__all__ = ["ASANA_SCHEMA", "asana_destination"]

KEY_FIELD = "Source ID"
SYNCED_FIELD = "Last synced"
WRITES = r"^/(tasks(/\d+)?|batch)$"  # task writes, one by one or in a batch (the default)

ASANA_SCHEMA: dict[str, Any] = {
    KEY_FIELD: "text",
    "Count": "number",
    "Score": "number",
    "Tags": {"type": "multi_enum", "options": ["a", "b", "c"]},
    "Due": "date",
    "Updated": "date",
    "Notes": "text",
    SYNCED_FIELD: "date",
}
BOOKKEEPING = {KEY_FIELD, SYNCED_FIELD}  # written by the destination itself


def _decode(cf: FakeCustomField, value: Any) -> Any:
    """A stored custom field value as the neutral value it was written from."""
    if cf.kind == "multi_enum":
        return [option.name for gid in value or [] if (option := cf.option(gid))]
    if cf.kind == "enum":
        option = cf.option(value) if value else None
        return option.name if option else None
    if cf.kind == "date":
        if not value:
            return None
        if value.get("date_time"):
            return dt.datetime.fromisoformat(value["date_time"].replace("Z", "+00:00"))
        return dt.date.fromisoformat(value["date"])
    return value  # text and number: as sent


def _row(fake: FakeAsana, project: FakeProject, task: FakeTask) -> tuple[str | None, dict[str, Any]]:
    fields = [fake.fields[gid] for gid in project.field_gids]
    custom = {cf.name: _decode(cf, task.custom_values.get(cf.gid)) for cf in fields}
    key = custom.get(KEY_FIELD)
    props = {name: value for name, value in custom.items() if name not in BOOKKEEPING}
    return key, {"Name": task.name, "Done": task.completed, **props}


def _asana_cleared(name: str) -> Any:
    # encode.py's table: None writes ``completed: false`` and an empty multi-enum (read back as []);
    # every other custom field is cleared (None).
    return {"Done": False, "Tags": []}.get(name)


def _served(fake: FakeAsana) -> Callable[[int], int]:
    return lambda status: sum(1 for r in fake.log if r.status == status)


@asynccontextmanager
async def asana_destination(tmp_path: Path) -> AsyncIterator[C.DestinationHarness]:
    """AsanaDestination on a project with the key field and a custom field per sample property.

    A fresh fake per harness, hence a fresh random token: no per-credential state of the HTTP
    toolkit (limiter, "blocked until") leaks between cases.
    """
    clock = FakeClock(start=START)
    fake = FakeAsana(rate_per_minute=None, clock=clock.clock)
    project = fake.add_project("Items", ASANA_SCHEMA)
    options = merge_options(client_options(fake, clock), {"rate": C.FAST, "retry": C.NO_JITTER})  # type: ignore[arg-type]
    dest = AsanaDestination(
        project.gid,
        title_property="Name",
        key_field=KEY_FIELD,
        synced_field=SYNCED_FIELD,
        field_map={"Done": "completed"},  # Asana has no checkbox custom field
        **options,
    )

    async def rows() -> dict[str, dict[str, Any]]:
        pairs = [_row(fake, project, task) for task in fake.tasks(project.gid)]
        return C._unique([(str(key), props) for key, props in pairs if key is not None])

    yield C.DestinationHarness(
        dest,
        C.sample_records(),
        rows,
        cleared=_asana_cleared,
        # 503 is never ambiguous, so even a create is resent; after a 500/502/504 a create is not
        # (Asana may have acted) and the engine's reconcile adopts it by its key field.
        inject_failures=lambda n, status: fake.fail_next(n, status, path=WRITES),
        revoke=lambda: fake.revoke_token(fake.token),
        forbid=lambda: fake.fail_next(1, 403, path=WRITES),  # "Forbidden": not about a custom field
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after), path=WRITES),
        served=_served(fake),
        sleeps=clock.sleeps,
    )
