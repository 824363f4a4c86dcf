"""The connector contract: records, specs, sources, destinations and the error tree.

Protocol-compatible with durable-sync 0.3's ``durable_sync.core`` (``CONTRACT_VERSION = 1``): a connector
written for it ports by changing its imports. This module is plain Python and never imports Dagster.

Data flow of one pass of one spec::

    Source.fetch_page(spec, only_items, cursor) -> ([Record], next_cursor)     (or Source.fetch)
        -> route transform / field ownership -> validation -> content-hash diff
        -> Destination.connect() -> session.create(record, synced_at) / session.update(id, record, synced_at)

Capabilities. A connector has the members of ``Source`` or ``Destination`` and may have more; each
optional member is a small ``@runtime_checkable`` protocol of its own, which the engine checks with
``isinstance`` (so a reader and mypy see every member it may call, and a connector needs no base
class: it has the capability when it has the member)::

    PagedSource               async fetch_page(spec, only_items, cursor) -> (records, next_cursor)
    IncrementalSource         incremental: bool          a pass returns only what changed
    ResettableSource          reset(spec_key)            forget the watermark (a full refresh starts)
    CommittingSource          commit(spec_key)           store the watermark (the pass completed)
    RateLimitKeyed            rate_limit_key: str        the credential the calls count against
    CredentialKeyed           credential_key: str        the credential slot an AuthError pauses
    CredentialFingerprinted   credential_fingerprint()   changes with the credential: a pause clears
    AuthClassifier            is_auth_error(err)         which errors mean a revoked credential
    ReportingConnector        pass_metadata(spec)        scalars about the pass, on the asset
    Configurable              configured: bool           settings present, else a ConfigError
    ConfigHinting             config_hint: str           what to set when not configured
    SchemaEnsuring            async ensure_schema(schema) create the target, never alter it
    SchemaBootstrap           async bootstrap_schema(sample, apply=)  add what a sample needs, never alter
    ConcurrentDestination     max_concurrency: int       writes in flight at once (default 4)
    KeyStoringDestination     stores_keys: bool | None   the listing shows every row we created
    LengthLimitedDestination  max_value_length: int      longer strings are record errors
    DescribedDestination      describe() -> str          where the rows are
    ListingSession            query_existing_rows()      (key, id) pairs, duplicates included
    CheckingSession           check_record(record)       what a write would refuse, without writing
    MissingMarkingSession     async mark_missing(id, on) mark a row gone from the source, or unmark it
    DeletionReportingSource   deleted_keys(spec_key)     keys a pass saw deleted (on_missing marks them)
    CompletePassSource        pass_was_complete(key)     an incremental pass read everything (a full scan)

One member per protocol, because the engine looks each up on its own (a source may ``reset`` without
``commit``); a member set to None counts as absent, as ``getattr(obj, name, None)`` did.

Enrich hooks. A source may take ``enrich=``: an ``EnrichHook`` ``(record, EnrichContext) -> record | None``
(sync or async) run on every record of a page while the page's client is open (``EnrichContext``: the
client, the spec, the source's name). ``enrich_records`` runs it: a hook that raises fails its record
only (the record reaches the engine carrying an ``EnrichFailed`` value, so it is reported and retried
like any invalid record); ``AuthError`` and ``RateLimited`` still stop the page (they are about the
credential, not the record); a hook that returns anything but a Record or None is a ``ConfigError``.
A destination may take ``session_enrich=``: a ``SessionEnrich`` ``(session, record, creating)`` run in
the open session before each write (durable-sync 0.3's Notion hook); None skips the write.

Neutral values (``Record.properties``): ``str``, ``int``, ``float`` (finite), ``bool``, ``list[str]``,
``datetime.date``, ``datetime.datetime`` (timezone-aware) and ``None``. They reach the destination as those
Python types; every wire encoding belongs to the destination.

The error tree (one place classifies HTTP statuses: ``connectors.http``)::

    Exception
     └── SyncError                      anything this package raises on purpose
          ├── ConfigError               bad route/spec/destination configuration; never retried
          ├── AuthError                 only a human can fix it (revoked token, invalid_grant);
          │                             pauses every partition that uses the credential
          ├── RateLimited(retry_after)  the service asked us to wait; retried after ``retry_after`` s
          ├── TransientError            5xx, timeout, connection reset; retried with backoff
          ├── RecordError               this record only (validation, 4xx on one write); the pass goes on
          └── DestinationHTTPError(status_code, message)
                                        durable-sync's HTTP failure type (also a RuntimeError, as there);
                                        classified by status: 401/403 auth, 429 rate limit,
                                        5xx transient, other 4xx a record error
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

__all__ = [
    "CONTRACT_VERSION",
    "DESCRIPTION_LIMIT",
    "NEUTRAL_TYPES",
    "AuthClassifier",
    "AuthError",
    "BlobStore",
    "CheckingSession",
    "CommittingSource",
    "CompletePassSource",
    "ConcurrentDestination",
    "ConfigError",
    "ConfigHinting",
    "Configurable",
    "CredentialFingerprinted",
    "CredentialKeyed",
    "DeletionReportingSource",
    "DescribedDestination",
    "Destination",
    "DestinationHTTPError",
    "DestinationSession",
    "EnrichContext",
    "EnrichFailed",
    "EnrichHook",
    "IncrementalSource",
    "InvalidValue",
    "KeyStoringDestination",
    "LengthLimitedDestination",
    "ListingSession",
    "MissingMarkingSession",
    "PagedSource",
    "RateLimitKeyed",
    "RateLimited",
    "Record",
    "RecordError",
    "ReportingConnector",
    "ResettableSource",
    "SchemaBootstrap",
    "SchemaChange",
    "SchemaEnsuring",
    "SessionEnrich",
    "Source",
    "SourceSpec",
    "SyncError",
    "Transform",
    "TransientError",
    "WarnOnce",
    "auth_error_in_chain",
    "check_count",
    "checked_hook",
    "classify_status",
    "describe_error",
    "enrich_one",
    "enrich_records",
    "neutral_type_error",
    "redact_error_text",
    "run_session_enrich",
    "sample_kinds",
]

CONTRACT_VERSION = 1

logger = logging.getLogger(__name__)

NEUTRAL_TYPES: tuple[type, ...] = (str, int, float, bool, list, dt.date, dt.datetime, type(None))


# --------------------------------------------------------------------------------------------------
# Records and specs


@dataclass(slots=True)
class Record:
    """One item of a source, in neutral values.

    Attributes:
        primary_key: The immutable upstream id (a GitHub repo id, a Jira issue *id*, a Notion page id).
            It is the idempotency key and must never be a name or a URL.
        properties: Neutral values keyed by destination property name.
        body: Optional long-form text (a README, an issue description, task notes).
    """

    primary_key: str
    properties: dict[str, Any]
    body: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One independent unit of work of a source: one partition of the route's asset.

    Attributes:
        key: Stable identifier, unique within the source (``org:acme``, ``tasks``).
        interval_minutes: How often the dispatcher syncs it.
        params: Source-defined, opaque to the platform.
    """

    key: str
    interval_minutes: int = 30
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse an empty key or an interval below one minute (a ``ConfigError``)."""
        if not isinstance(self.key, str) or not self.key.strip():
            raise ConfigError(f"SourceSpec.key must be a non-empty string, got {self.key!r}")
        if not isinstance(self.interval_minutes, int) or self.interval_minutes < 1:
            raise ConfigError(
                f"SourceSpec {self.key!r}: interval_minutes must be a whole number >= 1, got {self.interval_minutes!r}"
            )


Transform = Callable[[Record], "Record | Awaitable[Record | None] | None"]
"""A route's record transform: returns a new record, or None to drop it (counted as skipped)."""


# --------------------------------------------------------------------------------------------------
# Protocols: what every connector has


@runtime_checkable
class Source(Protocol):
    """Where records come from.

    A source has ``fetch`` and may have any of the capabilities below (``PagedSource``, the preferred
    way to read; ``IncrementalSource``; ``ResettableSource``; ``CommittingSource``;
    ``RateLimitKeyed``; ``CredentialKeyed``; ``CredentialFingerprinted``; ``AuthClassifier``;
    ``ReportingConnector``; ``Configurable``).

    Attributes:
        name: The connector's short name (``github``), part of route names and metadata keys.
    """

    name: str

    def specs(self) -> list[SourceSpec]:
        """The source's units of work, one partition each."""
        ...

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of ``spec`` (or only those whose primary key is in ``only_items``)."""
        ...


@runtime_checkable
class DestinationSession(Protocol):
    """One connection to a destination, used for one page of writes or a listing.

    It may have the capabilities ``ListingSession`` (preferred to ``query_existing_ids`` because it
    reveals duplicate rows) and ``CheckingSession`` (what a plan would be refused).
    """

    async def query_existing_ids(self) -> dict[str, str]:
        """Every row the destination holds for us: primary key to destination id."""
        ...

    async def create(self, record: Record, synced_at: dt.datetime) -> str | bool:
        """Create a row; returns its destination id (or True: created, id unknown; False: skipped)."""
        ...

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update the row ``existing_id``; returns False when it was skipped."""
        ...


@runtime_checkable
class Destination(Protocol):
    """Where records go.

    ``create`` returns the new destination id (preferred) or, for durable-sync compatibility, True
    (created; the id is found by the next reconcile) or False (skipped).

    A destination may have the capabilities ``SchemaEnsuring``, ``RateLimitKeyed``,
    ``CredentialKeyed``, ``CredentialFingerprinted``, ``ConcurrentDestination``,
    ``KeyStoringDestination``, ``LengthLimitedDestination``, ``DescribedDestination`` and
    ``ReportingConnector``. ``configured``, ``config_hint`` and ``is_auth_error`` are part of this
    protocol, but the engine still treats them as optional (``Configurable``, ``AuthClassifier``).

    Attributes:
        name: The connector's short name (``notion``).
        create_only_properties: Properties written on create and never sent on update.
    """

    name: str
    create_only_properties: set[str]

    @property
    def configured(self) -> bool:
        """Whether the settings it needs (tokens, target ids) are present."""
        ...

    @property
    def config_hint(self) -> str:
        """What to set when it is not configured (names of environment variables, never values)."""
        ...

    def connect(self) -> AbstractAsyncContextManager[DestinationSession]:
        """A session for one page of writes or one listing."""
        ...

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        """Whether ``err`` means only a human can fix the credential."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    """A small durable key-value store the platform lends connectors.

    For caches that must outlive one process (each Dagster run is a new process): e.g. GitHub's ETag
    bodies. The state store implements it; values are opaque bytes, keys short strings.
    """

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        """The value stored under ``namespace``/``key``, or None."""
        ...

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        """Store ``value`` under ``namespace``/``key``, replacing what was there."""
        ...

    def delete_blob(self, namespace: str, key: str) -> None:
        """Forget ``namespace``/``key`` (nothing happens when it is absent)."""
        ...


# --------------------------------------------------------------------------------------------------
# Capabilities: optional members, one small protocol each
#
# The engine asks ``isinstance(connector, Capability)`` once (per pass, or per error) and then calls
# the member with its declared type. Each protocol holds one member because the engine looks each
# one up on its own: a source may forget its watermark (``reset``) without storing one (``commit``).


@runtime_checkable
class PagedSource(Protocol):
    """A source that reads one page at a time (preferred to ``Source.fetch``)."""

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[Sequence[Record], str | None]:
        """One page of ``spec`` and the cursor of the next (None after the last page).

        Cursors are opaque strings, stable when stored and replayed later; ``cursor`` is None on the
        first call.
        """
        ...


@runtime_checkable
class IncrementalSource(Protocol):
    """A source that may return only what changed since its last pass.

    Attributes:
        incremental: True when a pass returns only what changed since the last one (a watermark the
            source keeps); the engine then re-fetches failed records by key instead of taking their
            absence as "left the source".
    """

    incremental: bool


@runtime_checkable
class ResettableSource(Protocol):
    """A source with incremental state it can forget."""

    def reset(self, spec_key: str) -> None:
        """Forget the incremental state of ``spec_key``; called when a full refresh starts."""
        ...


@runtime_checkable
class CommittingSource(Protocol):
    """A source that holds the watermark a pass reached until the pass completes."""

    def commit(self, spec_key: str) -> None:
        """Store the watermark ``spec_key``'s pass reached: it completed and was not a dry run.

        Held until then, so a plan or a failed pass never skips changes.
        """
        ...


@runtime_checkable
class RateLimitKeyed(Protocol):
    """A connector that names the credential or account its calls count against.

    Attributes:
        rate_limit_key: That credential's name (a destination's default: its ``name``).
    """

    rate_limit_key: str


@runtime_checkable
class CredentialKeyed(Protocol):
    """A connector that names its credential slot, the scope an ``AuthError`` pauses.

    Attributes:
        credential_key: A stable name of the slot (``github:GITHUB_TOKEN``; default: the
            ``rate_limit_key``); it must not change when the secret is rotated, so that a pause on
            it can be lifted by the new secret.
    """

    credential_key: str


@runtime_checkable
class CredentialFingerprinted(Protocol):
    """A connector that can tell when its credential changed."""

    def credential_fingerprint(self) -> str | None:
        """A value that changes when the credential changes (the engine stores only a digest of it).

        A pause on the credential then clears itself once a new one is set.
        """
        ...


@runtime_checkable
class AuthClassifier(Protocol):
    """A connector that knows which of its errors mean a revoked or expired credential."""

    def is_auth_error(self, err: BaseException) -> bool:
        """Whether ``err`` means only a human can fix the credential."""
        ...


@runtime_checkable
class ReportingConnector(Protocol):
    """A source or destination that reports about the pass just run."""

    def pass_metadata(self, spec: SourceSpec) -> Mapping[str, Any] | None:
        """Scalars about the pass of ``spec`` (API quota used, a sync token's age…).

        Shown on the asset materialization, prefixed with the connector's name; other values are
        dropped.
        """
        ...


@runtime_checkable
class Configurable(Protocol):
    """A connector that can tell whether its settings are present.

    Attributes:
        configured: False stops a pass before any call, with ``config_hint`` in the error.
    """

    @property
    def configured(self) -> bool:
        """Whether the settings it needs are present."""
        ...


@runtime_checkable
class ConfigHinting(Protocol):
    """A connector that says what to set when it is not configured.

    Attributes:
        config_hint: Names of the settings to set (never their values).
    """

    @property
    def config_hint(self) -> str:
        """Names of the settings to set."""
        ...


@runtime_checkable
class SchemaEnsuring(Protocol):
    """A destination that can create its target (a database, a table)."""

    async def ensure_schema(self, schema: Any) -> str | None:
        """Create the target for ``schema`` when it is missing; never alters an existing one."""
        ...


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One line of a schema bootstrap: a column to create, or an existing one that does not fit.

    Attributes:
        action: ``"create"`` (missing: created by an apply), ``"mismatch"`` (it exists with another
            type: reported, never altered) or ``"skip"`` (the destination has no column type for it).
        name: The column (property, custom field) name.
        kind: The kind it needs, in the destination's words (``number``, ``rich_text``, ``enum``).
        detail: For a mismatch, what is there instead; for a create, extra facts (options).
    """

    action: str
    name: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        """One line for people."""
        if self.action == "create":
            return f"create {self.name!r} ({self.kind}{', ' + self.detail if self.detail else ''})"
        if self.action == "skip":
            return f"skip {self.name!r} ({self.kind}): {self.detail}"
        return f"leave {self.name!r} alone: it is {self.detail}, the source's values are {self.kind}"


@runtime_checkable
class SchemaBootstrap(Protocol):
    """A destination that can add the columns a sample of records needs (never altering one)."""

    async def bootstrap_schema(self, sample: Sequence[Record], *, apply: bool) -> list[SchemaChange]:
        """What the destination lacks for ``sample`` (and creates it when ``apply``).

        Only missing columns are created; an existing column of another type is reported as a
        ``mismatch`` and left alone. Without ``apply`` nothing is written. A second apply reports
        no ``create``.
        """
        ...


@runtime_checkable
class ConcurrentDestination(Protocol):
    """A destination that says how many writes may be in flight at once.

    Attributes:
        max_concurrency: That number (default 4).
    """

    max_concurrency: int


@runtime_checkable
class KeyStoringDestination(Protocol):
    """A destination that says whether its listing shows every row we created.

    Attributes:
        stores_keys: True when ``query_existing_ids`` lists every row we created (the key lives in
            the destination), False when it cannot (Luma); decides whether a reconcile may mark
            rows missing from the listing as deleted, and whether a create's link is committed at
            once (False: the link map is the only record of the row).
    """

    stores_keys: bool | None


@runtime_checkable
class LengthLimitedDestination(Protocol):
    """A destination with a limit on string values.

    Attributes:
        max_value_length: The longest string value it accepts; longer values are record errors.
    """

    max_value_length: int | None


@runtime_checkable
class DescribedDestination(Protocol):
    """A destination that can say where its rows are."""

    def describe(self) -> str:
        """Where the rows are (a database title, a file path), for status and notifications."""
        ...


@runtime_checkable
class ListingSession(Protocol):
    """A destination session that lists its rows pair by pair, duplicates included."""

    def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """``(primary_key, destination_id)`` pairs of every row; a key listed twice is a duplicate row.

        The engine also accepts an awaitable of pairs, or plain iterable of them.
        """
        ...


@runtime_checkable
class CheckingSession(Protocol):
    """A destination session that can tell, without writing, what it would refuse."""

    def check_record(self, record: Record) -> str | None:
        """Why ``record`` would be refused (a length, a type, a missing column), or None.

        A plan counts such records as failures instead of creates or updates.
        """
        ...


@runtime_checkable
class MissingMarkingSession(Protocol):
    """A destination session that can mark a row as no longer at the source (``Route(on_missing="mark")``)."""

    async def mark_missing(self, destination_id: str, missing: bool) -> None:
        """Mark the row ``destination_id`` as gone from the source (``missing``) or take the mark off.

        Never deletes: an archive the destination has (Notion's trash, Asana's completed) or a
        column/property it sets. Marking a row already marked is a no-op.
        """
        ...


@runtime_checkable
class DeletionReportingSource(Protocol):
    """A source whose passes see deletions (a sync API's deleted entries, a trash) and report them."""

    def deleted_keys(self, spec_key: str) -> list[str]:
        """Keys of ``spec_key`` the last pass saw deleted; the engine reads them at the end of a pass."""
        ...


@runtime_checkable
class CompletePassSource(Protocol):
    """An incremental source that can tell when a pass read everything (a periodic full scan)."""

    def pass_was_complete(self, spec_key: str) -> bool:
        """Whether the last pass of ``spec_key`` read every record, so a key it did not yield is gone."""
        ...


# --------------------------------------------------------------------------------------------------
# Errors


class SyncError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(SyncError):
    """The configuration is wrong; retrying cannot help."""


class AuthError(SyncError):
    """Only a human can fix this: a revoked or expired credential, ``invalid_grant``.

    Attributes:
        credential: The ``rate_limit_key`` of the credential that failed, when known.
    """

    def __init__(self, message: str, *, credential: str | None = None) -> None:
        """An auth failure described by ``message``, of ``credential`` when known."""
        super().__init__(message)
        self.credential = credential


class RateLimited(SyncError):
    """The service asked us to slow down for ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        """A rate limit described by ``message``; a negative ``retry_after`` counts as 0."""
        super().__init__(message)
        self.retry_after = max(0.0, float(retry_after))


class TransientError(SyncError):
    """A failure that may pass by itself: 5xx, timeouts, connection resets."""


class RecordError(SyncError):
    """This record cannot be written; the rest of the pass goes on.

    Attributes:
        primary_key: The record's key, when known.
    """

    def __init__(self, message: str, *, primary_key: str | None = None) -> None:
        """A failure of the record ``primary_key`` (when known), described by ``message``."""
        super().__init__(message)
        self.primary_key = primary_key


class DestinationHTTPError(SyncError, RuntimeError):
    """An HTTP failure of a destination call (durable-sync's type, kept for ported connectors).

    The message should read ``"<Service> <VERB> <path> -> <code>: <body[:600]>"`` with no secrets.
    """

    def __init__(self, status_code: int, message: str) -> None:
        """A failed call that answered ``status_code``, described by ``message``."""
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def classify_status(status_code: int) -> type[SyncError]:
    """The error class an HTTP status maps to (the one place statuses are classified)."""
    if status_code in (401, 403):
        return AuthError
    if status_code == 429:
        return RateLimited
    if status_code >= 500 or status_code in (408, 409):
        return TransientError
    if status_code >= 400:
        return RecordError
    return SyncError


_AUTH_NEEDLES = ("unauthorized", "forbidden", "invalid_token", "invalid_grant")
_AUTH_STATUS_RE = re.compile(r"\b(401|403)\b")


def _chain(err: BaseException) -> Iterable[BaseException]:
    """Every exception reachable through __cause__, __context__ and exception-group members."""
    seen: set[int] = set()
    stack = [err]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                stack.append(nxt)


def auth_error_in_chain(err: BaseException, *, extra_needles: tuple[str, ...] = ()) -> bool:
    """Whether anything in the error's chain says only a human can fix it.

    For each link: an ``AuthError`` is auth; a ``status_code`` of 401/403 is auth (and any other
    status is not, whatever the body says); a message containing a needle (``unauthorized``,
    ``forbidden``, ``invalid_token``, ``invalid_grant`` or an extra one) is auth; and only for links
    without a status code, a word-bounded ``401``/``403`` in the message is auth (so ``…-401e-…`` in
    a UUID is not).
    """
    needles = _AUTH_NEEDLES + tuple(n.lower() for n in extra_needles)
    for e in _chain(err):
        if isinstance(e, AuthError):
            return True
        if isinstance(e, (RateLimited, TransientError)):
            continue  # GitHub's rate-limited 403 is a wait, not a revoked credential
        status = getattr(e, "status_code", None)
        if status is None:
            response = getattr(e, "response", None)
            status = getattr(response, "status_code", None)
        if isinstance(status, int):
            if status in (401, 403):
                return True
            continue
        text = str(e).lower()
        if any(n in text for n in needles):
            return True
        if _AUTH_STATUS_RE.search(text):
            return True
    return False


DESCRIPTION_LIMIT = 1000  # characters of one description (a status line, a run-failure note)
_LINK_LIMIT = 400  # characters of one link of a chain
_CHAIN_DEPTH = 20  # links followed before giving up (a pathological or cyclic chain)
_REDACTED = "[REDACTED]"

# What ``describe_error`` masks. Our own errors (``SyncError``) are built redacted by ``connectors.http``;
# a foreign exception at the root of a chain (httpx, OSError, a library's ValueError) is not: httpx's
# ``HTTPStatusError`` quotes the full URL, query string included (YouTube's ``?key=``).
_URL_RE = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^\s/'\"<>@]*@)?([^\s?#'\"<>]*)(\?[^\s#'\"<>]*)?", re.I)
_TOKEN_SHAPES_RE = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|secret_[A-Za-z0-9]{20,}"
    r"|ntn_[A-Za-z0-9]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_\-]{30,}"
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)"
)
_FOREIGN_SECRET_RES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{8,}", re.I), rf"\1\2{_REDACTED}"),
    (
        re.compile(
            r"""(?<![A-Za-z0-9])((?:api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret"""
            r"""|password|secret|token|key)["']?\s*[:=]\s*["']?)[^"'\s&,;}]{4,}""",
            re.I,
        ),
        rf"\1{_REDACTED}",
    ),
)


def _mask_url(match: re.Match[str]) -> str:
    scheme, userinfo, rest, query = match.group(1), match.group(2), match.group(3), match.group(4)
    out = scheme + (f"{_REDACTED}@" if userinfo else "") + rest
    if query:
        names = [part.split("=", 1)[0] for part in query[1:].split("&") if part]
        out += "?" + "&".join(f"{name}={_REDACTED}" for name in names)
    return out


def redact_error_text(text: str, *, foreign: bool = True) -> str:
    """An error message as ``describe_error`` shows it, secrets masked.

    URL userinfo and query values and token shapes are masked, and for foreign errors (whose wording
    we do not control) ``Bearer …`` and ``key=…`` pairs too; whitespace is collapsed. For messages that
    arrive as text (a serialized error of another process).
    """
    text = _URL_RE.sub(_mask_url, text)
    text = _TOKEN_SHAPES_RE.sub(_REDACTED, text)
    if foreign:
        for pattern, replacement in _FOREIGN_SECRET_RES:
            text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _link_text(e: BaseException) -> str:
    """One exception as a line: our own errors by their message, foreign ones prefixed with their type."""
    foreign = not isinstance(e, SyncError)
    text = redact_error_text(str(e).strip(), foreign=foreign) or type(e).__name__
    line = f"{type(e).__name__}: {text}" if foreign and text != type(e).__name__ else text
    return _clip(line, _LINK_LIMIT)


def _root_cause(err: BaseException) -> BaseException:
    """The innermost exception of ``err``'s chain: ``__cause__`` first, else an unsuppressed ``__context__``."""
    seen = {id(err)}
    current = err
    for _ in range(_CHAIN_DEPTH):
        nxt = current.__cause__
        if nxt is None and not current.__suppress_context__:
            nxt = current.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        current = nxt
    return current


def describe_error(err: BaseException | None) -> str:
    """An error in one line: what failed and why, down to the root cause, with no secret in it.

    Exception groups unwrap (nested too); several leaves are joined with ``; ``, deduplicated. Each
    leaf reads ``outer (root cause: inner)`` when its chain (``raise … from …`` or an exception raised
    while handling another) ends in a different error whose text the outer message does not already
    hold: ``fetching page 3 failed`` alone says nothing about the refused connection behind it.
    Foreign exceptions are prefixed with their type and redacted (URL query values and userinfo,
    token shapes, ``Bearer …``, ``key=…``); the whole is at most ``DESCRIPTION_LIMIT`` characters.
    """
    if err is None:
        return "unknown error"
    leaves: list[str] = []

    def walk(e: BaseException, depth: int = 0) -> None:
        if isinstance(e, BaseExceptionGroup) and depth < _CHAIN_DEPTH:
            for sub in e.exceptions:
                walk(sub, depth + 1)
            return
        line = _link_text(e)
        root = _root_cause(e)
        if root is not e:
            if isinstance(root, BaseExceptionGroup):
                inner = describe_error(root) if depth < _CHAIN_DEPTH else _link_text(root)
            else:
                inner = _link_text(root)
            bare = inner.split(": ", 1)[1] if not isinstance(root, SyncError) and ": " in inner else inner
            if bare not in line and inner not in leaves:
                line = f"{line} (root cause: {inner})"
        if line not in leaves:
            leaves.append(line)

    walk(err)
    return _clip("; ".join(leaves), DESCRIPTION_LIMIT) if leaves else "unknown error"


# --------------------------------------------------------------------------------------------------
# Neutral-type validation (used by the engine; exposed so connectors can check their own output)


class InvalidValue:
    """A value a source could not read, standing in for it in a record.

    The record then fails on its own (the engine rejects it with ``message``) while the rest of the
    page is written.

    Subclasses set ``message``: what was read and why it is not valid (e.g. ``'soon' is not a date``).
    """

    __slots__ = ()

    @property
    def message(self) -> str:
        """What was read and why it is not valid."""
        return "invalid value"


class WarnOnce:
    """Log each warning once per key: a session warns about a field on its first record, not on each.

    Args:
        log: The logger the warnings go to (the connector module's).

    Attributes:
        keys: The keys warned about so far.
    """

    def __init__(self, log: logging.Logger) -> None:
        """No warning given yet."""
        self.log = log
        self.keys: set[str] = set()

    def __call__(self, message: str, key: str | None = None) -> None:
        """Log ``message`` unless a warning with the same ``key`` (default: the message) was logged.

        Args:
            message: The warning.
            key: What makes two warnings the same (a property name for per-property warnings).
        """
        key = key or message
        if key not in self.keys:
            self.keys.add(key)
            self.log.warning("%s", message)


def check_count(owner: str, name: str, value: object, *, most: int | None = None) -> int:
    """``value`` when it is a whole number >= 1 (and at most ``most``): a connector argument's check.

    Args:
        owner: The class the argument belongs to (``SpotifySource``).
        name: The argument (``page_size``).
        value: What was given (a bool is refused: ``True`` is no count).
        most: The largest value allowed (None: no limit).

    Raises:
        ConfigError: ``<owner>.<name> must be a whole number >= 1`` (or ``within 1..<most>``), naming the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (most is not None and value > most):
        expected = "a whole number >= 1" if most is None else f"within 1..{most}"
        raise ConfigError(f"{owner}.{name} must be {expected}, got {value!r}")
    return value


def neutral_type_error(name: str, value: Any) -> str | None:
    """Why ``value`` is not a neutral value, or None when it is."""
    if value is None or isinstance(value, (str, bool)):
        return None
    if isinstance(value, InvalidValue):
        return f"property {name!r}: {value.message}"
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"property {name!r}: {value!r} is not a finite number"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return f"property {name!r}: datetime {value.isoformat()} has no timezone"
        return None
    if isinstance(value, dt.date):
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str):
                return f"property {name!r}: list items must be strings, got {type(item).__name__}"
        return None
    return f"property {name!r}: unsupported type {type(value).__name__} (neutral types only)"


def sample_kinds(records: Iterable[Record]) -> dict[str, str]:
    """The neutral kind of each property of sample ``records``, in first-seen order.

    Kinds: ``checkbox`` (bool), ``number`` (int, float), ``datetime``, ``date``, ``list`` (of str),
    ``text`` (str, and any property whose values mix kinds; a date and a datetime mix to
    ``datetime``, ints and floats are one kind). A property whose values are all None is left out:
    a sample cannot tell what it holds.
    """
    seen: dict[str, set[str]] = {}
    for record in records:
        for name, value in record.properties.items():
            kinds = seen.setdefault(name, set())
            if value is None or isinstance(value, InvalidValue):
                continue
            if isinstance(value, bool):
                kinds.add("checkbox")
            elif isinstance(value, (int, float)):
                kinds.add("number")
            elif isinstance(value, dt.datetime):
                kinds.add("datetime")
            elif isinstance(value, dt.date):
                kinds.add("date")
            elif isinstance(value, (list, tuple)):
                kinds.add("list")
            else:
                kinds.add("text")
    out: dict[str, str] = {}
    for name, kinds in seen.items():
        if kinds == {"date", "datetime"}:
            kinds = {"datetime"}
        if kinds:
            out[name] = next(iter(kinds)) if len(kinds) == 1 else "text"
    return out


# --------------------------------------------------------------------------------------------------
# Enrich hooks (source side and destination side)

ClientT = TypeVar("ClientT")

ENRICH_CONCURRENCY = 8
"""Records of one page enriched at once (each hook may make its own calls)."""


@dataclass(frozen=True, slots=True)
class EnrichContext(Generic[ClientT]):
    """What a source's ``enrich`` hook may use besides the record: the live page.

    Attributes:
        client: The source's client of the page being read (rate limited, retried and
            authenticated like the source's own calls), for extra calls; valid only during the hook.
        spec: The spec (partition) being read.
        source: The source's name.
    """

    client: ClientT
    spec: SourceSpec
    source: str


EnrichHook = Callable[[Record, Any], "Record | Awaitable[Record | None] | None"]
"""``(record, ctx) -> record``, sync or async; None drops the record; a raise fails that record only."""

SessionEnrich = Callable[[Any, Record, bool], "Record | Awaitable[Record | None] | None"]
"""``(session, record, creating) -> record``, sync or async, run in the destination's open session
before each write (``creating``: a create, not an update); None skips the write."""


class EnrichFailed(InvalidValue):
    """Stands in for every value of a record whose enrich hook raised: the record fails on its own."""

    __slots__ = ("_message",)

    def __init__(self, message: str) -> None:
        """Why the hook failed (already redacted)."""
        self._message = message

    @property
    def message(self) -> str:
        """What the hook raised."""
        return self._message

    def __repr__(self) -> str:
        """Shown in plans and logs."""
        return f"EnrichFailed({self._message!r})"


def checked_hook(hook: Any, owner: str, what: str = "enrich") -> Any:
    """``hook`` itself when it is None or callable (a connector's ``enrich=`` / ``session_enrich=``).

    Raises:
        ConfigError: It is neither.
    """
    if hook is not None and not callable(hook):
        raise ConfigError(f"{owner}: {what} must be callable, got {hook!r}")
    return hook


def _check_enriched(result: Any, owner: str) -> Record | None:
    if result is not None and not isinstance(result, Record):
        raise ConfigError(f"{owner}: enrich returned {type(result).__name__}, expected a Record or None")
    return result


def _failed(record: Record, err: BaseException, owner: str) -> Record:
    message = f"enrich hook failed: {describe_error(err)}"
    logger.warning("%s: record %s: %s", owner, record.primary_key, message)
    marker = EnrichFailed(message)
    # Every value, not one extra property: a route's ``owns`` may keep any subset of them.
    properties: dict[str, Any] = {name: marker for name in record.properties} or {"enrich": marker}
    return Record(record.primary_key, properties, record.body)


async def enrich_records(
    hook: EnrichHook | None,
    records: Sequence[Record],
    ctx: Any,
    *,
    owner: str,
    concurrency: int = ENRICH_CONCURRENCY,
) -> list[Record]:
    """Run a source's ``enrich`` hook on the records of one page, ``concurrency`` at a time, in order.

    A record the hook drops (None) is left out. A hook that raises fails that record only: it comes
    back with every value replaced by an ``EnrichFailed`` (the engine reports it as invalid and
    writes the rest of the page). ``AuthError`` and ``RateLimited`` are about the credential, not the
    record, and stop the page as the source's own calls would.

    Args:
        hook: The hook, or None (the records are returned as they are).
        records: The page's records.
        ctx: The hook's live context (``EnrichContext`` or a source's richer one).
        owner: Who runs it, for messages (``Jira source 'jira'``).
        concurrency: Hooks in flight at once.

    Raises:
        ConfigError: The hook returned something else than a Record or None.
        AuthError, RateLimited: Raised by the hook (its client's calls).
    """
    if hook is None or not records:
        return list(records)
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(record: Record) -> Record | None:
        async with semaphore:
            return await enrich_one(hook, record, ctx, owner=owner)

    tasks = [asyncio.ensure_future(one(r)) for r in records]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [r for r in results if r is not None]


async def enrich_one(hook: EnrichHook, record: Record, ctx: Any, *, owner: str) -> Record | None:
    """Run a source's ``enrich`` hook on one record (the semantics of ``enrich_records``).

    Raises:
        ConfigError: The hook returned something else than a Record or None.
        AuthError, RateLimited: Raised by the hook (its client's calls).
    """
    try:
        result = hook(record, ctx)
        if inspect.isawaitable(result):
            result = await result
    except (AuthError, RateLimited, ConfigError):
        raise
    except Exception as err:
        return _failed(record, err, owner)
    return _check_enriched(result, owner)


async def run_session_enrich(
    hook: SessionEnrich | None, session: Any, record: Record, *, creating: bool, owner: str
) -> Record | None:
    """Run a destination's ``session_enrich`` hook before one write.

    Returns:
        The record to write (the hook's), or None: skip the write.

    Raises:
        RecordError: The hook raised (this record fails; the pass goes on).
        AuthError, RateLimited: Raised by the hook's calls (the credential's, not the record's).
        ConfigError: The hook returned something else than a Record or None.
    """
    if hook is None:
        return record
    try:
        result = hook(session, record, creating)
        if inspect.isawaitable(result):
            result = await result
    except (AuthError, RateLimited, ConfigError, RecordError):
        raise
    except Exception as err:
        raise RecordError(
            f"{owner}: session_enrich failed: {describe_error(err)}", primary_key=record.primary_key
        ) from err
    return _check_enriched(result, owner)


def replace_record(record: Record, **changes: Any) -> Record:
    """A copy of ``record`` with ``changes`` applied (transforms never mutate their input)."""
    return dataclasses.replace(record, **changes)
