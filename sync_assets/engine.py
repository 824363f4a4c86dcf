"""One sync pass of one partition: Dagster-free and async.

A pass, in order (DESIGN §4):

1. **Start or resume.** An unfinished full pass resumes at its stored cursor with its stats so far.
2. **Reconcile when needed** (first pass, full refresh, intents left by a crash, or older than the
   route's ``reconcile_every``): list the destination once and merge it into the link map. Never
   per page.
3. **Page loop**: transform and field ownership, validation (a bad record is a per-record error,
   never a crashed pass), in-page dedupe (last wins).
4. **Diff** on a content hash: linked and unchanged records cost no call.
5. **Write** with bounded concurrency; intents before creates; per-record failure isolation; an
   auth failure stops the pass at once, pauses the credential and raises ``AuthError``.
6. **Checkpoint** after every page: links, outcomes and the next cursor in one transaction.
7. **Finish**: clear the checkpoint, store the pass stats.

The next page is fetched while the current one is written, so source latency and destination
latency overlap. The state store is synchronous SQLAlchemy; its calls are short (a handful per page)
and run on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import inspect
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.core import (
    AuthError,
    ConfigError,
    DestinationHTTPError,
    RateLimited,
    Record,
    RecordError,
    SourceSpec,
    SyncError,
    TransientError,
    auth_error_in_chain,
    describe_error,
    neutral_type_error,
)
from sync_assets.routes import Route, credential_scope
from sync_assets.state import LISTING_LEASE, Checkpoint, Fence, LeaseLost, StateStore, utcnow

__all__ = [
    "LeaseLost",
    "PartitionBusy",
    "PassOptions",
    "PassResult",
    "PassStats",
    "Paused",
    "content_hash",
    "run_pass",
    "validate_record",
]

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 1024
DEFAULT_MAX_CONCURRENCY = 4
FETCH_CHUNK = 500  # a source with only fetch() is written and checkpointed in chunks of this size
SAMPLE_LIMIT = 20  # failed/planned keys kept per pass for metadata and the CLI
RECONCILE_MIN_GAP = dt.timedelta(minutes=10)  # a forced reconcile is skipped if one ran this recently
LIST_BATCH = 1000
RETRY_BATCH = 500  # failed records of an incremental source re-fetched by key at the end of a pass
LEASE_SECONDS = 20.0  # a dead pass's partition is taken over this long after its last renewal
DEFERRED_LIMIT = 10_000  # creates claimed by another partition kept for a retry at the end of the pass
ADOPTED_TRACK_LIMIT = 10_000  # adopted keys of our own creates tracked to count them as created
DEFERRED_ROUNDS = 6  # ... retried this many times (0.5 s, 1 s, 2 s, ... apart) before they count as failed
DEFERRED_FIRST_DELAY = 0.5


class PartitionBusy(SyncError):
    """Another pass holds the partition's lease; this one wrote nothing and is not a failure."""

    def __init__(self, message: str, *, holder_run_id: str | None = None) -> None:
        super().__init__(message)
        self.holder_run_id = holder_run_id


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0 or not math.isfinite(value):
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


class Paused(SyncError):
    """The partition, its route or one of its credentials is paused; nothing was called."""

    def __init__(self, message: str, *, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


@dataclass(frozen=True)
class PassOptions:
    """How to run a pass.

    Attributes:
        plan: Dry run: classify every record, write nothing (not even state).
        full_refresh: Update every linked record, whatever its hash; reconcile first.
        only_items: Targeted sync of these primary keys; does not touch a full pass's checkpoint.
        reconcile: True forces a destination listing (unless one ran in the last 10 minutes),
            False forbids it, None decides (first pass, intents pending, ``reconcile_every``).
        run_id: Stored with the pass history (the Dagster run id) and on the partition's lease.
        lease_seconds: How long the partition's lease lasts without renewal (it is renewed every
            third of it); a pass that dies loses it this long after its last renewal. Default
            ``DURABLE_SYNC_LEASE_SECONDS`` or 20.
        lease_wait: How long a pass waits for a partition another pass holds before it ends with
            ``PartitionBusy``, writing nothing. Default ``DURABLE_SYNC_LEASE_WAIT`` or 1.25 times
            the lease plus a second (so a dead holder's lease runs out while it waits).
    """

    plan: bool = False
    full_refresh: bool = False
    only_items: tuple[str, ...] | None = None
    reconcile: bool | None = None
    run_id: str | None = None
    lease_seconds: float | None = None
    lease_wait: float | None = None

    @property
    def mode(self) -> str:
        if self.plan:
            return "plan"
        if self.only_items is not None:
            return "targeted"
        return "full_refresh" if self.full_refresh else "full"


@dataclass
class PassStats:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    deduplicated: int = 0
    records: int = 0
    pages: int = 0
    listed: int = 0
    adopted: int = 0
    gone: int = 0
    duplicates: int = 0
    destination_calls: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    reconciled: bool = False
    not_found: list[str] = field(default_factory=list)  # targeted: keys asked for the source did not return

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassStats:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class PassResult:
    route: str
    partition: str
    mode: str
    stats: PassStats
    failures: list[tuple[str, str]] = field(default_factory=list)
    planned: dict[str, list[str]] = field(default_factory=dict)
    duplicate_keys: list[tuple[str, list[str]]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the connectors' pass_metadata()


# --------------------------------------------------------------------------------------------------
# Hashing and validation


def _canon(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return "t:" + value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return "d:" + value.isoformat()
    raise TypeError(f"not a neutral value: {type(value).__name__}")


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_canon, ensure_ascii=False)


def content_hash(record: Record, exclude: set[str] | frozenset[str] = frozenset()) -> str:
    """A stable hash of what a write would send (create-only properties excluded)."""
    props = record.properties
    items = sorted((k, v) for k, v in props.items() if k not in exclude) if exclude else sorted(props.items())
    payload = _ENCODER.encode([record.body, items])
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def validate_record(record: Any, *, max_value_length: int | None = None) -> tuple[Record | None, str | None]:
    """Check a record against the contract; returns ``(normalised_record, None)`` or ``(None, error)``.

    Normalisation: the key is stripped; tuples become lists.
    """
    if not isinstance(record, Record):
        return None, f"not a Record: {type(record).__name__}"
    key = record.primary_key
    if not isinstance(key, str):
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        else:
            return None, f"primary_key must be a string, got {type(key).__name__}"
    key = key.strip()
    if not key:
        return None, "empty primary_key"
    if len(key) > MAX_KEY_LENGTH:
        return None, f"primary_key longer than {MAX_KEY_LENGTH} characters"
    if not isinstance(record.properties, dict):
        return None, f"properties must be a dict, got {type(record.properties).__name__}"
    if record.body is not None and not isinstance(record.body, str):
        return None, f"body must be a string or None, got {type(record.body).__name__}"
    props = record.properties
    changed = key != record.primary_key
    for name, value in props.items():
        if type(name) is not str or not name:
            return None, f"property names must be non-empty strings, got {name!r}"
        kind = type(value)
        # The common cases skip the full check.
        common = (
            kind in _PLAIN_TYPES
            or kind is dt.date
            or (kind is float and math.isfinite(value))
            or (kind is list and all(type(item) is str for item in value))
        )
        if not common:
            problem = neutral_type_error(name, value)
            if problem:
                return None, problem
            if kind is tuple:
                changed = True
        if max_value_length is not None and kind is str and len(value) > max_value_length:
            return None, (
                f"property {name!r}: {len(value)} characters, over the destination's limit of {max_value_length}"
            )
    if changed:
        props = {k: list(v) if isinstance(v, tuple) else v for k, v in props.items()}
        record = Record(key, props, record.body)
    return record, None


# --------------------------------------------------------------------------------------------------
# Error classification


def _is_auth(err: BaseException, destination_side: Any) -> bool:
    if isinstance(err, AuthError):
        return True
    checker = getattr(destination_side, "is_auth_error", None)
    if checker is not None:
        try:
            if checker(err):
                return True
        except Exception:  # a broken classifier must not hide the real error
            log.debug("is_auth_error raised", exc_info=True)
    return False


def _error_chain(err: BaseException, limit: int = 32) -> Iterator[BaseException]:
    """``err``, then what caused it: ``__cause__``, ``__context__`` and the members of an exception
    group, breadth first, each once."""
    queue: list[BaseException] = [err]
    seen: set[int] = set()
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        if current.__cause__ is not None:
            queue.append(current.__cause__)
        elif current.__context__ is not None and not current.__suppress_context__:
            queue.append(current.__context__)


def _is_systemic(err: BaseException) -> bool:
    """Errors that say the service, not the record, is in trouble: stop the pass and retry it.

    Classified by the cause chain, so a connector that wraps a connection error
    (``RuntimeError(...) from httpx.ConnectError``, an ``ExceptionGroup``) still stops the pass; the
    first error in the chain that the contract classifies decides (a ``RecordError`` or a 4xx
    ``DestinationHTTPError`` is the record's own problem).
    """
    for current in _error_chain(err):
        if isinstance(current, (RateLimited, TransientError, httpx.TransportError, ConnectionError, TimeoutError)):
            return True
        if isinstance(current, DestinationHTTPError):
            return current.status_code == 429 or current.status_code >= 500
        if isinstance(current, (RecordError, ConfigError, AuthError)):
            return False
    return False


def _fingerprint(obj: Any) -> str | None:
    fp = getattr(obj, "credential_fingerprint", None)
    if fp is None:
        return None
    try:
        value = fp()
    except Exception:
        return None
    if value is None:
        return None
    # Store only a digest: a connector may hand back the credential itself.
    return hashlib.sha256(str(value).encode()).hexdigest()[:32]


def credential_fingerprint(obj: Any) -> str | None:
    """A digest of a connector's current credential (never the credential itself)."""
    return _fingerprint(obj)


# --------------------------------------------------------------------------------------------------
# The pass


ProgressFn = Callable[[PassStats], None]


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class _Pass:
    def __init__(
        self,
        route: Route,
        partition: str,
        spec: SourceSpec,
        store: StateStore,
        options: PassOptions,
        progress: ProgressFn | None,
    ) -> None:
        self.route = route
        self.name = route.name
        self.partition = partition
        self.spec = spec
        self.store = store
        self.options = options
        self.progress = progress
        self.dest = route.destination
        self.source = route.source
        self.create_only = frozenset(getattr(self.dest, "create_only_properties", None) or ())
        self.max_value_length = getattr(self.dest, "max_value_length", None)
        self.concurrency = max(1, int(getattr(self.dest, "max_concurrency", DEFAULT_MAX_CONCURRENCY) or 1))
        self.stores_keys = getattr(self.dest, "stores_keys", None)
        self.transform = route.build_transform()
        self.failures: list[tuple[str, str]] = []
        self.planned: dict[str, list[str]] = {"create": [], "update": [], "unchanged": [], "failed": []}
        self.plan_listing: dict[str, str] = {}
        self.duplicate_keys: list[tuple[str, list[str]]] = []
        self.had_failures = store.failed_count(route.name, partition) > 0 if not options.plan else False
        self.lease_seconds = float(options.lease_seconds or _env_seconds("DURABLE_SYNC_LEASE_SECONDS", LEASE_SECONDS))
        # Long enough to outlast a dead holder's lease (a retried run right after a crash takes
        # over instead of giving up), short enough that a duplicate launch ends soon.
        default_wait = self.lease_seconds * 1.25 + 1
        self.lease_wait = float(
            options.lease_wait
            if options.lease_wait is not None
            else _env_seconds("DURABLE_SYNC_LEASE_WAIT", default_wait)
        )
        self.fence: Fence | None = None
        self.fences: list[Fence] = []  # the leases held now (the partition's, the listing's while listing)
        self.lease_lost = False
        self.lease_taken_at = utcnow()
        self.deferred: dict[str, tuple[Record, str]] = {}  # creates another partition's pass has claimed
        self.deferred_stale = False  # a claim taken over from a dead pass: list before creating it
        self.adopted_keys: set[str] = set()  # our own creates found by the listing: count as created
        self.fetched: tuple[tuple[str, ...] | None, list[Any]] | None = None  # fetch()-only: read once
        self.asked: set[str] | None = set(options.only_items) if options.only_items is not None else None

    # ------------------------------------------------------------------------------------------

    async def run(self) -> PassResult:
        opts = self.options
        if not getattr(self.source, "configured", True):
            hint = getattr(self.source, "config_hint", "")
            raise ConfigError(f"route {self.name}: source {self.source.name} is not configured ({hint})")
        if not getattr(self.dest, "configured", True):
            hint = getattr(self.dest, "config_hint", "")
            raise ConfigError(f"route {self.name}: destination {self.dest.name} is not configured ({hint})")
        if not opts.plan:
            pause = self.store.paused(self.route.pause_scopes(self.partition))
            if pause is not None:
                raise Paused(
                    f"route {self.name} partition {self.partition} is paused ({pause.scope}): "
                    f"{pause.reason}. Resume with: durable-sync resume {self.name}",
                    scope=pause.scope,
                )
        if opts.plan:
            return await self._run_body()
        # One pass of a partition at a time, however the run was launched: the lease, not a run
        # tag or a pool, is the guarantee. Every commit of the pass is fenced by it.
        self.fence = await self._take_partition_lease()
        self.lease_taken_at = utcnow()
        renewer = asyncio.ensure_future(self._renew_leases())
        try:
            return await self._run_body()
        finally:
            renewer.cancel()
            with contextlib.suppress(BaseException):
                await renewer
            for fence in list(self.fences):
                self._release(fence)

    async def _run_body(self) -> PassResult:
        opts = self.options
        targeted = opts.only_items is not None
        use_checkpoint = not (opts.plan or targeted)
        cp = self.store.get_checkpoint(self.name, self.partition) if use_checkpoint else None
        if cp is not None and opts.full_refresh and not cp.options.get("full_refresh"):
            cp = None  # a full refresh starts over rather than finishing a normal pass
        self.full_refresh = opts.full_refresh or bool(cp and cp.options.get("full_refresh"))
        now = utcnow()
        if cp is not None:
            pass_id, cursor, started_at = cp.pass_id, cp.cursor, cp.started_at
            stats = PassStats.from_dict(cp.stats)
            stats.resumed_from = stats.pages
            log.info("%s/%s: resuming pass %s after page %d", self.name, self.partition, pass_id, stats.pages)
        else:
            pass_id, cursor, started_at, stats = uuid.uuid4().hex, None, now, PassStats()
        self.pass_id, self.started_at, self.stats = pass_id, started_at, stats
        self.synced_at = now
        self.cp_options = {"full_refresh": self.full_refresh}
        t0 = time.monotonic()
        seconds_before = stats.seconds

        incremental = bool(getattr(self.source, "incremental", False))
        try:
            if self.full_refresh and cp is None and not opts.plan:
                # A full refresh re-reads everything: an incremental source forgets its watermark.
                reset = getattr(self.source, "reset", None)
                if reset is not None:
                    reset(self.spec.key)
            async with self.dest.connect() as session:
                self.session = session
                if self._should_reconcile(resumed=cp is not None):
                    await self._reconcile()
                await self._page_loop(cursor, targeted)
                if incremental and use_checkpoint:
                    await self._retry_unseen_failures()
                await self._retry_deferred()
            if use_checkpoint:
                # The pass is complete and was not a dry run: an incremental source may now store
                # the watermark it reached (it holds it until this call).
                commit = getattr(self.source, "commit", None)
                if commit is not None:
                    commit(self.spec.key)
        except AuthError as err:
            self._on_auth_failure(err)
            raise
        except BaseException as err:
            stats.seconds = seconds_before + (time.monotonic() - t0)
            if not opts.plan and not isinstance(err, (asyncio.CancelledError, KeyboardInterrupt)):
                try:
                    self.store.finish_pass(
                        self.name,
                        self.partition,
                        pass_id=pass_id,
                        mode=opts.mode,
                        status="failed",
                        started_at=started_at,
                        stats=stats.as_dict(),
                        error=describe_error(err),
                        run_id=opts.run_id,
                        clear_checkpoint=False,
                    )
                except Exception:  # the database may be what failed: never hide the pass's own error
                    log.warning("%s/%s: could not record the failed pass", self.name, self.partition, exc_info=True)
            raise

        stats.seconds = round(seconds_before + (time.monotonic() - t0), 3)
        if self.asked:
            stats.not_found = sorted(self.asked)[:SAMPLE_LIMIT * 5]
        if not opts.plan:
            self.store.finish_pass(
                self.name,
                self.partition,
                pass_id=pass_id,
                mode=opts.mode,
                status="success",
                started_at=started_at,
                stats=stats.as_dict(),
                run_id=opts.run_id,
                clear_checkpoint=use_checkpoint,
                # A complete pass of a full source saw every record: failures it did not see left
                # the source. An incremental source only shows what changed; those were retried.
                forget_unseen_failures=use_checkpoint and not incremental,
                fence=self.fence,
            )
        return PassResult(
            route=self.name,
            partition=self.partition,
            mode=opts.mode,
            stats=stats,
            failures=self.failures,
            planned=self.planned if opts.plan else {},
            duplicate_keys=self.duplicate_keys,
            extra=self._connector_metadata(),
        )

    # ---------------------------------------------------------------------------------- leases

    async def _take_partition_lease(self) -> Fence:
        fence = Fence(self.partition, uuid.uuid4().hex, self.lease_seconds)
        deadline = time.monotonic() + self.lease_wait
        delay = 0.1
        while True:
            taken, previous = self.store.acquire_lease(
                self.name, self.partition, fence.holder, seconds=fence.seconds, run_id=self.options.run_id
            )
            if taken:
                if previous is not None and previous.released_at is None and previous.holder != fence.holder:
                    log.warning(
                        "%s/%s: took over the lease of run %s, not renewed since %s: resuming its pass",
                        self.name,
                        self.partition,
                        previous.run_id or "?",
                        previous.renewed_at.isoformat(timespec="seconds"),
                    )
                self.fences.append(fence)
                return fence
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = previous.run_id if previous is not None else None
                raise PartitionBusy(
                    f"route {self.name} partition {self.partition}: another pass holds it"
                    + (f" (run {holder})" if holder else "")
                    + "; nothing was written. That pass brings the partition up to date; the next due "
                    "run follows it.",
                    holder_run_id=holder,
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    async def _renew_leases(self) -> None:
        """Renew the held leases every third of their time; a lease found taken over stops the pass
        (its commits would be refused anyway: they are fenced)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            for fence in list(self.fences):
                try:
                    held = self.store.renew_lease(self.name, fence)
                except Exception:  # the database is away: the fenced commits decide
                    log.warning("%s/%s: could not renew lease %s", self.name, self.partition, fence.name, exc_info=True)
                    continue
                if not held:
                    log.warning("%s/%s: lease %s was taken over", self.name, self.partition, fence.name)
                    self.lease_lost = True

    def _release(self, fence: Fence) -> None:
        if fence in self.fences:
            self.fences.remove(fence)
        try:
            self.store.release_lease(self.name, fence)
        except Exception:  # it expires by itself
            log.warning("%s/%s: could not release lease %s", self.name, self.partition, fence.name, exc_info=True)

    def _check_lease(self) -> None:
        if self.lease_lost:
            raise LeaseLost(
                f"route {self.name} partition {self.partition}: the lease was taken over by another pass "
                "(this one stopped renewing it); it resumes from the last committed page"
            )

    def _connector_metadata(self) -> dict[str, Any]:
        """What the connectors report about the pass (``pass_metadata(spec)``: quota used, a sync
        token's age…): scalars only, prefixed with the connector's name."""
        out: dict[str, Any] = {}
        for side in (self.source, self.dest):
            fn = getattr(side, "pass_metadata", None)
            if fn is None:
                continue
            try:
                values = dict(fn(self.spec) or {})
            except Exception:  # reporting must never fail a pass that synced
                log.warning("%s: pass_metadata of %s failed", self.name, side.name, exc_info=True)
                continue
            for key, value in values.items():
                if isinstance(value, (str, int, float, bool)):
                    out[f"{side.name}_{key}"] = value
        return out

    # ------------------------------------------------------------------------------- reconcile

    def _should_reconcile(self, *, resumed: bool) -> bool:
        opts = self.options
        if opts.reconcile is False:
            return False
        # Intents of this partition mean a crash between a create and its link: list first, or
        # the redone page would create those rows a second time.
        if self.store.pending_intents(self.name, self.partition) > 0:
            return True
        if resumed and self.stats.reconciled:
            return False
        last, _, _ = self.store.last_reconcile(self.name)
        now = utcnow()
        if opts.reconcile is True:
            return last is None or now - last > RECONCILE_MIN_GAP
        if self.full_refresh or last is None:
            return True
        return now - last > self.route.reconcile_every

    async def _listing(self) -> Any:
        rows = getattr(self.session, "query_existing_rows", None)
        if rows is not None:
            result = rows()
            if hasattr(result, "__aiter__"):
                async for pair in result:
                    yield pair
                return
            for pair in await _maybe_await(result):
                yield pair
            return
        ids = await self.session.query_existing_ids()
        for pair in ids.items():
            yield pair

    async def _reconcile(self, *, not_before: dt.datetime | None = None) -> None:
        """List the destination once and merge it into the link map.

        One listing of a route runs at a time (the route's listing lease): a pass that needs one
        while another partition lists waits for it, and uses it when it began after ``not_before``
        (default: when this pass took its partition) — or, when this partition has no unconfirmed
        creates, when it finished after this pass began waiting.
        """
        stats = self.stats
        if self.options.plan:
            async for pk, did in self._listing():
                self.plan_listing.setdefault(str(pk), str(did))
            stats.listed = len(self.plan_listing)
            stats.reconciled = True
            return
        fence = await self._take_listing_lease(not_before or self.lease_taken_at)
        if fence is None:
            stats.reconciled = True
            return
        try:
            rid = self.store.begin_listing(self.name)
            listing_started = utcnow()
            batch: list[tuple[str, str]] = []
            listed = 0
            try:
                async for pk, did in self._listing():
                    batch.append((str(pk), str(did)))
                    listed += 1
                    if len(batch) >= LIST_BATCH:
                        self._check_lease()
                        self.store.add_listing(self.name, rid, batch)
                        batch = []
                if batch:
                    self.store.add_listing(self.name, rid, batch)
                self._check_lease()
                authoritative = self.stores_keys is True or (self.stores_keys is None and listed > 0)
                result = self.store.finish_listing(
                    self.name,
                    rid,
                    authoritative=authoritative,
                    partition=self.partition,
                    started_at=listing_started,
                    fence=fence,
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    self.store.discard_listing(self.name, rid)
                raise
        finally:
            self._release(fence)
        stats.listed, stats.adopted, stats.gone = result.listed, result.adopted, result.gone
        stats.duplicates = result.duplicates
        stats.reconciled = True
        self.duplicate_keys = result.duplicate_keys
        if len(result.adopted_keys) >= ADOPTED_TRACK_LIMIT:
            stats.created += len(result.adopted_keys)
        else:
            self.adopted_keys.update(result.adopted_keys)
        if result.adopted or result.gone or result.duplicates:
            log.info(
                "%s: reconcile listed %d rows: adopted %d, gone %d, keys listed twice %d",
                self.name,
                result.listed,
                result.adopted,
                result.gone,
                result.duplicates,
            )

    async def _take_listing_lease(self, not_before: dt.datetime) -> Fence | None:
        """The route's listing lease, or None when a listing that serves this pass finished while
        it waited for the lease."""
        fence = Fence(LISTING_LEASE, uuid.uuid4().hex, self.lease_seconds)
        waiting_since = utcnow()
        own_intents = self.store.pending_intents(self.name, self.partition) > 0
        delay, announced = 0.1, False

        def served() -> bool:
            started, finished = self.store.last_listing(self.name)
            if started is None or finished is None:
                return False
            return started >= not_before or (not own_intents and finished >= waiting_since)

        while True:
            if served():
                return None
            taken, previous = self.store.acquire_lease(
                self.name, LISTING_LEASE, fence.holder, seconds=fence.seconds, run_id=self.options.run_id
            )
            if taken:
                self.fences.append(fence)
                if served():  # a listing finished between the look and the take
                    self._release(fence)
                    return None
                return fence
            if not announced:
                announced = True
                log.info(
                    "%s/%s: waiting for the destination listing of run %s",
                    self.name,
                    self.partition,
                    (previous.run_id if previous else None) or "?",
                )
            self._check_lease()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------------------- page loop

    async def _fetch(self, cursor: str | None, only: list[str] | None = None) -> tuple[list[Any], str | None]:
        if only is None and self.options.only_items is not None:
            only = list(self.options.only_items)
        fetch_page = getattr(self.source, "fetch_page", None)
        if fetch_page is not None:
            records, next_cursor = await fetch_page(self.spec, only, cursor)
            if next_cursor is not None and not isinstance(next_cursor, str):
                raise ConfigError(
                    f"source {self.source.name}: fetch_page returned a {type(next_cursor).__name__} "
                    "cursor; cursors must be strings"
                )
            return list(records), next_cursor
        # A fetch()-only source is one page; the position inside it is the cursor so that a
        # crash resumes at the next chunk instead of rewriting everything. It is read once per
        # pass (per set of keys asked for), not once per chunk.
        cache_key = tuple(only) if only is not None else None
        if self.fetched is not None and self.fetched[0] == cache_key:
            records = self.fetched[1]
        else:
            records = list(await self.source.fetch(self.spec, only))
            self.fetched = (cache_key, records)
        start = int(cursor or 0)
        end = start + FETCH_CHUNK
        return records[start:end], (str(end) if end < len(records) else None)

    async def _retry_unseen_failures(self) -> None:
        """An incremental source only returns records edited since its watermark, so a record whose
        write failed would wait for its next edit. Fetch those by key and write them again; keys
        the source no longer has are forgotten."""
        keys = self.store.failed_keys(self.name, self.partition, seen_before=self.started_at, limit=RETRY_BATCH)
        if not keys:
            return
        records, _ = await self._fetch(None, only=keys)
        returned = {getattr(r, "primary_key", None) for r in records}
        await self._process_page(records, None, True)
        self.stats.pages -= 1  # not a page of the pass
        gone = [k for k in keys if k not in returned]
        if gone:
            self.store.commit_page(self.name, self.partition, succeeded=gone)

    async def _retry_deferred(self) -> None:
        """Write the records whose key another partition's pass had claimed: by now it has (most
        likely) linked them, so they become updates or unchanged rows. Claims taken over from a
        dead pass are listed first. What is still claimed after a few rounds fails for this pass
        (retried on the next), never created twice."""
        delay = DEFERRED_FIRST_DELAY
        for attempt in range(DEFERRED_ROUNDS):
            if not self.deferred:
                return
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            if self.deferred_stale:
                self.deferred_stale = False
                await self._reconcile(not_before=utcnow())
            records = [record for record, _ in self.deferred.values()]
            self.deferred = {}
            await self._process_page(records, None, True, extra=True)
        if self.deferred:
            failures = [(key, f"{why}; retried on the next pass") for key, (_, why) in self.deferred.items()]
            self.deferred = {}
            self.stats.failed += len(failures)
            self.failures.extend(failures[: max(0, 100 - len(self.failures))])
            self.store.commit_page(self.name, self.partition, failures=failures, fence=self.fence)

    async def _page_loop(self, cursor: str | None, targeted: bool) -> None:
        fetch_task: asyncio.Task[tuple[list[Any], str | None]] = asyncio.ensure_future(self._fetch(cursor))
        seen_cursors = {cursor}
        try:
            while True:
                try:
                    records, next_cursor = await fetch_task
                except Exception as err:
                    if _is_auth(err, self.source) or auth_error_in_chain(err):
                        raise AuthError(
                            f"source {self.source.name}: {describe_error(err)}",
                            credential=credential_scope(self.source),
                        ) from err
                    raise
                if next_cursor is not None:
                    if next_cursor in seen_cursors:
                        # A source that hands back a cursor it already gave would loop forever.
                        raise ConfigError(
                            f"source {self.source.name}: spec {self.spec.key!r} returned cursor "
                            f"{next_cursor[:80]!r} twice in one pass; its paging is broken"
                        )
                    seen_cursors.add(next_cursor)
                    # Read ahead while this page is written.
                    fetch_task = asyncio.ensure_future(self._fetch(next_cursor))
                await self._process_page(records, next_cursor, targeted)
                if next_cursor is None:
                    return
        finally:
            if not fetch_task.done():
                fetch_task.cancel()
                with contextlib.suppress(BaseException):
                    await fetch_task

    async def _process_page(
        self, raw: Sequence[Any], next_cursor: str | None, targeted: bool, *, extra: bool = False
    ) -> None:
        """Transform, validate, diff and write one page, then commit it (``extra``: records outside
        the page sequence — retries at the end of the pass — counted as neither pages nor records)."""
        stats = self.stats
        if not extra:
            stats.pages += 1
        failures: list[tuple[str, str]] = []
        page: dict[str, Record] = {}
        for i, item in enumerate(raw):
            if not extra:
                stats.records += 1
            if self.asked is not None:
                self.asked.discard(getattr(item, "primary_key", None))  # type: ignore[arg-type]
            record = item
            if self.transform is not None:
                try:
                    record = await self.transform(item)
                except Exception as err:
                    key = getattr(item, "primary_key", None) or f"(page {stats.pages} row {i + 1})"
                    failures.append((str(key), f"transform failed: {describe_error(err)}"))
                    continue
                if record is None:
                    stats.skipped += 1
                    continue
            valid, problem = validate_record(record, max_value_length=self.max_value_length)
            if valid is None:
                key = getattr(record, "primary_key", None)
                key = key.strip() if isinstance(key, str) else ""
                failures.append((key or f"(empty key: page {stats.pages} row {i + 1})", problem or "invalid"))
                continue
            if valid.primary_key in page:
                stats.deduplicated += 1
                del page[valid.primary_key]  # last wins, and keeps its position
            page[valid.primary_key] = valid

        creates: list[tuple[Record, str]] = []
        updates: list[tuple[Record, str, str]] = []
        unchanged: list[str] = []
        hashes = {key: content_hash(record, self.create_only) for key, record in page.items()}
        if self.options.plan:
            links = self.store.get_links(self.name, page.keys()) if page else {}
        else:
            self._check_lease()
            # The keys about to be created are claimed (intents carrying the hash to be sent) in
            # the lookup's transaction, before any create goes out: a crash then reconciles them,
            # and a key another partition is creating waits for it instead of being created twice.
            claims = self.store.claim_creates(self.name, self.partition, hashes, fence=self.fence) if page else None
            links = claims.links if claims else {}
            for key, why in (claims.deferred if claims else {}).items():
                record = page.pop(key)
                if len(self.deferred) < DEFERRED_LIMIT:
                    self.deferred[key] = (record, why)
                else:
                    failures.append((key, f"{why}; retried on the next pass"))
            if claims and claims.stale:
                self.deferred_stale = True
        for key, record in page.items():
            h = hashes[key]
            link = links.get(key)
            if self.options.plan and link is None and key in self.plan_listing:
                updates.append((record, self.plan_listing[key], h))
                continue
            if link is not None and link.state == "linked" and link.destination_id:
                if self.full_refresh or link.content_hash != h:
                    updates.append((record, link.destination_id, h))
                elif key in self.adopted_keys:
                    # Created by this pass's crashed predecessor, found by the listing with the
                    # content it sent: a create, not an unchanged row.
                    self.adopted_keys.discard(key)
                    stats.created += 1
                else:
                    unchanged.append(key)
            else:
                creates.append((record, h))
        stats.unchanged += len(unchanged)

        if self.options.plan:
            self._plan_page(creates, updates, unchanged, failures)
            return
        self._check_lease()

        linked: list[tuple[str, str, str | None]] = []
        unlinked: list[tuple[str, str]] = []
        dropped: list[str] = []
        fatal: BaseException | None = None

        stop = asyncio.Event()

        async def do_create(record: Record, h: str) -> None:
            nonlocal fatal
            if stop.is_set():
                return
            try:
                stats.destination_calls += 1
                result = await self.session.create(record, self.synced_at)
            except BaseException as err:
                if self._fatal(err):
                    fatal = fatal or err
                    stop.set()
                    return
                failures.append((record.primary_key, describe_error(err)))
                if isinstance(err, (RecordError, DestinationHTTPError)):
                    dropped.append(record.primary_key)  # rejected: the row was not created
                return
            if result is False:
                stats.skipped += 1
                dropped.append(record.primary_key)
            elif result is True or result is None:
                stats.created += 1
                unlinked.append((record.primary_key, h))
            elif self.stores_keys is False:
                # The destination cannot hold our key (Luma): the link map is the only record of
                # this row, so commit it now rather than with the page — the window in which a
                # crash forgets a created row shrinks from a page of writes to one local commit.
                stats.created += 1
                self.store.commit_page(
                    self.name,
                    self.partition,
                    linked=[(record.primary_key, str(result), h)],
                    succeeded=[],
                    fence=self.fence,
                )
            else:
                stats.created += 1
                linked.append((record.primary_key, str(result), h))

        async def do_update(record: Record, existing_id: str, h: str) -> None:
            nonlocal fatal
            if self.create_only:
                record = Record(
                    record.primary_key,
                    {k: v for k, v in record.properties.items() if k not in self.create_only},
                    record.body,
                )
            if stop.is_set():
                return
            try:
                stats.destination_calls += 1
                ok = await self.session.update(existing_id, record, self.synced_at)
            except BaseException as err:
                if self._fatal(err):
                    fatal = fatal or err
                    stop.set()
                    return
                failures.append((record.primary_key, describe_error(err)))
                return
            if ok is False:
                stats.skipped += 1
            else:
                stats.updated += 1
                linked.append((record.primary_key, existing_id, h))

        jobs = [(do_create, (r, h)) for r, h in creates] + [(do_update, (r, i, h)) for r, i, h in updates]
        workers = min(self.concurrency, len(jobs))
        if workers == 1:
            for fn, args in jobs:
                await fn(*args)
        elif workers > 1:
            # A few workers draining one queue, not a task per record: at 100 records a page the
            # task bookkeeping would cost more than an in-memory or local write.
            queue = iter(jobs)

            async def worker() -> None:
                for fn, args in queue:
                    await fn(*args)

            await asyncio.gather(*(worker() for _ in range(workers)))

        stats.failed += len(failures)
        self.failures.extend(failures[: max(0, 100 - len(self.failures))])
        failed_keys = {k for k, _ in failures}
        succeeded = [k for k, _, _ in linked]
        if self.had_failures or failures:
            succeeded += [k for k in unchanged if k not in failed_keys]
        if failures:
            self.had_failures = True
        checkpoint = None
        if fatal is None and not targeted and next_cursor is not None:
            checkpoint = Checkpoint(
                pass_id=self.pass_id,
                cursor=next_cursor,
                stats=self.stats.as_dict(),
                options=self.cp_options,
                started_at=self.started_at,
                updated_at=utcnow(),
            )
        self.store.commit_page(
            self.name,
            self.partition,
            linked=linked,
            unlinked_hashes=unlinked,
            dropped_intents=dropped,
            failures=failures,
            succeeded=succeeded,
            checkpoint=checkpoint,
            fence=self.fence,
        )
        if fatal is not None:
            stats.pages -= 1  # this page is redone on resume
            if _is_auth(fatal, self.dest):
                if isinstance(fatal, AuthError):
                    raise fatal
                raise AuthError(
                    f"destination {self.dest.name}: {describe_error(fatal)}",
                    credential=credential_scope(self.dest),
                ) from fatal
            raise fatal
        if self.progress is not None:
            self.progress(stats)

    def _fatal(self, err: BaseException) -> bool:
        if isinstance(err, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            return True
        return _is_auth(err, self.dest) or _is_systemic(err)

    def _plan_page(
        self,
        creates: list[tuple[Record, str]],
        updates: list[tuple[Record, str, str]],
        unchanged: list[str],
        failures: list[tuple[str, str]],
    ) -> None:
        stats = self.stats
        # What the destination would refuse, where it can tell without writing (lengths, types,
        # missing columns): counted as failures of the plan, not as creates or updates.
        checker = getattr(self.session, "check_record", None)
        if checker is not None:
            refused: set[str] = set()
            for record in [r for r, _ in creates] + [r for r, _, _ in updates]:
                try:
                    problem = checker(record)
                except Exception as err:
                    problem = f"check_record failed: {describe_error(err)}"
                if problem:
                    refused.add(record.primary_key)
                    failures.append((record.primary_key, str(problem)))
            if refused:
                creates = [c for c in creates if c[0].primary_key not in refused]
                updates = [u for u in updates if u[0].primary_key not in refused]
        stats.created += len(creates)
        stats.updated += len(updates)
        stats.failed += len(failures)
        self.failures.extend(failures[: max(0, 100 - len(self.failures))])
        for bucket, keys in (
            ("create", [r.primary_key for r, _ in creates]),
            ("update", [r.primary_key for r, _, _ in updates]),
            ("unchanged", unchanged),
            ("failed", [k for k, _ in failures]),
        ):
            room = SAMPLE_LIMIT - len(self.planned[bucket])
            if room > 0:
                self.planned[bucket].extend(keys[:room])
        if self.progress is not None:
            self.progress(stats)

    # ------------------------------------------------------------------------------------ auth

    def _on_auth_failure(self, err: AuthError) -> None:
        if self.options.plan:
            return
        # Errors raised by the source were tagged with its scope in the page loop; anything else
        # came from the destination (a write or the listing).
        scope = err.credential if err.credential and err.credential.startswith("credential:") else None
        scope = scope or self.route.destination_scope
        side = self.source if scope == self.route.source_scope else self.dest
        reason = f"{describe_error(err)} — renew the credential, then: durable-sync resume {self.name}"
        self.store.pause(scope, reason, fingerprint=_fingerprint(side), source="auth")
        log.warning("%s/%s: paused %s: %s", self.name, self.partition, scope, describe_error(err))


async def run_pass(
    route: Route,
    partition: str,
    store: StateStore,
    options: PassOptions | None = None,
    *,
    spec: SourceSpec | None = None,
    progress: ProgressFn | None = None,
) -> PassResult:
    """Run one pass of one partition of a route.

    Args:
        route: The route.
        partition: The partition key (the sanitised spec key).
        store: The state store.
        options: Mode of the pass.
        spec: The spec, when the caller already resolved it (saves a ``source.specs()`` call).
        progress: Called with the running stats after every page.

    Raises:
        Paused: nothing was done because a scope of this partition is paused.
        AuthError: the credential was rejected; its scope is now paused.
        RateLimited, TransientError: the pass stopped; the next one resumes at the page in flight.
        ConfigError: the route or destination is misconfigured.
    """
    options = options or PassOptions()
    spec = spec or route.spec_for(partition)
    return await _Pass(route, partition, spec, store, options, progress).run()
