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

from sync_assets.state._db import Database, Part, aware, chunks
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
    for chunk in chunks(keys):
        q = sa.select(outcomes.c.primary_key, outcomes.c.attempts, outcomes.c.first_failed_at).where(
            outcomes.c.route == route,
            outcomes.c.partition == partition,
            outcomes.c.primary_key.in_(chunk),
        )
        for pk, attempts, first in conn.execute(q):
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


def clear_failures(conn: Connection, route: str, partition: str, keys: Sequence[str]) -> None:
    """Forget the failures of ``keys`` (they wrote, or were unchanged) in ``conn``'s transaction."""
    for chunk in chunks(list(keys)):
        conn.execute(
            outcomes.delete().where(
                outcomes.c.route == route,
                outcomes.c.partition == partition,
                outcomes.c.primary_key.in_(chunk),
            )
        )


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
