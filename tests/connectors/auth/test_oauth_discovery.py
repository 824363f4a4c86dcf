"""Discovery (RFC 9728 -> RFC 8414), the endpoint guard, dynamic registration and PKCE."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from connectors.auth import oauth
from connectors.core import ConfigError
from tests.connectors.auth.helpers import BASE, RESOURCE
from tests.fakes.oauth import FakeOAuthServer

# --------------------------------------------------------------------------------------------------
# Discovery


async def test_discovery_follows_protected_resource_metadata_to_the_authorization_server(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    metadata = await oauth.discover(RESOURCE, client=http)

    assert metadata.issuer == BASE
    assert metadata.authorization_endpoint == f"{BASE}/authorize"
    assert metadata.token_endpoint == f"{BASE}/token"
    assert metadata.registration_endpoint == f"{BASE}/register"
    assert metadata.resource == RESOURCE
    assert metadata.resource_metadata_url == f"{BASE}/.well-known/oauth-protected-resource/mcp"
    assert "S256" in metadata.code_challenge_methods_supported
    # RFC 9728 §3.1: the path-aware location is asked first, and it answered.
    assert [c.path for c in fake.requests] == [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ]


async def test_discovery_without_resource_metadata_falls_back_to_the_origin(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    fake.serve_resource_metadata = False

    metadata = await oauth.discover(RESOURCE, client=http)

    assert metadata.token_endpoint == f"{BASE}/token"
    assert metadata.resource == RESOURCE
    assert metadata.resource_metadata_url is None
    assert [c.status for c in fake.requests] == [404, 404, 200]


async def test_discovery_tries_the_challenge_resource_metadata_url_first(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    challenge_url = f"{BASE}/.well-known/oauth-protected-resource"

    metadata = await oauth.discover(RESOURCE, client=http, resource_metadata_url=challenge_url)

    assert metadata.resource_metadata_url == challenge_url
    assert fake.requests[0].path == "/.well-known/oauth-protected-resource"


async def test_resource_metadata_for_another_resource_is_refused(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    fake.resource_metadata_overrides = {"resource": "https://other.example.test/mcp"}

    with pytest.raises(ConfigError, match=re.escape("is for https://other.example.test/mcp")):
        await oauth.discover(RESOURCE, client=http)


async def test_an_authorization_server_without_pkce_s256_is_refused(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    fake.metadata_overrides = {"code_challenge_methods_supported": ["plain"]}

    with pytest.raises(ConfigError, match="PKCE S256"):
        await oauth.discover(RESOURCE, client=http)


async def test_metadata_of_another_issuer_is_refused(fake: FakeOAuthServer, http: httpx.AsyncClient) -> None:
    fake.metadata_overrides = {"issuer": "https://auth.example.test"}

    with pytest.raises(ConfigError, match="RFC 8414"):
        await oauth.discover(RESOURCE, client=http)


async def test_no_metadata_anywhere_is_a_config_error(fake: FakeOAuthServer) -> None:
    async def nothing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(nothing)) as client:
        with pytest.raises(ConfigError, match="no OAuth authorization-server metadata"):
            await oauth.discover(RESOURCE, client=client)


# --------------------------------------------------------------------------------------------------
# The endpoint guard


async def test_a_plain_http_resource_off_loopback_is_refused(http: httpx.AsyncClient) -> None:
    with pytest.raises(ConfigError, match="must use https"):
        await oauth.discover("http://mcp.example.test/mcp", client=http)


@pytest.mark.parametrize(
    ("name", "url", "reason"),
    [
        ("token_endpoint", "http://mcp.example.test/token", "must use https"),
        ("token_endpoint", "https://evil.example.org/token", "not on the site"),
        ("authorization_endpoint", "https://example.test.evil.org/authorize", "not on the site"),
        ("registration_endpoint", "https://user:pw@mcp.example.test/register", "credentials"),
    ],
)
async def test_discovered_endpoints_must_be_https_and_on_the_resources_site(
    fake: FakeOAuthServer, http: httpx.AsyncClient, name: str, url: str, reason: str
) -> None:
    fake.metadata_overrides = {name: url}

    with pytest.raises(ConfigError, match=reason) as caught:
        await oauth.discover(RESOURCE, client=http)
    assert name in str(caught.value)
    assert "pw" not in str(caught.value)


async def test_an_authorization_server_on_another_site_is_refused(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    fake.resource_metadata_overrides = {"authorization_servers": ["https://login.attacker.test"]}

    with pytest.raises(ConfigError, match="authorization server"):
        await oauth.discover(RESOURCE, client=http)
    # ...and nothing was fetched from there
    assert all(call.path != "/.well-known/oauth-authorization-server" for call in fake.requests)


async def test_endpoints_on_a_sibling_subdomain_of_the_same_site_are_accepted(
    fake: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    fake.metadata_overrides = {"token_endpoint": "https://auth.example.test/oauth/token"}

    metadata = await oauth.discover(RESOURCE, client=http)

    assert metadata.token_endpoint == "https://auth.example.test/oauth/token"


def test_check_endpoint_allows_plain_http_only_on_loopback() -> None:
    assert oauth.check_endpoint("http://127.0.0.1:8123/token", "http://127.0.0.1:8123/mcp")
    assert oauth.check_endpoint("http://localhost:8123/token", "http://127.0.0.1:8123/mcp")
    assert oauth.check_endpoint("http://[::1]:8123/token", "http://[::1]:8123/mcp")
    with pytest.raises(ConfigError, match="https"):
        oauth.check_endpoint("http://127.0.0.1:8123/token", "http://127.0.0.1/mcp", allow_loopback_http=False)
    with pytest.raises(ConfigError, match="https"):
        oauth.check_endpoint("http://10.0.0.7/token", "http://10.0.0.7/mcp")
    with pytest.raises(ConfigError, match="not on the site"):
        oauth.check_endpoint("https://127.0.0.1/token", "https://mcp.example.test/mcp")


def test_check_endpoint_extra_sites_trust_a_named_authorization_server() -> None:
    with pytest.raises(ConfigError):
        oauth.check_endpoint("https://tenant.auth0.com/token", "https://mcp.example.test/mcp")
    assert oauth.check_endpoint(
        "https://tenant.auth0.com/token", "https://mcp.example.test/mcp", extra_sites=("auth0.com",)
    )


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("mcp.notion.com", "notion.com"),
        ("notion.com", "notion.com"),
        ("api.example.co.uk", "example.co.uk"),
        ("evil.co.uk", "evil.co.uk"),
        ("alice.github.io", "alice.github.io"),
        ("alice.s3.amazonaws.com", "alice.s3.amazonaws.com"),
        ("a.blogspot.com", "a.blogspot.com"),
        ("x.pythonanywhere.com", "x.pythonanywhere.com"),
        ("login.example.co.uk", "example.co.uk"),
        ("Deep.Login.Example.CO.UK.", "example.co.uk"),
        # Not in the list: the TLD counts as a one-label public suffix.
        ("mcp.example.test", "example.test"),
        ("a.b.corp.internal", "corp.internal"),
        # A public suffix, or a single label, is a site of its own (never a wider one).
        ("github.io", "github.io"),
        ("co.uk", "co.uk"),
        ("intranet", "intranet"),
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("::1", "loopback"),
        ("192.0.2.4", "192.0.2.4"),
    ],
)
def test_site_of(host: str, site: str) -> None:
    assert oauth.site_of(host) == site


@pytest.mark.parametrize(
    ("endpoint_host", "resource_host"),
    [
        ("mallory.github.io", "alice.github.io"),
        ("evil.co.uk", "good.co.uk"),
        # Private suffixes of the Public Suffix List: the tenants are different people.
        ("mallory.s3.amazonaws.com", "alice.s3.amazonaws.com"),
        ("b.blogspot.com", "a.blogspot.com"),
        ("y.pythonanywhere.com", "x.pythonanywhere.com"),
        # The suffix itself is not the tenant's site either.
        ("github.io", "alice.github.io"),
        ("login.corp.internal", "mcp.other.internal"),
    ],
)
def test_check_endpoint_keeps_apart_tenants_of_shared_suffixes(endpoint_host: str, resource_host: str) -> None:
    with pytest.raises(ConfigError, match="not on the site"):
        oauth.check_endpoint(f"https://{endpoint_host}/token", f"https://{resource_host}/mcp")


@pytest.mark.parametrize(
    ("endpoint_host", "resource_host"),
    [
        ("login.example.co.uk", "api.example.co.uk"),
        ("auth.alice.s3.amazonaws.com", "alice.s3.amazonaws.com"),
        ("login.corp.internal", "mcp.corp.internal"),
        ("alice.github.io", "alice.github.io"),
    ],
)
def test_check_endpoint_accepts_hosts_of_one_registrable_domain(endpoint_host: str, resource_host: str) -> None:
    url = f"https://{endpoint_host}/token"
    assert oauth.check_endpoint(url, f"https://{resource_host}/mcp") == url


# --------------------------------------------------------------------------------------------------
# Registration, PKCE, the authorization URL


async def test_dynamic_registration_makes_a_public_client(fake: FakeOAuthServer, http: httpx.AsyncClient) -> None:
    metadata = await oauth.discover(RESOURCE, client=http)

    registered = await oauth.register_client(metadata, ["http://127.0.0.1:8788/callback"], client=http)

    assert registered.client_id in fake.client_ids()
    assert registered.client_secret is None
    assert registered.token_endpoint_auth_method == "none"
    assert registered.redirect_uris == ("http://127.0.0.1:8788/callback",)
    assert fake.registrations == 1


async def test_a_refused_registration_is_a_config_error(http: httpx.AsyncClient) -> None:
    metadata = await oauth.discover(RESOURCE, client=http)

    with pytest.raises(ConfigError, match="invalid_redirect_uri"):
        await oauth.register_client(metadata, ["http://attacker.example/callback"], client=http)


async def test_no_registration_endpoint_is_a_config_error(fake: FakeOAuthServer, http: httpx.AsyncClient) -> None:
    fake.metadata_overrides = {"registration_endpoint": None}
    metadata = await oauth.discover(RESOURCE, client=http)

    with pytest.raises(ConfigError, match="dynamic client registration"):
        await oauth.register_client(metadata, ["http://127.0.0.1:8788/callback"], client=http)


def test_pkce_is_s256_over_a_fresh_verifier() -> None:
    pkce, other = oauth.new_pkce(), oauth.new_pkce()

    expected = base64.urlsafe_b64encode(hashlib.sha256(pkce.verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce.challenge == expected
    assert pkce.method == "S256"
    assert 43 <= len(pkce.verifier) <= 128
    assert pkce.verifier != other.verifier
    assert pkce.verifier not in repr(pkce)


async def test_the_authorization_url_carries_pkce_state_and_resource(http: httpx.AsyncClient) -> None:
    metadata = await oauth.discover(RESOURCE, client=http)
    pkce = oauth.new_pkce()

    url = httpx.URL(
        oauth.authorization_url(
            metadata, client_id="c1", redirect_uri="http://127.0.0.1:9/callback", pkce=pkce, state="st-1"
        )
    )

    params = dict(url.params.multi_items())
    assert str(url.copy_with(query=None)) == f"{BASE}/authorize"
    assert params == {
        "response_type": "code",
        "client_id": "c1",
        "redirect_uri": "http://127.0.0.1:9/callback",
        "state": "st-1",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "resource": RESOURCE,
    }
    assert pkce.verifier not in str(url)
