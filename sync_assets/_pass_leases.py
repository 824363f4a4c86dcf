"""The leases one pass holds: its partition's, and its route's listing lease while it lists.

One pass of a partition at a time, however the run was launched: the lease, not a run tag or a pool,
is the guarantee, and every commit of the pass is fenced by it. A pass that dies loses its lease
``seconds`` after its last renewal; one that finds its lease taken over stops at its next page (its
commits would be refused anyway). One listing of a route runs at a time: a pass that needs one while
another partition lists waits for it and, when that listing serves it, uses it instead of listing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid

from connectors.core import SyncError
from sync_assets.state import LISTING_LEASE, Fence, LeaseLost, StateStore, utcnow

__all__ = ["PAIR_LEASE", "PartitionBusy", "PassLeases"]

PAIR_LEASE = "*pair"  # the lease a two-way pair's passes share (partition keys never hold '*')

log = logging.getLogger("sync_assets.engine")


class PartitionBusy(SyncError):
    """Another pass holds the partition's lease; this one wrote nothing and is not a failure.

    Attributes:
        holder_run_id: The run id of the pass that holds it, when known.
    """

    def __init__(self, message: str, *, holder_run_id: str | None = None) -> None:
        """A busy partition, described by ``message``, held by run ``holder_run_id`` when known."""
        super().__init__(message)
        self.holder_run_id = holder_run_id


class PassLeases:
    """Takes, renews and releases the leases of one pass of one partition.

    Args:
        store: The state store.
        route: The route's name.
        partition: The partition key.
        run_id: Stored on the leases (the Dagster run id), shown to a pass that waits.
        seconds: How long a lease lasts without renewal.
        wait: How long to wait for the partition's lease before ``PartitionBusy``.

    Attributes:
        fences: The leases held now.
        lost: A renewal found a lease taken over; ``check`` raises ``LeaseLost`` from then on.
    """

    def __init__(
        self, store: StateStore, route: str, partition: str, *, run_id: str | None, seconds: float, wait: float
    ) -> None:
        """Leases of ``route``/``partition``; none is held yet."""
        self.store = store
        self.name = route
        self.partition = partition
        self.run_id = run_id
        self.seconds = seconds
        self.wait = wait
        self.fences: list[Fence] = []
        self.lost = False
        self.owners: dict[str, str] = {}  # holder -> the lease's route, when not ``route`` (a pair's)

    async def take_partition(self) -> Fence:
        """The partition's lease, waiting up to ``wait`` seconds for another pass to give it up.

        Raises:
            PartitionBusy: Another pass still holds it.
        """
        return await self._take(self.name, self.partition)

    async def take_pair(self, pair: str) -> Fence:
        """A two-way pair's lease (``PAIR_LEASE`` of the pair): its two directions never run at once.

        Raises:
            PartitionBusy: The other direction's pass holds it.
        """
        return await self._take(pair, PAIR_LEASE)

    def _route_of(self, fence: Fence) -> str:
        return self.owners.get(fence.holder, self.name)

    async def _take(self, route: str, name: str) -> Fence:
        fence = Fence(name, uuid.uuid4().hex, self.seconds)
        if route != self.name:
            self.owners[fence.holder] = route
        deadline = time.monotonic() + self.wait
        delay = 0.1
        while True:
            taken, previous = self.store.acquire_lease(
                route, name, fence.holder, seconds=fence.seconds, run_id=self.run_id
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
                    f"route {route} {'partition ' + name if route == self.name else 'lease ' + name}: "
                    "another pass holds it"
                    + (f" (run {holder})" if holder else "")
                    + "; nothing was written. That pass brings the partition up to date; the next due "
                    "run follows it.",
                    holder_run_id=holder,
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    async def renew_forever(self) -> None:
        """Renew the held leases every third of their time until cancelled.

        A lease found taken over sets ``lost`` (the pass stops at its next check; its commits would be
        refused anyway: they are fenced).
        """
        while True:
            await asyncio.sleep(self.seconds / 3)
            for fence in list(self.fences):
                try:
                    held = self.store.renew_lease(self._route_of(fence), fence)
                except Exception:  # the database is away: the fenced commits decide
                    log.warning("%s/%s: could not renew lease %s", self.name, self.partition, fence.name, exc_info=True)
                    continue
                if not held:
                    log.warning("%s/%s: lease %s was taken over", self.name, self.partition, fence.name)
                    self.lost = True

    def release(self, fence: Fence) -> None:
        """Give ``fence``'s lease up (when the store is away, it expires by itself)."""
        if fence in self.fences:
            self.fences.remove(fence)
        try:
            self.store.release_lease(self._route_of(fence), fence)
        except Exception:  # it expires by itself
            log.warning("%s/%s: could not release lease %s", self.name, self.partition, fence.name, exc_info=True)

    def check(self) -> None:
        """Raise ``LeaseLost`` when a lease of this pass was taken over."""
        if self.lost:
            raise LeaseLost(
                f"route {self.name} partition {self.partition}: the lease was taken over by another pass "
                "(this one stopped renewing it); it resumes from the last committed page"
            )

    async def take_listing(self, not_before: dt.datetime) -> Fence | None:
        """The route's listing lease, or None when a listing that serves this pass finished while it waited.

        A listing serves this pass when it began after ``not_before`` or, when this partition has no
        unconfirmed creates, when it finished after this pass began waiting.
        """
        fence = Fence(LISTING_LEASE, uuid.uuid4().hex, self.seconds)
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
                self.name, LISTING_LEASE, fence.holder, seconds=fence.seconds, run_id=self.run_id
            )
            if taken:
                self.fences.append(fence)
                if served():  # a listing finished between the look and the take
                    self.release(fence)
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
            self.check()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
