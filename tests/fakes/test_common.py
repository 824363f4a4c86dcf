"""The fakes' shared bookkeeping (tests/fakes/common.py), on its own: every fake leans on these semantics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tests.fakes.common import (
    FakeTime,
    Fault,
    FaultQueue,
    FixedWindows,
    RequestCounters,
    RequestLog,
    TokenBuckets,
    TokenRegistry,
    bearer_token,
)


def test_a_revoked_token_is_remembered_and_a_re_added_one_is_valid_again() -> None:
    tokens = TokenRegistry()
    first = tokens.add("t-" + "1", "workspace-a")
    tokens.revoke(first)
    assert first not in tokens and tokens.owner(first) is None and first in tokens.revoked
    tokens.add(first, "workspace-a")
    assert first in tokens and first not in tokens.revoked


def test_rotation_keeps_the_owner_and_revokes_the_old_token() -> None:
    tokens = TokenRegistry()
    old = tokens.add("t-" + "old", "user-7")
    new = tokens.rotate(old, "t-" + "new")
    assert tokens.owner(new) == "user-7" and old in tokens.revoked and tokens.owner(old) is None
    assert tokens.owner(tokens.rotate("t-" + "unknown", "t-" + "other", default_owner="default")) == "default"


def test_bearer_token_takes_any_case_of_the_scheme_and_nothing_else() -> None:
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None


def test_a_token_bucket_allows_a_burst_then_asks_for_the_whole_seconds_to_the_next_token() -> None:
    buckets = TokenBuckets()
    assert [buckets.take("k", rate=0.5, burst=2, now=100.0) for _ in range(2)] == [None, None]
    assert buckets.take("k", rate=0.5, burst=2, now=100.0) == 2  # 1 token at 0.5/s
    assert buckets.take("k", rate=0.5, burst=2, now=101.0) == 1  # half a token back
    assert buckets.take("k", rate=0.5, burst=2, now=102.0) is None
    assert buckets.take("other", rate=0.5, burst=2, now=102.0) is None  # buckets are per key
    buckets.reset()
    assert buckets.take("k", rate=0.5, burst=2, now=102.0) is None  # full again


def test_a_fixed_window_that_counts_rejections_stays_closed_until_the_next_window() -> None:
    windows = FixedWindows(60.0, count_rejected=True)
    assert [windows.take("k", limit=2, now=120.0 + i) for i in range(2)] == [None, None]
    assert windows.take("k", limit=2, now=150.0) == 30
    assert windows.used("k") == 3  # the rejected request counted
    assert windows.take("k", limit=2, now=179.5) == 1  # never less than a second
    assert windows.take("k", limit=2, now=180.0) is None  # a new window
    assert windows.used("k") == 1


def test_a_fixed_window_that_does_not_count_rejections_reports_what_was_accepted() -> None:
    windows = FixedWindows(1.0)
    assert [windows.take("k", limit=2, now=10.2) for _ in range(3)] == [None, None, 1]
    assert windows.used("k") == 2
    assert windows.take("k", limit=2, now=11.0) is None and windows.used("k") == 1


def test_faults_hit_one_matching_request_each_oldest_first() -> None:
    faults = FaultQueue()
    faults.add(Fault.on(503, method="post", path=r"^/tasks$"), 2)
    faults.add(Fault(429, glob="/repos/*/readme"))
    faults.add(Fault(500, scope={"api": "cma"}))
    assert faults.take("GET", "/tasks") is None  # another verb
    assert faults.take("GET", "/repos/a/readme") == Fault(429, glob="/repos/*/readme")
    assert faults.take("GET", "/repos/a/readme") is None  # used up
    assert faults.take("GET", "/x", api="cda") is None  # another scope
    assert faults.take("GET", "/x", api="cma") == Fault(500, scope={"api": "cma"})
    assert len(faults) == 2
    taken = faults.take("POST", "/tasks")
    assert taken is not None and taken.status == 503 and taken.method == "POST"
    faults.clear()
    assert faults.take("POST", "/tasks") is None


@dataclass(frozen=True)
class _Entry:
    method: str
    path: str
    api: str = "cda"


def test_the_request_log_is_a_list_filtered_by_verb_path_regex_and_attributes() -> None:
    log: RequestLog[_Entry] = RequestLog()
    log += [_Entry("GET", "/v1/pages/1"), _Entry("PATCH", "/v1/pages/1", "cma"), _Entry("PATCH", "/v1/blocks/1")]
    assert log.matching("patch", r"^/v1/pages/") == [log[1]]
    assert log.matching(api="cma") == [log[1]]
    assert log.matching(api=None) == list(log)  # None means any
    assert len(log) == 3 and log[-1].path == "/v1/blocks/1"


def test_request_counters_start_at_zero() -> None:
    assert RequestCounters() == RequestCounters(requests=0, rate_limited=0, writes=0, errors=0)


async def test_fake_time_moves_only_when_slept_or_advanced_and_records_sleeps() -> None:
    time = FakeTime(1000.0)
    seen: list[float] = []

    async def watch() -> None:
        seen.append(time())

    await asyncio.gather(time.sleep(5), watch())
    assert seen == [1000.0]  # a concurrent task sees the time as it was when the sleeper started
    assert time.clock() == 1005.0 and time.sleeps == [5]
    time.advance(2.5)
    assert time.now == 1007.5 and time.utcnow().timestamp() == 1007.5
