r"""Webhooks: vendors' change notifications become sync-now requests for the changed items.

``durable-sync webhooks`` serves this ASGI app (Starlette on uvicorn, bound to 127.0.0.1 unless told
otherwise; put a TLS-terminating reverse proxy in front of it). Each vendor has one path::

    POST /webhooks/github       X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>
                                (secret GITHUB_WEBHOOK_SECRET; delivery id X-GitHub-Delivery)
    POST /webhooks/jira         X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>
                                (admin webhook with a secret, JIRA_WEBHOOK_SECRET; delivery id
                                X-Atlassian-Webhook-Identifier)
    POST /webhooks/notion       X-Notion-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by
                                the subscription's verification token, NOTION_WEBHOOK_VERIFICATION_TOKEN>;
                                delivery id: the event's ``id``
    POST /webhooks/contentful   request verification (CONTENTFUL_WEBHOOK_SIGNING_SECRET): x-contentful-
                                signature = hex HMAC-SHA256 of ``method\npath\nk:v;k:v…\nbody`` over the
                                headers x-contentful-signed-headers lists, x-contentful-timestamp (ms)
                                within ``contentful_ttl``; or, without a signing secret, a custom header
                                X-Webhook-Secret equal to CONTENTFUL_WEBHOOK_SECRET
    GET  /healthz               200

Every comparison is constant-time (``hmac.compare_digest``). A secret is read from the environment
(or ``NAME_FILE``) on every request, so a rotation needs no restart; none is ever logged.

What a request gets, checked in this order::

    404  unknown path                      413  body over ``max_body`` bytes
    405  not a POST                        415  not JSON (each vendor's documented media type)
    401  unsigned, bad signature, no secret configured, or a Contentful timestamp out of the window
    400  signed but not a JSON object, or a GitHub delivery without X-GitHub-Delivery
    409  replay: a delivery id seen before (nothing enqueued again)
    202  accepted: ``{"enqueued": [...]}``; or ignored (an event we do not sync on, or one that names
         no partition of a route here): ``{"ignored": reason}``. 2xx, so the vendor neither retries
         nor disables the hook over events it was told to send.
    503  the state store failed (the vendor retries; the delivery id is forgotten again)

Replays. Delivery ids are remembered in the state store's blobs (namespace ``webhook-deliveries``;
no table of their own) for ``replay_retention`` (7 days, longer than any vendor retries), inserted
atomically after the signature checks out, so two processes serving the same hook agree, and an
unsigned request cannot poison an id. Contentful's deliveries carry no id: the id is the topic,
entry id and ``sys.version`` (each change bumps the version), and signed requests also must be
fresh (the signed timestamp). GitHub, Jira and Notion sign no timestamp; their retries reuse the
delivery id, which is why the window is time-free for them.

Events → requests (``targets``). For each route whose source is the vendor's connector::

    GitHub  push, repository, release, star, public → the repo id, in partition ``org:<owner>`` (or
            ``repos`` when it lists the repo); ``ping`` answers 200
    Jira    jira:issue_created / _updated / _deleted → the issue id, in ``project:<KEY>``, and in every
            ``jql:`` partition (the targeted pass reads ``id in (…) AND (<its JQL>)``)
    Notion  page.* → the page id, in the partition of the data source that is its parent (every
            Notion route when the parent is not one of theirs: the targeted read skips pages of
            other data sources)
    Contentful ContentManagement.Entry.* → the entry id, in ``all`` or ``type:<content type>``

A request is ``StateStore.enqueue_request(route, partition, only_items=[key], reason="webhook")``;
the ``durable_sync_sync_now`` sensor merges the pending requests of a partition into one run.

Notion's subscription handshake: the first POST carries only ``verification_token`` and no
signature. It is kept in the state store (never logged) and ``durable-sync webhooks
--show-notion-token`` prints it, to paste into Notion's "Verify" dialog and into
NOTION_WEBHOOK_VERIFICATION_TOKEN.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.auth import env_secret
from connectors.core import describe_error
from sync_assets.routes import Route, partition_key_for
from sync_assets.state import StateStore, blobs, utcnow

__all__ = [
    "CONTENTFUL_SECRET_HEADER",
    "SECRET_ENVS",
    "Target",
    "WebhookConfig",
    "build_app",
    "contentful_signature",
    "hub_signature",
    "serve",
    "show_notion_token",
    "targets",
    "verify_contentful",
    "verify_hub_signature",
]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8790
DEFAULT_MAX_BODY = 2 * 1024 * 1024  # GitHub's push payloads stay far below; its cap is 25 MB
DEFAULT_CONTENTFUL_TTL = 300.0  # seconds either side of x-contentful-timestamp
DEFAULT_REPLAY_RETENTION = dt.timedelta(days=7)
PURGE_EVERY_SECONDS = 600.0

DELIVERIES_NAMESPACE = "webhook-deliveries"
HANDSHAKE_NAMESPACE = "webhooks"
NOTION_TOKEN_KEY = "notion:verification_token"
CONTENTFUL_SECRET_HEADER = "x-webhook-secret"

SECRET_ENVS: Mapping[str, tuple[str, ...]] = {
    "github": ("GITHUB_WEBHOOK_SECRET",),
    "jira": ("JIRA_WEBHOOK_SECRET",),
    "notion": ("NOTION_WEBHOOK_VERIFICATION_TOKEN",),
    "contentful": ("CONTENTFUL_WEBHOOK_SIGNING_SECRET", "CONTENTFUL_WEBHOOK_SECRET"),
}
CONTENT_TYPES: Mapping[str, frozenset[str]] = {
    "github": frozenset({"application/json"}),
    "jira": frozenset({"application/json"}),
    "notion": frozenset({"application/json"}),
    "contentful": frozenset({"application/vnd.contentful.management.v1+json", "application/json"}),
}
GITHUB_EVENTS = frozenset({"push", "repository", "release", "star", "public"})
JIRA_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})
CONTENTFUL_ENTRY_TOPIC = "ContentManagement.Entry."


class Refused(Exception):
    """A request refused with ``status``; ``reason`` is safe to log and to answer (no secret in it)."""

    def __init__(self, status: int, reason: str) -> None:
        """A refusal with its HTTP status and reason."""
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """One sync-now request a webhook asks for: ``item`` of ``route``'s ``partition``."""

    route: str
    partition: str
    item: str


@dataclass(frozen=True)
class WebhookConfig:
    """How the app checks requests.

    Attributes:
        max_body: The largest body accepted, in bytes (413 above).
        contentful_ttl: Seconds a signed Contentful request stays valid, either side of its timestamp.
        replay_retention: How long delivery ids are remembered.
        secrets: Secrets by environment variable name, for tests and embedding; unset names are read
            from the environment (``NAME`` or ``NAME_FILE``) on every request.
    """

    max_body: int = DEFAULT_MAX_BODY
    contentful_ttl: float = DEFAULT_CONTENTFUL_TTL
    replay_retention: dt.timedelta = DEFAULT_REPLAY_RETENTION
    secrets: Mapping[str, str] = field(default_factory=dict)

    def secret(self, name: str) -> str | None:
        """The secret named ``name``, or None when it is not configured."""
        value = self.secrets.get(name)
        if value is None:
            value = env_secret(name)
        return value or None


# ------------------------------------------------------------------------------------ signatures


def hub_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body keyed by secret>``, as GitHub, Jira and Notion send it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``body``'s ``sha256=`` signature under ``secret`` (constant-time)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(hub_signature(secret, body).encode(), header.strip().encode())


def _encode_uri(path: str) -> str:
    # JavaScript's encodeURI over the path, with the query string first passed through
    # querystring.escape, as Contentful's node-apps-toolkit canonicalises it.
    pathname, _, search = path.partition("?")
    keep = ";,/?:@&=+$-_.!~*'()#"
    encoded = urllib.parse.quote(pathname, safe=keep)
    if search:
        encoded += "?" + urllib.parse.quote(urllib.parse.quote(search, safe="-_.!~*'()"), safe=keep + "%")
    return encoded


def contentful_signature(
    secret: str, method: str, path: str, signed_headers: Mapping[str, str], body: str | bytes
) -> str:
    r"""Contentful's request signature: hex HMAC-SHA256 of the canonical request.

    The canonical request is ``METHOD\npath\nk1:v1;k2:v2…\nbody``: header names lower-cased and
    trimmed, values trimmed, sorted by name; the headers are those ``x-contentful-signed-headers``
    lists (itself and ``x-contentful-timestamp`` among them).

    Args:
        secret: The space's webhook signing secret.
        method: The HTTP method (``POST``).
        path: The request path with its query string, as the receiver sees it.
        signed_headers: The signed headers with their values.
        body: The raw body.

    Returns:
        The signature (64 hex digits).
    """
    headers = sorted((k.strip().lower(), v.strip()) for k, v in signed_headers.items())
    text = body.decode() if isinstance(body, bytes) else body
    canonical = "\n".join([method.upper(), _encode_uri(path), ";".join(f"{k}:{v}" for k, v in headers), text])
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def verify_contentful(
    secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    ttl: float = DEFAULT_CONTENTFUL_TTL,
) -> bool:
    """Whether a request carries a valid, fresh Contentful signature.

    Args:
        secret: The space's webhook signing secret.
        method: The HTTP method.
        path: The path and query string.
        headers: Every request header (any case).
        body: The raw body.
        now: The current time, epoch seconds.
        ttl: Seconds the signed timestamp may differ from ``now``.

    Returns:
        True when the signature matches and the timestamp is within ``ttl`` of ``now``.
    """
    norm = {k.strip().lower(): v.strip() for k, v in headers.items()}
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return False
    signature = norm.get("x-contentful-signature")
    listed = [h.strip().lower() for h in norm.get("x-contentful-signed-headers", "").split(",") if h.strip()]
    try:
        stamp_ms = int(norm.get("x-contentful-timestamp", ""))
    except ValueError:
        return False
    if not signature or "x-contentful-timestamp" not in listed or "x-contentful-signed-headers" not in listed:
        return False
    if abs(now * 1000 - stamp_ms) > ttl * 1000:
        return False
    if any(h not in norm for h in listed):
        return False
    expected = contentful_signature(secret, method, path, {h: norm[h] for h in listed}, text)
    return hmac.compare_digest(expected.encode(), signature.encode())


# ------------------------------------------------------------------------------------ events → targets


def _source_kind(route: Route) -> str | None:
    source = route.source
    # Imported here: a deployment without a vendor's optional dependency still serves the others.
    from connectors.contentful import ContentfulSource
    from connectors.github import GitHubSource
    from connectors.jira import JiraSource
    from connectors.notion import NotionSource

    kinds: list[tuple[str, type]] = [
        ("github", GitHubSource),
        ("jira", JiraSource),
        ("notion", NotionSource),
        ("contentful", ContentfulSource),
    ]
    try:
        from connectors.notion.mcp import NotionMcpSource

        kinds.append(("notion", NotionMcpSource))
    except ImportError:  # pragma: no cover - the MCP extra is optional
        pass
    return next((kind for kind, cls in kinds if isinstance(source, cls)), None)


def _routes_of(routes: Iterable[Route], kind: str) -> list[Route]:
    return [r for r in routes if r.enabled and _source_kind(r) == kind]


def _github_targets(routes: Sequence[Route], payload: Mapping[str, Any]) -> list[Target]:
    repo = payload.get("repository")
    if not isinstance(repo, dict) or repo.get("id") is None:
        return []
    full_name = str(repo.get("full_name") or "")
    owner = str((repo.get("owner") or {}).get("login") or full_name.partition("/")[0]).lower()
    out = []
    for route in _routes_of(routes, "github"):
        for spec in route.source.specs():
            kind = spec.params.get("kind")
            in_org = kind == "org" and str(spec.params.get("org", "")).lower() == owner
            named = kind == "repos" and full_name.lower() in {str(n).lower() for n in spec.params.get("repos") or []}
            if in_org or named:
                out.append(Target(route.name, partition_key_for(spec.key), str(repo["id"])))
    return out


def _jira_targets(routes: Sequence[Route], payload: Mapping[str, Any]) -> list[Target]:
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not issue.get("id"):
        return []
    project = str((((issue.get("fields") or {}).get("project")) or {}).get("key") or "").upper()
    out = []
    for route in _routes_of(routes, "jira"):
        for spec in route.source.specs():
            if spec.key.startswith("jql:") or spec.key == f"project:{project}":
                out.append(Target(route.name, partition_key_for(spec.key), str(issue["id"])))
    return out


def _notion_targets(routes: Sequence[Route], payload: Mapping[str, Any]) -> list[Target]:
    from connectors.notion.client import normalize_id

    entity = payload.get("entity")
    if not isinstance(entity, dict) or entity.get("type") != "page" or not entity.get("id"):
        return []
    try:
        page_id = normalize_id(str(entity["id"]), what="page id")
    except Exception:
        return []
    parent = (payload.get("data") or {}).get("parent") or {}
    parent_ids = set()
    for key in ("id", "data_source_id"):
        raw = parent.get(key) if isinstance(parent, dict) else None
        if raw:
            with contextlib.suppress(Exception):
                parent_ids.add(normalize_id(str(raw)))
    notion_routes = _routes_of(routes, "notion")
    own = [r for r in notion_routes if getattr(r.source, "id", None) in parent_ids]
    return [
        Target(r.name, partition_key_for(spec.key), page_id)
        for r in (own or notion_routes)
        for spec in r.source.specs()
    ]


def _contentful_targets(routes: Sequence[Route], payload: Mapping[str, Any]) -> list[Target]:
    sys = payload.get("sys")
    if not isinstance(sys, dict) or not sys.get("id"):
        return []
    content_type = str((((sys.get("contentType") or {}).get("sys")) or {}).get("id") or "")
    space = str((((sys.get("space") or {}).get("sys")) or {}).get("id") or "")
    out = []
    for route in _routes_of(routes, "contentful"):
        if space and getattr(route.source, "space_id", space) != space:
            continue
        for spec in route.source.specs():
            if spec.key == "all" or spec.key == f"type:{content_type}":
                out.append(Target(route.name, partition_key_for(spec.key), str(sys["id"])))
    return out


def targets(vendor: str, event: str, payload: Mapping[str, Any], routes: Sequence[Route]) -> list[Target] | None:
    """The sync-now requests an event asks for.

    Args:
        vendor: ``github``, ``jira``, ``notion`` or ``contentful``.
        event: The event name (GitHub's X-GitHub-Event, Jira's ``webhookEvent``, Notion's ``type``,
            Contentful's X-Contentful-Topic).
        payload: The parsed body.
        routes: The routes served.

    Returns:
        The targets (possibly none: the event names nothing these routes sync), or None when the
        event is not one that changes what the routes sync.
    """
    if vendor == "github":
        return _github_targets(routes, payload) if event in GITHUB_EVENTS else None
    if vendor == "jira":
        return _jira_targets(routes, payload) if event in JIRA_EVENTS else None
    if vendor == "notion":
        return _notion_targets(routes, payload) if event.startswith("page.") else None
    if vendor == "contentful":
        return _contentful_targets(routes, payload) if event.startswith(CONTENTFUL_ENTRY_TOPIC) else None
    return None


# ------------------------------------------------------------------------------------ replay guard


class _Deliveries:
    """Delivery ids seen, in the state store's blobs (one row per id, inserted atomically)."""

    def __init__(self, store: StateStore, retention: dt.timedelta) -> None:
        self.store = store
        self.retention = retention
        self._purged = 0.0

    @staticmethod
    def _key(vendor: str, delivery: str) -> str:
        return f"{vendor}:{hashlib.sha256(delivery.encode()).hexdigest()[:40]}"

    def first_sight(self, vendor: str, delivery: str) -> bool:
        """Remember the id; False when it was already remembered (a replay)."""
        self._purge()
        try:
            with self.store.db.write() as conn:
                conn.execute(
                    blobs.insert().values(
                        namespace=DELIVERIES_NAMESPACE,
                        key=self._key(vendor, delivery),
                        value=b"",
                        updated_at=utcnow(),
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def forget(self, vendor: str, delivery: str) -> None:
        """Forget an id (its requests could not be stored: the vendor's retry must get through)."""
        self.store.delete_blob(DELIVERIES_NAMESPACE, self._key(vendor, delivery))

    def _purge(self) -> None:
        now = time.monotonic()
        if self._purged and now - self._purged < PURGE_EVERY_SECONDS:
            return
        self._purged = now
        cutoff = utcnow() - self.retention
        with self.store.db.write() as conn:
            conn.execute(blobs.delete().where(blobs.c.namespace == DELIVERIES_NAMESPACE, blobs.c.updated_at < cutoff))


# ------------------------------------------------------------------------------------ the app


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body is not a JSON object")
    return data


@dataclass
class _Delivery:
    vendor: str
    delivery: str | None  # None: no replay check (a handshake)
    event: str
    payload: dict[str, Any]


def _check_github(config: WebhookConfig, headers: Mapping[str, str], body: bytes) -> _Delivery:
    secret = config.secret("GITHUB_WEBHOOK_SECRET")
    if secret is None:
        raise Refused(401, "no secret configured (GITHUB_WEBHOOK_SECRET)")
    if not verify_hub_signature(secret, body, headers.get("x-hub-signature-256")):
        raise Refused(401, "missing or bad X-Hub-Signature-256")
    delivery = headers.get("x-github-delivery", "").strip()
    if not delivery:
        raise Refused(400, "no X-GitHub-Delivery")
    return _Delivery("github", delivery, headers.get("x-github-event", "").strip(), _json_object(body))


def _check_jira(config: WebhookConfig, headers: Mapping[str, str], body: bytes) -> _Delivery:
    secret = config.secret("JIRA_WEBHOOK_SECRET")
    if secret is None:
        raise Refused(401, "no secret configured (JIRA_WEBHOOK_SECRET)")
    if not verify_hub_signature(secret, body, headers.get("x-hub-signature")):
        raise Refused(401, "missing or bad X-Hub-Signature")
    payload = _json_object(body)
    # Jira's retries keep the identifier; without one, the body (it holds a timestamp) is the id.
    delivery = headers.get("x-atlassian-webhook-identifier", "").strip() or hashlib.sha256(body).hexdigest()
    return _Delivery("jira", delivery, str(payload.get("webhookEvent") or ""), payload)


def _check_notion(
    config: WebhookConfig, headers: Mapping[str, str], body: bytes, store: StateStore
) -> _Delivery | None:
    signature = headers.get("x-notion-signature")
    if not signature:
        # The subscription's handshake: only a verification_token, unsigned. Kept, never logged.
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        token = data.get("verification_token") if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(token, str) and token and len(data) == 1:
            store.put_blob(HANDSHAKE_NAMESPACE, NOTION_TOKEN_KEY, token.encode())
            logger.warning(
                "Notion sent a subscription's verification token; `durable-sync webhooks --show-notion-token` "
                "prints it (paste it into Notion's Verify dialog and NOTION_WEBHOOK_VERIFICATION_TOKEN)"
            )
            return None
        raise Refused(401, "missing X-Notion-Signature")
    secret = config.secret("NOTION_WEBHOOK_VERIFICATION_TOKEN")
    if secret is None:
        raise Refused(401, "no verification token configured (NOTION_WEBHOOK_VERIFICATION_TOKEN)")
    if not verify_hub_signature(secret, body, signature):
        raise Refused(401, "bad X-Notion-Signature")
    payload = _json_object(body)
    delivery = str(payload.get("id") or "") or hashlib.sha256(body).hexdigest()
    return _Delivery("notion", delivery, str(payload.get("type") or ""), payload)


def _check_contentful(
    config: WebhookConfig, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> _Delivery:
    signing = config.secret("CONTENTFUL_WEBHOOK_SIGNING_SECRET")
    plain = config.secret("CONTENTFUL_WEBHOOK_SECRET")
    if signing is not None:
        if not verify_contentful(signing, method, path, headers, body, now=time.time(), ttl=config.contentful_ttl):
            raise Refused(401, "missing, bad or stale x-contentful-signature")
    elif plain is not None:
        given = headers.get(CONTENTFUL_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), plain.encode()):
            raise Refused(401, f"missing or bad {CONTENTFUL_SECRET_HEADER}")
    else:
        raise Refused(401, "no secret configured (CONTENTFUL_WEBHOOK_SIGNING_SECRET or CONTENTFUL_WEBHOOK_SECRET)")
    payload = _json_object(body)
    topic = headers.get("x-contentful-topic", "").strip()
    raw_sys = payload.get("sys")
    sys: dict[str, Any] = raw_sys if isinstance(raw_sys, dict) else {}
    if sys.get("id") and sys.get("version") is not None:
        delivery = f"{topic}:{sys['id']}:{sys['version']}"
    else:
        delivery = hashlib.sha256(body).hexdigest()
    return _Delivery("contentful", delivery, topic, payload)


class _Handler:
    """The request pipeline of one vendor's path (see the module docstring for the order)."""

    def __init__(self, routes: Sequence[Route], store: StateStore, config: WebhookConfig) -> None:
        self.routes = list(routes)
        self.store = store
        self.config = config
        self.deliveries = _Deliveries(store, config.replay_retention)

    async def _body(self, request: Any) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > self.config.max_body:
                    raise Refused(413, f"body over {self.config.max_body} bytes")
            except ValueError:
                raise Refused(400, "bad Content-Length") from None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.config.max_body:  # a chunked body without a length
                raise Refused(413, f"body over {self.config.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        vendor = request.path_params["vendor"]
        try:
            body = await self._body(request)
            if _media_type(request.headers.get("content-type")) not in CONTENT_TYPES[vendor]:
                raise Refused(415, f"content type must be {' or '.join(sorted(CONTENT_TYPES[vendor]))}")
            # The state store's calls block: off the event loop, so one slow commit holds no other request.
            status, answer = await run_in_threadpool(self._process, vendor, request, body)
        except Refused as refusal:
            logger.warning("webhook %s refused (%s): %s", vendor, refusal.status, refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        return JSONResponse(answer, status_code=status)

    def _process(self, vendor: str, request: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if vendor == "github":
            delivery: _Delivery | None = _check_github(self.config, headers, body)
        elif vendor == "jira":
            delivery = _check_jira(self.config, headers, body)
        elif vendor == "notion":
            delivery = _check_notion(self.config, headers, body, self.store)
            if delivery is None:
                return 200, {"handshake": "verification token stored"}
        else:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            delivery = _check_contentful(self.config, request.method, path, headers, body)
        assert delivery is not None
        if vendor == "github" and delivery.event == "ping":
            return 200, {"pong": True}
        found = targets(vendor, delivery.event, delivery.payload, self.routes)
        if found is None:
            logger.info("webhook %s: event %r ignored (not one that changes synced items)", vendor, delivery.event)
            return 202, {"ignored": f"event {delivery.event or '(none)'} is not synced on"}
        if not found:
            logger.info("webhook %s: event %r names no partition of a route here", vendor, delivery.event)
            return 202, {"ignored": "no route syncs the item this event names"}
        assert delivery.delivery is not None
        try:
            fresh = self.deliveries.first_sight(vendor, delivery.delivery)
        except Exception as err:
            raise Refused(503, f"state store: {describe_error(err)}") from None
        if not fresh:
            raise Refused(409, f"delivery {delivery.delivery} was seen before (replay)")
        grouped: dict[tuple[str, str], list[str]] = {}
        for t in found:
            grouped.setdefault((t.route, t.partition), [])
            if t.item not in grouped[(t.route, t.partition)]:
                grouped[(t.route, t.partition)].append(t.item)
        enqueued = []
        try:
            for (route, partition), items in grouped.items():
                rid = self.store.enqueue_request(route, partition, only_items=items, reason="webhook")
                enqueued.append({"request": rid, "route": route, "partition": partition, "items": items})
        except Exception as err:
            self.deliveries.forget(vendor, delivery.delivery)
            raise Refused(503, f"state store: {describe_error(err)}") from None
        logger.info(
            "webhook %s %s (delivery %s): %s",
            vendor,
            delivery.event,
            delivery.delivery,
            ", ".join(f"#{e['request']} {e['route']}/{e['partition']}" for e in enqueued),
        )
        return 202, {"enqueued": enqueued}


def build_app(routes: Sequence[Route], store: StateStore, config: WebhookConfig | None = None) -> Any:
    """The ASGI app: one POST path per vendor, ``GET /healthz``; everything else 404.

    Args:
        routes: The routes whose items webhooks may request syncs of.
        store: The state store (the inbox, and the delivery ids seen).
        config: Limits and, for tests, secrets; default ``WebhookConfig()``.

    Returns:
        A Starlette application.
    """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route as HttpRoute

    handler = _Handler(routes, store, config or WebhookConfig())

    async def healthz(request: Any) -> Any:
        return PlainTextResponse("ok")

    async def not_found(request: Any, exc: Exception) -> Any:
        status = getattr(exc, "status_code", 404)
        reason = "unknown path" if status == 404 else "method not allowed"
        return JSONResponse({"error": reason}, status_code=status)

    return Starlette(
        routes=[
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/webhooks/{vendor:str}", _vendor_guard(handler.handle), methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )


def _vendor_guard(handle: Callable[[Any], Any]) -> Callable[[Any], Any]:
    async def endpoint(request: Any) -> Any:
        from starlette.responses import JSONResponse

        if request.path_params["vendor"] not in SECRET_ENVS:
            return JSONResponse({"error": "unknown path"}, status_code=404)
        return await handle(request)

    return endpoint


def show_notion_token(store: StateStore) -> str | None:
    """The verification token of Notion's last subscription handshake, or None."""
    raw = store.get_blob(HANDSHAKE_NAMESPACE, NOTION_TOKEN_KEY)
    return raw.decode() if raw is not None else None


def serve(
    routes: Sequence[Route],
    store: StateStore,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    config: WebhookConfig | None = None,
) -> None:
    """Serve the webhooks app with uvicorn until interrupted.

    Args:
        routes: The routes served.
        store: The state store.
        host: The interface to bind (loopback by default: expose it through a TLS reverse proxy).
        port: The port.
        config: Limits.
    """
    import uvicorn

    # One line per delivery (accepted, ignored or refused) on stderr; a no-op when logging is set up.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config or WebhookConfig()
    for vendor, names in SECRET_ENVS.items():
        if not any(config.secret(n) for n in names):
            logger.warning("webhooks: %s refuses every event until %s is set", vendor, " or ".join(names))
    uvicorn.run(build_app(routes, store, config), host=host, port=port, log_level="info", access_log=False)
