"""Rate limits shared by every process: one GCRA row per credential (``ds_rate_limits``).

The arithmetic, the client side (claiming a few slots at a time, handing them out in order) and why
not pyrate-limiter are in :mod:`connectors.http.limits`; this is the store side, the
``SlotStore`` a run's ``SharedLimiter`` draws on. A claim is one short write transaction: insert the
credential's row if it is new, lock it (PostgreSQL: ``SELECT … FOR UPDATE``; SQLite: the
transaction's ``BEGIN IMMEDIATE``), read the clock *after* the lock is held (a claim that waited for
the lock must not schedule in the past), advance ``tat``, commit. A block (a 429's ``Retry-After``)
is ``blocked_until = max(blocked_until, until)`` on the same row.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.http import Claim, Rate, SharedLimiter, gcra_claim, use_shared_limits
from sync_assets.state._db import Part, utcnow
from sync_assets.state._schema import rate_limits


@dataclass(frozen=True, slots=True)
class RateLimitRow:
    """A credential's shared schedule, as stored.

    Attributes:
        key: The credential's ``rate_limit_key``.
        tat: Theoretical arrival time of its next request (epoch seconds).
        blocked_until: End of a server-named wait (epoch seconds; 0.0: none yet).
    """

    key: str
    tat: float
    blocked_until: float


class RateLimitStore(Part):
    """The credentials' shared schedules: ``connectors.http.SlotStore`` over the state store."""

    def _locked_row(self, conn: Connection, key: str) -> tuple[float, float]:
        self.db.upsert(
            conn,
            rate_limits,
            [{"key": key, "tat": 0.0, "blocked_until": 0.0, "updated_at": utcnow()}],
            ["key"],
            update=[],
        )
        q = sa.select(rate_limits.c.tat, rate_limits.c.blocked_until).where(rate_limits.c.key == key)
        if self.db.dialect == "postgresql":
            q = q.with_for_update()
        tat, blocked = conn.execute(q).one()
        return float(tat), float(blocked)

    def claim_rate_slots(self, key: str, rate: Rate, n: int) -> Claim:
        """Claim ``n`` request slots of credential ``key`` at ``rate`` for this process.

        Args:
            key: The credential's ``rate_limit_key`` (never the secret).
            rate: The rate the caller paces it at.
            n: Slots wanted (a claim may serve several requests).

        Returns:
            The slots' times (epoch seconds) and the credential's block; no slot while it is blocked.
        """
        with self.db.write() as conn:
            tat, blocked = self._locked_row(conn, key)
            new_tat, slots = gcra_claim(tat, blocked, rate, n, time.time())
            if slots:
                conn.execute(
                    rate_limits.update().where(rate_limits.c.key == key).values(tat=new_tat, updated_at=utcnow())
                )
        return Claim(slots, blocked)

    def block_rate_limit(self, key: str, until: float) -> None:
        """Block credential ``key`` for every process until ``until`` (epoch seconds), unless it is longer.

        Args:
            key: The credential's ``rate_limit_key``.
            until: Epoch seconds (now plus the server's ``Retry-After``).
        """
        with self.db.write() as conn:
            _, blocked = self._locked_row(conn, key)
            if until > blocked:
                conn.execute(
                    rate_limits.update()
                    .where(rate_limits.c.key == key)
                    .values(blocked_until=until, updated_at=utcnow())
                )

    def rate_limit(self, key: str) -> RateLimitRow | None:
        """Credential ``key``'s shared schedule, or None before its first claim (status, tests)."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(rate_limits.c.tat, rate_limits.c.blocked_until).where(rate_limits.c.key == key)
            ).first()
        return RateLimitRow(key, float(row[0]), float(row[1])) if row is not None else None

    @contextlib.contextmanager
    def shared_rate_limits(self) -> Iterator[SharedLimiter]:
        """Pace every client of this context (a run's pass) by the schedules in this store.

        ``asyncio.run`` started inside the block inherits it; ``connectors.http.keep_local_limits``
        (``sync_assets.testing.materialize_route``) keeps the in-process limits instead.

        Yields:
            The run's limiter (its ``claims`` count the store transactions).
        """
        limiter = SharedLimiter(self, clock=time.time)
        with use_shared_limits(limiter):
            yield limiter
