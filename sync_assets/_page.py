"""The page steps of a pass: plan a page, write it, commit it (or, in a plan, count it).

The planning itself is ``sync_assets._plan`` (no I/O) and the writes ``sync_assets._write``; these
steps do the I/O between them: the link lookup that claims the creates, the page's commit (links,
outcomes and the next cursor in one transaction) and the raising of the error that stopped a page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.core import (
    AuthError,
    CheckingSession,
    Record,
    describe_error,
)
from sync_assets._missing import MissingSteps
from sync_assets._plan import PagePlan, PreparedPage, classify_page, hash_page, prepare_page
from sync_assets._records import is_auth, is_systemic
from sync_assets._two_way import TwoWayPage, TwoWaySteps
from sync_assets._write import PageWriter, WriteResult
from sync_assets.routes import credential_scope
from sync_assets.state import Checkpoint, Claims, Link, utcnow

__all__ = ["DEFERRED_LIMIT", "FAILURE_SAMPLE", "SAMPLE_LIMIT", "PageSteps"]

SAMPLE_LIMIT = 20  # failed/planned keys kept per pass for metadata and the CLI
DEFERRED_LIMIT = 10_000  # creates claimed by another partition kept for a retry at the end of the pass
FAILURE_SAMPLE = 100  # failures kept on the result


class PageSteps(TwoWaySteps, MissingSteps):
    """The page steps of ``sync_assets.engine._Pass``."""

    async def _process_page(
        self, raw: Sequence[Any], next_cursor: str | None, targeted: bool, *, extra: bool = False
    ) -> None:
        """Plan one page (``sync_assets._plan``), write it (``sync_assets._write``), then commit it.

        ``extra``: records outside the page sequence — retries at the end of the pass — counted as
        neither pages nor records.
        """
        stats = self.stats
        if not extra:
            stats.pages += 1
        prepared = PreparedPage()
        try:
            await prepare_page(
                prepared,
                raw,
                transform=self.transform,
                max_value_length=self.max_value_length,
                page_number=stats.pages,
                asked=self.asked,
            )
        finally:
            if not extra:
                stats.records += prepared.seen
            stats.skipped += prepared.skipped
            stats.deduplicated += prepared.deduplicated
        if not extra:
            self._note_seen(raw)
        two_way: TwoWayPage | None = None
        records = self._hold_later_copies(prepared.records)
        if self.route.two_way is not None:
            # Records with a twin are planned field by field; the rest are creates (with their twin's
            # field names), through the ordinary claims below.
            two_way = await self._two_way_page(records)
            records = two_way.new
        plan = self._classify(records)
        if two_way is not None:
            self.two_way_raw.update({key: prepared.records[key] for key in plan.deferred})
        failures = prepared.failures + plan.failures
        updates = plan.updates
        if two_way is not None:
            failures += two_way.failures
            plan.unchanged += two_way.unchanged
            updates = updates + two_way.updates
        stats.created += len(plan.adopted)
        stats.unchanged += len(plan.unchanged)
        if self.options.plan:
            self._plan_page(plan.creates, updates, plan.unchanged, failures)
            return
        self.leases.check()
        await self._unmark_returned(prepared.records.keys())
        written = await self._writer(failures).write(plan.creates, updates)
        if two_way is not None:
            # Before the page's links: a pair stored and its link lost to a crash is found again by
            # the pair (never created twice); the intent left pending makes the next pass list first.
            self._commit_two_way(two_way, written.linked)
        self._commit_page(written, plan.unchanged, next_cursor, targeted)

    def _hold_later_copies(self, records: dict[str, Record]) -> dict[str, Record]:
        """The page's records but those whose key an earlier page of this pass deferred.

        A later copy of such a key replaces the kept one (the last copy wins, as within a page) and
        waits with it for the retry at the end of the pass. Claimed here, it would be created without
        what the deferral waits for: the other partition's link, or the listing that decides whether
        a dead pass's create landed.
        """
        held = {key for key in records if key in self.deferred}
        if not held:
            return records
        for key in held:
            self.deferred[key] = (records[key], self.deferred[key][1])
            self.two_way_raw.pop(key, None)  # the kept copy's raw record: superseded
        self.stats.deduplicated += len(held)
        return {key: record for key, record in records.items() if key not in held}

    def _classify(self, records: dict[str, Record]) -> PagePlan:
        """Look the page's keys up in the link map and classify them (a real pass claims its creates)."""
        hashes = hash_page(records, self.create_only)
        claims: Claims | None = None
        if self.options.plan:
            links: dict[str, Link] = self.store.get_links(self.name, records.keys()) if records else {}
        else:
            self.leases.check()
            # The keys about to be created are claimed (intents carrying the hash to be sent) in
            # the lookup's transaction, before any create goes out: a crash then reconciles them,
            # and a key another partition is creating waits for it instead of being created twice.
            claims = self.store.claim_creates(self.name, self.partition, hashes, fence=self.fence) if records else None
            links = claims.links if claims else {}
        plan = classify_page(
            records,
            hashes,
            links,
            full_refresh=self.full_refresh,
            deferred=claims.deferred if claims else None,
            deferred_held=self.deferred.keys(),
            deferred_limit=DEFERRED_LIMIT,
            listing=self.plan_listing if self.options.plan else None,
            adopted_keys=self.adopted_keys,
        )
        self.deferred.update(plan.deferred)
        if claims and claims.stale:
            self.deferred_stale = True
        self.adopted_keys.difference_update(plan.adopted)
        return plan

    def _writer(self, failures: list[tuple[str, str]]) -> PageWriter:
        commit_link = None
        if self.stores_keys is False:

            def commit_link(key: str, destination_id: str, content_hash: str) -> None:
                self.store.commit_page(
                    self.name,
                    self.partition,
                    linked=[(key, destination_id, content_hash)],
                    succeeded=[],
                    fence=self.fence,
                )

        return PageWriter(
            self.session,
            self.synced_at,
            self.stats,
            failures,
            create_only=self.create_only,
            concurrency=self.concurrency,
            is_fatal=self._fatal,
            commit_link=commit_link,
        )

    def _commit_page(self, written: WriteResult, unchanged: list[str], next_cursor: str | None, targeted: bool) -> None:
        """Commit a written page (links, outcomes, the next cursor) in one transaction; raise its fatal error."""
        stats, failures, fatal = self.stats, written.failures, written.fatal
        stats.failed += len(failures)
        self._keep_failures(failures)
        failed_keys = {k for k, _ in failures}
        succeeded = [k for k, _, _ in written.linked]
        if self.had_failures or failures:
            succeeded += [k for k in unchanged if k not in failed_keys]
        if failures:
            self.had_failures = True
        checkpoint = None
        if fatal is None and not targeted and next_cursor is not None:
            checkpoint = Checkpoint(
                pass_id=self.pass_id,
                cursor=next_cursor,
                stats=stats.as_dict(),
                options=self.cp_options,
                started_at=self.started_at,
                updated_at=utcnow(),
            )
        self.store.commit_page(
            self.name,
            self.partition,
            linked=written.linked,
            unlinked_hashes=written.unlinked,
            dropped_intents=written.dropped,
            failures=failures,
            succeeded=succeeded,
            checkpoint=checkpoint,
            fence=self.fence,
        )
        if fatal is not None:
            stats.pages -= 1  # this page is redone on resume
            if is_auth(fatal, self.dest):
                if isinstance(fatal, AuthError):
                    raise fatal
                raise AuthError(
                    f"destination {self.dest.name}: {describe_error(fatal)}",
                    credential=credential_scope(self.dest),
                ) from fatal
            raise fatal
        if self.progress is not None:
            self.progress(stats)

    def _keep_failures(self, failures: list[tuple[str, str]]) -> None:
        self.failures.extend(failures[: max(0, FAILURE_SAMPLE - len(self.failures))])

    def _fatal(self, err: BaseException) -> bool:
        if isinstance(err, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            return True
        return is_auth(err, self.dest) or is_systemic(err)

    def _plan_page(
        self,
        creates: list[tuple[Record, str]],
        updates: list[tuple[Record, str, str]],
        unchanged: list[str],
        failures: list[tuple[str, str]],
    ) -> None:
        stats = self.stats
        # What the destination would refuse, where it can tell without writing (lengths, types,
        # missing columns): counted as failures of the plan, not as creates or updates.
        if isinstance(self.session, CheckingSession):
            refused = self._refused(self.session, [r for r, _ in creates] + [r for r, _, _ in updates], failures)
            if refused:
                creates = [c for c in creates if c[0].primary_key not in refused]
                updates = [u for u in updates if u[0].primary_key not in refused]
        stats.created += len(creates)
        stats.updated += len(updates)
        stats.failed += len(failures)
        self._keep_failures(failures)
        for bucket, keys in (
            ("create", [r.primary_key for r, _ in creates]),
            ("update", [r.primary_key for r, _, _ in updates]),
            ("unchanged", unchanged),
            ("failed", [k for k, _ in failures]),
        ):
            room = SAMPLE_LIMIT - len(self.planned[bucket])
            if room > 0:
                self.planned[bucket].extend(keys[:room])
        if self.progress is not None:
            self.progress(stats)

    @staticmethod
    def _refused(session: CheckingSession, records: list[Record], failures: list[tuple[str, str]]) -> set[str]:
        """Keys of the records ``session.check_record`` refuses; each is added to ``failures`` with why."""
        refused: set[str] = set()
        for record in records:
            try:
                problem = session.check_record(record)
            except Exception as err:
                problem = f"check_record failed: {describe_error(err)}"
            if problem:
                refused.add(record.primary_key)
                failures.append((record.primary_key, str(problem)))
        return refused
