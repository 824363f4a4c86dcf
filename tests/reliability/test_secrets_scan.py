"""Secrets scan: every connector's credential, after a real Dagster run, is nowhere it must not be.

For every contract case that talks HTTP, one route runs through ``materialize_route`` on a real
(SQLite) Dagster instance in a temporary directory, configured by the repo's ``dagster.yaml`` (so its
``python_logs`` puts the connectors' own log lines in the event log), with one injected 503 so the
HTTP toolkit logs a retry line: the connector's secrets — collected from its token/key attributes,
and the fakes' issued tokens — must not appear in the instance's storage (event log rows, run
storage, compute logs), the process output, the logs or the state store.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from connectors.memory import MemoryDestination, MemorySource
from sync_assets.routes import Route
from sync_assets.state import StateStore
from sync_assets.testing import materialize_route
from tests.contract.cases import DESTINATION_CASES, SOURCE_CASES
from tests.sync_assets.helpers import FAST_RETRY

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
# The HTTP toolkit's retry line (connectors/http/retry.py): "<Service> <VERB> <path> -> 503; retry 1/4 in 1.00 s".
RETRY_LINE = re.compile(r" -> 503; retry 1/\d+ in \d")
SECRET_ATTRS = ("token", "api_key", "secret", "password", "_key")
NOT_SECRETS = {"key_property", "key_field", "primary_key", "rate_limit_key", "credential_key", "property_key"}


def secrets_of(obj: Any, depth: int = 0) -> set[str]:
    """String attributes of a connector (and its credential helpers) that hold secrets."""
    found: set[str] = set()
    if depth > 2 or obj is None:
        return found
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else []:
        lowered = name.lower()
        if isinstance(value, str) and len(value) >= 8 and lowered not in NOT_SECRETS:
            if any(part in lowered for part in SECRET_ATTRS) and not lowered.endswith("_env"):
                found.add(value)
        elif name in ("credentials", "_credentials") and value is not None:
            found |= secrets_of(value, depth + 1)
    return found


def fake_tokens(*objs: Any) -> set[str]:
    """Tokens the fakes issued (they know them even when a connector reads its token lazily)."""
    found: set[str] = set()
    for obj in objs:
        for attr in ("token", "api_key"):
            value = getattr(obj, attr, None)
            if isinstance(value, str) and len(value) >= 8:
                found.add(value)
        tokens = getattr(obj, "tokens", None)
        if isinstance(tokens, (dict, set)):
            found |= {t for t in tokens if isinstance(t, str) and len(t) >= 8}
    return found


def scan(root: Path, extra: dict[str, str], secrets: set[str]) -> list[tuple[str, str]]:
    haystacks = dict(extra)
    for path in root.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    return [(where, s[:4] + "…") for where, text in haystacks.items() for s in secrets if s in text]


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Iterator[None]:
    """python_logs sets the managed loggers' levels for the whole process; put them back afterwards."""
    saved = {name: logging.getLogger(name).level for name in ("connectors", "sync_assets")}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def run_route(
    route: Route, partition: str, tmp_path: Path, inject_503: Callable[[int, int], None] | None
) -> dict[str, str]:
    """Run the route once on an instance configured by the repo's dagster.yaml, one 503 injected.

    Returns the run's event log rows (messages and serialized events) as scan haystacks.
    """
    assert inject_503 is not None, "an HTTP case needs inject_failures, to make the toolkit log a retry"
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    home = tmp_path / "dagster"
    home.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    try:
        with dg.instance_for_test(temp_dir=str(home), overrides=config) as instance:
            inject_503(1, 503)
            run = materialize_route(route, partition, store=store, instance=instance, retry_policy=FAST_RETRY)
            assert run.success, run.failure
            events = instance.all_logs(run.result.run_id)
    finally:
        store.dispose()
    # The scan below covers the connector's own lines only if they reached the event log.
    # (The message names no event: it would print the very secrets this test looks for.)
    assert any(RETRY_LINE.search(e.user_message) for e in events), f"no retry line in {len(events)} event log rows"
    return {f"event log row {i}": dg.serialize_value(e) for i, e in enumerate(events)}


def _cells(objects: Any) -> list[Any]:
    """The fakes a harness closes over (its hook functions' closures), to ask them for their tokens."""
    out = []
    for hook in objects:
        for cell in getattr(hook, "__closure__", None) or ():
            try:
                out.append(cell.cell_contents)
            except ValueError:
                continue
    return out


HTTP_SOURCES = [c for c in SOURCE_CASES if not c.name.startswith(("files", "memory"))]
HTTP_DESTINATIONS = [c for c in DESTINATION_CASES if c.name not in ("sqlite", "jsonl", "memory")]


@pytest.mark.parametrize("case", HTTP_SOURCES, ids=lambda c: c.name)
def test_source_secrets_stay_out_of_dagster_and_output(case, tmp_path, capfd, caplog):
    loop = asyncio.new_event_loop()
    cm = case.make(tmp_path)
    harness = loop.run_until_complete(cm.__aenter__())
    try:
        secrets = secrets_of(harness.source) | fake_tokens(*_cells([harness.revoke, harness.inject_failures]))
        assert secrets, f"{case.name}: found no secret to look for"
        route = Route(harness.source, MemoryDestination(), name="scan_source")
        partition = next(k for k, s in route.specs_by_partition().items() if s.key == harness.spec.key)
        rows = run_route(route, partition, tmp_path, harness.inject_failures)
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
    out, err = capfd.readouterr()
    assert scan(tmp_path, {"stdout": out, "stderr": err, "logs": caplog.text, **rows}, secrets) == []


@pytest.mark.parametrize("case", HTTP_DESTINATIONS, ids=lambda c: c.name)
def test_destination_secrets_stay_out_of_dagster_and_output(case, tmp_path, capfd, caplog):
    loop = asyncio.new_event_loop()
    cm = case.make(tmp_path)
    harness = loop.run_until_complete(cm.__aenter__())
    try:
        secrets = secrets_of(harness.destination) | fake_tokens(*_cells([harness.revoke, harness.inject_failures]))
        assert secrets, f"{case.name}: found no secret to look for"
        route = Route(MemorySource({"all": harness.records}), harness.destination, name="scan_destination")
        rows = run_route(route, "all", tmp_path, harness.inject_failures)
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
    out, err = capfd.readouterr()
    assert scan(tmp_path, {"stdout": out, "stderr": err, "logs": caplog.text, **rows}, secrets) == []
