"""Webhooks: each vendor's signature scheme, events mapped to partitions, and the app's happy paths."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from connectors.contentful import ContentfulSource
from connectors.github import GitHubSource
from connectors.jira import JiraSource
from connectors.memory import MemoryDestination
from connectors.notion import NotionSource
from sync_assets.routes import Route
from sync_assets.webhooks import (
    WebhookConfig,
    build_app,
    contentful_signature,
    hub_signature,
    show_notion_token,
    targets,
    verify_contentful,
    verify_hub_signature,
)

GITHUB_SECRET = "test-github-webhook-secret"
JIRA_SECRET = "test-jira-webhook-secret"
NOTION_TOKEN = "secret_test-notion-verification-token"
CONTENTFUL_SECRET = "test-contentful-signing-secret-" + "x" * 33  # Contentful's are 64 characters
DS_ID = "1a2b3c4d-0000-4000-8000-00000000abcd"
PAGE_ID = "59833787-2cf9-4fdf-8782-e53db20768a5"


def routes() -> list[Route]:
    return [
        Route(GitHubSource(orgs=["acme"], repos=["octo/hello"], token="test-token"), MemoryDestination(), name="gh"),
        Route(
            JiraSource(
                projects=["ENG"],
                queries={"bugs": "type = Bug"},
                base_url="https://example.atlassian.net",
                email="a@example.com",
                token="test-token",
            ),
            MemoryDestination(),
            name="jira",
        ),
        Route(NotionSource(DS_ID, token="test-token"), MemoryDestination(), name="notion"),
        Route(
            ContentfulSource("space1", content_types=["post"], delivery_token="test-token"),
            MemoryDestination(),
            name="cf",
        ),
    ]


# ----------------------------------------------------------------------------- signatures


def test_github_signature_matches_the_documented_example():
    # docs.github.com "Validating webhook deliveries", "Testing the webhook payload validation".
    secret, payload = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hub_signature(secret, payload) == expected
    assert verify_hub_signature(secret, payload, expected)


@pytest.mark.parametrize(
    "secret, body, header",
    [
        ("It's a Secret to Everybody", b"Hello, World?", None),  # tampered body
        ("It's a secret to everybody", b"Hello, World!", None),  # wrong secret
        (
            "It's a Secret to Everybody",
            b"Hello, World!",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
        ("It's a Secret to Everybody", b"Hello, World!", "sha1=" + "0" * 40),
        ("It's a Secret to Everybody", b"Hello, World!", ""),
    ],
)
def test_hub_signature_refuses_anything_but_the_exact_signature(secret, body, header):
    good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert not verify_hub_signature(secret, body, good if header is None else header)


def test_notion_and_jira_use_the_same_hmac_of_the_raw_body():
    body = b'{"id":"evt","type":"page.created"}'
    signature = "sha256=" + hmac.new(NOTION_TOKEN.encode(), body, hashlib.sha256).hexdigest()
    assert verify_hub_signature(NOTION_TOKEN, body, signature)
    assert not verify_hub_signature(NOTION_TOKEN, body + b" ", signature)  # re-serialised JSON fails


def _contentful_headers(secret: str, body: str, *, path: str = "/webhooks/contentful", stamp_ms: int | None = None):
    stamp = str(stamp_ms if stamp_ms is not None else int(time.time() * 1000))
    signed = "content-type,x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
    headers = {
        "Content-Type": "application/vnd.contentful.management.v1+json",
        "X-Contentful-Topic": "ContentManagement.Entry.publish",
        "x-contentful-timestamp": stamp,
        "x-contentful-signed-headers": signed,
    }
    # The canonical request built by hand, as Contentful's request-verification guide describes it.
    canonical_headers = ";".join(
        f"{k}:{v}"
        for k, v in sorted(
            [
                ("content-type", headers["Content-Type"]),
                ("x-contentful-signed-headers", signed),
                ("x-contentful-timestamp", stamp),
                ("x-contentful-topic", headers["X-Contentful-Topic"]),
            ]
        )
    )
    canonical = f"POST\n{path}\n{canonical_headers}\n{body}"
    headers["x-contentful-signature"] = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return headers


def test_contentful_signature_is_the_hmac_of_the_canonical_request():
    body = '{"sys":{"id":"e1"}}'
    headers = _contentful_headers(CONTENTFUL_SECRET, body)
    now = int(headers["x-contentful-timestamp"]) / 1000
    assert verify_contentful(CONTENTFUL_SECRET, "POST", "/webhooks/contentful", headers, body.encode(), now=now)
    # Header names in any case or padding, and unsigned headers added on the way, change nothing.
    messy = {f"  {k.upper()} ": v for k, v in headers.items()} | {"X-Forwarded-For": "10.0.0.1"}
    assert verify_contentful(CONTENTFUL_SECRET, "POST", "/webhooks/contentful", messy, body.encode(), now=now)


@pytest.mark.parametrize("what", ["method", "path", "body", "signed header", "secret", "stale", "future", "no ts"])
def test_contentful_refuses_a_changed_or_stale_request(what):
    body = '{"sys":{"id":"e1"}}'
    headers = _contentful_headers(CONTENTFUL_SECRET, body)
    now = int(headers["x-contentful-timestamp"]) / 1000
    method, path, raw, secret = "POST", "/webhooks/contentful", body.encode(), CONTENTFUL_SECRET
    if what == "method":
        method = "PUT"
    elif what == "path":
        path = "/webhooks/contentful?x=1"
    elif what == "body":
        raw = body.replace("e1", "e2").encode()
    elif what == "signed header":
        headers["X-Contentful-Topic"] = "ContentManagement.Entry.delete"
    elif what == "secret":
        secret = "q" + CONTENTFUL_SECRET[1:]
    elif what == "stale":
        now += 301
    elif what == "future":
        now -= 301
    else:
        del headers["x-contentful-timestamp"]
    assert not verify_contentful(secret, method, path, headers, raw, now=now, ttl=300)


def test_contentful_signature_helper_agrees_with_the_hand_built_one():
    body = '{"a":1}'
    headers = _contentful_headers(CONTENTFUL_SECRET, body)
    signed = {
        k.lower(): v for k, v in headers.items() if k.lower() in headers["x-contentful-signed-headers"].split(",")
    }
    assert (
        contentful_signature(CONTENTFUL_SECRET, "POST", "/webhooks/contentful", signed, body)
        == headers["x-contentful-signature"]
    )


# ----------------------------------------------------------------------------- events → partitions


def test_github_push_targets_the_repo_id_in_its_orgs_partition_and_the_named_repos_partition():
    rs = routes()
    org_push = {"repository": {"id": 5000000001, "full_name": "Acme/widgets", "owner": {"login": "Acme"}}}
    assert [(t.route, t.partition, t.item) for t in targets("github", "push", org_push, rs)] == [
        ("gh", "org:acme", "5000000001")
    ]
    named = {"repository": {"id": 7, "full_name": "octo/hello", "owner": {"login": "octo"}}}
    assert [(t.partition, t.item) for t in targets("github", "repository", named, rs)] == [("repos", "7")]
    other = {"repository": {"id": 8, "full_name": "someone/else", "owner": {"login": "someone"}}}
    assert targets("github", "push", other, rs) == []
    assert targets("github", "issues", org_push, rs) is None  # not an event we sync on


def test_jira_issue_event_targets_its_project_and_every_jql_partition():
    payload = {
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10002", "key": "ENG-7", "fields": {"project": {"key": "ENG"}}},
    }
    got = {(t.partition, t.item) for t in targets("jira", "jira:issue_updated", payload, routes())}
    assert got == {("project:ENG", "10002"), ("jql:bugs", "10002")}
    ops = {"issue": {"id": "3", "fields": {"project": {"key": "OPS"}}}}
    assert {t.partition for t in targets("jira", "jira:issue_created", ops, routes())} == {"jql:bugs"}
    assert targets("jira", "comment_created", payload, routes()) is None


def test_notion_page_event_targets_the_page_in_its_data_sources_partition():
    payload = {
        "type": "page.properties_updated",
        "entity": {"id": PAGE_ID.replace("-", ""), "type": "page"},
        "data": {"parent": {"id": DS_ID, "type": "data_source"}},
    }
    assert [(t.route, t.partition, t.item) for t in targets("notion", payload["type"], payload, routes())] == [
        ("notion", f"ds:{DS_ID}", PAGE_ID)
    ]
    payload["entity"]["type"] = "database"
    assert targets("notion", "page.properties_updated", payload, routes()) == []
    assert targets("notion", "comment.created", payload, routes()) is None


def test_contentful_entry_event_targets_its_content_types_partition_in_its_space():
    entry = {
        "sys": {"id": "e1", "version": 3, "contentType": {"sys": {"id": "post"}}, "space": {"sys": {"id": "space1"}}}
    }
    assert [
        (t.partition, t.item) for t in targets("contentful", "ContentManagement.Entry.publish", entry, routes())
    ] == [("type:post", "e1")]
    entry["sys"]["space"]["sys"]["id"] = "other"
    assert targets("contentful", "ContentManagement.Entry.publish", entry, routes()) == []
    assert targets("contentful", "ContentManagement.Asset.publish", entry, routes()) is None


# ----------------------------------------------------------------------------- the app


def _config(**over) -> WebhookConfig:
    secrets = {
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "JIRA_WEBHOOK_SECRET": JIRA_SECRET,
        "NOTION_WEBHOOK_VERIFICATION_TOKEN": NOTION_TOKEN,
        "CONTENTFUL_WEBHOOK_SIGNING_SECRET": CONTENTFUL_SECRET,
    }
    return WebhookConfig(secrets=secrets | over.pop("secrets", {}), **over)


def _client(store, config=None) -> httpx.AsyncClient:
    app = build_app(routes(), store, config or _config())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_signed_github_pushes_become_targeted_requests(sqlite_store):
    async with _client(sqlite_store) as client:
        for delivery, repo_id in (("d-1", 11), ("d-2", 12)):
            body = json.dumps(
                {"repository": {"id": repo_id, "full_name": "acme/r", "owner": {"login": "acme"}}}
            ).encode()
            resp = await client.post(
                "/webhooks/github",
                content=body,
                headers={
                    "content-type": "application/json",
                    "x-github-event": "push",
                    "x-github-delivery": delivery,
                    "x-hub-signature-256": hub_signature(GITHUB_SECRET, body),
                },
            )
            assert resp.status_code == 202, resp.text
    pending = sqlite_store.pending_requests("gh")
    assert [(r.partition, r.only_items, r.reason) for r in pending] == [
        ("org:acme", ["11"], "webhook"),
        ("org:acme", ["12"], "webhook"),
    ]


async def test_github_ping_is_answered_and_enqueues_nothing(sqlite_store):
    body = b'{"zen":"Keep it logically awesome.","hook_id":1}'
    async with _client(sqlite_store) as client:
        resp = await client.post(
            "/webhooks/github",
            content=body,
            headers={
                "content-type": "application/json",
                "x-github-event": "ping",
                "x-github-delivery": "p-1",
                "x-hub-signature-256": hub_signature(GITHUB_SECRET, body),
            },
        )
    assert resp.status_code == 200
    assert sqlite_store.pending_requests() == []


async def test_signed_jira_notion_and_contentful_events_are_enqueued(sqlite_store):
    jira = json.dumps(
        {
            "webhookEvent": "jira:issue_created",
            "timestamp": 1,
            "issue": {"id": "10002", "fields": {"project": {"key": "ENG"}}},
        }
    )
    notion = json.dumps(
        {
            "id": "evt-1",
            "type": "page.content_updated",
            "entity": {"id": PAGE_ID, "type": "page"},
            "data": {"parent": {"id": DS_ID, "type": "data_source"}},
        }
    )
    entry = json.dumps(
        {"sys": {"id": "e1", "version": 2, "contentType": {"sys": {"id": "post"}}, "space": {"sys": {"id": "space1"}}}}
    )
    async with _client(sqlite_store) as client:
        r1 = await client.post(
            "/webhooks/jira",
            content=jira,
            headers={
                "content-type": "application/json",
                "x-hub-signature": hub_signature(JIRA_SECRET, jira.encode()),
                "x-atlassian-webhook-identifier": "j-1",
            },
        )
        r2 = await client.post(
            "/webhooks/notion",
            content=notion,
            headers={
                "content-type": "application/json",
                "x-notion-signature": hub_signature(NOTION_TOKEN, notion.encode()),
            },
        )
        r3 = await client.post(
            "/webhooks/contentful", content=entry, headers=_contentful_headers(CONTENTFUL_SECRET, entry)
        )
    assert [r1.status_code, r2.status_code, r3.status_code] == [202, 202, 202], [r1.text, r2.text, r3.text]
    got = {(r.route, r.partition, tuple(r.only_items or ())) for r in sqlite_store.pending_requests()}
    assert got == {
        ("jira", "project:ENG", ("10002",)),
        ("jira", "jql:bugs", ("10002",)),
        ("notion", f"ds:{DS_ID}", (PAGE_ID,)),
        ("cf", "type:post", ("e1",)),
    }


async def test_contentful_secret_header_mode(sqlite_store):
    config = _config(
        secrets={"CONTENTFUL_WEBHOOK_SIGNING_SECRET": "", "CONTENTFUL_WEBHOOK_SECRET": "test-header-secret"}
    )
    entry = json.dumps({"sys": {"id": "e9", "version": 5, "contentType": {"sys": {"id": "post"}}}})
    headers = {
        "content-type": "application/vnd.contentful.management.v1+json",
        "x-contentful-topic": "ContentManagement.Entry.unpublish",
    }
    async with _client(sqlite_store, config) as client:
        bad = await client.post("/webhooks/contentful", content=entry, headers=headers | {"x-webhook-secret": "nope"})
        good = await client.post(
            "/webhooks/contentful", content=entry, headers=headers | {"x-webhook-secret": "test-header-secret"}
        )
    assert (bad.status_code, good.status_code) == (401, 202)
    assert [r.only_items for r in sqlite_store.pending_requests()] == [["e9"]]


async def test_notion_handshake_token_is_kept_for_the_cli_and_not_logged(sqlite_store, caplog):
    caplog.set_level("DEBUG")
    body = json.dumps({"verification_token": "secret_test-handshake-token"})
    async with _client(sqlite_store, _config(secrets={"NOTION_WEBHOOK_VERIFICATION_TOKEN": ""})) as client:
        resp = await client.post("/webhooks/notion", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 200
    assert show_notion_token(sqlite_store) == "secret_test-handshake-token"
    assert "secret_test-handshake-token" not in caplog.text + resp.text
    assert sqlite_store.pending_requests() == []


def test_cli_show_notion_token(sqlite_store, capsys):
    from sync_assets.cli import main

    sqlite_store.put_blob("webhooks", "notion:verification_token", b"secret_test-cli-token")
    assert main(["--state-url", sqlite_store.url, "webhooks", "--show-notion-token"], routes=[]) == 0
    assert capsys.readouterr().out.strip() == "secret_test-cli-token"


# ----------------------------------------------------------------------------- the sync-now sensor's coalescing


@pytest.mark.parametrize(
    "status, held",
    [("NOT_STARTED", True), ("STARTING", False), ("STARTED", False), ("SUCCESS", False)],
)
def test_sync_now_holds_requests_while_the_partitions_last_run_is_queued(sqlite_store, status, held):
    """A burst of webhooks makes one waiting run per partition, not one queued run per sensor tick.

    (A test instance stores no QUEUED run without a job origin; NOT_STARTED is in the same list.)
    """
    import uuid

    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun

    from sync_assets.factory import PARTITION_TAG, build_definitions
    from sync_assets.resources import SyncStateResource
    from tests.sync_assets.helpers import FAST_RETRY, memory_route, records

    route = memory_route({"a": records(3), "b": records(3, prefix="b")})
    defs = build_definitions([route], state=SyncStateResource(url=sqlite_store.url), retry_policy=FAST_RETRY)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(route.name, ["a", "b"])
        instance.add_run(
            DagsterRun(
                job_name=f"{route.name}_sync",
                run_id=str(uuid.uuid4()),
                status=dg.DagsterRunStatus[status],
                tags={PARTITION_TAG: f"{route.name}/a"},
            )
        )
        sqlite_store.enqueue_request(route.name, "a", only_items=["k0001"], reason="webhook")
        sqlite_store.enqueue_request(route.name, "b", only_items=["b0001"], reason="webhook")
        ctx = dg.build_sensor_context(
            instance=instance, resources={"sync_state": SyncStateResource(url=sqlite_store.url)}, definitions=defs
        )
        result = defs.resolve_sensor_def("durable_sync_sync_now")(ctx)
    launched = sorted(r.partition_key for r in result.run_requests)
    assert launched == (["b"] if held else ["a", "b"])
    assert [r.partition for r in sqlite_store.pending_requests()] == (["a"] if held else [])
