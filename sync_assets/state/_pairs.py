"""Two-way pairs and rows marked missing: what a two-way route and ``on_missing`` remember.

``ds_pairs`` holds one row per pair of twin records of a two-way route (``sync_assets.routes.TwoWayRoute``),
keyed by the pair's name: the record's key on side A, its key on side B, and ``fields``, the hash of
each field's value when the two sides last agreed (JSON). A pass of either direction finds a record's
twin here by its own side's key, so a row one direction created is never copied back as new, and it
tells an edit (a hash that differs from the baseline) from the read-back of its own write (the same).

``ds_missing`` holds the rows a route with ``on_missing`` marked as gone from its source, so the mark
is taken off once (and only once) when the key comes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_assets.state._db import Database, Part, utcnow
from sync_assets.state._leases import Fence, check_fence
from sync_assets.state._schema import missing, pairs

__all__ = ["MissingStore", "Pair", "PairStore"]


@dataclass(frozen=True, slots=True)
class Pair:
    """Twin records of a two-way route.

    Attributes:
        a_key: The record's key on side A (its id there).
        b_key: The record's key on side B.
        fields: Field name (side A's) -> hash of its value when both sides last agreed.
    """

    a_key: str
    b_key: str
    fields: dict[str, str]


_PAIR_COLS = ("a_key", "b_key", "fields")
_MISSING_COLS = ("primary_key", "destination_id")


def _rows_by_a(db: Database, conn: Connection, pair: str, keys: Sequence[str]) -> list[Any]:
    """``_PAIR_COLS`` of ``pair``'s rows whose A key is one of ``keys`` (a primary-key probe each)."""
    return db.rows_by_keys(conn, pairs, _PAIR_COLS, {"pair": pair}, "a_key", keys)


def _rows_by_b(db: Database, conn: Connection, pair: str, keys: Sequence[str]) -> list[Any]:
    """``_PAIR_COLS`` of ``pair``'s rows whose B key is one of ``keys``.

    Probed by the B key alone, which only ``ds_pairs_b`` (b_key, pair) leads with: with the pair in the
    probe too, PostgreSQL without statistics may walk the pair's rows through the primary key instead.
    """
    rows = db.rows_by_keys(conn, pairs, ("pair", *_PAIR_COLS), {}, "b_key", keys)
    return [r[1:] for r in rows if r[0] == pair]


def _pair(row: Any) -> Pair:
    try:
        fields = json.loads(row[2]) or {}
    except ValueError:
        fields = {}
    return Pair(str(row[0]), str(row[1]), {str(k): str(v) for k, v in dict(fields).items()})


class PairStore(Part):
    """The twins of two-way routes and their per-field baselines."""

    def get_pairs(self, pair: str, side: str, keys: Iterable[str]) -> dict[str, Pair]:
        """The pairs whose key on ``side`` (``a`` or ``b``) is one of ``keys``, by that key."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, Pair] = {}
        with self.db.read() as conn:
            rows = _rows_by_a(self.db, conn, pair, wanted) if side == "a" else _rows_by_b(self.db, conn, pair, wanted)
            for row in rows:
                found = _pair(row)
                out[found.a_key if side == "a" else found.b_key] = found
        return out

    def put_pairs(
        self, pair: str, rows: Sequence[Pair], *, route: str | None = None, fence: Fence | None = None
    ) -> None:
        """Store ``rows`` (a pair's baselines replace what was stored for its A key), fenced by ``route``'s lease."""
        if not rows:
            return
        now = utcnow()
        with self.db.write() as conn:
            if route is not None:
                check_fence(self.db, conn, route, fence)
            # A B key paired before with another A key (an adoption that re-paired it) gives way:
            # looked up by key, then deleted by primary key (``Database.rows_by_keys`` says why).
            a_keys = {r.a_key for r in rows}
            b_keys = [r.b_key for r in rows]
            stale = [a for a, _b, _f in _rows_by_b(self.db, conn, pair, b_keys) if a not in a_keys]
            if stale:
                stmt = pairs.delete().where(pairs.c.pair == pair, pairs.c.a_key == sa.bindparam("a"))
                conn.execute(stmt, [{"a": a} for a in stale])
            self.db.upsert(
                conn,
                pairs,
                [
                    {
                        "pair": pair,
                        "a_key": r.a_key,
                        "b_key": r.b_key,
                        "fields": json.dumps(r.fields, sort_keys=True, separators=(",", ":")),
                        "updated_at": now,
                    }
                    for r in rows
                ],
                ["pair", "a_key"],
            )

    def pair_count(self, pair: str) -> int:
        """How many twins ``pair`` holds."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(pairs.c.pair == pair)).scalar_one())

    def forget_pairs(self, pair: str) -> None:
        """Delete every twin of ``pair``."""
        with self.db.write() as conn:
            conn.execute(pairs.delete().where(pairs.c.pair == pair))


class MissingStore(Part):
    """Rows a route with ``on_missing`` marked as gone from its source."""

    def missing_marks(self, route: str, keys: Iterable[str] | None = None) -> dict[str, str]:
        """Key -> destination id of the marked rows of ``route`` (only of ``keys`` when given)."""
        out: dict[str, str] = {}
        with self.db.read() as conn:
            if keys is None:
                query = sa.select(missing.c.primary_key, missing.c.destination_id).where(missing.c.route == route)
                out.update({str(k): str(d) for k, d in conn.execute(query)})
                return out
            wanted = list(dict.fromkeys(keys))
            found = self.db.rows_by_keys(conn, missing, _MISSING_COLS, {"route": route}, "primary_key", wanted)
            out.update({str(k): str(d) for k, d in found})
        return out

    def set_missing_marks(
        self,
        route: str,
        *,
        marked: Mapping[str, str] | None = None,
        cleared: Iterable[str] = (),
        fence: Fence | None = None,
    ) -> None:
        """Remember ``marked`` (key -> destination id) and forget ``cleared``, fenced by the pass's lease."""
        cleared = list(cleared)
        now = utcnow()
        with self.db.write() as conn:
            check_fence(self.db, conn, route, fence)
            if marked:
                self.db.upsert(
                    conn,
                    missing,
                    [
                        {"route": route, "primary_key": k, "destination_id": d, "marked_at": now}
                        for k, d in marked.items()
                    ],
                    ["route", "primary_key"],
                )
            if cleared:  # each by its primary key: ``IN (…)`` can walk the route's marks (``rows_by_keys``)
                stmt = missing.delete().where(missing.c.route == route, missing.c.primary_key == sa.bindparam("pk"))
                conn.execute(stmt, [{"pk": k} for k in dict.fromkeys(cleared)])
