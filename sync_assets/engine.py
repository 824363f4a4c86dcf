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

Where the parts live: this module runs the pass (the loop above, checkpoints, retries, pauses);
the state the steps share is ``sync_assets._pass_state``, which looks the connectors' optional
members up once per pass with ``isinstance`` against the capability protocols of
``connectors.core``. A page is planned by ``sync_assets._plan`` (transform, validate, dedupe, hash,
classify: no I/O), written by ``sync_assets._write`` and committed by ``sync_assets._page``; the
listing is ``sync_assets._reconcile``, the leases ``sync_assets._pass_leases``, hashing, validation
and error classes ``sync_assets._records``, the options/stats/result types ``sync_assets._results``
(re-exported here, where callers import them from); a two-way route's page step is
``sync_assets._two_way``, ``on_missing`` is ``sync_assets._missing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from connectors.core import (
    AuthError,
    CommittingSource,
    ConfigError,
    ConfigHinting,
    Configurable,
    IncrementalSource,
    MissingMarkingSession,
    PagedSource,
    ReportingConnector,
    ResettableSource,
    SourceSpec,
    auth_error_in_chain,
    describe_error,
)
from sync_assets._page import DEFERRED_LIMIT as DEFERRED_LIMIT
from sync_assets._page import SAMPLE_LIMIT, PageSteps
from sync_assets._pass_leases import PartitionBusy
from sync_assets._pass_state import DEFAULT_MAX_CONCURRENCY as DEFAULT_MAX_CONCURRENCY
from sync_assets._pass_state import LEASE_SECONDS as LEASE_SECONDS
from sync_assets._pass_state import ProgressFn
from sync_assets._plan import raw_key
from sync_assets._reconcile import ReconcileSteps
from sync_assets._records import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from sync_assets._records import content_hash, credential_fingerprint, is_auth, validate_record
from sync_assets._results import PassOptions, PassResult, PassStats, Paused
from sync_assets.routes import Route, credential_scope
from sync_assets.state import Checkpoint, LeaseLost, StateStore, utcnow

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

FETCH_CHUNK = 500  # a source with only fetch() is written and checkpointed in chunks of this size
RETRY_BATCH = 500  # failed records of an incremental source re-fetched by key at the end of a pass
DEFERRED_ROUNDS = 6  # ... retried this many times (0.5 s, 1 s, 2 s, ... apart) before they count as failed
DEFERRED_FIRST_DELAY = 0.5


def _require_configured(route: str, role: str, side: object, name: str) -> None:
    """Raise ``ConfigError`` when a connector says its settings are missing (``Configurable``)."""
    if isinstance(side, Configurable) and not side.configured:
        hint = side.config_hint if isinstance(side, ConfigHinting) else ""
        raise ConfigError(f"route {route}: {role} {name} is not configured ({hint})")


class _Pass(PageSteps, ReconcileSteps):
    """One pass of one partition; ``run`` does it once (its state: ``sync_assets._pass_state``)."""

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
        if self.route.two_way is not None:
            # The two directions of a pair never run at once: a pass reads the other side back and
            # stores the pair's baselines, which the other direction's pass reads.
            await self.leases.take_pair(self.route.two_way.pair)
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
            # In the order they were asked for (the CLI echoes them back).
            asked = self.options.only_items or ()
            stats.not_found = [k for k in dict.fromkeys(asked) if k in self.asked][: SAMPLE_LIMIT * 5]
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
            conflicts=list(self.conflicts),
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
            if self.route.on_missing is not None and not isinstance(session, MissingMarkingSession):
                raise ConfigError(
                    f"route {self.name}: on_missing={self.route.on_missing!r}, but destination "
                    f"{self.dest.name} cannot mark rows (it has no mark_missing)"
                )
            if self.route.on_missing is not None and use_checkpoint and cp is None:
                self.seen_keys = set()  # a resumed pass did not see the pages before its cursor
            if self._should_reconcile(resumed=cp is not None):
                await self._reconcile()
            await self._page_loop(cursor, self.options.only_items is not None)
            if incremental and use_checkpoint:
                await self._retry_unseen_failures()
            await self._retry_deferred()
            if self.route.on_missing is not None and use_checkpoint:
                await self._mark_missing(incremental=incremental)
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
        """What the connectors report about the pass (``pass_metadata(spec)``).

        Quota used, a sync token's age…: scalars only, prefixed with the connector's name.
        """
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
        """Fetch the failed records of an incremental source by key and write them again.

        An incremental source only returns records edited since its watermark, so a record whose
        write failed would wait for its next edit. Keys the source no longer has are forgotten.
        """
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
        """Write the records whose key another partition's pass had claimed.

        By now it has (most likely) linked them, so they become updates or unchanged rows. Claims
        taken over from a dead pass are listed first. What is still claimed after a few rounds fails
        for this pass (retried on the next), never created twice.
        """
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
            if self.route.two_way is not None:
                # A two-way create is deferred under the other side's field names: retry the record
                # as the source gave it, so it is planned (twin or create) again.
                records = [self.two_way_raw.pop(r.primary_key, r) for r in records]
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
