"""A route's retries: ``Route(retry_policy=, backoff=)`` shapes the asset's RetryPolicy and the HTTP retries."""

from __future__ import annotations

import textwrap

import dagster as dg
import httpx
import pytest

from connectors.core import ConfigError
from connectors.github import GitHubSource
from connectors.http import HttpSettings, RetryPolicy, backoff_scope
from connectors.memory import MemoryDestination
from sync_assets.components import load_route_file
from sync_assets.factory import SYNC_RETRY_POLICY, asset_retry_policy, build_definitions
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.systems import default_resources
from sync_assets.testing import materialize_route
from tests.fakes.common import FakeTime
from tests.fakes.github import FakeGitHub
from tests.sync_assets.helpers import memory_route


def _asset_policy(route: Route, store, default: dg.RetryPolicy | None = SYNC_RETRY_POLICY) -> dg.RetryPolicy | None:
    defs = build_definitions([route], state=SyncStateResource(url=store.url), retry_policy=default)
    return defs.resolve_assets_def(route.name).op.retry_policy


def _delays(policy: dg.RetryPolicy, attempt: int) -> float:
    """The delay before retry ``attempt`` without the jitter (which Dagster draws at random)."""
    return dg.RetryPolicy(max_retries=policy.max_retries, delay=policy.delay, backoff=policy.backoff).calculate_delay(
        attempt
    )


def test_linear_backoff_makes_the_assets_retry_policy_linear(sqlite_store):
    route = Route(memory_route().source, MemoryDestination(), backoff="linear")
    policy = _asset_policy(route, sqlite_store)
    assert policy is not None and policy.backoff == dg.Backoff.LINEAR
    # The rest of the deployment's policy stays: only the shape of the waits changes.
    assert (policy.max_retries, policy.delay, policy.jitter) == (
        SYNC_RETRY_POLICY.max_retries,
        SYNC_RETRY_POLICY.delay,
        SYNC_RETRY_POLICY.jitter,
    )
    assert [_delays(policy, n) for n in (1, 2, 3)] == [5, 10, 15]


def test_the_routes_own_policy_wins_over_the_deployments(sqlite_store):
    own = dg.RetryPolicy(max_retries=7, delay=2, backoff=dg.Backoff.LINEAR)
    route = Route(memory_route().source, MemoryDestination(), retry_policy=own)
    assert _asset_policy(route, sqlite_store) == own
    assert route.http_backoff == "linear"  # the policy's backoff reaches the HTTP retries too
    plain = Route(memory_route().source, MemoryDestination())
    assert _asset_policy(plain, sqlite_store) == SYNC_RETRY_POLICY
    assert plain.http_backoff is None


def test_constant_backoff_is_a_policy_without_backoff(sqlite_store):
    route = Route(memory_route().source, MemoryDestination(), backoff="constant")
    policy = _asset_policy(route, sqlite_store)
    assert policy is not None and policy.backoff is None
    assert {_delays(policy, n) for n in (1, 2, 3)} == {SYNC_RETRY_POLICY.delay}


def test_a_deployment_without_retries_stays_without_them():
    route = Route(memory_route().source, MemoryDestination(), backoff="linear")
    assert asset_retry_policy(route, None) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backoff": "sideways"}, "backoff must be one of exponential, linear, constant"),
        ({"retry_policy": 3}, "retry_policy must be a dagster.RetryPolicy"),
    ],
)
def test_a_bad_retry_setting_names_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Route(memory_route().source, MemoryDestination(), **kwargs)


def _github_route(fake_time: FakeTime, **route_kwargs) -> tuple[FakeGitHub, Route]:
    fake = FakeGitHub(clock=fake_time.clock)
    fake.add_org("acme")
    fake.add_repos("acme", 3)
    source = GitHubSource(
        orgs=["acme"],
        token=fake.token,
        etag_cache=None,
        fetch_readme=False,
        fetch_languages=False,
        fetch_contributors=False,
        http=HttpSettings(
            transport=httpx.ASGITransport(app=fake.app),
            retry=RetryPolicy(base_delay=1.0, jitter=0),  # the connector's own policy: exponential
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        ),
    )
    return fake, Route(source, MemoryDestination(), **route_kwargs)


@pytest.mark.parametrize(
    ("route_kwargs", "sleeps"),
    [
        ({"backoff": "linear"}, [1.0, 2.0, 3.0, 4.0]),
        ({"backoff": "constant"}, [1.0, 1.0, 1.0, 1.0]),
        ({"retry_policy": dg.RetryPolicy(max_retries=0, delay=0.01, backoff=dg.Backoff.LINEAR)}, [1.0, 2.0, 3.0, 4.0]),
        ({}, [1.0, 2.0, 4.0, 8.0]),  # no word from the route: the connector's exponential backoff
        ({"retry_policy": dg.RetryPolicy(max_retries=0)}, [1.0, 2.0, 4.0, 8.0]),  # a policy without backoff
    ],
)
def test_the_routes_backoff_reaches_the_connectors_http_retries(route_kwargs, sleeps):
    fake_time = FakeTime()
    fake, route = _github_route(fake_time, **route_kwargs)
    fake.fail_next(4, status=503)
    run = materialize_route(route, "org:acme")
    assert run.success, run.failure
    assert fake_time.sleeps == sleeps
    assert fake.statuses()[503] == 4
    assert run.stats.created == 3


async def test_backoff_scope_overrides_a_clients_policy_only_inside_the_block():
    fake_time = FakeTime()
    fake = FakeGitHub(clock=fake_time.clock)
    fake.add_org("acme")
    source = GitHubSource(
        orgs=["acme"],
        token=fake.token,
        etag_cache=None,
        http=HttpSettings(
            transport=httpx.ASGITransport(app=fake.app),
            retry=RetryPolicy(base_delay=1.0, jitter=0),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        ),
    )
    (spec,) = source.specs()
    fake.fail_next(3, status=503)
    with backoff_scope("linear"):
        await source.fetch_page(spec, None, None)
    fake.fail_next(3, status=503)
    await source.fetch_page(spec, None, None)
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 1.0, 2.0, 4.0]


def test_the_yaml_retry_block_sets_the_policy_and_the_backoff(tmp_path):
    path = tmp_path / "defs.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            type: sync_assets.components.RouteComponent
            attributes:
              name: files_retry
              source:
                system: files
                files: [{key: t, path: t.csv, key_column: id}]
              destination:
                system: files
                path: t.sqlite3
                table: t
              retry:
                max_retries: 2
                delay_seconds: 3
                backoff: linear
            """
        )
    )
    route = load_route_file(path, default_resources())
    assert route is not None and route.backoff == "linear" and route.http_backoff == "linear"
    policy = asset_retry_policy(route)
    assert policy is not None
    assert (policy.max_retries, policy.delay, policy.backoff) == (2, 3, dg.Backoff.LINEAR)
    path.write_text(path.read_text().replace("backoff: linear", "backoff: sideways"))
    with pytest.raises(ConfigError, match="backoff"):
        load_route_file(path, default_resources())
