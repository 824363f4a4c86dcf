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

Where the parts live: this module runs the pass (the loop above, checkpoints, retries, pauses); the
planning step of a page is ``sync_assets._plan`` (transform, validate, dedupe, hash, classify: no
I/O), the writing step ``sync_assets._write``, the leases ``sync_assets._pass_leases``, hashing,
validation and error classes ``sync_assets._records``, the options/stats/result types
``sync_assets._results``. Connector members that are optional are checked with ``isinstance``
against the capability protocols of ``connectors.core``, once per pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, cast

from connectors.core import (
    AuthError,
    CheckingSession,
    CommittingSource,
    ConcurrentDestination,
    ConfigError,
    ConfigHinting,
    Configurable,
    DestinationSession,
    IncrementalSource,
    KeyStoringDestination,
    LengthLimitedDestination,
    ListingSession,
    PagedSource,
    Record,
    ReportingConnector,
    ResettableSource,
    SourceSpec,
    auth_error_in_chain,
    describe_error,
)
from sync_assets._pass_leases import PartitionBusy, PassLeases
from sync_assets._plan import PagePlan, PreparedPage, classify_page, hash_page, prepare_page, raw_key
from sync_assets._records import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from sync_assets._records import content_hash, credential_fingerprint, is_auth, is_systemic, validate_record
from sync_assets._results import PassOptions, PassResult, PassStats, Paused
from sync_assets._write import PageWriter, WriteResult
from sync_assets.routes import Route, credential_scope
from sync_assets.state import Checkpoint, Claims, Fence, LeaseLost, Link, ReconcileResult, StateStore, utcnow

__all__ = [
    "LeaseLost",
    "PartitionBusy",
    "PassOptions",
    "PassResult",
    "PassStats",
    "Paused",
    "content_hash",
    "credential_fingerprint",
    "run_pass",
    "validate_record",
]

log = logging.getLogger(__name__)

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
FAILURE_SAMPLE = 100  # failures kept on the result


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


ProgressFn = Callable[[PassStats], None]


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _require_configured(route: str, role: str, side: object, name: str) -> None:
    """Raise ``ConfigError`` when a connector says its settings are missing (``Configurable``)."""
    if isinstance(side, Configurable) and not side.configured:
        hint = side.config_hint if isinstance(side, ConfigHinting) else ""
        raise ConfigError(f"route {route}: {role} {name} is not configured ({hint})")


class _Pass:
    """One pass of one partition; ``run`` does it once."""

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
        dest = self.dest
        # The connectors' optional members, looked up once (``connectors.core`` capabilities).
        self.create_only = frozenset(dest.create_only_properties or ())
        self.max_value_length = dest.max_value_length if isinstance(dest, LengthLimitedDestination) else None
        concurrency = dest.max_concurrency if isinstance(dest, ConcurrentDestination) else DEFAULT_MAX_CONCURRENCY
        self.concurrency = max(1, int(concurrency or 1))
        self.stores_keys = dest.stores_keys if isinstance(dest, KeyStoringDestination) else None
        self.transform = route.build_transform()
        self.failures: list[tuple[str, str]] = []
        self.planned: dict[str, list[str]] = {"create": [], "update": [], "unchanged": [], "failed": []}
        self.plan_listing: dict[str, str] = {}
        self.duplicate_keys: list[tuple[str, list[str]]] = []
        self.had_failures = store.failed_count(route.name, partition) > 0 if not options.plan else False
        lease_seconds = float(options.lease_seconds or _env_seconds("DURABLE_SYNC_LEASE_SECONDS", LEASE_SECONDS))
        # Long enough to outlast a dead holder's lease (a retried run right after a crash takes
        # over instead of giving up), short enough that a duplicate launch ends soon.
        default_wait = lease_seconds * 1.25 + 1
        lease_wait = float(
            options.lease_wait
            if options.lease_wait is not None
            else _env_seconds("DURABLE_SYNC_LEASE_WAIT", default_wait)
        )
        self.leases = PassLeases(
            store, self.name, partition, run_id=options.run_id, seconds=lease_seconds, wait=lease_wait
        )
        self.fence: Fence | None = None
        self.lease_taken_at = utcnow()
        self.deferred: dict[str, tuple[Record, str]] = {}  # creates another partition's pass has claimed
        self.deferred_stale = False  # a claim taken over from a dead pass: list before creating it
        self.adopted_keys: set[str] = set()  # our own creates found by the listing: count as created
        self.fetched: tuple[tuple[str, ...] | None, list[Any]] | None = None  # fetch()-only: read once
        self.asked: set[str] | None = set(options.only_items) if options.only_items is not None else None
        self.session: DestinationSession
        self.stats = PassStats()
        self.pass_id = ""
        self.started_at = self.synced_at = self.lease_taken_at
        self.full_refresh = options.full_refresh
        self.cp_options: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------

    async def run(self) -> PassResult:
        """Check configuration and pauses, take the partition's lease and run the pass under it."""
        opts = self.options
        _require_configured(self.name, "source", self.source, self.source.name)
        _require_configured(self.name, "destination", self.dest, self.dest.name)
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
        self.fence = await self.leases.take_partition()
        self.lease_taken_at = utcnow()
        renewer = asyncio.ensure_future(self.leases.renew_forever())
        try:
            return await self._run_body()
        finally:
            renewer.cancel()
            with contextlib.suppress(BaseException):
                await renewer
            for fence in list(self.leases.fences):
                self.leases.release(fence)

    def _start(self) -> tuple[Checkpoint | None, str | None]:
        """Resume the stored checkpoint, or start a new pass; returns the checkpoint and the first cursor."""
        opts = self.options
        use_checkpoint = not (opts.plan or opts.only_items is not None)
        cp = self.store.get_checkpoint(self.name, self.partition) if use_checkpoint else None
        if cp is not None and opts.full_refresh and not cp.options.get("full_refresh"):
            cp = None  # a full refresh starts over rather than finishing a normal pass
        self.full_refresh = opts.full_refresh or bool(cp and cp.options.get("full_refresh"))
        now = utcnow()
        cursor: str | None = None
        if cp is not None:
            self.pass_id, cursor, self.started_at = cp.pass_id, cp.cursor, cp.started_at
            self.stats = PassStats.from_dict(cp.stats)
            self.stats.resumed_from = self.stats.pages
            log.info("%s/%s: resuming pass %s after page %d", self.name, self.partition, cp.pass_id, self.stats.pages)
        else:
            self.pass_id, self.started_at, self.stats = uuid.uuid4().hex, now, PassStats()
        self.synced_at = now
        self.cp_options = {"full_refresh": self.full_refresh}
        return cp, cursor

    async def _run_body(self) -> PassResult:
        opts = self.options
        targeted = opts.only_items is not None
        use_checkpoint = not (opts.plan or targeted)
        cp, cursor = self._start()
        stats = self.stats
        t0 = time.monotonic()
        seconds_before = stats.seconds
        incremental = bool(self.source.incremental) if isinstance(self.source, IncrementalSource) else False
        try:
            await self._sync(cp, cursor, incremental=incremental, use_checkpoint=use_checkpoint)
        except AuthError as err:
            self._on_auth_failure(err)
            raise
        except BaseException as err:
            stats.seconds = seconds_before + (time.monotonic() - t0)
            if not opts.plan and not isinstance(err, (asyncio.CancelledError, KeyboardInterrupt)):
                self._record_failed_pass(err)
            raise

        stats.seconds = round(seconds_before + (time.monotonic() - t0), 3)
        if self.asked:
            stats.not_found = sorted(self.asked)[: SAMPLE_LIMIT * 5]
        if not opts.plan:
            self.store.finish_pass(
                self.name,
                self.partition,
                pass_id=self.pass_id,
                mode=opts.mode,
                status="success",
                started_at=self.started_at,
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

    async def _sync(
        self, cp: Checkpoint | None, cursor: str | None, *, incremental: bool, use_checkpoint: bool
    ) -> None:
        """Reconcile when needed, run the page loop and the retries, then let the source commit."""
        source = self.source
        if self.full_refresh and cp is None and not self.options.plan and isinstance(source, ResettableSource):
            # A full refresh re-reads everything: an incremental source forgets its watermark.
            source.reset(self.spec.key)
        async with self.dest.connect() as session:
            self.session = session
            if self._should_reconcile(resumed=cp is not None):
                await self._reconcile()
            await self._page_loop(cursor, self.options.only_items is not None)
            if incremental and use_checkpoint:
                await self._retry_unseen_failures()
            await self._retry_deferred()
        if use_checkpoint and isinstance(source, CommittingSource):
            # The pass is complete and was not a dry run: an incremental source may now store
            # the watermark it reached (it holds it until this call).
            source.commit(self.spec.key)

    def _record_failed_pass(self, err: BaseException) -> None:
        try:
            self.store.finish_pass(
                self.name,
                self.partition,
                pass_id=self.pass_id,
                mode=self.options.mode,
                status="failed",
                started_at=self.started_at,
                stats=self.stats.as_dict(),
                error=describe_error(err),
                run_id=self.options.run_id,
                clear_checkpoint=False,
            )
        except Exception:  # the database may be what failed: never hide the pass's own error
            log.warning("%s/%s: could not record the failed pass", self.name, self.partition, exc_info=True)

    def _connector_metadata(self) -> dict[str, Any]:
        """What the connectors report about the pass (``pass_metadata(spec)``: quota used, a sync
        token's age…): scalars only, prefixed with the connector's name."""
        out: dict[str, Any] = {}
        for side in (self.source, self.dest):
            if not isinstance(side, ReportingConnector):
                continue
            try:
                values = dict(side.pass_metadata(self.spec) or {})
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

    async def _listing(self) -> AsyncIterator[tuple[Any, Any]]:
        session = self.session
        if isinstance(session, ListingSession):
            result: Any = session.query_existing_rows()
            if hasattr(result, "__aiter__"):
                async for pair in result:
                    yield pair
                return
            # Also accepted: an awaitable of pairs, or pairs.
            for pair in cast(Iterable[tuple[Any, Any]], await _maybe_await(result)):
                yield pair
            return
        ids = await session.query_existing_ids()
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
        fence = await self.leases.take_listing(not_before or self.lease_taken_at)
        if fence is None:
            stats.reconciled = True
            return
        try:
            result = await self._list_into_store(fence)
        finally:
            self.leases.release(fence)
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

    async def _list_into_store(self, fence: Fence) -> ReconcileResult:
        """Stream the destination's listing into the store in batches and merge it (under ``fence``)."""
        rid = self.store.begin_listing(self.name)
        listing_started = utcnow()
        batch: list[tuple[str, str]] = []
        listed = 0
        try:
            async for pk, did in self._listing():
                batch.append((str(pk), str(did)))
                listed += 1
                if len(batch) >= LIST_BATCH:
                    self.leases.check()
                    self.store.add_listing(self.name, rid, batch)
                    batch = []
            if batch:
                self.store.add_listing(self.name, rid, batch)
            self.leases.check()
            authoritative = self.stores_keys is True or (self.stores_keys is None and listed > 0)
            return self.store.finish_listing(
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

    # ------------------------------------------------------------------------------- page loop

    async def _fetch(self, cursor: str | None, only: list[str] | None = None) -> tuple[list[Any], str | None]:
        if only is None and self.options.only_items is not None:
            only = list(self.options.only_items)
        source = self.source
        if isinstance(source, PagedSource):
            records, next_cursor = await source.fetch_page(self.spec, only, cursor)
            if next_cursor is not None and not isinstance(next_cursor, str):
                raise ConfigError(
                    f"source {source.name}: fetch_page returned a {type(next_cursor).__name__} "
                    "cursor; cursors must be strings"
                )
            return list(records), next_cursor
        # A fetch()-only source is one page; the position inside it is the cursor so that a
        # crash resumes at the next chunk instead of rewriting everything. It is read once per
        # pass (per set of keys asked for), not once per chunk.
        cache_key = tuple(only) if only is not None else None
        if self.fetched is not None and self.fetched[0] == cache_key:
            fetched = self.fetched[1]
        else:
            fetched = list(await source.fetch(self.spec, only))
            self.fetched = (cache_key, fetched)
        start = int(cursor or 0)
        end = start + FETCH_CHUNK
        return fetched[start:end], (str(end) if end < len(fetched) else None)

    async def _retry_unseen_failures(self) -> None:
        """An incremental source only returns records edited since its watermark, so a record whose
        write failed would wait for its next edit. Fetch those by key and write them again; keys
        the source no longer has are forgotten."""
        keys = self.store.failed_keys(self.name, self.partition, seen_before=self.started_at, limit=RETRY_BATCH)
        if not keys:
            return
        records, _ = await self._fetch(None, only=keys)
        returned = {raw_key(r) for r in records}
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
            self._keep_failures(failures)
            self.store.commit_page(self.name, self.partition, failures=failures, fence=self.fence)

    async def _page_loop(self, cursor: str | None, targeted: bool) -> None:
        fetch_task: asyncio.Task[tuple[list[Any], str | None]] = asyncio.ensure_future(self._fetch(cursor))
        seen_cursors = {cursor}
        try:
            while True:
                try:
                    records, next_cursor = await fetch_task
                except Exception as err:
                    if is_auth(err, self.source) or auth_error_in_chain(err):
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

    # ------------------------------------------------------------------------------------ a page

    async def _process_page(
        self, raw: Sequence[Any], next_cursor: str | None, targeted: bool, *, extra: bool = False
    ) -> None:
        """Plan one page (``sync_assets._plan``), write it (``sync_assets._write``), then commit it.

        ``extra``: records outside the page sequence — retries at the end of the pass — counted as
        neither pages nor records.
        """
        stats = self.stats
        if not extra:
            stats.pages += 1
        prepared = PreparedPage()
        try:
            await prepare_page(
                prepared,
                raw,
                transform=self.transform,
                max_value_length=self.max_value_length,
                page_number=stats.pages,
                asked=self.asked,
            )
        finally:
            if not extra:
                stats.records += prepared.seen
            stats.skipped += prepared.skipped
            stats.deduplicated += prepared.deduplicated
        plan = self._classify(prepared.records)
        failures = prepared.failures + plan.failures
        stats.created += len(plan.adopted)
        stats.unchanged += len(plan.unchanged)
        if self.options.plan:
            self._plan_page(plan.creates, plan.updates, plan.unchanged, failures)
            return
        self.leases.check()
        written = await self._writer(failures).write(plan.creates, plan.updates)
        self._commit_page(written, plan.unchanged, next_cursor, targeted)

    def _classify(self, records: dict[str, Record]) -> PagePlan:
        """Look the page's keys up in the link map and classify them (a real pass claims its creates)."""
        hashes = hash_page(records, self.create_only)
        claims: Claims | None = None
        if self.options.plan:
            links: dict[str, Link] = self.store.get_links(self.name, records.keys()) if records else {}
        else:
            self.leases.check()
            # The keys about to be created are claimed (intents carrying the hash to be sent) in
            # the lookup's transaction, before any create goes out: a crash then reconciles them,
            # and a key another partition is creating waits for it instead of being created twice.
            claims = self.store.claim_creates(self.name, self.partition, hashes, fence=self.fence) if records else None
            links = claims.links if claims else {}
        plan = classify_page(
            records,
            hashes,
            links,
            full_refresh=self.full_refresh,
            deferred=claims.deferred if claims else None,
            deferred_held=self.deferred.keys(),
            deferred_limit=DEFERRED_LIMIT,
            listing=self.plan_listing if self.options.plan else None,
            adopted_keys=self.adopted_keys,
        )
        self.deferred.update(plan.deferred)
        if claims and claims.stale:
            self.deferred_stale = True
        self.adopted_keys.difference_update(plan.adopted)
        return plan

    def _writer(self, failures: list[tuple[str, str]]) -> PageWriter:
        commit_link = None
        if self.stores_keys is False:

            def commit_link(key: str, destination_id: str, content_hash: str) -> None:
                self.store.commit_page(
                    self.name,
                    self.partition,
                    linked=[(key, destination_id, content_hash)],
                    succeeded=[],
                    fence=self.fence,
                )

        return PageWriter(
            self.session,
            self.synced_at,
            self.stats,
            failures,
            create_only=self.create_only,
            concurrency=self.concurrency,
            is_fatal=self._fatal,
            commit_link=commit_link,
        )

    def _commit_page(self, written: WriteResult, unchanged: list[str], next_cursor: str | None, targeted: bool) -> None:
        """Commit a written page (links, outcomes, the next cursor) in one transaction; raise its fatal error."""
        stats, failures, fatal = self.stats, written.failures, written.fatal
        stats.failed += len(failures)
        self._keep_failures(failures)
        failed_keys = {k for k, _ in failures}
        succeeded = [k for k, _, _ in written.linked]
        if self.had_failures or failures:
            succeeded += [k for k in unchanged if k not in failed_keys]
        if failures:
            self.had_failures = True
        checkpoint = None
        if fatal is None and not targeted and next_cursor is not None:
            checkpoint = Checkpoint(
                pass_id=self.pass_id,
                cursor=next_cursor,
                stats=stats.as_dict(),
                options=self.cp_options,
                started_at=self.started_at,
                updated_at=utcnow(),
            )
        self.store.commit_page(
            self.name,
            self.partition,
            linked=written.linked,
            unlinked_hashes=written.unlinked,
            dropped_intents=written.dropped,
            failures=failures,
            succeeded=succeeded,
            checkpoint=checkpoint,
            fence=self.fence,
        )
        if fatal is not None:
            stats.pages -= 1  # this page is redone on resume
            if is_auth(fatal, self.dest):
                if isinstance(fatal, AuthError):
                    raise fatal
                raise AuthError(
                    f"destination {self.dest.name}: {describe_error(fatal)}",
                    credential=credential_scope(self.dest),
                ) from fatal
            raise fatal
        if self.progress is not None:
            self.progress(stats)

    def _keep_failures(self, failures: list[tuple[str, str]]) -> None:
        self.failures.extend(failures[: max(0, FAILURE_SAMPLE - len(self.failures))])

    def _fatal(self, err: BaseException) -> bool:
        if isinstance(err, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            return True
        return is_auth(err, self.dest) or is_systemic(err)

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
        if isinstance(self.session, CheckingSession):
            refused = self._refused(self.session, [r for r, _ in creates] + [r for r, _, _ in updates], failures)
            if refused:
                creates = [c for c in creates if c[0].primary_key not in refused]
                updates = [u for u in updates if u[0].primary_key not in refused]
        stats.created += len(creates)
        stats.updated += len(updates)
        stats.failed += len(failures)
        self._keep_failures(failures)
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

    @staticmethod
    def _refused(session: CheckingSession, records: list[Record], failures: list[tuple[str, str]]) -> set[str]:
        """Keys of the records ``session.check_record`` refuses; each is added to ``failures`` with why."""
        refused: set[str] = set()
        for record in records:
            try:
                problem = session.check_record(record)
            except Exception as err:
                problem = f"check_record failed: {describe_error(err)}"
            if problem:
                refused.add(record.primary_key)
                failures.append((record.primary_key, str(problem)))
        return refused

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
        self.store.pause(scope, reason, fingerprint=credential_fingerprint(side), source="auth")
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

    Returns:
        What the pass did.

    Raises:
        Paused: nothing was done because a scope of this partition is paused.
        AuthError: the credential was rejected; its scope is now paused.
        RateLimited, TransientError: the pass stopped; the next one resumes at the page in flight.
        ConfigError: the route or destination is misconfigured.
    """
    options = options or PassOptions()
    spec = spec or route.spec_for(partition)
    return await _Pass(route, partition, spec, store, options, progress).run()
