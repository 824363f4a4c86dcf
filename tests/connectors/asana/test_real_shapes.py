"""The Asana destination against payloads in the shapes Asana really sends.

The fixtures below are written from Asana's API reference examples (tasks with custom fields, the
``next_page`` object, error bodies on developers.asana.com/docs/errors) and observed traffic quoted in
public client code: gids are long numeric strings (16 digits today), every object has a
``resource_type``, offsets are JWTs (``eyJ0eXAiOiJKV1Qi…``) that expire ("offset: Your pagination
token has expired."), custom field values carry ``resource_subtype``, ``display_value``,
``enum_value`` and ``date_value: {date, date_time}``, errors are ``{"errors": [{"message", "help"}]}``
with a ``phrase`` only on server errors, and a free workspace answers 402 to anything custom-field
("Custom Field Settings are not available for free users."). Values are made up.

Some tests replay such answers through ``httpx.MockTransport`` (the connector's own transport hook,
no patching); the others run against ``tests.fakes.asana``, which now renders the same shapes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.asana import AsanaDestination
from connectors.core import AuthError, ConfigError, Record, RecordError
from connectors.http import HttpSettings
from tests.connectors.asana.conftest import API, FAST, NO_JITTER, FakeTime, client_options
from tests.fakes.asana import FakeAsana, FakeProject
from tests.fakes.replay import Answer
from tests.fakes.replay import Replay as RecordedReplay

WORKSPACE = "1204567890123401"
PROJECT = "1204567890123456"
KEY_FIELD = "1204567890123470"
PRIORITY_FIELD = "1204567890123471"
DUE_FIELD = "1204567890123472"
STARS_FIELD = "1204567890123473"
HELP = (
    "For more information on API status codes and how to handle them, read the docs on errors: "
    "https://developers.asana.com/docs/errors"
)
OFFSET = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJib3JkZXJfcmFuayI6IlsxXSIsImlhdCI6MTcwMDAwMDA0MCwiZXhwIjoxNzAwMDAwOTQwfQ.c2ln"


def key_value(key: str | None) -> dict[str, Any]:
    """The key field's value on a task, as ``opt_fields=custom_fields.text_value,custom_fields.display_value``
    returns it: the gid and the two asked fields, nothing else."""
    return {"gid": KEY_FIELD, "text_value": key, "display_value": key}


def documented_task(gid: str, key: str | None, *, whole: bool = False) -> dict[str, Any]:
    """A task of ``GET /projects/{gid}/tasks``; ``whole``: every custom field in full, as the reference
    shows them (the key is then found among other kinds of field)."""
    if not whole:
        return {"gid": gid, "resource_type": "task", "custom_fields": [key_value(key)]}
    return {
        "gid": gid,
        "resource_type": "task",
        "custom_fields": [
            {
                "gid": PRIORITY_FIELD,
                "resource_type": "custom_field",
                "name": "Priority",
                "resource_subtype": "enum",
                "type": "enum",
                "enabled": True,
                "display_value": "High",
                "enum_value": {
                    "gid": "1204567890123480",
                    "resource_type": "enum_option",
                    "name": "High",
                    "enabled": True,
                    "color": "red",
                },
            },
            {
                "gid": DUE_FIELD,
                "resource_type": "custom_field",
                "name": "Released",
                "resource_subtype": "date",
                "type": "date",
                "display_value": "2024-03-01T10:15:30.000Z",
                "date_value": {"date": "2024-03-01", "date_time": "2024-03-01T10:15:30.000Z"},
            },
            {
                "gid": STARS_FIELD,
                "resource_type": "custom_field",
                "name": "Stars",
                "resource_subtype": "number",
                "type": "number",
                "precision": 0,
                "display_value": "42",
                "number_value": 42,
            },
            {
                "gid": KEY_FIELD,
                "resource_type": "custom_field",
                "name": "Source ID",
                "resource_subtype": "text",
                "type": "text",
                "enabled": True,
                "display_value": key,
                "text_value": key,
            },
        ],
    }


SETTINGS = [
    {
        "gid": "1204567890123490",
        "resource_type": "custom_field_setting",
        "custom_field": {
            "gid": KEY_FIELD,
            "name": "Source ID",
            "resource_subtype": "text",
            "type": "text",
            "is_formula_field": False,
            "is_value_read_only": False,
        },
    },
    {
        "gid": "1204567890123491",
        "resource_type": "custom_field_setting",
        "custom_field": {
            "gid": PRIORITY_FIELD,
            "name": "Priority",
            "resource_subtype": "enum",
            "type": "enum",
            "enum_options": [
                {"gid": "1204567890123480", "name": "High", "enabled": True},
                {"gid": "1204567890123481", "name": "Low", "enabled": False},
            ],
            "is_formula_field": False,
            "is_value_read_only": False,
        },
    },
]


def next_page(path: str) -> dict[str, str]:
    rel = f"{path}?limit=100&offset={OFFSET}"
    return {"offset": OFFSET, "path": rel, "uri": f"https://app.asana.com/api/1.0{rel}"}


Recorded = dict[tuple[str, str, bool], list[tuple[int, Any, dict[str, str]]]]


class Replay(RecordedReplay):
    """Routes requests to canned answers by (method, path, whether an offset was sent), each given once."""

    repeat_last = False

    def __init__(self, routes: Recorded) -> None:
        super().__init__()
        for key, answers in routes.items():
            self.record(key, *(Answer(status, body, headers) for status, body, headers in answers))

    def key(self, request: httpx.Request) -> tuple[str, str, bool]:
        path = request.url.path.removeprefix("/api/1.0")
        return (request.method, path, "offset" in request.url.params)

    def miss(self, request: httpx.Request) -> httpx.Response:
        raise LookupError(f"no answer left for {self.key(request)}")  # an unplanned request fails the test

    def respond(self, request: httpx.Request, answer: Answer) -> httpx.Response:
        return httpx.Response(answer.status, json=answer.body, headers=answer.headers)


def replay_dest(replay: Replay, time: FakeTime, **kwargs: Any) -> AsanaDestination:
    return AsanaDestination(
        PROJECT,
        token="-".join(["replay", secrets.token_hex(8)]),  # fresh: the toolkit keeps blocks per token
        token_env=None,
        project_env=None,
        base_url=API,
        http=HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=time.sleep, clock=time.clock),
        rate=FAST,
        **{"batch": False, **kwargs},  # the replayed answers are those of single requests
    )


def project_answers() -> Recorded:
    project = {
        "gid": PROJECT,
        "resource_type": "project",
        "name": "Repositories",
        "workspace": {"gid": WORKSPACE, "resource_type": "workspace", "name": "Acme"},
    }
    return {
        ("GET", f"/projects/{PROJECT}", False): [(200, {"data": project}, {})],
        ("GET", f"/projects/{PROJECT}/custom_field_settings", False): [
            (200, {"data": SETTINGS, "next_page": None}, {})
        ],
    }


# --------------------------------------------------------------------------------------------------
# Replayed answers


async def test_the_listing_finds_keys_among_documented_custom_field_values_and_follows_next_page():
    routes = project_answers()
    tasks = f"/projects/{PROJECT}/tasks"
    routes[("GET", tasks, False)] = [
        (
            200,
            {
                "data": [
                    documented_task("1204567890200001", "gh-1", whole=True),
                    documented_task("1204567890200002", None),
                ],
                "next_page": next_page(tasks),
            },
            {},
        )
    ]
    routes[("GET", tasks, True)] = [
        (200, {"data": [documented_task("1204567890200003", "gh-3")], "next_page": None}, {})
    ]  # fmt: skip
    replay = Replay(routes)
    async with replay_dest(replay, FakeTime()).connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]
    assert rows == [("gh-1", "1204567890200001"), ("gh-3", "1204567890200003")]
    listing = [r for r in replay.seen if r.url.path.endswith("/tasks")]
    assert [r.url.params.get("offset") for r in listing] == [None, OFFSET]  # the JWT sent back as is
    assert all(r.url.params["limit"] == "100" for r in listing)


async def test_a_server_error_with_a_phrase_is_retried_and_a_400_names_asanas_message():
    routes = project_answers()
    server_error = {"errors": [{"message": "Server Error", "phrase": "6 sad squid snuggle softly"}]}
    refused = {"errors": [{"message": "due_on: Not a valid date string: 2024-13-01", "help": HELP}]}
    created = {"data": {"gid": "1204567890200009", "resource_type": "task"}}
    routes[("POST", "/tasks", False)] = [(503, server_error, {}), (201, created, {}), (400, refused, {})]
    time = FakeTime()
    replay = Replay(routes)
    synced = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    async with replay_dest(replay, time, key_field=None).connect() as session:
        # 503 is not ambiguous (the server did not act), so even a create is resent.
        assert await session.create(Record("a", {"Name": "first"}), synced) == "1204567890200009"
        with pytest.raises(RecordError) as caught:
            await session.create(Record("b", {"Name": "second"}), synced)
    assert "due_on: Not a valid date string" in str(caught.value)
    assert len(time.sleeps) == 1


async def test_a_free_workspace_answers_402_to_custom_field_settings_and_the_key_field_needs_a_plan():
    routes = project_answers()
    payment = {"errors": [{"message": "Custom Field Settings are not available for free users.", "help": HELP}]}
    routes[("GET", f"/projects/{PROJECT}/custom_field_settings", False)] = [(402, payment, {})]
    replay = Replay(routes)
    dest = replay_dest(replay, FakeTime())
    with pytest.raises(ConfigError) as caught:
        async with dest.connect():
            pass
    message = str(caught.value)
    assert "402" in message and "key_field=None" in message
    assert not dest.is_auth_error(caught.value)


# --------------------------------------------------------------------------------------------------
# The fake renders the same shapes, and the destination handles them end to end


def decode_jwt_claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["typ"] == "JWT"
    assert signature
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_the_fake_answers_in_asanas_shapes(fake: FakeAsana, project: FakeProject, time: FakeTime):
    for i in range(3):
        fake.add_task(project.gid, f"t{i}", custom={"Source ID": f"k{i}", "Released": "2024-03-01"})
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=API, headers=headers) as http:
        path = f"/projects/{project.gid}/tasks"
        first = (await http.get(path, params={"limit": 2, "opt_fields": "custom_fields.text_value"})).json()
        last = (await http.get(path, params={"limit": 2, "offset": first["next_page"]["offset"]})).json()
        whole = (await http.get(f"/tasks/{first['data'][0]['gid']}")).json()["data"]
        settings = (await http.get(f"/projects/{project.gid}/custom_field_settings", params={"limit": 100})).json()
        fake.fail_next(1, 500)
        broken = await http.get(f"/tasks/{first['data'][0]['gid']}")
        bad = await http.get(path, params={"limit": 500})
    gids = [t["gid"] for t in first["data"]] + [s["gid"] for s in settings["data"]]
    assert all(g.isdigit() and len(g) == 16 for g in gids)
    page = first["next_page"]
    assert set(page) == {"offset", "path", "uri"} and page["uri"] == f"https://app.asana.com/api/1.0{page['path']}"
    claims = decode_jwt_claims(page["offset"])
    assert claims["exp"] - claims["iat"] == 900  # 15 minutes
    assert last["next_page"] is None
    # Dotted opt_fields narrow the nested objects too: gid plus what was asked.
    nested = [cf for t in first["data"] for cf in t["custom_fields"]]
    assert all("gid" in cf and set(cf) <= {"gid", "text_value"} for cf in nested)
    assert {cf.get("text_value") for cf in nested} >= {"k0", "k1"}
    released = next(cf for cf in whole["custom_fields"] if cf["name"] == "Released")
    assert released["resource_subtype"] == "date" and released["date_value"] == {
        "date": "2024-03-01",
        "date_time": None,
    }
    assert whole["resource_type"] == "task" and whole["workspace"]["resource_type"] == "workspace"
    assert broken.status_code == 500 and broken.json()["errors"][0]["phrase"]
    assert bad.status_code == 400 and "phrase" not in bad.json()["errors"][0]
    assert set(bad.json()["errors"][0]) == {"message", "help"}


async def test_an_offset_asana_no_longer_recognises_restarts_the_listing(
    fake: FakeAsana, project: FakeProject, make_dest: Callable[..., AsanaDestination]
):
    for i in range(250):
        fake.add_task(project.gid, f"t{i}", custom={"Source ID": f"k{i}"})
    seen: list[str] = []
    async with make_dest().connect() as session:
        async for key, _gid in session.query_existing_rows():
            seen.append(key)
            if len(seen) == 100:
                fake.invalidate_offsets()  # "offset: Not a valid offset for this query."
    assert sorted(seen) == sorted(f"k{i}" for i in range(250))  # each once, none lost
    refused = [r for r in fake.requests("GET", r"/tasks$") if r.status == 400]
    assert len(refused) == 1


async def test_a_free_workspace_refuses_the_key_field_with_a_config_error(time: FakeTime):
    free = FakeAsana(rate_per_minute=None, clock=time.clock, premium=False)
    project = free.add_project("Free project")
    dest = AsanaDestination(project.gid, **client_options(free, time))
    with pytest.raises(ConfigError) as caught:
        async with dest.connect():
            pass
    assert "key_field=None" in str(caught.value)
    assert [r.status for r in free.requests("GET", r"/custom_field_settings$")] == [402]


async def test_a_free_workspace_works_without_a_key_field(time: FakeTime, caplog: pytest.LogCaptureFixture):
    free = FakeAsana(rate_per_minute=None, clock=time.clock, premium=False)
    project = free.add_project("Free project")
    dest = AsanaDestination(project.gid, key_field=None, **client_options(free, time))
    record = Record("gh-1", {"Name": "Fix login", "due_on": dt.date(2024, 3, 1), "Priority": "High"}, "Body")
    with caplog.at_level(logging.WARNING):
        async with dest.connect() as session:
            gid = await session.create(record, dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
            assert await session.update(gid, record, dt.datetime(2024, 5, 2, tzinfo=dt.UTC))
    task = free.task(gid)
    assert (task.name, task.notes, task.due_on) == ("Fix login", "Body", "2024-03-01")
    assert "free workspace" in caplog.text and "'Priority' is not written" in caplog.text


async def test_a_custom_field_value_on_a_free_workspace_is_that_records_402(time: FakeTime):
    free = FakeAsana(rate_per_minute=None, clock=time.clock, premium=False)
    project = free.add_project("Free project")
    headers = {"Authorization": f"Bearer {free.token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=free.app), base_url=API, headers=headers) as http:
        answer = await http.post("/tasks", json={"data": {"projects": [project.gid], "custom_fields": {"1": "x"}}})
    assert answer.status_code == 402
    assert answer.json()["errors"][0]["message"] == "Custom Fields are not available for free users or guests."


async def test_a_rate_limited_request_waits_asanas_retry_after(
    fake: FakeAsana, project: FakeProject, make_dest: Callable[..., AsanaDestination], time: FakeTime
):
    fake.fail_next(1, 429, retry_after=30, method="POST")
    async with make_dest().connect() as session:
        gid = await session.create(Record("gh-9", {"Name": "x"}), dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    assert gid.isdigit() and len(gid) == 16
    assert time.sleeps == [30]


async def test_a_revoked_token_is_an_auth_error_naming_no_secret(
    fake: FakeAsana, project: FakeProject, make_dest: Callable[..., AsanaDestination]
):
    dest = make_dest()
    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as caught:
        async with dest.connect():
            pass
    assert dest.is_auth_error(caught.value) and "Not Authorized" in str(caught.value)
    assert fake.token not in str(caught.value)
