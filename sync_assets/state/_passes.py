"""Checkpoints and pass history: where an interrupted pass resumes, and how past passes ended.

A checkpoint (``ds_checkpoints``, one per partition) is written with each page's commit, in the same
transaction, so a pass resumes from its last committed page. A finished pass is one row of
``ds_passes``; the history is bounded (the last 200 per partition).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_assets.state._db import Database, Part, aware, utcnow
from sync_assets.state._leases import Fence, check_fence
from sync_assets.state._schema import checkpoints, outcomes, passes

_HISTORY = 200  # passes kept per partition


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a pass of a partition stands: its next page's cursor and its counts so far."""

    pass_id: str
    cursor: str | None
    stats: dict[str, Any]
    options: dict[str, Any]
    started_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PassRecord:
    """A finished pass, as the history keeps it."""

    pass_id: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    stats: dict[str, Any]
    error: str | None
    run_id: str | None


def put_checkpoint(db: Database, conn: Connection, route: str, partition: str, cp: Checkpoint) -> None:
    """Write a partition's checkpoint in ``conn``'s transaction."""
    db.upsert(
        conn,
        checkpoints,
        [
            {
                "route": route,
                "partition": partition,
                "pass_id": cp.pass_id,
                "cursor": cp.cursor,
                "stats": json.dumps(cp.stats),
                "options": json.dumps(cp.options),
                "started_at": cp.started_at,
                "updated_at": cp.updated_at,
            }
        ],
        ["route", "partition"],
    )


def _trim_history(conn: Connection, route: str, partition: str) -> None:
    """Keep a bounded history per partition."""
    cutoff = (
        sa.select(passes.c.id)
        .where(passes.c.route == route, passes.c.partition == partition)
        .order_by(passes.c.id.desc())
        .offset(_HISTORY)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(passes.delete().where(passes.c.route == route, passes.c.partition == partition, passes.c.id <= cutoff))


class PassStore(Part):
    """Checkpoints of running passes and the history of finished ones."""

    def save_checkpoint(self, route: str, partition: str, cp: Checkpoint) -> None:
        """Write a partition's checkpoint (its own transaction)."""
        with self.db.write() as conn:
            put_checkpoint(self.db, conn, route, partition, cp)

    def get_checkpoint(self, route: str, partition: str) -> Checkpoint | None:
        """The partition's checkpoint, or None when no pass is under way."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    checkpoints.c.pass_id,
                    checkpoints.c.cursor,
                    checkpoints.c.stats,
                    checkpoints.c.options,
                    checkpoints.c.started_at,
                    checkpoints.c.updated_at,
                ).where(checkpoints.c.route == route, checkpoints.c.partition == partition)
            ).first()
        if row is None:
            return None
        return Checkpoint(
            pass_id=row[0],
            cursor=row[1],
            stats=json.loads(row[2]),
            options=json.loads(row[3]),
            started_at=aware(row[4]),  # type: ignore[arg-type]
            updated_at=aware(row[5]),  # type: ignore[arg-type]
        )

    def clear_checkpoint(self, route: str, partition: str) -> None:
        """Forget the partition's checkpoint (the next pass starts from the beginning)."""
        with self.db.write() as conn:
            conn.execute(checkpoints.delete().where(checkpoints.c.route == route, checkpoints.c.partition == partition))

    def finish_pass(
        self,
        route: str,
        partition: str,
        *,
        pass_id: str,
        mode: str,
        status: str,
        started_at: dt.datetime,
        stats: dict[str, Any],
        error: str | None = None,
        run_id: str | None = None,
        clear_checkpoint: bool = True,
        forget_unseen_failures: bool = False,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Record a finished pass, in one transaction.

        Optionally clears its checkpoint and forgets failures of records that a complete pass no
        longer saw (they left the source). With ``fence``, nothing is written unless the pass still
        holds its lease (``LeaseLost``).
        """
        now = now or utcnow()
        with self.db.write() as conn:
            check_fence(self.db, conn, route, fence)
            conn.execute(
                passes.insert().values(
                    route=route,
                    partition=partition,
                    pass_id=pass_id,
                    mode=mode,
                    status=status,
                    started_at=started_at,
                    finished_at=now,
                    stats=json.dumps(stats),
                    error=error,
                    run_id=run_id,
                )
            )
            if clear_checkpoint:
                conn.execute(
                    checkpoints.delete().where(checkpoints.c.route == route, checkpoints.c.partition == partition)
                )
            if forget_unseen_failures:
                conn.execute(
                    outcomes.delete().where(
                        outcomes.c.route == route,
                        outcomes.c.partition == partition,
                        outcomes.c.last_seen < started_at,
                    )
                )
            _trim_history(conn, route, partition)

    def last_passes(self, route: str, partition: str, limit: int = 1) -> list[PassRecord]:
        """The partition's latest finished passes, newest first."""
        q = (
            sa.select(
                passes.c.pass_id,
                passes.c.mode,
                passes.c.status,
                passes.c.started_at,
                passes.c.finished_at,
                passes.c.stats,
                passes.c.error,
                passes.c.run_id,
            )
            .where(passes.c.route == route, passes.c.partition == partition)
            .order_by(passes.c.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [
                PassRecord(
                    pass_id=r[0],
                    mode=r[1],
                    status=r[2],
                    started_at=aware(r[3]),  # type: ignore[arg-type]
                    finished_at=aware(r[4]),  # type: ignore[arg-type]
                    stats=json.loads(r[5]),
                    error=r[6],
                    run_id=r[7],
                )
                for r in conn.execute(q)
            ]

    def last_pass_starts(self, route: str) -> dict[str, dt.datetime]:
        """When the latest finished pass of each partition of ``route`` started (one query)."""
        q = (
            sa.select(passes.c.partition, sa.func.max(passes.c.started_at))
            .where(passes.c.route == route, passes.c.mode.in_(("full", "full_refresh")))
            .group_by(passes.c.partition)
        )
        with self.db.read() as conn:
            return {p: aware(t) for p, t in conn.execute(q)}  # type: ignore[misc]
