"""The ``durable-sync`` command line.

    durable-sync status [ROUTE] [--json]        pauses, last pass, failures, requests, checkpoints
    durable-sync sync ROUTE [--spec KEY]... [--items PK ...] [--full-refresh]
                                                enqueue a sync-now request (a run within seconds)
    durable-sync plan ROUTE --spec KEY          dry run: what would be created / updated / unchanged
    durable-sync pause ROUTE [--spec KEY] [--reason TEXT]  |  pause --credential KEY
    durable-sync resume ROUTE [--spec KEY]  |  resume --credential KEY
    durable-sync connectors                     installed connectors (entry points)

Routes come from the module named by ``--module`` or ``DURABLE_SYNC_ROUTES_MODULE`` (default
``sync_assets.definitions``), attribute ``routes``. The state store is the one the deployment uses
(``DURABLE_SYNC_STATE_URL``, else SQLite under ``DAGSTER_HOME``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from connectors.core import SyncError, describe_error
from connectors.registry import discover
from sync_assets.engine import PassOptions, PassStats, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore

__all__ = ["main"]

DEFAULT_MODULE = "sync_assets.definitions"
_ROUTES_OVERRIDE: Sequence[Route] | None = None


def _load_routes(module: str | None) -> list[Route]:
    if _ROUTES_OVERRIDE is not None:
        return list(_ROUTES_OVERRIDE)
    name = module or os.environ.get("DURABLE_SYNC_ROUTES_MODULE", "").strip() or DEFAULT_MODULE
    mod = importlib.import_module(name)
    routes = getattr(mod, "routes", None)
    if routes is None:
        raise SystemExit(f"durable-sync: module {name} has no 'routes' list")
    return list(routes)


def _route(routes: Sequence[Route], name: str) -> Route:
    for r in routes:
        if r.name == name:
            if not r.enabled:
                raise SystemExit(f"durable-sync: route {name} is disabled: {r.disabled_reason or 'not configured'}")
            return r
    known = ", ".join(r.name for r in routes) or "none"
    raise SystemExit(f"durable-sync: no route named {name!r} (routes: {known})")


def _partitions(route: Route, specs: Sequence[str] | None) -> list[str]:
    from sync_assets.routes import partition_key_for

    known = route.specs_by_partition()
    if not specs:
        return sorted(known)
    out = []
    for s in specs:
        key = s if s in known else partition_key_for(s)
        if key not in known:
            raise SystemExit(f"durable-sync: {route.name} has no spec {s!r} (specs: {', '.join(sorted(known))})")
        out.append(key)
    return out


def _fmt_stats(stats: dict[str, Any]) -> str:
    keys = ("created", "updated", "unchanged", "skipped", "failed", "pages")
    parts = [f"{k} {stats.get(k, 0)}" for k in keys]
    if stats.get("seconds") is not None:
        parts.append(f"{stats['seconds']:.1f}s")
    return ", ".join(parts)


# -------------------------------------------------------------------------------------- commands


# Accounts whose resource is known, so `durable-sync auth login notion-mcp` needs no URL.
KNOWN_RESOURCES = {"notion-mcp": "https://mcp.notion.com/mcp", "contentful-mcp": "https://mcp.contentful.com/mcp"}

IN_FLIGHT_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _dagster_view(routes: Sequence[Route]) -> dict[str, Any] | None:
    """Dagster's side of status: the latest runs per route partition, from the instance in
    ``DAGSTER_HOME`` (None when there is none to read)."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    try:
        import dagster as dg

        instance = dg.DagsterInstance.get()
    except Exception as err:  # a missing or broken instance must not hide the state store's view
        return {"error": describe_error(err)}
    view: dict[str, Any] = {"routes": {}}
    with instance:
        for r in routes:
            if not r.enabled:
                continue
            latest: dict[str, dict[str, Any]] = {}
            in_flight: list[dict[str, Any]] = []
            for run in instance.get_runs(filters=dg.RunsFilter(tags={"durable_sync/route": r.name}), limit=500):
                partition = run.tags.get("dagster/partition")
                entry = {
                    "run_id": run.run_id,
                    "status": run.status.value,
                    "trigger": run.tags.get("durable_sync/trigger", "manual"),
                    "partition": partition,
                }
                if run.status.value in IN_FLIGHT_STATUSES:
                    in_flight.append(entry)
                if partition and partition not in latest:
                    latest[partition] = entry  # get_runs is newest first
            view["routes"][r.name] = {"latest": latest, "in_flight": in_flight}
    return view


def cmd_status(args: argparse.Namespace, store: StateStore) -> int:
    routes = _load_routes(args.module)
    if args.route:
        routes = [_route(routes, args.route)]
    pauses = store.pauses()
    pending = store.pending_requests()
    dagster = _dagster_view(routes)
    report: list[dict[str, Any]] = []
    for r in routes:
        entry: dict[str, Any] = {"route": r.name, "enabled": r.enabled, "partitions": []}
        if not r.enabled:
            entry["disabled_reason"] = r.disabled_reason or "not configured"
            report.append(entry)
            continue
        try:
            specs = r.specs_by_partition()
        except Exception as err:
            entry["error"] = describe_error(err)
            report.append(entry)
            continue
        for key, spec in sorted(specs.items()):
            paused = [
                {"scope": p.scope, "reason": p.reason, "since": p.paused_at.isoformat(timespec="seconds")}
                for s in r.pause_scopes(key)
                if (p := pauses.get(s)) is not None
            ]
            last = store.last_passes(r.name, key, limit=1)
            cp = store.get_checkpoint(r.name, key)
            state = store.partition_state(r.name, key)
            failed = store.failed_records(r.name, key, limit=args.failures)
            entry["partitions"].append(
                {
                    "partition": key,
                    "spec": spec.key,
                    "interval_minutes": spec.interval_minutes,
                    "paused": paused,
                    "last_pass": (
                        {
                            "mode": last[0].mode,
                            "status": last[0].status,
                            "finished_at": last[0].finished_at.isoformat(timespec="seconds"),
                            "stats": last[0].stats,
                            "error": last[0].error,
                        }
                        if last
                        else None
                    ),
                    "in_flight": (
                        {
                            "pages_done": cp.stats.get("pages", 0),
                            "since": cp.started_at.isoformat(timespec="seconds"),
                            "updated_at": cp.updated_at.isoformat(timespec="seconds"),
                        }
                        if cp
                        else None
                    ),
                    "not_before": state["not_before"].isoformat(timespec="seconds") if state["not_before"] else None,
                    "last_failure": state["last_failure"],
                    "failed_records": store.failed_count(r.name, key),
                    "failures": [{"key": o.primary_key, "attempts": o.attempts, "error": o.error} for o in failed],
                    "pending_requests": [
                        {
                            "id": q.id,
                            "items": q.only_items,
                            "full_refresh": q.full_refresh,
                            "reason": q.reason,
                        }
                        for q in pending
                        if q.route == r.name and q.partition == key
                    ],
                    "links": store.link_count(r.name, key),
                    "last_run": ((dagster or {}).get("routes", {}).get(r.name, {}).get("latest", {}).get(key)),
                }
            )
        if dagster and r.name in dagster.get("routes", {}):
            entry["runs_in_flight"] = dagster["routes"][r.name]["in_flight"]
        report.append(entry)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"state: {store.display_url}")
    if dagster is None:
        print("dagster: no DAGSTER_HOME set; showing the state store only")
    elif "error" in dagster:
        print(f"dagster: cannot read the instance: {dagster['error']}")
    for entry in report:
        if not entry["enabled"]:
            print(f"\n{entry['route']}: disabled — {entry['disabled_reason']}")
            continue
        print(f"\n{entry['route']}")
        if "error" in entry:
            print(f"  error loading specs: {entry['error']}")
        for run in entry.get("runs_in_flight", []):
            print(f"  run {run['run_id'][:8]} {run['status']} ({run['trigger']}) partition {run['partition']}")
        for p in entry["partitions"]:
            print(f"  {p['partition']}  (every {p['interval_minutes']} min, {p['links']} linked)")
            for pause in p["paused"]:
                print(f"    PAUSED [{pause['scope']}] since {pause['since']}: {pause['reason']}")
            lp = p["last_pass"]
            if lp:
                print(f"    last pass: {lp['status']} {lp['mode']} at {lp['finished_at']}: {_fmt_stats(lp['stats'])}")
                if lp["error"]:
                    print(f"      error: {lp['error']}")
            else:
                print("    last pass: never")
            if p["last_run"]:
                lr = p["last_run"]
                print(f"    last run: {lr['run_id'][:8]} {lr['status']} ({lr['trigger']})")
            if p["in_flight"]:
                f = p["in_flight"]
                print(f"    in flight since {f['since']}: {f['pages_done']} pages done (checkpoint {f['updated_at']})")
            if p["not_before"]:
                print(f"    rate limited: next run after {p['not_before']}")
            if p["last_failure"]:
                print(f"    last run failure: {p['last_failure']}")
            if p["failed_records"]:
                print(f"    failed records: {p['failed_records']}")
                for fr in p["failures"]:
                    print(f"      {fr['key']} (attempts {fr['attempts']}): {fr['error']}")
            for q in p["pending_requests"]:
                what = "full refresh" if q["full_refresh"] else (f"items {q['items']}" if q["items"] else "full pass")
                print(f"    pending request #{q['id']}: {what} ({q['reason']})")
    return 0


def cmd_sync(args: argparse.Namespace, store: StateStore) -> int:
    route = _route(_load_routes(args.module), args.route)
    for key in _partitions(route, args.spec):
        rid = store.enqueue_request(
            route.name, key, only_items=args.items or None, full_refresh=args.full_refresh, reason="manual"
        )
        what = "full refresh" if args.full_refresh else (f"{len(args.items)} items" if args.items else "full pass")
        print(f"queued request #{rid}: {route.name}/{key} ({what}); the sync-now sensor starts it within seconds")
    return 0


def _progress_printer() -> Any:
    interactive = sys.stderr.isatty()

    def show(stats: PassStats) -> None:
        line = (
            f"\r  page {stats.pages}: {stats.records} records — create {stats.created}, "
            f"update {stats.updated}, unchanged {stats.unchanged}, failed {stats.failed}"
        )
        if interactive:
            sys.stderr.write(line)
            sys.stderr.flush()

    return show


def cmd_plan(args: argparse.Namespace, store: StateStore) -> int:
    route = _route(_load_routes(args.module), args.route)
    (key,) = _partitions(route, [args.spec])
    options = PassOptions(
        plan=True, full_refresh=args.full_refresh, only_items=tuple(args.items) if args.items else None
    )
    result = asyncio.run(run_pass(route, key, store, options, progress=_progress_printer()))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    s = result.stats
    if args.json:
        print(
            json.dumps(
                {"stats": s.as_dict(), "sample": result.planned, "failures": result.failures},
                indent=2,
                default=str,
            )
        )
        return 0
    print(f"plan for {route.name}/{key} (nothing written):")
    print(
        f"  would create {s.created}, update {s.updated}; unchanged {s.unchanged}; skipped {s.skipped}; invalid {s.failed}"
    )
    for bucket in ("create", "update", "failed"):
        if result.planned.get(bucket):
            print(f"  {bucket}: {', '.join(result.planned[bucket])}{' …' if len(result.planned[bucket]) >= 20 else ''}")
    for k, err in result.failures[:20]:
        print(f"    {k}: {err}")
    return 0


def _scopes(args: argparse.Namespace) -> tuple[list[str], Route | None, list[str]]:
    if args.credential:
        key = args.credential
        return [key if key.startswith("credential:") else f"credential:{key}"], None, []
    if not args.route:
        raise SystemExit("durable-sync: name a ROUTE or --credential KEY")
    route = _route(_load_routes(args.module), args.route)
    if args.spec:
        keys = _partitions(route, args.spec)
        return [f"partition:{route.name}/{k}" for k in keys], route, keys
    return [f"route:{route.name}"], route, _partitions(route, None)


def cmd_pause(args: argparse.Namespace, store: StateStore) -> int:
    scopes, _, _ = _scopes(args)
    for scope in scopes:
        store.pause(scope, args.reason or "paused by hand (durable-sync pause)", source="manual")
        print(f"paused {scope}")
    return 0


def cmd_resume(args: argparse.Namespace, store: StateStore) -> int:
    scopes, route, keys = _scopes(args)
    if route is not None:
        # Resuming a route also lifts the pauses that stop it: its partitions' and its credentials'.
        scopes = list(dict.fromkeys(scopes + [s for k in keys for s in route.pause_scopes(k)]))
    lifted = [s for s in scopes if store.resume(s)]
    for s in lifted:
        print(f"resumed {s}")
    if not lifted:
        print("nothing was paused")
    targets: list[tuple[str, str]] = []
    if route is not None:
        targets = [(route.name, k) for k in keys]
    else:
        for r in _load_routes(args.module):
            if r.enabled and scopes[0] in (r.source_scope, r.destination_scope):
                targets += [(r.name, k) for k in r.specs_by_partition()]
    for route_name, key in targets:
        store.enqueue_request(route_name, key, reason="resume")
    if targets:
        print(f"queued {len(targets)} catch-up request(s)")
    return 0


def cmd_auth(args: argparse.Namespace, store: StateStore | None) -> int:
    from sync_assets.tokens import EncryptedTokenStore, generate_key

    if args.auth_command == "keygen":
        print(f"DURABLE_SYNC_ENC_KEY={generate_key(args.key_id)}")
        print("# keep it secret; to rotate, put a new key first and the old one after a comma, then run:")
        print("#   durable-sync auth reencrypt")
        return 0
    assert store is not None
    tokens = EncryptedTokenStore(store)
    if args.auth_command == "status":
        pauses = store.pauses()
        accounts = tokens.accounts()
        if not accounts:
            print("no OAuth accounts stored (durable-sync auth login ACCOUNT)")
        for account, version, _updated in accounts:
            try:
                loaded = tokens.load(account)
            except SyncError as err:
                print(f"{account}: cannot read: {describe_error(err)}")
                continue
            token = loaded[0] if loaded else None
            expires = token.expires_at.isoformat(timespec="seconds") if token and token.expires_at else "unknown"
            refreshed = token.refreshed_at.isoformat(timespec="seconds") if token and token.refreshed_at else "never"
            print(f"{account}: version {version}, access token expires {expires}, last refresh {refreshed}")
            print(f"  client {token.client_id if token else '?'} for {token.resource if token else '?'}")
            for scope, pause in sorted(pauses.items()):
                if account in scope:
                    print(f"  PAUSED [{scope}] since {pause.paused_at.isoformat(timespec='seconds')}: {pause.reason}")
        return 0
    if args.auth_command == "logout":
        removed = tokens.delete(args.account)
        print(f"removed the {args.account} token" if removed else f"no token stored for {args.account}")
        return 0
    if args.auth_command == "login":
        from connectors.auth.login import run_login

        resource = args.resource or KNOWN_RESOURCES.get(args.account)
        if not resource:
            known = ", ".join(f"{k} ({v})" for k, v in KNOWN_RESOURCES.items())
            raise SystemExit(f"durable-sync: give --resource URL for account {args.account!r} (known: {known})")
        result = run_login(
            args.account,
            resource,
            tokens,
            mode=args.mode,
            open_browser=args.open_browser,
            redirect_port=args.port,
        )
        print(result.describe())
        paused = [scope for scope in store.pauses() if args.account in scope]
        if paused:
            # Not lifted here: the auth-resume sensor sees the new grant, lifts the pause and
            # queues the catch-up runs in one step.
            print(f"paused until the auth-resume sensor sees the new login: {', '.join(paused)}")
        return 0
    if args.auth_command == "reencrypt":
        print(f"re-encrypted {tokens.reencrypt()} token(s) with the current key")
        return 0
    raise SystemExit(f"durable-sync: unknown auth command {args.auth_command!r}")


def cmd_connectors(args: argparse.Namespace, store: StateStore | None) -> int:
    for info in discover():
        print(f"{info.name:<16} {info.kinds:<20} {info.distribution or '?'} {info.version or ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="durable-sync", description="Operate durable-sync routes.")
    p.add_argument("--module", help=f"module with the 'routes' list (default {DEFAULT_MODULE})")
    p.add_argument("--state-url", help="state store URL (default: DURABLE_SYNC_STATE_URL or DAGSTER_HOME)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("status", help="per route and partition: pauses, last pass, failures, requests")
    s.add_argument("route", nargs="?")
    s.add_argument("--json", action="store_true")
    s.add_argument("--failures", type=int, default=10, help="failed records to list per partition")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("sync", help="request a sync now (picked up by the sync-now sensor)")
    s.add_argument("route")
    s.add_argument("--spec", action="append", help="spec key (repeatable; default: every spec)")
    s.add_argument("--items", nargs="+", help="only these primary keys")
    s.add_argument("--full-refresh", action="store_true", help="rewrite every linked record")
    s.set_defaults(fn=cmd_sync)

    s = sub.add_parser("plan", help="dry run of one spec: what would be written")
    s.add_argument("route")
    s.add_argument("--spec", required=True)
    s.add_argument("--items", nargs="+")
    s.add_argument("--full-refresh", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_plan)

    for name, fn in (("pause", cmd_pause), ("resume", cmd_resume)):
        s = sub.add_parser(name, help=f"{name} a route, a spec or a credential")
        s.add_argument("route", nargs="?")
        s.add_argument("--spec", action="append")
        s.add_argument("--credential", help="credential key as status shows it, e.g. github:GITHUB_TOKEN")
        if name == "pause":
            s.add_argument("--reason")
        s.set_defaults(fn=fn)

    s = sub.add_parser("connectors", help="installed connectors")
    s.set_defaults(fn=cmd_connectors)

    auth = sub.add_parser("auth", help="OAuth accounts: keygen, status, logout, reencrypt")
    auth_sub = auth.add_subparsers(dest="auth_command", required=True)
    k = auth_sub.add_parser("keygen", help="print a new DURABLE_SYNC_ENC_KEY")
    k.add_argument("--key-id", help="the key's id (default k<date>)")
    auth_sub.add_parser("status", help="accounts, expiry, last refresh, paused partitions (never a token)")
    lo = auth_sub.add_parser("logout", help="forget an account's token")
    lo.add_argument("account")
    auth_sub.add_parser("reencrypt", help="re-encrypt every token with the current key")
    li = auth_sub.add_parser("login", help="authorize an account headlessly (OAuth with PKCE); stores the token")
    li.add_argument("account", help="e.g. notion-mcp")
    li.add_argument("--resource", help="the protected resource (MCP server) URL; known accounts need none")
    li.add_argument(
        "--mode",
        choices=["paste", "loopback"],
        default="paste",
        help="paste: open the printed URL anywhere and paste back where the browser ended; "
        "loopback: a one-shot listener on 127.0.0.1 receives the redirect",
    )
    li.add_argument("--port", type=int, default=0, help="loopback/redirect port (default: free, 8788 in paste mode)")
    li.add_argument("--open-browser", action="store_true", help="also try to open a local browser")
    auth.set_defaults(fn=cmd_auth)
    return p


def main(argv: Sequence[str] | None = None, *, routes: Sequence[Route] | None = None) -> int:
    """Run the CLI; ``routes`` replaces the routes module (for embedding and tests)."""
    global _ROUTES_OVERRIDE
    _ROUTES_OVERRIDE = routes
    args = build_parser().parse_args(argv)
    if args.fn is cmd_connectors or (args.fn is cmd_auth and args.auth_command == "keygen"):
        return int(args.fn(args, None) or 0)
    store = StateStore(args.state_url) if args.state_url else StateStore.shared()
    try:
        return int(args.fn(args, store) or 0)
    except SyncError as err:
        print(f"durable-sync: {describe_error(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
