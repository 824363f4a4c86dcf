"""The link map: which destination row each source record is, and what we last wrote to it.

Keyed by ``(route, primary_key)``, not by partition (see ``_schema``). Link states::

    creating  an intent: a create is about to be (or was) sent; no destination id known yet
    linked    destination_id known; content_hash is what we last wrote (NULL after an adoption)
    gone      a reconcile found the row missing from the destination; the next sight re-creates it

The per-page statements (look up a page's keys, claim its creates, commit its outcome) are the
engine's hot path and use raw DB-API SQL on purpose (see ``Database``): keep them raw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_assets.state._db import BATCH, Database, Part, chunks, utcnow
from sync_assets.state._leases import Fence, check_fence, live_partitions
from sync_assets.state._outcomes import clear_failures, record_failures
from sync_assets.state._passes import Checkpoint, put_checkpoint
from sync_assets.state._schema import links

_LINK_COLS = ("route", "primary_key", "partition", "destination_id", "content_hash", "state", "synced_at")
_CLAIMED_MEANWHILE = "claimed by another partition meanwhile"


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of the link map."""

    primary_key: str
    destination_id: str | None
    content_hash: str | None
    state: str
    partition: str | None


@dataclass(frozen=True, slots=True)
class Claims:
    """The outcome of claiming a page's creates (``StateStore.claim_creates``)."""

    links: dict[str, Link]  # what the map held for the page's keys before the claim
    deferred: dict[str, str]  # key -> why it must not be created now (another pass is creating it…)
    stale: frozenset[str] = frozenset()  # of ``deferred``: taken over from a dead pass; list first


@dataclass(slots=True)
class _ClaimPlan:
    """A page's keys sorted by what the claim must do with them (pure: no database access)."""

    new: list[str]  # not in the map: insert an intent
    regain: list[str]  # our own earlier intent, a row gone from the destination: re-claim
    foreign: list[Link]  # another partition's intent: defer (and take over a dead pass's)


def _plan_claims(keys: Sequence[str], found: Mapping[str, Link], partition: str) -> _ClaimPlan:
    plan = _ClaimPlan([], [], [])
    for k in keys:
        link = found.get(k)
        if link is None:
            plan.new.append(k)
        elif link.state == "linked" and link.destination_id:
            continue
        elif link.state == "creating" and link.partition and link.partition != partition:
            plan.foreign.append(link)
        else:
            plan.regain.append(k)
    return plan


def _raw_upsert_links(db: Database, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    cols = ", ".join(_LINK_COLS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _LINK_COLS[2:])
    head = f"INSERT INTO ds_links ({cols}) VALUES "
    tail = f" ON CONFLICT (route, primary_key) DO UPDATE SET {updates}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if db.dialect == "postgresql":
            from psycopg2.extras import execute_values

            execute_values(cursor, head + "%s" + tail, rows, page_size=BATCH)
        else:
            cursor.executemany(head + f"({db.ph(len(_LINK_COLS))})" + tail, rows)
    finally:
        cursor.close()


def _raw_insert_intents(db: Database, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Insert intents that do not exist yet; the keys actually inserted."""
    cols = ", ".join(_LINK_COLS)
    head = f"INSERT INTO ds_links ({cols}) VALUES "
    tail = " ON CONFLICT (route, primary_key) DO NOTHING"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if db.dialect == "postgresql":
            from psycopg2.extras import execute_values

            # READ COMMITTED: a concurrent claim of the same key makes this insert wait, then
            # skip the row; RETURNING says which rows were ours.
            got = execute_values(cursor, head + "%s" + tail + " RETURNING primary_key", rows, fetch=True)
            return {r[0] for r in got}
        # SQLite: BEGIN IMMEDIATE serialises writers, so the lookup before this is still true.
        cursor.executemany(head + f"({db.ph(len(_LINK_COLS))})" + tail, rows)
        return {r[1] for r in rows}
    finally:
        cursor.close()


_LOOKUP = ("primary_key", "destination_id", "content_hash", "state", "partition")


def _select_links(db: Database, conn: Connection, route: str, keys: list[str], out: dict[str, Link]) -> None:
    if db.dialect == "postgresql":  # one probe per key (``Database.rows_by_keys`` says why)
        rows = db.rows_by_keys(conn, links, _LOOKUP, {"route": route}, "primary_key", keys)
    else:
        rows = []
        for chunk in chunks(keys):
            sql = f"SELECT {', '.join(_LOOKUP)} FROM ds_links WHERE route = ? AND primary_key IN ({db.ph(len(chunk))})"
            rows += conn.exec_driver_sql(sql, (route, *chunk)).all()
    for pk, did, h, st, part in rows:
        out[pk] = Link(pk, did, h, st, part)


def _defer_foreign(
    conn: Connection,
    route: str,
    partition: str,
    foreign: Sequence[Link],
    now: dt.datetime,
    deferred: dict[str, str],
    stale: set[str],
) -> None:
    """Defer keys another partition is creating; take over (and still defer) a dead pass's intents."""
    live = live_partitions(conn, route, now)
    for link in foreign:
        if link.partition in live:
            deferred[link.primary_key] = f"being created by partition {link.partition}"
            continue
        taken = conn.execute(
            links.update()
            .where(
                links.c.route == route,
                links.c.primary_key == link.primary_key,
                links.c.state == "creating",
                links.c.partition == link.partition,
            )
            .values(partition=partition)
        ).rowcount
        if taken:
            stale.add(link.primary_key)
        deferred[link.primary_key] = (
            f"left unconfirmed by an interrupted pass of partition {link.partition}; "
            "the destination is listed before it is created"
            if taken
            else "being created by another partition"
        )


def _regain(
    conn: Connection,
    route: str,
    partition: str,
    keys: Sequence[str],
    hashes: Mapping[str, str],
    deferred: dict[str, str],
) -> None:
    """Re-claim our own earlier intents and rows gone from the destination (unless claimed meanwhile)."""
    for k in keys:
        won = conn.execute(
            links.update()
            .where(
                links.c.route == route,
                links.c.primary_key == k,
                sa.or_(
                    links.c.state == "gone",
                    sa.and_(links.c.state == "creating", links.c.partition == partition),
                    links.c.destination_id.is_(None),
                ),
            )
            .values(state="creating", partition=partition, destination_id=None, content_hash=hashes[k])
        ).rowcount
        if not won:
            deferred[k] = _CLAIMED_MEANWHILE


class LinkStore(Part):
    """The link map: look-ups, claims of creates, and the per-page commit."""

    def get_links(self, route: str, keys: Iterable[str]) -> dict[str, Link]:
        """The links of ``keys`` (one query per 500 keys; never the whole map)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, Link] = {}
        with self.db.read() as conn:
            _select_links(self.db, conn, route, keys, out)
        return out

    def claim_creates(
        self,
        route: str,
        partition: str,
        hashes: Mapping[str, str],
        *,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> Claims:
        """Look up a page's keys and claim, in the same transaction, the ones about to be created.

        A claim is an intent row (state ``creating``, this partition, the content hash about to be
        sent), written before any create goes out: a crash then leaves the intent for a listing to
        resolve, and an adopted row whose content is what we sent is linked as unchanged.

        The claim is exclusive per (route, key): a key another partition's live pass is creating,
        or one a concurrent transaction claimed first, is *deferred* (the caller retries it after its
        page, when the other pass has linked it). An intent left by a pass whose lease died is taken
        over but deferred too: the row may exist, so only a listing may decide to create it.

        Args:
            route: The route.
            partition: The partition whose pass claims.
            hashes: ``{primary_key: content_hash}`` of the page's valid records.
            fence: The partition lease this pass must still hold.
            now: The time (default: now).

        Returns:
            The links found before the claim, and the deferred keys with the reason.
        """
        now = now or utcnow()
        keys = list(hashes)
        out: dict[str, Link] = {}
        deferred: dict[str, str] = {}
        stale: set[str] = set()
        with self.db.write() as conn:
            check_fence(self.db, conn, route, fence)
            _select_links(self.db, conn, route, keys, out)
            plan = _plan_claims(keys, out, partition)
            if plan.foreign:
                _defer_foreign(conn, route, partition, plan.foreign, now, deferred, stale)
            _regain(conn, route, partition, plan.regain, hashes, deferred)
            if plan.new:
                rows = [(route, k, partition, None, hashes[k], "creating", None) for k in plan.new]
                inserted = _raw_insert_intents(self.db, conn, rows)
                deferred.update((k, _CLAIMED_MEANWHILE) for k in plan.new if k not in inserted)
        return Claims(out, deferred, frozenset(stale))

    def record_intents(self, route: str, partition: str, keys: Sequence[str]) -> None:
        """Mark ``keys`` as about to be created (before the create calls go out)."""
        rows = [(route, k, partition, None, None, "creating", None) for k in keys]
        with self.db.write() as conn:
            _raw_upsert_links(self.db, conn, rows)

    def link_count(self, route: str, partition: str | None = None) -> int:
        """How many links of a route (or one partition) are ``linked``."""
        q = sa.select(sa.func.count()).select_from(links).where(links.c.route == route)
        q = q.where(links.c.state == "linked")
        if partition is not None:
            q = q.where(links.c.partition == partition)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar_one())

    def pending_intents(self, route: str, partition: str | None = None) -> int:
        """How many creates of a route (or one partition) are not confirmed yet (``creating``)."""
        q = sa.select(sa.func.count()).select_from(links)
        q = q.where(links.c.route == route, links.c.state == "creating")
        if partition is not None:
            q = q.where(links.c.partition == partition)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar_one())

    def iter_links(self, route: str, partition: str | None = None, *, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """``(primary_key, destination_id)`` of every linked row, streamed in key order."""
        after = ""
        while True:
            q = sa.select(links.c.primary_key, links.c.destination_id).where(
                links.c.route == route, links.c.state == "linked", links.c.primary_key > after
            )
            if partition is not None:
                q = q.where(links.c.partition == partition)
            with self.db.read() as conn:
                rows = conn.execute(q.order_by(links.c.primary_key).limit(batch)).all()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    def commit_page(
        self,
        route: str,
        partition: str,
        *,
        linked: Sequence[tuple[str, str, str | None]] = (),
        unlinked_hashes: Sequence[tuple[str, str]] = (),
        dropped_intents: Sequence[str] = (),
        failures: Sequence[tuple[str, str]] = (),
        succeeded: Sequence[str] = (),
        checkpoint: Checkpoint | None = None,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Commit one page's outcome in one transaction.

        Args:
            route: The route.
            partition: The partition whose pass wrote the page.
            linked: ``(primary_key, destination_id, content_hash)`` written this page.
            unlinked_hashes: ``(primary_key, content_hash)`` of creates that returned no id
                (durable-sync's ``True``); they stay intents until a reconcile finds their id.
            dropped_intents: keys whose create definitely did not happen (skipped or rejected).
            failures: ``(primary_key, error)``; attempts are counted.
            succeeded: keys that wrote (or were unchanged) and so no longer fail.
            checkpoint: the pass's new checkpoint (cursor of the next page), or None to leave it.
            fence: the partition lease the pass must still hold (else ``LeaseLost``, nothing written).
            now: The time (default: now).
        """
        now = now or utcnow()
        with self.db.write() as conn:
            check_fence(self.db, conn, route, fence)
            if linked:
                stamp = self.db.db_time(now)
                _raw_upsert_links(
                    self.db, conn, [(route, pk, partition, did, h, "linked", stamp) for pk, did, h in linked]
                )
            for pk, h in unlinked_hashes:
                conn.execute(
                    links.update()
                    .where(links.c.route == route, links.c.primary_key == pk, links.c.state == "creating")
                    .values(content_hash=h, synced_at=now)
                )
            for chunk in chunks(list(dropped_intents)):
                conn.execute(
                    links.delete().where(
                        links.c.route == route,
                        links.c.state == "creating",
                        links.c.partition == partition,
                        links.c.primary_key.in_(chunk),
                    )
                )
            if failures:
                record_failures(self.db, conn, route, partition, failures, now)
            clear_failures(self.db, conn, route, partition, succeeded)
            if checkpoint is not None:
                put_checkpoint(self.db, conn, route, partition, checkpoint)


class LinkMap:
    """A read-only view of a route's link map (one partition, or all): what downstream assets get.

    It never holds the whole map in memory: ``len`` is a count query, iteration streams pages of
    1,000 links in key order, ``get`` is a point lookup.

    Args:
        store: The state store.
        route: The route.
        partition: One partition's links only (None: the whole route's).
    """

    def __init__(self, store: LinkStore, route: str, partition: str | None = None) -> None:
        """A view of ``route``'s links (of ``partition`` only, when given)."""
        self.store = store
        self.route = route
        self.partition = partition

    def __repr__(self) -> str:
        """``LinkMap(route/partition)``."""
        where = f"{self.route}/{self.partition}" if self.partition else self.route
        return f"LinkMap({where})"

    def __len__(self) -> int:
        """How many keys are linked (a count query)."""
        return self.store.link_count(self.route, self.partition)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """``(primary_key, destination_id)`` pairs, streamed in key order."""
        return self.store.iter_links(self.route, self.partition)

    def items(self) -> Iterator[tuple[str, str]]:
        """``(primary_key, destination_id)`` pairs, streamed in key order."""
        return iter(self)

    def get(self, primary_key: str) -> str | None:
        """The destination id of a linked key (of this view's partition), or None."""
        link = self.store.get_links(self.route, [primary_key]).get(primary_key)
        if link is None or link.state != "linked":
            return None
        if self.partition is not None and link.partition != self.partition:
            return None
        return link.destination_id

    def to_dict(self) -> dict[str, str]:
        """The whole map in memory: for small maps only."""
        return dict(iter(self))
