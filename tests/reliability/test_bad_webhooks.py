"""Bad webhooks: every malformed, unsigned, replayed or misdirected delivery is refused with its status.

Each case asserts three things: the status, that nothing reached the sync-now inbox, and that no
log line (any logger, DEBUG and up) nor the answer holds a secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.contentful import ContentfulSource
from connectors.github import GitHubSource
from connectors.jira import JiraSource
from connectors.memory import MemoryDestination
from connectors.notion import NotionSource
from sync_assets.routes import Route
from sync_assets.webhooks import WebhookConfig, build_app, hub_signature

SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "test-gh-hook-secret-6f1c",
    "JIRA_WEBHOOK_SECRET": "test-jira-hook-secret-8a2d",
    "NOTION_WEBHOOK_VERIFICATION_TOKEN": "secret_test-notion-hook-token-93be",
    "CONTENTFUL_WEBHOOK_SIGNING_SECRET": "test-cf-signing-secret-" + "k" * 41,
}
GH = SECRETS["GITHUB_WEBHOOK_SECRET"]
DS_ID = "1a2b3c4d-0000-4000-8000-00000000abcd"
MAX_BODY = 64 * 1024


def _routes() -> list[Route]:
    return [
        Route(GitHubSource(orgs=["acme"], token="test-token"), MemoryDestination(), name="gh"),
        Route(
            JiraSource(projects=["ENG"], base_url="https://example.atlassian.net", email="a@example.com", token="t"),
            MemoryDestination(),
            name="jira",
        ),
        Route(NotionSource(DS_ID, token="test-token"), MemoryDestination(), name="notion"),
        Route(ContentfulSource("space1", delivery_token="test-token"), MemoryDestination(), name="cf"),
    ]


def _push(repo_id: int = 42) -> bytes:
    return json.dumps(
        {"ref": "refs/heads/main", "repository": {"id": repo_id, "full_name": "acme/app", "owner": {"login": "acme"}}}
    ).encode()


def _gh_headers(body: bytes, *, delivery: str = "d-1", event: str = "push", secret: str = GH) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": hub_signature(secret, body),
    }


def _contentful(body: bytes, *, secret: str, stamp_ms: int) -> dict[str, str]:
    signed = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
    headers = {
        "content-type": "application/vnd.contentful.management.v1+json",
        "x-contentful-topic": "ContentManagement.Entry.publish",
        "x-contentful-timestamp": str(stamp_ms),
        "x-contentful-signed-headers": signed,
    }
    canonical = "\n".join(
        [
            "POST",
            "/webhooks/contentful",
            ";".join(f"{k}:{headers[k]}" for k in sorted(signed.split(","))),
            body.decode(),
        ]
    )
    headers["x-contentful-signature"] = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return headers


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 8192
        sent += 8192


OTHER_ORG = json.dumps({"repository": {"id": 9, "full_name": "other/app", "owner": {"login": "other"}}}).encode()
ENTRY = json.dumps({"sys": {"id": "e1", "version": 1, "contentType": {"sys": {"id": "post"}}}}).encode()
NOTION_EVENT = json.dumps(
    {"id": "evt-1", "type": "page.created", "entity": {"id": DS_ID, "type": "page"}, "data": {"parent": {"id": DS_ID}}}
).encode()
JIRA_EVENT = json.dumps(
    {"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "fields": {"project": {"key": "ENG"}}}}
).encode()

# name -> (method, path, body, headers, expected status)
CASES = {
    "github bad signature": ("POST", "/webhooks/github", _push(), _gh_headers(_push(), secret="wrong-secret"), 401),
    "github unsigned": (
        "POST",
        "/webhooks/github",
        _push(),
        {k: v for k, v in _gh_headers(_push()).items() if k != "x-hub-signature-256"},
        401,
    ),
    "github signature of another body": ("POST", "/webhooks/github", _push(7), _gh_headers(_push(8)), 401),
    "github without delivery id": (
        "POST",
        "/webhooks/github",
        _push(),
        {k: v for k, v in _gh_headers(_push()).items() if k != "x-github-delivery"},
        400,
    ),
    "jira bad signature": (
        "POST",
        "/webhooks/jira",
        JIRA_EVENT,
        {"content-type": "application/json", "x-hub-signature": hub_signature("nope", JIRA_EVENT)},
        401,
    ),
    "notion unsigned event": ("POST", "/webhooks/notion", NOTION_EVENT, {"content-type": "application/json"}, 401),
    "notion bad signature": (
        "POST",
        "/webhooks/notion",
        NOTION_EVENT,
        {"content-type": "application/json", "x-notion-signature": hub_signature("secret_other", NOTION_EVENT)},
        401,
    ),
    "contentful bad signature": (
        "POST",
        "/webhooks/contentful",
        ENTRY,
        _contentful(ENTRY, secret="x" * 64, stamp_ms=int(time.time() * 1000)),
        401,
    ),
    "contentful stale timestamp": (
        "POST",
        "/webhooks/contentful",
        ENTRY,
        _contentful(
            ENTRY, secret=SECRETS["CONTENTFUL_WEBHOOK_SIGNING_SECRET"], stamp_ms=int((time.time() - 3600) * 1000)
        ),
        401,
    ),
    "wrong content type": (
        "POST",
        "/webhooks/github",
        b"payload=" + _push(),
        _gh_headers(b"payload=" + _push()) | {"content-type": "application/x-www-form-urlencoded"},
        415,
    ),
    "no content type": (
        "POST",
        "/webhooks/jira",
        JIRA_EVENT,
        {"x-hub-signature": hub_signature(SECRETS["JIRA_WEBHOOK_SECRET"], JIRA_EVENT)},
        415,
    ),
    "huge body": (
        "POST",
        "/webhooks/github",
        b"{" + b" " * (MAX_BODY + 1) + b"}",
        {"content-type": "application/json"},
        413,
    ),
    "signed but not json": ("POST", "/webhooks/github", b"[1, 2", _gh_headers(b"[1, 2"), 400),
    "unknown event": ("POST", "/webhooks/github", _push(), _gh_headers(_push(), event="issues"), 202),
    "repo of no route": ("POST", "/webhooks/github", OTHER_ORG, _gh_headers(OTHER_ORG), 202),
    "unknown vendor": ("POST", "/webhooks/gitlab", _push(), _gh_headers(_push()), 404),
    "unknown path": ("POST", "/hooks", _push(), _gh_headers(_push()), 404),
    "not a post": ("GET", "/webhooks/github", b"", {}, 405),
}


@pytest.fixture
def client_factory(sqlite_store):
    def make(config: WebhookConfig | None = None, store=None) -> httpx.AsyncClient:
        app = build_app(_routes(), store or sqlite_store, config or WebhookConfig(max_body=MAX_BODY, secrets=SECRETS))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")

    return make


def _assert_no_secret(text: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} leaked"


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_webhook_is_refused_and_enqueues_nothing(case, client_factory, sqlite_store, caplog):
    caplog.set_level("DEBUG")
    method, path, body, headers, status = CASES[case]
    async with client_factory() as client:
        resp = await client.request(method, path, content=body or None, headers=headers)
    assert resp.status_code == status, resp.text
    assert sqlite_store.pending_requests() == []
    if status in (400, 401, 413, 415):
        assert f"refused ({status})" in caplog.text  # the refusal is logged: the scan below scans something
    _assert_no_secret(caplog.text + resp.text)


async def test_chunked_body_over_the_limit_is_refused_without_a_length(client_factory, sqlite_store, caplog):
    caplog.set_level("DEBUG")
    async with client_factory() as client:
        resp = await client.post(
            "/webhooks/github", content=_chunks(MAX_BODY * 2), headers={"content-type": "application/json"}
        )
    assert resp.status_code == 413
    assert sqlite_store.pending_requests() == []


async def test_a_vendor_without_a_secret_refuses_even_a_signed_event(client_factory, sqlite_store, caplog):
    caplog.set_level("DEBUG")
    config = WebhookConfig(max_body=MAX_BODY, secrets=SECRETS | {"GITHUB_WEBHOOK_SECRET": ""})
    async with client_factory(config) as client:
        resp = await client.post("/webhooks/github", content=_push(), headers=_gh_headers(_push()))
    assert resp.status_code == 401
    assert "GITHUB_WEBHOOK_SECRET" in resp.json()["error"]  # names the variable, not its value
    assert sqlite_store.pending_requests() == []
    _assert_no_secret(caplog.text + resp.text)


async def test_a_replayed_delivery_is_refused_and_enqueued_once(client_factory, store, caplog):
    """On SQLite and on the real PostgreSQL: the delivery id's row is the arbiter."""
    caplog.set_level("DEBUG")
    body = _push()
    async with client_factory(store=store) as client:
        first = await client.post("/webhooks/github", content=body, headers=_gh_headers(body, delivery="d-7"))
        again = await client.post("/webhooks/github", content=body, headers=_gh_headers(body, delivery="d-7"))
        other = await client.post("/webhooks/github", content=body, headers=_gh_headers(body, delivery="d-8"))
    assert (first.status_code, again.status_code, other.status_code) == (202, 409, 202)
    assert [r.only_items for r in store.pending_requests()] == [["42"], ["42"]]
    _assert_no_secret(caplog.text + again.text)


async def test_concurrent_copies_of_one_delivery_enqueue_once(client_factory, sqlite_store):
    body = _push()
    async with client_factory() as client:
        answers = await asyncio.gather(
            *[
                client.post("/webhooks/github", content=body, headers=_gh_headers(body, delivery="same"))
                for _ in range(8)
            ]
        )
    assert sorted(a.status_code for a in answers) == [202] + [409] * 7
    assert len(sqlite_store.pending_requests()) == 1


async def test_replayed_contentful_entry_version_is_refused(client_factory, sqlite_store):
    secret = SECRETS["CONTENTFUL_WEBHOOK_SIGNING_SECRET"]
    async with client_factory() as client:
        first = await client.post(
            "/webhooks/contentful",
            content=ENTRY,
            headers=_contentful(ENTRY, secret=secret, stamp_ms=int(time.time() * 1000)),
        )
        # Re-signed a moment later (a fresh timestamp), the same entry version is still a replay.
        again = await client.post(
            "/webhooks/contentful",
            content=ENTRY,
            headers=_contentful(ENTRY, secret=secret, stamp_ms=int(time.time() * 1000) + 1),
        )
    assert (first.status_code, again.status_code) == (202, 409)
    assert len(sqlite_store.pending_requests()) == 1
