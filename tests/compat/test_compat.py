"""connectors.compat module by module: what a ported durable-sync connector relies on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import types
from typing import Any

import httpx
import pytest

from connectors import core
from connectors.auth.tokens import MemoryTokenStore, OAuthToken
from connectors.compat import http as compat_http
from connectors.compat import registry as compat_registry
from connectors.compat.adapters import CompatDestination, CompatSource, as_record, legacy_record
from connectors.compat.auth.oauth import token as compat_token
from connectors.compat.connectors.content import P_SOURCE_ID, content_record, pack_cursor, unpack_cursor
from connectors.compat.connectors.multi import MultiSource
from connectors.compat.core import CONTRACT_VERSION, DestinationHTTPError, Record, SourceSpec, auth_error_in_chain
from connectors.compat.linkstore import InMemoryLinkStore, SqliteLinkStore
from connectors.compat.route import Route
from connectors.compat.schema import Kind, Role, infer_schema
from connectors.http import HttpSettings
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import run_pass
from sync_assets.routes import Route as NativeRoute
from sync_assets.state import StateStore
from tests.fakes.luma import FakeLuma


async def _no_sleep(_: float) -> None:
    return None


@dataclasses.dataclass
class Record03:
    """Shaped as durable-sync 0.3's ``durable_sync.core.Record`` (the class its connectors build)."""

    primary_key: str
    properties: dict[str, Any]
    body: str | None = None


Record03.__name__ = "Record"


# ------------------------------------------------------------------------------------------ records


def test_compat_record_is_the_engines_record():
    assert Record is core.Record and SourceSpec is core.SourceSpec
    assert CONTRACT_VERSION == core.CONTRACT_VERSION == 1


async def test_durable_sync_records_reach_the_destination_through_a_native_route(sqlite_store):
    records = [Record03(f"k{i}", {"Name": f"row {i}"}) for i in range(3)]
    dest = MemoryDestination()
    result = await run_pass(NativeRoute(MemorySource(records), dest), "default", sqlite_store)
    assert (result.stats.created, result.stats.failed) == (3, 0), result.failures
    assert sorted(r.properties["Name"] for r in dest.rows.values()) == ["row 0", "row 1", "row 2"]


async def test_a_pass_whose_records_are_all_rejected_reports_each_failure(sqlite_store):
    # Not record-shaped at all: every one fails on its own and says why; nothing is created.
    dest = MemoryDestination()
    result = await run_pass(NativeRoute(MemorySource([{"id": 1}, {"id": 2}]), dest), "default", sqlite_store)
    assert (result.stats.created, result.stats.failed) == (0, 2)
    assert all("not a Record: dict" in why for _, why in result.failures)
    assert not dest.rows


def test_as_record_copies_only_record_shaped_objects():
    copied = as_record(Record03("a", {"x": 1}, "body"))
    assert isinstance(copied, core.Record) and (copied.primary_key, copied.properties, copied.body) == (
        "a",
        {"x": 1},
        "body",
    )
    assert as_record({"primary_key": "a"}) is None


# ------------------------------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("err", "extra", "expected"),
    [
        (
            DestinationHTTPError(400, "Asana POST /tasks -> 400: not authorized to edit this project"),
            ("not authorized",),
            True,
        ),
        (RuntimeError("Forbidden"), (), True),
        (DestinationHTTPError(403, "nope"), (), True),
        (RuntimeError("validation_error on block 7f3c-401e-9a2b"), (), False),
        (DestinationHTTPError(422, "body mentions 403 in passing"), (), False),
        (RuntimeError("HTTP 401"), (), True),
    ],
)
def test_auth_classification_is_durable_syncs(err, extra, expected):
    assert auth_error_in_chain(err, extra_needles=extra) is expected


def test_text_only_auth_with_a_status_differs_from_the_native_rule():
    err = DestinationHTTPError(400, "Asana -> 400: not authorized")
    assert auth_error_in_chain(err, extra_needles=("not authorized",))
    assert not core.auth_error_in_chain(err, extra_needles=("not authorized",))


def test_a_source_pause_carries_a_fingerprint_that_changes_with_its_secret(monkeypatch):
    class Config:
        token_env = "PORTED_SOURCE_TOKEN"

    class PortedSource:
        name = "ported"

        def __init__(self) -> None:
            self._config = Config()

    src = CompatSource(PortedSource())
    monkeypatch.delenv("PORTED_SOURCE_TOKEN", raising=False)
    assert src.credential_fingerprint() is None
    monkeypatch.setenv("PORTED_SOURCE_TOKEN", "test-token-1")
    first = src.credential_fingerprint()
    monkeypatch.setenv("PORTED_SOURCE_TOKEN", "test-token-2")
    assert first and src.credential_fingerprint() and first != src.credential_fingerprint()
    assert "test-token" not in (first or "")
    assert src.credential_key == "ported:PORTED_SOURCE_TOKEN"
    assert src.is_auth_error(RuntimeError("forbidden"))


# ------------------------------------------------------------------------------------------ route


def test_route_takes_durable_syncs_positional_order():
    def upper(record: core.Record) -> core.Record:
        return dataclasses.replace(record, properties={k: str(v).upper() for k, v in record.properties.items()})

    dest = types.SimpleNamespace(
        name="ported", create_only_properties=set(), connect=lambda: None, configured=True, config_hint=""
    )
    route = Route(MemorySource([]), dest, upper, {"Name"})
    assert isinstance(route, NativeRoute)
    assert route.transform is upper and route.owns == frozenset({"Name"})
    assert isinstance(route.destination, CompatDestination) and route.destination.inner is dest
    assert route.source.__class__ is MemorySource  # a native end is not wrapped
    assert route.name == "memory_to_ported"


def test_a_connector_needing_a_newer_contract_is_refused():
    module = types.ModuleType("needs_contract_two")
    module.REQUIRED_CONTRACT_VERSION = CONTRACT_VERSION + 1
    sys.modules[module.__name__] = module
    try:
        cls = type("NewerSource", (), {"__module__": module.__name__, "name": "newer", "specs": lambda self: []})
        with pytest.raises(core.ConfigError, match="contract"):
            Route(cls(), MemoryDestination())
    finally:
        del sys.modules[module.__name__]


# ------------------------------------------------------------------------------------------ link stores


async def test_link_stores_outlive_their_objects_and_state_store_handles(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = StateStore(url)
    links = InMemoryLinkStore()
    links.bind(first, "luma_to_luma")
    await links.put("k1", "evt-1")
    first.dispose()

    second = StateStore(url)
    again = InMemoryLinkStore()
    again.bind(second, "luma_to_luma")
    other = SqliteLinkStore("/ignored/links.db", route="elsewhere")
    other.bind(second, "luma_to_luma")
    assert await again.get_all() == {"k1": "evt-1"}
    assert await other.get_all() == {}  # its own namespace, durable-sync's `route`
    second.dispose()


async def test_an_unbound_link_store_refuses_instead_of_forgetting():
    with pytest.raises(core.ConfigError, match="not bound"):
        await InMemoryLinkStore().get_all()


# ------------------------------------------------------------------------------------------ legacy values


class _LumaPorted:
    """A destination written as durable-sync's Luma one is: ``str()`` of the date, no id kept by us."""

    name = "luma"
    create_only_properties: set[str] = set()
    configured = True
    config_hint = ""

    def __init__(self, key: str) -> None:
        self.key = key
        self.link_store = InMemoryLinkStore()

    def connect(self) -> Any:
        dest = self

        class _Session:
            async def query_existing_ids(self) -> dict[str, str]:
                return await dest.link_store.get_all()

            async def create(self, record: core.Record, synced_at: dt.datetime) -> bool:
                async with httpx.AsyncClient(headers={"x-luma-api-key": dest.key}) as client:
                    r = await compat_http.request_with_retry(
                        client,
                        "POST",
                        "https://public-api.luma.com/v1/event/create",
                        json={"name": record.properties["Name"], "start_at": str(record.properties["Date"])},
                    )
                if r.status_code >= 400:
                    raise DestinationHTTPError(r.status_code, f"Luma POST -> {r.status_code}: {r.text[:600]}")
                await dest.link_store.put(record.primary_key, r.json()["api_id"])
                return True

            async def update(self, existing_id: str, record: core.Record, synced_at: dt.datetime) -> bool:
                return True

        class _Ctx:
            async def __aenter__(self) -> Any:
                return _Session()

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Ctx()


@pytest.mark.parametrize("legacy", [False, True])
async def test_legacy_values_deliver_datetimes_as_iso_text_when_asked(tmp_path, legacy):
    fake = FakeLuma()
    when = dt.datetime(2031, 5, 1, 17, 0, tzinfo=dt.UTC)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        route = Route(
            MemorySource([core.Record("e1", {"Name": "Launch", "Date": when})]),
            _LumaPorted(fake.key),
            legacy_values=legacy,
            blobs=store,
        )
        with compat_http.using(HttpSettings(transport=httpx.ASGITransport(app=fake.app), sleep=_no_sleep)):
            result = await run_pass(route, "default", store)
    finally:
        store.dispose()
    if legacy:
        assert (result.stats.created, result.stats.failed) == (1, 0), result.failures
        assert [e.start for e in fake.events.values()] == [when]
    else:
        # str(datetime) is "2031-05-01 17:00:00+00:00", which Luma refuses: durable-sync sent ISO text.
        assert (result.stats.created, result.stats.failed) == (0, 1)
        assert not fake.events


def test_legacy_record_turns_dates_into_text_and_leaves_the_rest():
    rec = core.Record("k", {"d": dt.date(2024, 5, 1), "t": dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC), "n": 3})
    assert legacy_record(rec).properties == {"d": "2024-05-01", "t": "2024-05-01T08:00:00+00:00", "n": 3}
    assert rec.properties["d"] == dt.date(2024, 5, 1)  # the engine's record is not mutated


# ------------------------------------------------------------------------------------------ http


async def test_request_with_retry_waits_out_a_rate_limit_and_returns_any_final_status():
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(404, json={"message": "gone"})])
    seen: list[str] = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-luma-api-key", ""))
        return next(answers)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with compat_http.using(HttpSettings(transport=httpx.MockTransport(handler), sleep=sleep)):
        async with httpx.AsyncClient(base_url="https://retry.example.test/v1", headers={"x-luma-api-key": "k"}) as c:
            r = await compat_http.request_with_retry(c, "GET", "/event/get", params={"api_id": "evt-1"})
    assert r.status_code == 404 and seen == ["k", "k"]  # the client's headers went along
    assert slept and slept[0] >= 2


async def test_a_create_is_not_resent_after_an_ambiguous_500():
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500)

    with compat_http.using(HttpSettings(transport=httpx.MockTransport(handler), sleep=_no_sleep)):
        async with httpx.AsyncClient() as c:
            r = await compat_http.request_with_retry(c, "POST", "https://create.example.test/x", json={})
    assert r.status_code == 500 and calls == 1


# ------------------------------------------------------------------------------------------ helpers


def test_content_record_and_cursors():
    rec = content_record(primary_key="evt-1", title_property="Name", title="x" * 3000, item_type="Event", source="Luma")
    assert isinstance(rec, core.Record)
    assert rec.properties[P_SOURCE_ID] == "evt-1" and len(rec.properties["Name"]) == 2000
    assert unpack_cursor(pack_cursor(after="2024-01-01", token=None)) == {"after": "2024-01-01", "token": None}


async def test_multisource_namespaces_and_routes_specs():
    a = MemorySource({"events": [Record03("a1", {"n": 1})]}, name="luma")
    b = MemorySource({"videos": [core.Record("b1", {"n": 2})]}, name="youtube")
    multi = MultiSource(a, b)
    assert [s.key for s in multi.specs()] == ["luma:events", "youtube:videos"]
    page, cursor = await multi.fetch_page(SourceSpec("luma:events"), None, None)
    assert [(type(r), r.primary_key) for r in page] == [(core.Record, "a1")] and cursor is None
    with pytest.raises(core.ConfigError):
        MultiSource(a, MemorySource([], name="luma"))


def test_infer_schema_keeps_durable_syncs_shape():
    schema = infer_schema(
        [core.Record("1", {"Name": "a", "Stars": 3, "When": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "Tags": ["x"]})],
        title="Name",
        key="Repo ID",
        synced="Last synced",
        overrides={"Status": "select"},
    )
    assert [(c.name, c.kind, c.role) for c in schema] == [
        ("Name", Kind.TEXT, Role.TITLE),
        ("Repo ID", Kind.TEXT, Role.KEY),
        ("Stars", Kind.NUMBER, Role.NORMAL),
        ("When", Kind.DATE, Role.NORMAL),
        ("Tags", Kind.MULTI_SELECT, Role.NORMAL),
        ("Status", Kind.SELECT, Role.NORMAL),
        ("Last synced", Kind.DATE, Role.SYNCED),
    ]
    assert schema.by_name("When").has_time and Kind.TEXT == "text"


async def test_current_access_token_reads_the_token_store():
    store = MemoryTokenStore()
    store.replace(
        "notion-oauth",
        OAuthToken(
            access_token="test-access",
            refresh_token="test-refresh",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            token_endpoint="https://auth.example.test/token",
            client_id="test-client",
        ),
    )
    previous = compat_token.token_store()
    compat_token.use_token_store(store)
    try:
        assert await compat_token.current_access_token("notion-oauth") == "test-access"
        with pytest.raises(core.AuthError, match="no OAuth login"):
            await compat_token.current_access_token("unknown-account")
    finally:
        compat_token.use_token_store(previous)


def test_the_registry_reads_durable_syncs_groups_without_durable_sync_or_this_project():
    dists = {info.distribution.lower() for info in compat_registry.discover()}
    assert not dists & {"durable-sync", "durable_sync", "durable-sync-dagster", "durable_sync_dagster"}
    with pytest.raises(LookupError, match="no ported source"):
        compat_registry.load_source("github")


def _dist_info(root, name: str, version: str, entry_points: str, requires: tuple[str, ...] = ()) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    meta = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_the_registry_lists_contrib_connectors_but_not_durable_syncs_own_and_checks_the_contract(tmp_path, monkeypatch):
    _dist_info(
        tmp_path,
        "durable-sync",
        "0.3.0",
        "[durable_sync.sources]\ngithub = durable_sync.connectors.github.source:GitHubSource\n",
    )
    _dist_info(
        tmp_path,
        "durable-sync-contrib",
        "0.1.0",
        "[durable_sync.sources]\nspotify = durable_sync_contrib.spotify.source:SpotifySource\n"
        "[durable_sync.destinations]\nlistenbrainz = durable_sync_contrib.listenbrainz.destination:X\n",
        ("durable-sync>=0.3", "httpx>=0.27"),
    )
    _dist_info(
        tmp_path,
        "durable-sync-future",
        "1.0.0",
        "[durable_sync.sources]\nfuture = durable_sync_future:FutureSource\n",
        ("durable-sync>=0.4",),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    info = {i.name: i for i in compat_registry.discover()}
    assert set(info) == {"spotify", "listenbrainz", "future"}
    assert info["spotify"].distribution == "durable-sync-contrib" and info["listenbrainz"].kinds == "destination"
    assert compat_registry.source_names() == ["future", "spotify"]
    with pytest.raises(core.ConfigError, match=r"durable-sync>=0\.4"):
        compat_registry.load_source("future")
    with pytest.raises(ModuleNotFoundError):  # allowed, then imported (the package is not installed here)
        compat_registry.load_source("spotify")
