"""What steers the passes from outside: pauses, the sync-now inbox, per-partition backoff and failure.

- Pauses (``ds_pauses``): a scope (a route, a partition, a system's credentials…) that must not run,
  set by hand or automatically when credentials are refused (``source="auth"``).
- Requests (``ds_requests``): the sync-now inbox the CLI and the webhook routes write and the
  dispatcher sensor takes, each exactly once.
- Partition state (``ds_partition_state``): a partition's backoff (``not_before``) and its last
  failure, shown until a pass succeeds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sync_assets.state._db import Part, aware, chunks, utcnow
from sync_assets.state._schema import partition_state, pauses, requests


@dataclass(frozen=True, slots=True)
class Pause:
    """A paused scope: why, since when, and who paused it (``auth`` or ``manual``)."""

    scope: str
    reason: str
    paused_at: dt.datetime
    fingerprint: str | None
    source: str


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """A sync-now request waiting in the inbox."""

    id: int
    route: str
    partition: str
    only_items: list[str] | None
    full_refresh: bool
    reason: str
    created_at: dt.datetime


class ControlStore(Part):
    """Pauses, sync-now requests and partition state."""

    # ----------------------------------------------------------------------------------- pauses

    def pause(self, scope: str, reason: str, *, fingerprint: str | None = None, source: str = "manual") -> None:
        """Pause ``scope`` (or update the reason of its pause, keeping when it started).

        Every run that a refused credential stops pauses it again; the pause's start stays the first
        one's, so "paused for an hour" (escalation, the dispatcher) counts from when it began.
        """
        with self.db.write() as conn:
            self.db.upsert(
                conn,
                pauses,
                [
                    {
                        "scope": scope,
                        "reason": reason[:2000],
                        "paused_at": utcnow(),
                        "fingerprint": fingerprint,
                        "source": source,
                    }
                ],
                ["scope"],
                update=["reason", "fingerprint", "source"],
            )

    def resume(self, scope: str) -> bool:
        """Lift the pause of ``scope``; False when it was not paused."""
        with self.db.write() as conn:
            return bool(conn.execute(pauses.delete().where(pauses.c.scope == scope)).rowcount)

    def pauses(self) -> dict[str, Pause]:
        """Every pause, by scope."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    pauses.c.scope,
                    pauses.c.reason,
                    pauses.c.paused_at,
                    pauses.c.fingerprint,
                    pauses.c.source,
                )
            ).all()
        return {r[0]: Pause(r[0], r[1], aware(r[2]), r[3], r[4]) for r in rows}  # type: ignore[arg-type]

    def paused(self, scopes: Iterable[str]) -> Pause | None:
        """The first of ``scopes`` that is paused, if any."""
        scopes = [s for s in scopes if s]
        if not scopes:
            return None
        found = {p.scope: p for p in self.pauses().values() if p.scope in scopes}
        for s in scopes:
            if s in found:
                return found[s]
        return None

    # --------------------------------------------------------------------------------- requests

    def enqueue_request(
        self,
        route: str,
        partition: str,
        *,
        only_items: Sequence[str] | None = None,
        full_refresh: bool = False,
        reason: str = "manual",
    ) -> int:
        """Ask for a pass of a partition (of some items only, or a full refresh); the request's id."""
        with self.db.write() as conn:
            res = conn.execute(
                requests.insert().values(
                    route=route,
                    partition=partition,
                    only_items=json.dumps(list(only_items)) if only_items else None,
                    full_refresh=bool(full_refresh),
                    reason=reason,
                    created_at=utcnow(),
                )
            )
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def pending_requests(self, route: str | None = None) -> list[SyncRequest]:
        """The requests not taken yet (of one route, or all), oldest first."""
        q = sa.select(
            requests.c.id,
            requests.c.route,
            requests.c.partition,
            requests.c.only_items,
            requests.c.full_refresh,
            requests.c.reason,
            requests.c.created_at,
        ).where(requests.c.taken_at.is_(None))
        if route is not None:
            q = q.where(requests.c.route == route)
        with self.db.read() as conn:
            return [
                SyncRequest(
                    id=r[0],
                    route=r[1],
                    partition=r[2],
                    only_items=json.loads(r[3]) if r[3] else None,
                    full_refresh=bool(r[4]),
                    reason=r[5],
                    created_at=aware(r[6]),  # type: ignore[arg-type]
                )
                for r in conn.execute(q.order_by(requests.c.id))
            ]

    def take_requests(self, ids: Sequence[int], run_key: str) -> None:
        """Mark requests taken by the run ``run_key`` (those already taken stay as they were)."""
        with self.db.write() as conn:
            for chunk in chunks(list(ids)):
                conn.execute(
                    requests.update()
                    .where(requests.c.id.in_(chunk), requests.c.taken_at.is_(None))
                    .values(taken_at=utcnow(), run_key=run_key)
                )

    # -------------------------------------------------------------------------- partition state

    def partition_state(self, route: str, partition: str) -> dict[str, Any]:
        """A partition's ``not_before`` and last failure (message, time, run id); None when unset."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    partition_state.c.not_before,
                    partition_state.c.last_failure,
                    partition_state.c.last_failure_at,
                    partition_state.c.last_failure_run_id,
                ).where(partition_state.c.route == route, partition_state.c.partition == partition)
            ).first()
        if row is None:
            return {
                "not_before": None,
                "last_failure": None,
                "last_failure_at": None,
                "last_failure_run_id": None,
            }
        return {
            "not_before": aware(row[0]),
            "last_failure": row[1],
            "last_failure_at": aware(row[2]),
            "last_failure_run_id": row[3],
        }

    def not_before_map(self, route: str) -> dict[str, dt.datetime]:
        """``{partition: not_before}`` of the route's partitions that have one."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(partition_state.c.partition, partition_state.c.not_before).where(
                    partition_state.c.route == route, partition_state.c.not_before.is_not(None)
                )
            ).all()
        return {p: aware(nb) for p, nb in rows}  # type: ignore[misc]

    def set_not_before(self, route: str, partition: str, when: dt.datetime | None) -> None:
        """Hold a partition's passes back until ``when`` (None: no longer)."""
        with self.db.write() as conn:
            self.db.upsert(
                conn,
                partition_state,
                [{"route": route, "partition": partition, "not_before": when}],
                ["route", "partition"],
            )

    def record_failure(self, route: str, partition: str, message: str, run_id: str | None = None) -> None:
        """Remember why a partition's last pass failed (and which run)."""
        with self.db.write() as conn:
            self.db.upsert(
                conn,
                partition_state,
                [
                    {
                        "route": route,
                        "partition": partition,
                        "last_failure": message[:4000],
                        "last_failure_at": utcnow(),
                        "last_failure_run_id": run_id,
                    }
                ],
                ["route", "partition"],
            )

    def clear_failure(self, route: str, partition: str) -> None:
        """Forget a partition's last failure (a pass succeeded)."""
        with self.db.write() as conn:
            conn.execute(
                partition_state.update()
                .where(partition_state.c.route == route, partition_state.c.partition == partition)
                .values(last_failure=None, last_failure_at=None, last_failure_run_id=None)
            )
