"""The ``durable-sync`` command line.

    durable-sync status [ROUTE] [--json]        pauses, last full and targeted pass, failures, requests
    durable-sync sync ROUTE [--spec KEY]... [--items PK ...] [--full-refresh] [--wait | --no-wait]
                                                enqueue a sync-now request (a run within seconds);
                                                with --items it waits for the pass and names the
                                                keys the source did not return
    durable-sync plan ROUTE --spec KEY          dry run: the schema it lacks, then what would be
                                                created / updated / unchanged
    durable-sync schema ROUTE [--spec KEY] [--apply]  the destination fields the source's records need
                                                (sampled); --apply creates the missing ones, never
                                                alters an existing one
    durable-sync pause ROUTE [--spec KEY] [--reason TEXT]  |  pause --credential KEY
    durable-sync resume ROUTE [--spec KEY]  |  resume --credential KEY
    durable-sync connectors                     installed connectors (entry points)
    durable-sync migrate [--url URL] [--check]  upgrade the state database's schema (--check: exit 1
                                                when an upgrade is pending)
    durable-sync webhooks [--host H] [--port P] serve the vendors' webhooks (sync-now requests for the
                                                changed items); --show-notion-token prints Notion's
                                                handshake token

Routes come from the module named by ``--module`` or ``DURABLE_SYNC_ROUTES_MODULE`` (default
``sync_assets.definitions``), attribute ``routes``; the current directory is on the import path, as
for ``dagster -m``. The state store is the one the deployment uses (``DURABLE_SYNC_STATE_URL``, else
SQLite under ``DAGSTER_HOME``).

Like ``dagster dev``, the CLI reads a ``.env`` file in the current directory, so the two see the same
configuration; unlike Dagster, a variable already set in the environment wins over the file (an
explicit ``export`` is the more deliberate choice).

Mistakes of the caller (an unknown route, spec or module) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.core import SyncError, describe_error
from connectors.registry import discover
from sync_assets.engine import PassOptions, PassStats, run_pass
from sync_assets.routes import Route
from sync_assets.state import PassRecord, Pause, StateStore, SyncRequest, utcnow

__all__ = ["main"]

DEFAULT_MODULE = "sync_assets.definitions"
_ROUTES_OVERRIDE: Sequence[Route] | None = None


class UsageError(Exception):
    """A mistake of the caller (unknown route, spec or module): one line on stderr, exit status 2."""


def load_dotenv(path: Path) -> list[str]:
    """Set the variables of a ``.env`` file that the environment does not already set.

    The file is parsed by python-dotenv (a Dagster dependency), as ``dagster dev`` does.

    Args:
        path: The file; a missing one sets nothing.

    Returns:
        The names set.
    """
    if not path.is_file():
        return []
    from dotenv import dotenv_values

    added = []
    for name, value in dotenv_values(path).items():
        if value is not None and name not in os.environ:
            os.environ[name] = value
            added.append(name)
    return added


def _import_routes_module(name: str) -> Any:
    # `dagster -m` puts its working directory on the import path; so does the CLI, so that
    # `durable-sync --module my_routes` finds ./my_routes.py without PYTHONPATH=.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(f"{err.name}.")):
            raise UsageError(
                f"no module named {name!r} (looked in {cwd} and the installed packages); "
                "give --module or DURABLE_SYNC_ROUTES_MODULE a module with a 'routes' list"
            ) from None
        raise UsageError(f"module {name} cannot be imported: {describe_error(err)}") from None


def _module_name(module: str | None) -> str:
    return module or os.environ.get("DURABLE_SYNC_ROUTES_MODULE", "").strip() or DEFAULT_MODULE


def _load_routes(module: str | None) -> list[Route]:
    if _ROUTES_OVERRIDE is not None:
        return list(_ROUTES_OVERRIDE)
    name = _module_name(module)
    mod = _import_routes_module(name)
    routes = getattr(mod, "routes", None)
    if routes is None:
        raise UsageError(f"module {name} has no 'routes' list")
    return list(routes)


def _route_errors(module: str | None) -> list[Any]:
    """The routes of the module that failed to load (``route_errors``: name, path, error), if it lists them."""
    if _ROUTES_OVERRIDE is not None:
        return []
    return list(getattr(_import_routes_module(_module_name(module)), "route_errors", None) or [])


def _route(routes: Sequence[Route], name: str, module: str | None = None) -> Route:
    for r in routes:
        if r.name == name:
            if not r.enabled:
                raise UsageError(f"route {name} is disabled: {r.disabled_reason or 'not configured'}")
            return r
    for e in _route_errors(module):
        if e.name == name:
            raise UsageError(f"route {name} is not loaded: {e.error} ({e.path})")
    known = ", ".join(r.name for r in routes) or "none"
    where = "" if _ROUTES_OVERRIDE is not None else f" in module {_module_name(module)}"
    raise UsageError(
        f"no route named {name!r}{where} (routes: {known}); a route of another code location needs "
        "--module (or DURABLE_SYNC_ROUTES_MODULE) naming that location's module"
    )


def _partitions(route: Route, specs: Sequence[str] | None) -> list[str]:
    from sync_assets.routes import partition_key_for

    known = route.specs_by_partition()
    if not specs:
        return sorted(known)
    out = []
    for s in specs:
        key = s if s in known else partition_key_for(s)
        if key not in known:
            raise UsageError(f"{route.name} has no spec {s!r} (specs: {', '.join(sorted(known))})")
        out.append(key)
    return out


def _fmt_stats(stats: dict[str, Any]) -> str:
    keys = ("created", "updated", "unchanged", "skipped", "failed", "pages")
    parts = [f"{k} {stats.get(k, 0)}" for k in keys]
    # Two-way conflicts and on_missing marks, when the pass had any.
    for key, label in (
        ("conflicts", "conflicts"),
        ("missing_marked", "marked missing"),
        ("missing_cleared", "unmarked"),
    ):
        if stats.get(key):
            parts.append(f"{label} {stats[key]}")
    if stats.get("seconds") is not None:
        parts.append(f"{stats['seconds']:.1f}s")
    return ", ".join(parts)


# -------------------------------------------------------------------------------------- commands


# Accounts whose resource is known, so `durable-sync auth login notion-mcp` needs no URL.
KNOWN_RESOURCES = {"notion-mcp": "https://mcp.notion.com/mcp", "contentful-mcp": "https://mcp.contentful.com/mcp"}

IN_FLIGHT_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _dagster_view(routes: Sequence[Route]) -> dict[str, Any] | None:
    """Dagster's side of status: the latest runs per route partition.

    They are read from the instance in ``DAGSTER_HOME`` (None when there is none to read).
    """
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


FULL_MODES = ("full", "full_refresh")
PASS_HISTORY = 200  # the state store keeps this many passes per partition
TARGETED_WAIT_SECONDS = 120.0
WAIT_POLL_SECONDS = 1.0
MAX_CHECK_PAGES = 100  # pages read when asking the source which requested keys it has


def _latest(passes: Sequence[PassRecord], modes: Sequence[str]) -> PassRecord | None:
    return next((p for p in passes if p.mode in modes), None)


def _last_full_and_targeted(store: StateStore, route: str, partition: str) -> tuple[PassRecord | None, ...]:
    """The latest pass of each kind.

    A run of targeted syncs must not hide a full pass that keeps failing, so they are looked up
    separately (deeper into the history when the recent rows are of one kind only).
    """
    passes = store.last_passes(route, partition, limit=20)
    full, targeted = _latest(passes, FULL_MODES), _latest(passes, ("targeted",))
    if len(passes) == 20 and (full is None or targeted is None):
        passes = store.last_passes(route, partition, limit=PASS_HISTORY)
        full, targeted = _latest(passes, FULL_MODES), _latest(passes, ("targeted",))
    return (passes[0] if passes else None), full, targeted


def _pass_view(p: PassRecord | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "mode": p.mode,
        "status": p.status,
        "started_at": p.started_at.isoformat(timespec="seconds"),
        "finished_at": p.finished_at.isoformat(timespec="seconds"),
        "stats": p.stats,
        "error": p.error,
        "run_id": p.run_id,
    }


@dataclass(frozen=True)
class _StatusInputs:
    """What ``durable-sync status`` reads once and shows per partition."""

    store: StateStore
    pauses: dict[str, Pause]
    pending: list[SyncRequest]
    dagster: dict[str, Any] | None  # _dagster_view: None without an instance, {"error": ...} unreadable
    failures: int  # failed records listed per partition

    @property
    def knows_runs(self) -> bool:
        """Whether a run holds a partition is Dagster's to say; without a readable instance it is unknown."""
        return self.dagster is not None and "error" not in self.dagster

    def runs_view(self, route: str) -> dict[str, Any]:
        """Dagster's runs of ``route`` (``in_flight``, ``latest``); empty without an instance."""
        result: dict[str, Any] = (self.dagster or {}).get("routes", {}).get(route, {})
        return result


def _checkpoint_status(inputs: _StatusInputs, route: str, key: str, running: list[Any]) -> dict[str, Any] | None:
    cp = inputs.store.get_checkpoint(route, key)
    if not cp:
        return None
    return {
        "pages_done": cp.stats.get("pages", 0),
        "resumes_at_page": cp.stats.get("pages", 0) + 1,
        "full_refresh": bool(cp.options.get("full_refresh")),
        "since": cp.started_at.isoformat(timespec="seconds"),
        "updated_at": cp.updated_at.isoformat(timespec="seconds"),
        "running": bool(running) if inputs.knows_runs else None,
    }


def _partition_status(
    inputs: _StatusInputs, r: Route, key: str, spec: Any, runs_view: dict[str, Any]
) -> dict[str, Any]:
    store = inputs.store
    paused = [
        {"scope": p.scope, "reason": p.reason, "since": p.paused_at.isoformat(timespec="seconds")}
        for s in r.pause_scopes(key)
        if (p := inputs.pauses.get(s)) is not None
    ]
    last, last_full, last_targeted = _last_full_and_targeted(store, r.name, key)
    running = [run for run in runs_view.get("in_flight", []) if run["partition"] == key]
    checkpoint = _checkpoint_status(inputs, r.name, key, running)
    state = store.partition_state(r.name, key)
    failed = store.failed_records(r.name, key, limit=inputs.failures)
    return {
        "partition": key,
        "spec": spec.key,
        "interval_minutes": spec.interval_minutes,
        "paused": paused,
        "last_pass": _pass_view(last),
        "last_full_pass": _pass_view(last_full),
        "last_targeted_pass": _pass_view(last_targeted),
        "checkpoint": checkpoint,
        # Only a pass a Dagster run is executing right now; a checkpoint alone is an
        # interrupted pass that the next run resumes.
        "in_flight": {"runs": running, "checkpoint": checkpoint} if running else None,
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
            for q in inputs.pending
            if q.route == r.name and q.partition == key
        ],
        "links": store.link_count(r.name, key),
        "last_run": runs_view.get("latest", {}).get(key),
    }


def _route_status(inputs: _StatusInputs, r: Route) -> dict[str, Any]:
    entry: dict[str, Any] = {"route": r.name, "enabled": r.enabled, "partitions": []}
    if not r.enabled:
        entry["disabled_reason"] = r.disabled_reason or "not configured"
        return entry
    try:
        specs = r.specs_by_partition()
    except Exception as err:
        entry["error"] = describe_error(err)
        return entry
    runs_view = inputs.runs_view(r.name)
    for key, spec in sorted(specs.items()):
        entry["partitions"].append(_partition_status(inputs, r, key, spec, runs_view))
    if r.name in (inputs.dagster or {}).get("routes", {}):
        entry["runs_in_flight"] = runs_view["in_flight"]
    return entry


def _print_passes(p: dict[str, Any]) -> None:
    if p["last_pass"] is None:
        print("    last pass: never")
        return
    for label, lp in (("last full pass", p["last_full_pass"]), ("last targeted pass", p["last_targeted_pass"])):
        if lp is None:
            print(f"    {label}: never")
            continue
        kind = " (full refresh)" if lp["mode"] == "full_refresh" else ""
        print(f"    {label}{kind}: {lp['status']} at {lp['finished_at']}: {_fmt_stats(lp['stats'])}")
        if lp["error"]:
            print(f"      error: {lp['error']}")


def _print_in_flight(p: dict[str, Any]) -> None:
    cp = p["checkpoint"]
    if p["in_flight"]:
        for run in p["in_flight"]["runs"]:
            line = f"    in flight: run {run['run_id'][:8]} {run['status']} ({run['trigger']})"
            if cp:
                line += f", {cp['pages_done']} pages done since {cp['since']} (checkpoint {cp['updated_at']})"
            print(line)
    elif cp and cp["running"] is False:
        print(
            f"    interrupted, resumes at page {cp['resumes_at_page']} on the next pass "
            f"({cp['pages_done']} pages done since {cp['since']}, last checkpoint {cp['updated_at']})"
        )
    elif cp:
        print(
            f"    unfinished pass: {cp['pages_done']} pages done since {cp['since']} (checkpoint "
            f"{cp['updated_at']}); whether a run is on it is unknown without the Dagster instance"
        )


def _print_partition(p: dict[str, Any]) -> None:
    print(f"  {p['partition']}  (every {p['interval_minutes']} min, {p['links']} linked)")
    for pause in p["paused"]:
        print(f"    PAUSED [{pause['scope']}] since {pause['since']}: {pause['reason']}")
    _print_passes(p)
    if p["last_run"]:
        lr = p["last_run"]
        print(f"    last run: {lr['run_id'][:8]} {lr['status']} ({lr['trigger']})")
    _print_in_flight(p)
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


def _print_status(store: StateStore, dagster: dict[str, Any] | None, report: list[dict[str, Any]]) -> None:
    print(f"state: {store.display_url}")
    if dagster is None:
        print("dagster: no DAGSTER_HOME set; showing the state store only")
    elif "error" in dagster:
        print(f"dagster: cannot read the instance: {dagster['error']}")
    for entry in report:
        if "invalid" in entry:
            print(f"\n{entry['route']}: NOT LOADED — {entry['invalid']} ({entry['path']})")
            continue
        if not entry["enabled"]:
            print(f"\n{entry['route']}: disabled — {entry['disabled_reason']}")
            continue
        print(f"\n{entry['route']}")
        if "error" in entry:
            print(f"  error loading specs: {entry['error']}")
        for p in entry["partitions"]:
            _print_partition(p)


def cmd_status(args: argparse.Namespace, store: StateStore) -> int:
    routes = _load_routes(args.module)
    if args.route:
        routes = [_route(routes, args.route, args.module)]
    pauses = store.pauses()
    pending = store.pending_requests()
    dagster = _dagster_view(routes)
    inputs = _StatusInputs(store, pauses, pending, dagster, args.failures)
    report = [_route_status(inputs, r) for r in routes]
    if not args.route:
        # Routes whose configuration is invalid: kept out of the graph, shown here with the file to fix.
        for e in _route_errors(args.module):
            report.append({"route": e.name, "enabled": False, "invalid": e.error, "path": e.path, "partitions": []})
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    _print_status(store, dagster, report)
    return 0


def _describe_pause(route: Route, pause: Any) -> str:
    if pause.source == "auth":
        fix = f"renew the credential (the pause then clears itself) or run: durable-sync resume {route.name}"
    else:
        fix = f"durable-sync resume {route.name}"
    return f"paused [{pause.scope}]: {pause.reason}. The request stays queued and runs after {fix}"


def cmd_sync(args: argparse.Namespace, store: StateStore) -> int:
    route = _route(_load_routes(args.module), args.route, args.module)
    keys = _partitions(route, args.spec)
    items = list(dict.fromkeys(args.items)) if args.items else None
    wait = args.wait if args.wait is not None else bool(items)
    pauses = store.pauses()
    queued: list[tuple[int, str, dt.datetime]] = []
    for key in keys:
        since = utcnow()  # the request's creation time (the store stamps it with the same clock)
        rid = store.enqueue_request(route.name, key, only_items=items, full_refresh=args.full_refresh, reason="manual")
        what = "full refresh" if args.full_refresh else (f"{len(items)} items" if items else "full pass")
        pause = next((pauses[s] for s in route.pause_scopes(key) if s in pauses), None)
        if pause is not None:
            print(f"queued request #{rid}: {route.name}/{key} ({what}); {_describe_pause(route, pause)}")
            continue
        print(f"queued request #{rid}: {route.name}/{key} ({what}); the sync-now sensor starts it within seconds")
        queued.append((rid, key, since))
    if not wait or not queued:
        return 0
    return _wait_and_report(store, route, queued, items, args.timeout)


def _finished_after(store: StateStore, route: str, partition: str, since: dt.datetime) -> PassRecord | None:
    """The first pass of ``partition`` that began after ``since`` (a request's creation) and finished."""
    for p in reversed(store.last_passes(route, partition, limit=10)):
        if p.mode == "plan":
            continue
        # A full pass resumed from a checkpoint keeps its first start; it counts once it finished later.
        resumed = p.stats.get("resumed_from") is not None and p.mode in FULL_MODES
        if p.started_at >= since or (resumed and p.finished_at >= since):
            return p
    return None


def _wait_and_report(
    store: StateStore,
    route: Route,
    queued: Sequence[tuple[int, str, dt.datetime]],
    items: list[str] | None,
    timeout: float,
) -> int:
    created = {rid: since for rid, _key, since in queued}
    waiting = {rid: key for rid, key, _since in queued}
    deadline = time.monotonic() + timeout
    code = 0
    print(f"waiting up to {timeout:.0f} s for the pass (Ctrl-C stops waiting; the request stays queued)")
    try:
        while waiting:
            for rid, key in list(waiting.items()):
                done = _finished_after(store, route.name, key, created[rid])
                if done is None:
                    continue
                del waiting[rid]
                print(f"{route.name}/{key}: {done.status} {done.mode} pass: {_fmt_stats(done.stats)}")
                if done.error:
                    print(f"  error: {done.error}")
                    code = 1
                if items and done.mode == "targeted":
                    missing = _not_found(route, key, items, done.stats)
                    if missing:
                        print(f"  not found at source: {', '.join(missing)}")
                elif items:
                    print("  (the request was merged into a full pass of the partition)")
            if waiting and time.monotonic() >= deadline:
                break
            if waiting:
                time.sleep(WAIT_POLL_SECONDS)
    except KeyboardInterrupt:
        print("stopped waiting")
        return 1
    for rid, key in waiting.items():
        taken = all(q.id != rid for q in store.pending_requests(route.name))
        where = (
            "its run has not finished" if taken else "no code location has taken it yet (is dagster-daemon running?)"
        )
        print(
            f"{route.name}/{key}: request #{rid} not done after {timeout:.0f} s: {where}; "
            f"see: durable-sync status {route.name}"
        )
        code = 1
    return code


def _not_found(route: Route, partition: str, items: Sequence[str], stats: dict[str, Any]) -> list[str]:
    """The requested keys the source did not return in a targeted pass with these ``stats``."""
    recorded = stats.get("not_found")  # when the engine names them itself
    if isinstance(recorded, list):
        return [str(k) for k in recorded]
    if int(stats.get("records", 0)) >= len(items):
        return []  # the source returned a record for every key asked for
    # The pass history has the count, not the keys: ask the source which of them it has (the same
    # targeted read the pass made; nothing is written).
    try:
        found = asyncio.run(_keys_at_source(route, partition, items))
    except Exception as err:
        print(
            f"  the source returned {stats.get('records', 0)} of {len(items)} requested records; "
            f"which are missing could not be checked: {describe_error(err)}"
        )
        return []
    return [k for k in items if k not in found]


async def _keys_at_source(route: Route, partition: str, items: Sequence[str]) -> set[str]:
    spec = route.spec_for(partition)
    fetch_page = getattr(route.source, "fetch_page", None)
    if fetch_page is None:
        return {str(getattr(r, "primary_key", "")) for r in await route.source.fetch(spec, list(items))}
    found: set[str] = set()
    cursor: str | None = None
    for _ in range(MAX_CHECK_PAGES):
        records, cursor = await fetch_page(spec, list(items), cursor)
        found.update(str(getattr(r, "primary_key", "")) for r in records)
        if cursor is None:
            break
    return found


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


def _schema_report(route: Route, key: str, *, apply: bool, pages: int = 1) -> Any:
    from sync_assets.bootstrap import bootstrap_route

    return asyncio.run(bootstrap_route(route, key, apply=apply, pages=pages))


def cmd_schema(args: argparse.Namespace, store: StateStore | None) -> int:
    # Reads the source and the destination only: no state store is opened for it.
    route = _route(_load_routes(args.module), args.route, args.module)
    key = _partitions(route, [args.spec])[0] if args.spec else None
    report = _schema_report(route, key or _partitions(route, None)[0], apply=args.apply, pages=args.pages)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    for line in report.lines():
        print(line)
    if report.creates and not args.apply:
        print(f"nothing written; durable-sync schema {route.name} --apply creates them")
    return 0


def cmd_plan(args: argparse.Namespace, store: StateStore) -> int:
    from connectors.core import SchemaBootstrap

    route = _route(_load_routes(args.module), args.route, args.module)
    (key,) = _partitions(route, [args.spec])
    schema: Any = None
    if isinstance(route.destination, SchemaBootstrap):
        try:
            schema = _schema_report(route, key, apply=False)
        except SyncError as schema_error:  # the plan of the records still says what it can
            schema = describe_error(schema_error)
    options = PassOptions(
        plan=True, full_refresh=args.full_refresh, only_items=tuple(args.items) if args.items else None
    )
    result = asyncio.run(run_pass(route, key, store, options, progress=_progress_printer()))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    s = result.stats
    if args.json:
        view = {"stats": s.as_dict(), "sample": result.planned, "failures": result.failures}
        if schema is not None:
            view["schema"] = schema if isinstance(schema, str) else schema.as_dict()
        print(json.dumps(view, indent=2, default=str))
        return 0
    if isinstance(schema, str):
        print(f"schema of {route.name}: cannot tell ({schema})")
    elif schema is not None:
        for line in schema.lines():
            print(line)
    print(f"plan for {route.name}/{key} (nothing written):")
    print(
        f"  would create {s.created}, update {s.updated}; unchanged {s.unchanged}; skipped {s.skipped}; invalid {s.failed}"
    )
    for bucket in ("create", "update", "failed"):
        if result.planned.get(bucket):
            print(f"  {bucket}: {', '.join(result.planned[bucket])}{' …' if len(result.planned[bucket]) >= 20 else ''}")
    for k, err in result.failures[:20]:
        print(f"    {k}: {err}")
    if args.items:
        missing = _not_found(route, key, list(dict.fromkeys(args.items)), s.as_dict())
        if missing:
            print(f"  not found at source: {', '.join(missing)}")
    return 0


def _scopes(args: argparse.Namespace) -> tuple[list[str], Route | None, list[str]]:
    if args.credential:
        key = args.credential
        return [key if key.startswith("credential:") else f"credential:{key}"], None, []
    if not args.route:
        raise UsageError("name a ROUTE or --credential KEY")
    route = _route(_load_routes(args.module), args.route, args.module)
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
    if not lifted:
        # Nothing was stopped, so there is nothing to catch up on: the dispatcher keeps the
        # partitions current (durable-sync sync ROUTE asks for a pass now).
        print("nothing paused")
        return 0
    for s in lifted:
        print(f"resumed {s}")
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
            raise UsageError(f"give --resource URL for account {args.account!r} (known: {known})")
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
    raise UsageError(f"unknown auth command {args.auth_command!r}")


def cmd_connectors(args: argparse.Namespace, store: StateStore | None) -> int:
    for info in discover():
        print(f"{info.name:<16} {info.kinds:<20} {info.distribution or '?'} {info.version or ''}")
    return 0


def cmd_migrate(args: argparse.Namespace, store: StateStore | None) -> int:
    from sync_assets.state import migrate_command

    code, line = migrate_command(args.url or args.state_url, check=args.check)
    print(line)
    return code


def cmd_webhooks(args: argparse.Namespace, store: StateStore) -> int:
    from sync_assets import webhooks

    if args.show_notion_token:
        token = webhooks.show_notion_token(store)
        if token is None:
            print("no Notion handshake received yet (create the subscription with this server reachable)")
            return 1
        print(token)
        return 0
    config = webhooks.WebhookConfig(max_body=args.max_body, contentful_ttl=args.contentful_ttl)
    routes = [r for r in _load_routes(args.module) if r.enabled]
    webhooks.serve(routes, store, host=args.host, port=args.port, config=config)
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
    s.add_argument(
        "--wait",
        dest="wait",
        action="store_true",
        default=None,
        help="wait for the pass and report it (the default with --items: it names keys the source lacks)",
    )
    s.add_argument("--no-wait", dest="wait", action="store_false", help="only queue the request")
    s.add_argument("--timeout", type=float, default=TARGETED_WAIT_SECONDS, help="seconds to wait (default %(default)s)")
    s.set_defaults(fn=cmd_sync)

    s = sub.add_parser("plan", help="dry run of one spec: what would be written")
    s.add_argument("route")
    s.add_argument("--spec", required=True)
    s.add_argument("--items", nargs="+")
    s.add_argument("--full-refresh", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_plan)

    s = sub.add_parser("schema", help="the destination fields a route's records need; --apply creates them")
    s.add_argument("route")
    s.add_argument("--spec", help="the spec whose first page is sampled (default: the first)")
    s.add_argument("--apply", action="store_true", help="create what is missing (never alters what exists)")
    s.add_argument("--pages", type=int, default=1, help="source pages to sample (default %(default)s)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_schema)

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

    s = sub.add_parser("migrate", help="upgrade the state database's schema to this durable-sync's")
    s.add_argument("--url", help="state store URL (default: --state-url, DURABLE_SYNC_STATE_URL or DAGSTER_HOME)")
    s.add_argument("--check", action="store_true", help="only report; exit 1 when an upgrade is pending")
    s.set_defaults(fn=cmd_migrate)

    s = sub.add_parser("webhooks", help="serve vendors' webhooks: signed events become sync-now requests")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default %(default)s)")
    s.add_argument("--port", type=int, default=8790, help="port (default %(default)s)")
    s.add_argument("--max-body", type=int, default=2 * 1024 * 1024, help="largest body in bytes (default %(default)s)")
    s.add_argument(
        "--contentful-ttl", type=float, default=300.0, help="seconds a signed Contentful request stays valid"
    )
    s.add_argument("--show-notion-token", action="store_true", help="print Notion's handshake token and exit")
    s.set_defaults(fn=cmd_webhooks)

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
    """Run the CLI.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        routes: Routes to use instead of the routes module (for embedding and tests).

    Returns:
        The exit status: 2 on a caller's mistake or a ``SyncError``, else the command's own (0: success).
    """
    global _ROUTES_OVERRIDE
    _ROUTES_OVERRIDE = routes
    args = build_parser().parse_args(argv)
    load_dotenv(Path.cwd() / ".env")
    try:
        if args.fn in (cmd_connectors, cmd_migrate, cmd_schema) or (
            args.fn is cmd_auth and args.auth_command == "keygen"
        ):
            return int(args.fn(args, None) or 0)
        store = StateStore(args.state_url) if args.state_url else StateStore.shared()
        return int(args.fn(args, store) or 0)
    except UsageError as err:
        print(f"durable-sync: {err}", file=sys.stderr)
        return 2
    except SyncError as err:
        print(f"durable-sync: {describe_error(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
