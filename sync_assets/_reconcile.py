"""The reconcile steps of a pass: list the destination once and merge the listing into the link map.

Never per page: a pass lists when it is the first, a full refresh, when a crash left intents, or
when the last listing is older than the route's ``reconcile_every``. One listing of a route runs at
a time (its listing lease, ``sync_assets._pass_leases``); a plan lists into memory and writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

from connectors.core import (
    ListingSession,
)
from sync_assets._pass_state import PassState
from sync_assets.state import Fence, ReconcileResult, utcnow

__all__ = ["ADOPTED_TRACK_LIMIT", "LIST_BATCH", "RECONCILE_MIN_GAP", "ReconcileSteps"]

log = logging.getLogger("sync_assets.engine")

RECONCILE_MIN_GAP = dt.timedelta(minutes=10)  # a forced reconcile is skipped if one ran this recently
LIST_BATCH = 1000
ADOPTED_TRACK_LIMIT = 10_000  # adopted keys of our own creates tracked to count them as created


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class ReconcileSteps(PassState):
    """The reconcile steps of ``sync_assets.engine._Pass``."""

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
