"""``on_missing``: mark a row whose key left the source, take the mark off when it returns.

Opt-in per route (``Route(on_missing="mark")``). At the end of a complete full pass — not targeted,
not resumed (it did not see the pages before its cursor), not failed (an error ends the pass before
this step), not a plan — a linked key of the partition that the pass did not see is marked through
the destination session's ``mark_missing(destination_id, True)``: an archive the destination has
(Notion's trash, Asana's completed) or a column it sets. An incremental source only shows what
changed, so for it absence means nothing — except in a full refresh, or in a pass the source says
read everything (``CompletePassSource``: Notion's periodic full scan, whose query leaves trashed
pages out); a source that sees deletions (``DeletionReportingSource``) reports them instead, and
they take the same path. Nothing is deleted.
A marked key seen again by any pass is un-marked before its page is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from connectors.core import CompletePassSource, DeletionReportingSource, MissingMarkingSession, describe_error
from sync_assets._pass_state import PassState
from sync_assets._plan import raw_key
from sync_assets._records import is_auth, is_systemic
from sync_assets.state import MissingStore

__all__ = ["MissingSteps"]

log = logging.getLogger("sync_assets.engine")


class MissingSteps(PassState):
    """The ``on_missing`` steps of ``sync_assets.engine._Pass``."""

    def _missing_store(self) -> MissingStore:
        return self.store  # the store is a MissingStore

    def _note_seen(self, raw: Iterable[object]) -> None:
        if self.seen_keys is None:
            return
        for item in raw:
            key = raw_key(item)
            if key is not None:
                self.seen_keys.add(str(key).strip())

    async def _unmark_returned(self, keys: Iterable[str]) -> None:
        """Take the mark off the rows of ``keys`` that were marked missing (they are at the source again)."""
        if self.route.on_missing is None or self.options.plan:
            return
        marks = self._missing_store().missing_marks(self.name, keys)
        if not marks:
            return
        session = self.session
        assert isinstance(session, MissingMarkingSession)
        cleared: list[str] = []
        for key, destination_id in marks.items():
            try:
                await session.mark_missing(destination_id, False)
            except Exception as err:
                if is_auth(err, self.dest) or is_systemic(err):
                    raise
                log.warning("%s: could not un-mark %s (%s): %s", self.name, key, destination_id, describe_error(err))
                continue
            cleared.append(key)
        self._missing_store().set_missing_marks(self.name, cleared=cleared, fence=self.fence)
        self.stats.missing_cleared += len(cleared)

    async def _mark_missing(self, *, incremental: bool) -> None:
        """Mark the linked rows this complete pass did not see, and those the source saw deleted."""
        store = self._missing_store()
        marked = store.missing_marks(self.name)
        gone: dict[str, str] = {}
        complete = not incremental or self.full_refresh
        if not complete and isinstance(self.source, CompletePassSource):
            complete = self.source.pass_was_complete(self.spec.key)  # a periodic full scan
        if self.seen_keys is not None and complete:
            for key, destination_id in self.store.iter_links(self.name, self.partition):
                if key not in self.seen_keys and key not in marked and destination_id:
                    gone[key] = str(destination_id)
        if isinstance(self.source, DeletionReportingSource):
            deleted = [k for k in self.source.deleted_keys(self.spec.key) if k not in marked]
            for key, link in self.store.get_links(self.name, deleted).items():
                if link.state == "linked" and link.destination_id:
                    gone[key] = link.destination_id
        if not gone:
            return
        session = self.session
        assert isinstance(session, MissingMarkingSession)
        done: dict[str, str] = {}
        for key, destination_id in gone.items():
            self.leases.check()
            try:
                await session.mark_missing(destination_id, True)
            except Exception as err:
                if is_auth(err, self.dest) or is_systemic(err):
                    store.set_missing_marks(self.name, marked=done, fence=self.fence)
                    raise
                log.warning(
                    "%s: could not mark %s (%s) missing: %s", self.name, key, destination_id, describe_error(err)
                )
                continue
            done[key] = destination_id
        store.set_missing_marks(self.name, marked=done, fence=self.fence)
        self.stats.missing_marked += len(done)
        log.info("%s/%s: %d rows marked missing at the source", self.name, self.partition, len(done))
