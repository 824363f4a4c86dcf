"""Record outcomes: which records failed, with what error, how many times (``ds_record_outcomes``).

A failure row lives until the record writes (the page that succeeds deletes it) or until a complete
pass no longer sees the record (``PassStore.finish_pass(forget_unseen_failures=True)``). The page
commit counts attempts with ``record_failures`` in its own transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_assets.state._db import Database, Part, aware
from sync_assets.state._schema import outcomes


@dataclass(frozen=True, slots=True)
class Outcome:
    """A record that failed to sync, and how often."""

    primary_key: str
    error: str
    attempts: int
    first_failed_at: dt.datetime
    last_seen: dt.datetime


def record_failures(
    db: Database,
    conn: Connection,
    route: str,
    partition: str,
    failures: Sequence[tuple[str, str]],
    now: dt.datetime,
) -> None:
    """Store ``(primary_key, error)`` failures in ``conn``'s transaction, counting attempts."""
    keys = [k for k, _ in failures]
    prior: dict[str, tuple[int, dt.datetime]] = {}
    where = {"route": route, "partition": partition}
    for pk, attempts, first in db.rows_by_keys(
        conn, outcomes, ("primary_key", "attempts", "first_failed_at"), where, "primary_key", keys
    ):
        prior[pk] = (attempts, first)
    rows: list[dict[str, Any]] = []
    for pk, error in failures:
        attempts, first = prior.get(pk, (0, now))
        rows.append(
            {
                "route": route,
                "partition": partition,
                "primary_key": pk,
                "error": error[:2000],
                "attempts": attempts + 1,
                "first_failed_at": first,
                "last_seen": now,
            }
        )
    db.upsert(conn, outcomes, rows, ["route", "partition", "primary_key"])


def clear_failures(db: Database, conn: Connection, route: str, partition: str, keys: Sequence[str]) -> None:
    """Forget the failures of ``keys`` (they wrote, or were unchanged) in ``conn``'s transaction.

    Every page's keys come here, and few of them ever failed: they are looked up by key, and only the
    failed ones deleted, one by its primary key each (a ``DELETE … IN (…)`` is a walk of the
    partition's failures on PostgreSQL without statistics; ``Database.rows_by_keys``).
    """
    where = {"route": route, "partition": partition}
    failed = [r[0] for r in db.rows_by_keys(conn, outcomes, ("primary_key",), where, "primary_key", keys)]
    if failed:
        stmt = outcomes.delete().where(
            outcomes.c.route == route,
            outcomes.c.partition == partition,
            outcomes.c.primary_key == sa.bindparam("pk"),
        )
        conn.execute(stmt, [{"pk": k} for k in failed])


class OutcomeStore(Part):
    """Failed records per route and partition."""

    def failed_records(self, route: str, partition: str | None = None, limit: int = 100) -> list[Outcome]:
        """The failed records of a route (or one partition), in key order."""
        q = sa.select(
            outcomes.c.primary_key,
            outcomes.c.error,
            outcomes.c.attempts,
            outcomes.c.first_failed_at,
            outcomes.c.last_seen,
        ).where(outcomes.c.route == route)
        if partition is not None:
            q = q.where(outcomes.c.partition == partition)
        q = q.order_by(outcomes.c.primary_key).limit(limit)
        with self.db.read() as conn:
            return [
                Outcome(pk, err, n, aware(first), aware(seen))  # type: ignore[arg-type]
                for pk, err, n, first, seen in conn.execute(q)
            ]

    def failed_keys(self, route: str, partition: str, *, seen_before: dt.datetime, limit: int = 500) -> list[str]:
        """Keys of failed records not seen since ``seen_before`` (oldest attempts first)."""
        q = (
            sa.select(outcomes.c.primary_key)
            .where(
                outcomes.c.route == route,
                outcomes.c.partition == partition,
                outcomes.c.last_seen < seen_before,
            )
            .order_by(outcomes.c.last_seen, outcomes.c.primary_key)
            .limit(limit)
        )
        with self.db.read() as conn:
            return list(conn.execute(q).scalars())

    def failed_count(self, route: str, partition: str | None = None) -> int:
        """How many records of a route (or one partition) are failing."""
        q = sa.select(sa.func.count()).select_from(outcomes).where(outcomes.c.route == route)
        if partition is not None:
            q = q.where(outcomes.c.partition == partition)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar_one())
