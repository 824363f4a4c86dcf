"""Reconcile: merge a complete listing of the destination into the link map.

A listing is written in pages to ``ds_listing`` under a fresh ``reconcile_id`` and merged by one
transaction (``finish_listing``) that adopts what the map lost, re-points re-created rows and (when
the destination listed every row it holds) marks the vanished ones ``gone``. The route-level facts
(when, how many keys, which were listed twice) go to ``ds_route_state`` so that status and checks
never re-scan ``ds_listing``.

Only one listing of a route runs at a time: the caller holds the route's listing lease
(``LISTING_LEASE``) and passes it as the fence.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_assets.state._db import Part, aware, chunks, utcnow
from sync_assets.state._leases import Fence, check_fence
from sync_assets.state._schema import links, listing, route_state

_DUPLICATES_KEPT = 50  # duplicate keys whose ids are stored for status and checks
_ADOPTED_KEYS_KEPT = 10_000  # of the listing partition's adopted intents, named in the result


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What merging a listing changed in the link map."""

    listed: int
    adopted: int
    gone: int
    duplicates: int
    duplicate_keys: list[tuple[str, list[str]]]
    adopted_intents: int = 0  # of ``adopted``: creates whose link was lost (any partition's)
    adopted_keys: tuple[str, ...] = ()  # the listing partition's own such creates (at most 10,000)


class _Merge:
    """The statements of one listing's merge, all in the caller's transaction."""

    def __init__(self, conn: Connection, route: str, reconcile_id: str) -> None:
        self.conn = conn
        self.route = route
        self.reconcile_id = reconcile_id
        self.this = sa.and_(listing.c.route == route, listing.c.reconcile_id == reconcile_id)
        lst = listing.alias("l")
        self.in_listing = sa.and_(
            lst.c.route == route,
            lst.c.reconcile_id == reconcile_id,
            lst.c.primary_key == links.c.primary_key,
        )
        # ``OFFSET 0`` keeps PostgreSQL from turning the (NOT) EXISTS into a semi- or anti-join: the
        # listing's rows are new, so no statistics ever describe them, and the planner estimated one
        # row on each side and joined them in a nested loop whose inner side walked the whole listing
        # per link (83-104 s in use; 130 s at 30,000 keys, now 0.7 s). A correlated subquery probes
        # the listing's index by key once per link whatever the estimates, as SQLite plans it anyway.
        self.listed = sa.select(lst.c.primary_key).where(self.in_listing).offset(0).exists()
        self.same_id = sa.exists().where(self.in_listing, lst.c.destination_id == links.c.destination_id)
        self.listed_id = sa.select(sa.func.min(lst.c.destination_id)).where(self.in_listing).scalar_subquery()

    def count_listed(self) -> int:
        """Distinct keys in the listing."""
        q = sa.select(sa.func.count(sa.distinct(listing.c.primary_key))).where(self.this)
        return int(self.conn.execute(q).scalar_one())

    def duplicates(self) -> tuple[int, list[tuple[str, list[str]]]]:
        """How many keys were listed more than once, and (the first 50 of) them with their ids."""
        dup_q = (
            sa.select(listing.c.primary_key, sa.func.count())
            .where(self.this)
            .group_by(listing.c.primary_key)
            .having(sa.func.count() > 1)
        )
        dup_rows = self.conn.execute(dup_q.order_by(listing.c.primary_key)).all()
        dup_keys: list[tuple[str, list[str]]] = []
        for pk, _n in dup_rows[:_DUPLICATES_KEPT]:
            ids = self.conn.execute(
                sa.select(listing.c.destination_id)
                .where(self.this, listing.c.primary_key == pk)
                .order_by(listing.c.destination_id)
            ).scalars()
            dup_keys.append((pk, list(ids)))
        return len(dup_rows), dup_keys

    def own_listed_intents(self, partition: str) -> tuple[str, ...]:
        """``partition``'s intents whose key is listed (the creates it may now skip)."""
        q = (
            sa.select(links.c.primary_key)
            .where(
                links.c.route == self.route,
                links.c.state == "creating",
                links.c.partition == partition,
                self.listed,
            )
            .limit(_ADOPTED_KEYS_KEPT)
        )
        return tuple(self.conn.execute(q).scalars())

    def adopt_intents(self) -> int:
        """Link intents whose key is listed: our create landed but its link was lost.

        The intent carries the hash of what was sent, so the row is linked as unchanged (no re-send).
        """
        stmt = (
            links.update()
            .where(links.c.route == self.route, links.c.state == "creating", self.listed)
            .values(destination_id=self.listed_id, state="linked")
            .execution_options(synchronize_session=False)
        )
        return int(self.conn.execute(stmt).rowcount or 0)

    def adopt_listed(self) -> int:
        """Re-point links whose key is listed but not under the id they hold (content hash unknown).

        The next sight of such a record updates it.
        """
        stmt = (
            links.update()
            .where(
                links.c.route == self.route,
                self.listed,
                sa.or_(links.c.state != "linked", links.c.destination_id.is_(None), ~self.same_id),
            )
            .values(destination_id=self.listed_id, state="linked", content_hash=sa.null())
            .execution_options(synchronize_session=False)
        )
        return int(self.conn.execute(stmt).rowcount or 0)

    def insert_unknown(self) -> int:
        """Link listed keys the map has never seen."""
        unknown = (
            sa.select(
                listing.c.route,
                listing.c.primary_key,
                sa.func.min(listing.c.destination_id),
                sa.literal("linked"),
            )
            .where(
                self.this,
                ~sa.select(links.c.primary_key)
                .where(links.c.route == self.route, links.c.primary_key == listing.c.primary_key)
                .offset(0)  # a probe of the link map by key per listed row (see ``listed``)
                .exists(),
            )
            .group_by(listing.c.route, listing.c.primary_key)
        )
        stmt = links.insert().from_select(["route", "primary_key", "destination_id", "state"], unknown)
        return int(self.conn.execute(stmt).rowcount or 0)

    def mark_gone(self, started_at: dt.datetime, partition: str | None) -> int:
        """An authoritative listing: mark unlisted linked rows ``gone``; drop ``partition``'s unlisted intents.

        Only rows linked before the listing started: another partition may have created rows
        meanwhile; only ``partition``'s intents: another partition's may be in flight.
        """
        not_listed = ~self.listed
        gone = self.conn.execute(
            links.update()
            .where(
                links.c.route == self.route,
                links.c.state == "linked",
                sa.or_(links.c.synced_at.is_(None), links.c.synced_at < started_at),
                not_listed,
            )
            .values(state="gone", content_hash=None)
        ).rowcount
        if partition is not None:
            self.conn.execute(
                links.delete().where(
                    links.c.route == self.route,
                    links.c.partition == partition,
                    links.c.state == "creating",
                    not_listed,
                )
            )
        return int(gone or 0)

    def drop_older_listings(self) -> None:
        """Delete the route's other (older, abandoned) listings."""
        self.conn.execute(
            listing.delete().where(listing.c.route == self.route, listing.c.reconcile_id != self.reconcile_id)
        )


class ListingStore(Part):
    """Destination listings and their merge into the link map."""

    def begin_listing(self, route: str) -> str:
        """A fresh listing id for ``route``."""
        return uuid.uuid4().hex

    def add_listing(self, route: str, reconcile_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Add a page of ``(primary_key, destination_id)`` to a listing."""
        rows = [
            {"route": route, "reconcile_id": reconcile_id, "primary_key": pk, "destination_id": did}
            for pk, did in pairs
        ]
        with self.db.write() as conn:
            for chunk in chunks(rows):
                conn.execute(listing.insert(), list(chunk))

    def finish_listing(
        self,
        route: str,
        reconcile_id: str,
        *,
        authoritative: bool,
        partition: str | None = None,
        started_at: dt.datetime | None = None,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> ReconcileResult:
        """Merge a finished listing of the destination into the link map.

        Adopts rows created but never linked (a crash between create and link) and rows the map
        does not know; re-points links whose row was re-created. With ``authoritative`` (the
        destination lists every row it holds): marks linked rows absent from the listing ``gone``
        — only rows linked before the listing started, since another partition may have created
        rows meanwhile — and drops ``partition``'s intents whose create never landed (another
        partition's intents may be in flight). Counts keys listed more than once.

        Only one listing of a route runs at a time: the caller holds the route's listing lease and
        passes it as ``fence``; a listing whose lease was taken over merges nothing (``LeaseLost``).
        """
        now = now or utcnow()
        started_at = started_at or now
        with self.db.write() as conn:
            check_fence(self.db, conn, route, fence)
            merge = _Merge(conn, route, reconcile_id)
            listed = merge.count_listed()
            duplicates, dup_keys = merge.duplicates()
            mine = merge.own_listed_intents(partition) if partition is not None else ()
            adopted_intents = merge.adopt_intents()
            adopted = merge.adopt_listed()
            inserted = merge.insert_unknown()
            gone = merge.mark_gone(started_at, partition) if authoritative else 0
            merge.drop_older_listings()
            row: dict[str, Any] = {
                "route": route,
                "last_reconciled_at": now,
                "reconcile_id": reconcile_id,
                "listed": listed,
                "duplicates": duplicates,
                "listing_started_at": started_at,
                "duplicate_keys": json.dumps(dup_keys) if dup_keys else None,
            }
            self.db.upsert(conn, route_state, [row], ["route"])
        return ReconcileResult(
            listed=listed,
            adopted=adopted_intents + adopted + inserted,
            gone=gone,
            duplicates=duplicates,
            duplicate_keys=dup_keys,
            adopted_intents=adopted_intents,
            adopted_keys=mine,
        )

    def discard_listing(self, route: str, reconcile_id: str) -> None:
        """Drop an abandoned listing."""
        with self.db.write() as conn:
            conn.execute(listing.delete().where(listing.c.route == route, listing.c.reconcile_id == reconcile_id))

    def last_reconcile(self, route: str) -> tuple[dt.datetime | None, int, list[tuple[str, list[str]]]]:
        """When the route was last reconciled, how many keys it listed twice, and (some of) which.

        One primary-key lookup: the duplicate keys were stored when the listing finished, so this
        never scans ds_listing (a query grouping the listing planned as a nested loop over it).
        """
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    route_state.c.last_reconciled_at, route_state.c.duplicates, route_state.c.duplicate_keys
                ).where(route_state.c.route == route)
            ).first()
        if row is None:
            return None, 0, []
        when, dups, keys = row
        pairs = [(str(k), list(ids)) for k, ids in json.loads(keys)] if keys else []
        return aware(when), int(dups or 0), pairs

    def last_listing(self, route: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``(started_at, finished_at)`` of the route's last complete listing (None, None if never)."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(route_state.c.listing_started_at, route_state.c.last_reconciled_at).where(
                    route_state.c.route == route
                )
            ).first()
        if row is None:
            return None, None
        return aware(row[0]), aware(row[1])
