"""The two-way step of a page: twins, per-field baselines, conflicts (``sync_assets.routes.TwoWayRoute``).

A page of a two-way route is split before the link map is consulted. A record whose twin is known
(``ds_pairs`` by this side's key; else this route's own link, or the other direction's link whose
destination id is this key: a row that direction created) is planned here, field by field:

* a field whose value hashes as the pair's baseline is unchanged on this side — in particular the
  read-back of a value we wrote (no echo);
* a changed field is written only when this route may write it (``owners``), after the twin is read
  back from the other side: when the twin changed the same field to another value since the
  baseline, that is a conflict, resolved by the owner or the later modification time and reported;
* the baseline becomes what this side holds, so a conflict this side lost is written back by the
  other direction's next pass without counting it twice.

Only the changed fields are sent (what the other side edited is never overwritten). A record with
no twin is a create, through the engine's ordinary claims and intents; its pair is stored with the
page. Nothing here deletes: a twin no longer found is a failure of the record, retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.core import PagedSource, Record
from sync_assets._pass_state import PassState
from sync_assets._records import content_hash
from sync_assets.routes import TwoWay
from sync_assets.state import Pair, PairStore, links

__all__ = ["CONFLICT_SAMPLE", "TwoWayPage", "TwoWaySteps", "value_hash"]

log = logging.getLogger("sync_assets.engine")

CONFLICT_SAMPLE = 50  # conflicts kept on a pass's result (all are counted)
CONFLICT_STATS_SAMPLE = 20  # ... and in its stored stats (the no_conflicts check, status)


def _when(value: Any) -> str:
    # One instant is one value whatever offset a system reports it in.
    if isinstance(value, dt.datetime):
        return "t:" + (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return "d:" + value.isoformat()
    raise TypeError(f"not a neutral value: {type(value).__name__}")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_when)


def value_hash(value: Any) -> str:
    """A field value's hash, as both systems may hold it.

    Lists compare as sets of strings (systems keep their own order) and an empty list as no value; a
    datetime compares by its instant.
    """
    if isinstance(value, (list, tuple)):
        value = sorted(str(v) for v in value) or None
    return hashlib.blake2b(_ENCODER.encode(value).encode(), digest_size=8).hexdigest()


@dataclass
class TwoWayPage:
    """A two-way page after planning.

    Attributes:
        updates: ``(record, destination_id, hash)``: the changed fields of paired records, to write.
        new: The records with no twin (to create), already under the destination's field names.
        baselines: Pairs to store whatever the writes do (no write needed, or a conflict lost).
        after_write: Pairs to store once the update of their key succeeded.
        create_fields: Key -> the baseline of a record about to be created (stored with its new id).
        failures: ``(key, why)``: twins not found, creates held back.
        unchanged: Keys of paired records with no field to write.
    """

    updates: list[tuple[Record, str, str]] = field(default_factory=list)
    new: dict[str, Record] = field(default_factory=dict)
    baselines: list[Pair] = field(default_factory=list)
    after_write: dict[str, Pair] = field(default_factory=dict)
    create_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class TwoWaySteps(PassState):
    """The two-way steps of ``sync_assets.engine._Pass`` (only for a route with ``two_way``)."""

    def _pairs(self) -> PairStore:
        return self.store  # the store is a PairStore

    def _pair_of(self, tw: TwoWay, own: str, other: str, fields: dict[str, str]) -> Pair:
        return Pair(own, other, fields) if tw.side == "a" else Pair(other, own, fields)

    def _twins(self, tw: TwoWay, keys: list[str], unverified: set[str]) -> dict[str, Pair]:
        """The twins of ``keys`` (this side's), from the pairs, then the two routes' link maps.

        A twin found only by the other route's link is added to ``unverified``: that link may be an
        adoption of a row made by hand whose key field happens to hold something (not a twin), so it
        counts only if the other side has a record of that key.
        """
        pairs = self._pairs().get_pairs(tw.pair, tw.side, keys)
        rest = [k for k in keys if k not in pairs]
        if not rest:
            return pairs
        # Found by a link but not yet paired (a route older than its pairing, or a crash between a
        # create's commit and its pair's): an empty baseline, so that equal values cost nothing and
        # differing ones are resolved as a conflict.
        for key, link in self.store.get_links(self.name, rest).items():
            if link.state == "linked" and link.destination_id:
                pairs[key] = self._pair_of(tw, key, link.destination_id, {})
        rest = [k for k in rest if k not in pairs]
        if rest:
            with self.store.db.read() as conn:
                rows = conn.execute(
                    sa.select(links.c.primary_key, links.c.destination_id).where(
                        links.c.route == tw.peer_route, links.c.destination_id.in_(rest)
                    )
                )
                for peer_key, own_key in rows:
                    pairs[str(own_key)] = self._pair_of(tw, str(own_key), str(peer_key), {})
                    unverified.add(str(own_key))
        return pairs

    async def _read_twins(self, tw: TwoWay, keys: list[str]) -> dict[str, Record]:
        """The other side's current records of ``keys``, by key (every spec of its source is asked)."""
        found: dict[str, Record] = {}
        source = tw.peer_source
        for spec in source.specs():
            wanted = [k for k in keys if k not in found]
            if not wanted:
                break
            if isinstance(source, PagedSource):
                records, _ = await source.fetch_page(spec, wanted, None)
            else:
                records = await source.fetch(spec, wanted)
            for record in records:
                if isinstance(record, Record) and str(record.primary_key) in wanted:
                    found[str(record.primary_key)] = record
        return found

    async def _two_way_page(self, records: Mapping[str, Record]) -> TwoWayPage:
        """Plan a page of a two-way route (see the module docstring); no write, no state written."""
        tw = self.route.two_way
        assert tw is not None
        out = TwoWayPage()
        keys = list(records)
        unverified: set[str] = set()
        twins = self._twins(tw, keys, unverified) if keys else {}
        verified = await self._plan_twins(tw, records, twins, unverified, out)
        new = [k for k in keys if k not in twins or (k in unverified and k not in verified)]
        held_back = bool(new) and not self.options.plan and self.store.pending_intents(tw.peer_route) > 0
        for key in new:
            if held_back:
                # The other direction has creates it has not confirmed (a crash): this record may be
                # one of them; its next pass links them (it lists first), then this one is a twin.
                out.failures.append((key, f"{tw.peer_route} has unconfirmed creates; retried on the next pass"))
                continue
            values = tw.canonical(records[key].properties, tw.side)
            out.create_fields[key] = {f: value_hash(v) for f, v in values.items()}
            out.new[key] = Record(key, tw.outgoing(values, tw.peer_side), None)
        return out

    async def _plan_twins(
        self,
        tw: TwoWay,
        records: Mapping[str, Record],
        twins: dict[str, Pair],
        unverified: set[str],
        out: TwoWayPage,
    ) -> set[str]:
        """Plan the records with a twin into ``out``; returns the unverified keys whose twin was found."""
        verified: set[str] = set()
        changed: dict[str, tuple[dict[str, Any], dict[str, str], list[str]]] = {}
        for key, pair in twins.items():
            values = tw.canonical(records[key].properties, tw.side)
            hashes = {f: value_hash(v) for f, v in values.items()}
            edits = [f for f, h in hashes.items() if tw.writes(f) and pair.fields.get(f) != h]
            if edits or key in unverified:
                changed[key] = (values, hashes, edits)
            else:
                out.unchanged.append(key)
        if not changed:
            return verified
        other_key = {k: (twins[k].b_key if tw.side == "a" else twins[k].a_key) for k in changed}
        current = await self._read_twins(tw, list(other_key.values()))
        for key, (values, hashes, edits) in changed.items():
            pair, twin_id = twins[key], other_key[key]
            twin = current.get(twin_id)
            if key in unverified:
                if twin is None:
                    continue  # not a twin after all (an adopted row made by hand): a create
                verified.add(key)
            if twin is None:
                out.failures.append(
                    (key, f"its twin {twin_id} was not found on the other side; retried on the next pass")
                )
                continue
            theirs = {f: value_hash(v) for f, v in tw.canonical(twin.properties, tw.peer_side).items()}
            baseline = dict(pair.fields)
            send: dict[str, Any] = {}
            for f in edits:
                if theirs.get(f) == hashes[f]:
                    baseline[f] = hashes[f]  # both sides already agree
                    continue
                if f in theirs and theirs[f] != pair.fields.get(f):
                    winner = self._resolve(tw, f, records[key], twin)
                    self._conflict(key, f, winner)
                    if winner != tw.side:
                        baseline[f] = hashes[f]  # the other direction writes its value back
                        continue
                send[f] = values[f]
                baseline[f] = hashes[f]
            new_pair = self._pair_of(tw, key, twin_id, baseline)
            if not send:
                if baseline != pair.fields or key in unverified:
                    out.baselines.append(new_pair)
                out.unchanged.append(key)
                continue
            outgoing = Record(key, tw.outgoing(send, tw.peer_side), None)
            out.updates.append((outgoing, twin_id, content_hash(outgoing)))
            out.after_write[key] = new_pair
        return verified

    def _resolve(self, tw: TwoWay, field_name: str, mine: Record, theirs: Record) -> str:
        """The side whose value of ``field_name`` wins a conflict."""
        owner = tw.owners.get(field_name)
        if owner is not None:
            return owner
        my_time = tw.modified_at(mine.properties, tw.side)
        their_time = tw.modified_at(theirs.properties, tw.peer_side)
        if my_time is None or their_time is None or my_time == their_time:
            return tw.tie
        return tw.side if my_time > their_time else tw.peer_side

    def _conflict(self, key: str, field_name: str, winner: str) -> None:
        self.stats.conflicts += 1
        if len(self.stats.conflict_sample) < CONFLICT_STATS_SAMPLE:
            self.stats.conflict_sample.append(f"{key}: {field_name} (side {winner} won)")
        if len(self.conflicts) < CONFLICT_SAMPLE:
            self.conflicts.append((key, field_name, winner))
        log.info("%s: conflict on %s of %s: side %s wins", self.name, field_name, key, winner)

    def _commit_two_way(self, page: TwoWayPage, linked: list[tuple[str, str, str | None]]) -> None:
        """Store the page's pairs: its baselines, its written updates, its creates (with their new ids)."""
        tw = self.route.two_way
        if tw is None or self.options.plan:
            return
        rows = list(page.baselines)
        for key, destination_id, _ in linked:
            if key in page.after_write:
                rows.append(page.after_write.pop(key))
            elif key in page.create_fields:
                rows.append(self._pair_of(tw, key, destination_id, page.create_fields.pop(key)))
        if rows:
            self._pairs().put_pairs(tw.pair, rows, route=self.name, fence=self.fence)
