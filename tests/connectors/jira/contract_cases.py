"""JiraSource and JiraDestination as cases of the shared contract suite (``tests/contract``), wired to
the fake Jira Cloud API.

``tests/contract/cases.py`` registers them at its end (as ``jira``), looking the factories up when a
case runs: this module imports that one.

Source: project ENG with 5 issues, 2 to a search page (``nextPageToken``); ``only_items`` are issue
ids (the records' primary keys).

Destination: issues of project ENG, our key in the ``durable-sync`` entity property. The sample
properties map to Jira fields by id (custom fields are mapped by id, not name: a custom field named
``Updated`` would be ambiguous with the system field of that name): ``Name`` -> summary, ``Tags`` ->
labels, ``Due`` -> duedate, ``Count``/``Score`` -> number fields, ``Updated`` -> a date-time field,
``Notes`` -> a multi-line text field (ADF), ``Done`` -> a single-line text field. Jira has no boolean
field, so ``Done`` is written, and reads back, as the text ``"true"``/``"false"`` (README: single-line
text fields take ``str``; the destination writes a bool as its lower-case text). Rows are read back
from the fake's state: each field decoded from its Jira shape (ADF -> text, ``YYYY-MM-DD`` -> date,
Jira's date-time -> an aware datetime).

Failures are injected on the issue writes only (``POST /issue/bulk`` by default, ``POST /issue``,
``PUT /issue/{id}``), not on the listing's searches and reads by key; a revoked API token answers
401 from the next call on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connectors.core import Record
from connectors.jira import JiraDestination, JiraSource
from connectors.jira.adf import adf_to_text
from connectors.jira.settings import PROPERTY_KEY
from tests.connectors.jira.conftest import client_options, merge_options
from tests.contract import cases as C
from tests.fakes.github import FakeClock
from tests.fakes.jira import FakeIssue, FakeJira

__all__ = ["jira_destination", "jira_source"]

PROJECT = "ENG"
WRITES = r"/rest/api/3/issue(/\d+|/bulk)?$"  # creates (POST /issue/bulk, /issue) and edits; reads use keys


def _served(fake: FakeJira) -> Callable[[int], int]:
    return lambda status: sum(1 for r in fake.log if r.status == status)


def _options(fake: FakeJira, clock: FakeClock) -> dict[str, Any]:
    return merge_options(client_options(fake, clock), {"rate": C.FAST, "retry": C.NO_JITTER})


# --------------------------------------------------------------------------------------------------
# Source


@asynccontextmanager
async def jira_source(tmp_path: Path) -> AsyncIterator[C.SourceHarness]:
    """JiraSource on project ENG: 5 issues of every kind of value, 2 to a page (nextPageToken)."""
    clock = FakeClock()
    fake = FakeJira(clock=clock.clock, burst=None)
    fake.add_project(PROJECT, name="Engineering", components=["API", "UI"], versions=["1.0", "2.0"])
    for i in range(5):
        fake.add_issue(
            PROJECT,
            f"Issue {i}",
            description=f"Description of issue {i}\n\nSecond paragraph" if i % 2 else None,
            priority=["High", "Medium", None][i % 3],
            labels=["a", "b"][: i % 3],
            components=["API"] if i % 2 else [],
            fix_versions=["2.0"] if i == 3 else [],
            due=dt.date(2024, 5, i + 1).isoformat() if i != 2 else None,
            created=clock.now - 10_000 + i,
        )

    def make() -> JiraSource:
        return JiraSource(projects=[PROJECT], page_size=2, **_options(fake, clock))

    source = make()
    yield C.SourceHarness(
        source,
        source.specs()[0],
        5,
        make,
        missing_item="99999",  # a well-formed issue id nobody has
        inject_failures=lambda n, status: fake.fail_next(n, status),
        revoke=lambda: fake.revoke_token(fake.token),
        forbid=lambda: fake.fail_next(1, 403, message="You do not have permission to browse this project."),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )


# --------------------------------------------------------------------------------------------------
# Destination


def _jira_datetime(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def _jira_expected(record: Record) -> dict[str, Any]:
    done = record.properties["Done"]
    return {**record.properties, "Done": None if done is None else str(done).lower()}


def _jira_cleared(name: str) -> Any:
    # README "Destination: fields and encodings": None empties the labels (read back as []); every
    # other mapped field is set to null.
    return {"Tags": []}.get(name)


@asynccontextmanager
async def jira_destination(tmp_path: Path) -> AsyncIterator[C.DestinationHarness]:
    """JiraDestination on project ENG with a field per sample property; rows read back from the fake."""
    clock = FakeClock()
    fake = FakeJira(clock=clock.clock, burst=None)
    fake.add_project(PROJECT, name="Engineering")
    ids = {
        "Count": fake.add_custom_field("Count", "number"),
        "Score": fake.add_custom_field("Score", "number"),
        "Done": fake.add_custom_field("Done", "text"),
        "Updated": fake.add_custom_field("Updated", "datetime"),
        "Notes": fake.add_custom_field("Notes", "textarea"),
        "Tags": "labels",
        "Due": "duedate",
    }
    dest = JiraDestination(PROJECT, title_property="Name", field_map=ids, project_env=None, **_options(fake, clock))
    decode: dict[str, Callable[[Any], Any]] = {
        "Updated": _jira_datetime,
        "Notes": adf_to_text,
        "Tags": lambda labels: list(labels or []),
        "Due": lambda text: None if text is None else dt.date.fromisoformat(text),
    }

    def row(issue: FakeIssue) -> tuple[str | None, dict[str, Any]]:
        pk = (issue.properties.get(PROPERTY_KEY) or {}).get("pk")
        props = {"Name": issue.fields.get("summary")}
        for prop, field_id in ids.items():
            value = issue.fields.get(field_id)
            props[prop] = decode[prop](value) if prop in decode else value
        return pk, props

    async def rows() -> dict[str, dict[str, Any]]:
        pairs = [row(issue) for issue in fake.issues(PROJECT)]
        return C._unique([(str(pk), props) for pk, props in pairs if pk is not None])

    yield C.DestinationHarness(
        dest,
        C.sample_records(),
        rows,
        expected=_jira_expected,
        cleared=_jira_cleared,
        # 503 is retried even for a create; after a 500/502/504 a create is not resent (Jira may have
        # acted) and the next listing adopts the issue by its entity property.
        inject_failures=lambda n, status: fake.fail_next(n, status, path=WRITES),
        revoke=lambda: fake.revoke_token(fake.token),
        forbid=lambda: fake.fail_next(
            1, 403, path=WRITES, message="You do not have permission to edit issues in this project."
        ),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after), path=WRITES),
        served=_served(fake),
        sleeps=clock.sleeps,
    )
