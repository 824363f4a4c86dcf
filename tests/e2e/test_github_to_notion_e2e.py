"""GitHub -> Notion end to end: real `dagster dev` (webserver + daemon), both fakes on loopback ports.

The dispatcher launches the first sync with no click; N repos over 3 pages become N pages; a
second pass writes nothing; one changed repo is exactly one page update; a revoked Notion token
pauses the partition and nothing reaches Notion while paused; a new token (rotated in place in
its secret file) lifts the pause and a catch-up run syncs what was missed.
"""

from __future__ import annotations

import time

import pytest

from sync_assets.state import StateStore
from tests.e2e.procs import BIN, dagster_env, dagster_process, free_port, runs, wait_for, wait_ready
from tests.fakes import github as fake_github
from tests.fakes import notion as fake_notion

pytestmark = pytest.mark.e2e

ROUTE = "github_to_notion"
JOB = f"{ROUTE}_sync"
PARTITION = "org:acme"
N_REPOS = 25  # 3 listing pages of 10

SCHEMA = {
    "Name": "title",
    "Repo ID": "rich_text",
    "Full name": "rich_text",
    "URL": "url",
    "Description": "rich_text",
    "Stars": "number",
    "Forks": "number",
    "Open issues": "number",
    "Language": "select",
    "Languages": "multi_select",
    "Topics": "multi_select",
    "Archived": "checkbox",
    "Fork": "checkbox",
    "License": "select",
    "Contributors": "multi_select",
    "Pushed at": "date",
    "Created": "date",
    "Last synced": "date",
}


def count(port: int, status: str) -> int:
    return sum(1 for r in runs(port, JOB) if r["status"] == status)


def test_github_to_notion_under_the_daemon(tmp_path):
    gh = fake_github.FakeGitHub()
    gh.add_repos("acme", N_REPOS)
    notion = fake_notion.FakeNotion(rate=200, burst=200)
    db = notion.add_database(SCHEMA, title="Repos")
    (ds_id,) = db.data_source_ids
    token_file = tmp_path / "notion_token"
    token_file.write_text(notion.token)
    home = tmp_path / "home"
    port = free_port()

    with fake_github.serve(gh) as gh_url, fake_notion.serve(notion) as notion_url:
        env = dagster_env(
            home,
            DURABLE_SYNC_DEMO_DIR=str(tmp_path / "demo"),
            GITHUB_TOKEN=gh.token,
            GITHUB_ORGS="acme",
            GITHUB_PAGE_SIZE="10",
            GITHUB_API_URL=gh_url,
            NOTION_TOKEN_FILE=str(token_file),
            NOTION_DATABASE_ID=db.id,
            NOTION_API_URL=notion_url,
            NOTION_REQUESTS_PER_SECOND="100",
        )
        store = StateStore(f"sqlite:///{home / 'durable_sync_state.sqlite3'}")
        log = tmp_path / "dagster-dev.log"
        cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
        with dagster_process(cmd, env, log) as proc:
            wait_ready(port, proc, log)

            # 1. The dispatcher's first run, with no click: N repos over 3 pages -> N pages.
            wait_for(lambda: count(port, "SUCCESS") >= 1, 150, 2, "the first github_to_notion run")
            pages = notion.pages(ds_id)
            keys = [notion.values(p.id)["Repo ID"] for p in pages]
            assert len(pages) == N_REPOS and len(set(keys)) == N_REPOS
            assert gh.count("/organizations/*/repos") >= 2  # pages 2 and 3 followed through Link
            assert store.last_passes(ROUTE, PARTITION)[0].stats["pages"] == 3

            # 2. A second pass writes nothing (and GitHub answers 304 to everything).
            writes = notion.counters.writes
            store.enqueue_request(ROUTE, PARTITION)
            wait_for(lambda: count(port, "SUCCESS") >= 2, 90, 1, "the second run")
            assert notion.counters.writes == writes
            assert store.last_passes(ROUTE, PARTITION)[0].stats["unchanged"] == N_REPOS

            # 3. One repo changes -> exactly one page updated.
            gh.modify_repo("acme/repo-003", stargazers_count=4242)
            patches = len(notion.requests("PATCH", r"^/v1/pages/"))
            store.enqueue_request(ROUTE, PARTITION)
            wait_for(lambda: count(port, "SUCCESS") >= 3, 90, 1, "the run after one change")
            assert len(notion.requests("PATCH", r"^/v1/pages/")) == patches + 1
            assert notion.counters.writes == writes + 1
            changed = next(p for p in pages if notion.values(p.id)["Full name"] == "acme/repo-003")
            assert notion.values(changed.id)["Stars"] == 4242

            # 4. Notion revokes the token: the run fails, the credential pauses, nothing more reaches Notion.
            notion.revoke_token(notion.token)
            gh.modify_repo("acme/repo-007", stargazers_count=777)
            store.enqueue_request(ROUTE, PARTITION)
            wait_for(lambda: count(port, "FAILURE") >= 1, 90, 1, "the failed run")
            assert "credential:notion:NOTION_TOKEN" in store.pauses()
            seen = notion.counters.requests
            store.enqueue_request(ROUTE, PARTITION)  # waits in the inbox while paused
            time.sleep(15)  # three sync-now ticks and a dispatcher tick
            assert notion.counters.requests == seen
            assert count(port, "FAILURE") == 1 and count(port, "STARTED") == 0
            assert len(store.pending_requests(ROUTE)) == 1

            # 5. A new token, rotated in place in its secret file: the pause lifts, a catch-up run syncs.
            token_file.write_text(notion.add_token())
            wait_for(lambda: "credential:notion:NOTION_TOKEN" not in store.pauses(), 90, 1, "the auth resume")
            wait_for(lambda: count(port, "SUCCESS") >= 4, 90, 1, "the catch-up run")
            repaired = next(p for p in pages if notion.values(p.id)["Full name"] == "acme/repo-007")
            wait_for(lambda: notion.values(repaired.id)["Stars"] == 777, 60, 1, "the missed update")
            assert len(notion.pages(ds_id)) == N_REPOS  # still no duplicate
        assert proc.poll() is not None
