"""The embedded demo: example tasks (CSV) mirrored into a local SQLite table, through Dagster.

``make demo`` runs ``python -m sync_assets.demo``: three runs of the route's real job on the
persistent local instance (``DAGSTER_HOME``), so they show up later in ``make dev``:

1. the first pass creates every row (on a fresh clone);
2. a second pass over the same file writes nothing;
3. one row of the file is edited, and the third pass makes exactly one update.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sync_assets.demo_data import (
    DEMO_ROUTE,
    DEMO_SPEC,
    EXAMPLES,
    demo_csv,
    demo_dir,
    edit_one_row,
    seed_demo_data,
)

__all__ = ["DEMO_ROUTE", "DEMO_SPEC", "EXAMPLES", "demo_csv", "demo_dir", "edit_one_row", "main", "seed_demo_data"]


def main() -> int:
    """Run the demo route's job three times and print what each pass did (``make demo``).

    Returns:
        The exit status: 0 when the passes behaved as described, 1 when not, 2 without ``DAGSTER_HOME``.
    """
    import dagster as dg

    from sync_assets.project import load_project

    project = load_project()
    defs, routes = project.definitions(), project.routes

    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run this through `make demo`.", file=sys.stderr)
        return 2
    route = next(r for r in routes if r.name == DEMO_ROUTE)
    dest: Any = route.destination  # the demo's SQLiteDestination
    seed_demo_data(reset=True)
    instance = dg.DagsterInstance.get()
    if DEMO_SPEC not in instance.get_dynamic_partitions(DEMO_ROUTE):
        instance.add_dynamic_partitions(DEMO_ROUTE, [DEMO_SPEC])
    job = defs.resolve_job_def(f"{DEMO_ROUTE}_sync")
    print(f"DAGSTER_HOME: {os.environ['DAGSTER_HOME']}")
    print(f"source:       {demo_csv()}")
    print(f"destination:  {dest.describe()}")

    def run(label: str) -> dict:
        result = job.execute_in_process(
            instance=instance,
            partition_key=DEMO_SPEC,
            tags={"durable_sync/trigger": "demo"},
            # Keep the terminal for the summary; every event is in the run's log in the UI.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        (mat,) = [m for m in result.asset_materializations_for_node(DEMO_ROUTE)]
        md = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        print(
            f"{label:<28} created {md['created']:>4}  updated {md['updated']:>4}  "
            f"unchanged {md['unchanged']:>4}  failed {md['failed']}  "
            f"writes {md['destination_calls']}  (run {result.run_id[:8]})"
        )
        return md

    print()
    first = run("pass 1 (first sync):")
    second = run("pass 2 (nothing changed):")
    title = edit_one_row(demo_csv())
    third = run("pass 3 (one row edited):")
    print()
    row = next(r for r in dest.read_rows() if r[dest.key_column] == "T-0042")
    print(f"T-0042 in SQLite now: title={row['title']!r} due={row['due']!r} tags={row['tags']!r} done={row['done']!r}")
    ok = second["destination_calls"] == 0 and third["updated"] == 1 and row["title"] == title
    print("idempotent: second pass wrote nothing; third pass updated exactly one row." if ok else "UNEXPECTED RESULT")
    if first["created"] == 0:
        print("(pass 1 created nothing: this DAGSTER_HOME already held the demo; it updated what changed.)")
    print("\nSee the runs, the asset graph and the partitions: make dev, then http://127.0.0.1:3000")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
