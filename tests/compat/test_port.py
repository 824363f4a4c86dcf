"""durable-sync 0.3.0's GitHub source, Asana destination and Luma source and destination, ported by
their imports only (``tests/compat/original.py``), against this project's fakes.

Every run is a fresh state-store handle, fresh connector objects and fresh link stores, as each
Dagster run is a new process: the first run creates, the second writes nothing, the third updates the
one record changed at the source, and no destination ever holds a row twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from connectors import core
from connectors.compat import http as compat_http
from connectors.compat.linkstore import InMemoryLinkStore
from connectors.compat.route import Route
from connectors.http import HttpSettings
from sync_assets._records import credential_fingerprint
from sync_assets.engine import run_pass
from sync_assets.state import StateStore
from tests.compat import original
from tests.fakes.asana import FakeAsana, FakeTask, Json
from tests.fakes.github import FakeGitHub
from tests.fakes.luma import FakeLuma

ORG = "acme"


class OAuthAppAsana(FakeAsana):
    """The Asana fake, its tokens acting as an OAuth app's: they may set a task's ``external`` data.

    durable-sync's Asana destination keys its tasks by ``external.gid``, which Asana lets only OAuth apps
    write (the fake answers a personal access token's 400, as Asana documents); its ``token_provider``
    is how it is given an OAuth token. Stored and answered as Asana does: ``{"gid", "data"}``.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.external: dict[str, Json] = {}
        super().__init__(**kwargs)

    def _apply(self, me: Any, task: FakeTask, data: Json, *, creating: bool) -> None:
        rest = dict(data)
        ext = rest.pop("external", None)
        super()._apply(me, task, rest, creating=creating)
        if ext is not None:
            self.external[task.gid] = {"gid": ext.get("gid"), "data": ext.get("data")}

    def _task_json(self, task: FakeTask) -> Json:
        out = super()._task_json(task)
        out["external"] = self.external.get(task.gid)
        return out


class ByHost(httpx.AsyncBaseTransport):
    """Sends each request to the fake of its host; Luma's two calendars are told apart by their key."""

    def __init__(self, github: FakeGitHub, asana: FakeAsana, lumas: list[FakeLuma]) -> None:
        self.github = httpx.ASGITransport(app=github.app)
        self.asana = httpx.ASGITransport(app=asana.app)
        self.lumas = [(fake, httpx.ASGITransport(app=fake.app)) for fake in lumas]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "api.github.com":
            return await self.github.handle_async_request(request)
        if host == "app.asana.com":
            return await self.asana.handle_async_request(request)
        if host == "public-api.luma.com":
            key = request.headers.get("x-luma-api-key", "")
            for fake, transport in self.lumas:
                if key in fake.keys:
                    return await transport.handle_async_request(request)
            return await self.lumas[0][1].handle_async_request(request)  # an unknown key: Luma's 401
        raise AssertionError(f"unexpected host {host}")


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> dict[str, ModuleType]:
    return original.install(tmp_path_factory.mktemp("ported"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        yield request.getfixturevalue("pg_database")


class World:
    """The fakes, their credentials in the environment, and one run of both routes per call."""

    def __init__(self, ported: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
        self.m = ported
        self.github = FakeGitHub()
        self.repos = self.github.add_repos(ORG, 3)
        self.asana = OAuthAppAsana()
        self.project = self.asana.add_project("Repos", {"Description": "text"})
        self.luma_in = FakeLuma()
        self.luma_out = FakeLuma()
        soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
        self.events = [
            self.luma_in.add_event(f"Meetup {i}", soon + dt.timedelta(days=i), hosts=["Ada"]) for i in range(4)
        ]
        monkeypatch.setenv("GITHUB_TOKEN", self.github.token)
        monkeypatch.setenv("LUMA_SOURCE_KEY", self.luma_in.key)
        monkeypatch.setenv("LUMA_API_KEY", self.luma_out.key)
        self.transport = ByHost(self.github, self.asana, [self.luma_in, self.luma_out])

    def routes(self, store: StateStore) -> tuple[Any, Any]:
        """Both routes, from fresh connector objects (what a new process builds)."""
        gh, asana, luma = self.m["github"], self.m["asana"], self.m["luma"]
        token = self.asana.token

        async def oauth_token() -> str:
            return token

        github_to_asana = Route(
            gh.GitHubSource(gh.GitHubConfig(sources=[("org", ORG)])),
            asana.AsanaDestination(
                self.project.gid,
                token_provider=oauth_token,
                field_map={"Description": {"custom_field": self.asana.field(self.project.gid, "Description").gid}},
            ),
            name="github_to_asana",
            blobs=store,
        )
        luma_to_luma = Route(
            luma.LumaSource(luma.LumaConfig(token_env="LUMA_SOURCE_KEY")),
            luma.LumaDestination(link_store=InMemoryLinkStore()),
            name="luma_to_luma",
            blobs=store,
        )
        return github_to_asana, luma_to_luma

    async def run(self, url: str) -> tuple[Any, Any]:
        store = StateStore(url)
        try:
            github_to_asana, luma_to_luma = self.routes(store)
            with compat_http.using(HttpSettings(transport=self.transport, sleep=_no_sleep)):
                a = await run_pass(github_to_asana, f"org:{ORG}", store)
                b = await run_pass(luma_to_luma, "events", store)
            return a, b
        finally:
            store.dispose()

    def asana_keys(self) -> list[str]:
        return sorted(str(e["gid"]) for e in self.asana.external.values())

    def luma_out_names(self) -> list[str]:
        return sorted(e.name for e in self.luma_out.events.values())


def _writes(result: Any) -> tuple[int, int, int]:
    s = result.stats
    return s.created, s.updated, s.failed


async def test_ported_connectors_create_then_write_nothing_then_update_one_without_duplicates(
    ported, state_url, monkeypatch
):
    world = World(ported, monkeypatch)
    repo_ids = sorted(str(r.id) for r in world.repos)

    gh, lu = await world.run(state_url)
    assert _writes(gh) == (3, 0, 0), gh.failures
    assert _writes(lu) == (4, 0, 0), lu.failures
    assert world.asana_keys() == repo_ids
    assert world.luma_out_names() == [f"Meetup {i}" for i in range(4)]

    gh, lu = await world.run(state_url)
    # Nothing is sent. The Asana rows are linked now, by this pass's listing of external.gid: its create
    # answered True (no id), as durable-sync's did; the engine reports rows it adopts as created.
    assert gh.stats.destination_calls == lu.stats.destination_calls == 0
    assert (gh.stats.updated, gh.stats.failed, gh.stats.adopted) == (0, 0, 3), gh.stats
    # The Luma rows were linked by the first run already: the link store's id reached the engine.
    assert _writes(lu) == (0, 0, 0), lu.failures
    assert lu.stats.unchanged == 4
    assert (world.asana.counters.creates, world.asana.counters.updates) == (3, 0)
    assert len(world.luma_out.events) == 4

    world.github.modify_repo(f"{ORG}/repo-001", description="Now with a new description")
    world.luma_in.events[world.events[2].api_id].name = "Meetup 2 (moved online)"
    gh, lu = await world.run(state_url)
    assert _writes(gh) == (0, 1, 0), gh.failures
    assert _writes(lu) == (0, 1, 0), lu.failures

    # No duplicate anywhere after three runs, and the updates landed on the rows the first run made.
    tasks = world.asana.tasks(world.project.gid)
    assert len(tasks) == 3
    assert world.asana_keys() == repo_ids
    changed = next(t for t in tasks if world.asana.external[t.gid]["gid"] == str(world.repos[1].id))
    assert world.asana.values(changed.gid)["Description"] == "Now with a new description"
    assert len(world.luma_out.events) == 4
    assert world.luma_out_names() == sorted(["Meetup 0", "Meetup 1", "Meetup 2 (moved online)", "Meetup 3"])


def test_the_port_rewrites_import_lines_only():
    for system, files in original.SYSTEMS.items():
        for name in files:
            text = original.original_text(f"connectors/{system}/{name}")
            ported_text = original.port(text)
            assert "durable_sync." not in "".join(
                line for line in ported_text.splitlines() if original._IMPORT_LINE.match(line)
            )
            for before, after in zip(text.splitlines(), ported_text.splitlines(), strict=True):
                if before != after:
                    assert original._IMPORT_LINE.match(before), (system, name, before)


async def test_a_ported_source_rejected_with_401_pauses_a_credential_that_lifts_when_the_secret_changes(
    ported, sqlite_store, monkeypatch
):
    world = World(ported, monkeypatch)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token-revoked")
    github_to_asana, _ = world.routes(sqlite_store)
    with (
        compat_http.using(HttpSettings(transport=world.transport, sleep=_no_sleep)),
        pytest.raises(core.AuthError),
    ):
        await run_pass(github_to_asana, f"org:{ORG}", sqlite_store)
    pause = sqlite_store.pauses()["credential:github:GITHUB_TOKEN"]
    assert pause.source == "auth" and pause.fingerprint
    assert credential_fingerprint(github_to_asana.source) == pause.fingerprint  # unchanged: stays paused
    monkeypatch.setenv("GITHUB_TOKEN", world.github.token)
    assert credential_fingerprint(github_to_asana.source) not in (None, pause.fingerprint)  # the sensor lifts it
    assert world.asana.counters.creates == 0
