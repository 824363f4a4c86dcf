"""The demo's data: a working copy of ``examples/tasks.csv`` and the place of its SQLite destination.

The project's definitions build the demo route from these (``definitions.py``), and ``make demo``
(``demo.py``) runs that route's job and edits the working copy between passes. They live apart from
the runner so that the definitions need not import the module that imports them.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
from pathlib import Path

__all__ = ["DEMO_ROUTE", "DEMO_SPEC", "EXAMPLES", "demo_csv", "demo_dir", "edit_one_row", "seed_demo_data"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_ROUTE = "files_to_sqlite"
DEMO_SPEC = "tasks"


def demo_dir() -> Path:
    """Where the demo's working copy of the CSV and its SQLite destination live."""
    explicit = os.environ.get("DURABLE_SYNC_DEMO_DIR", "").strip()
    if explicit:
        return Path(explicit).resolve()
    home = os.environ.get("DAGSTER_HOME", "").strip() or str(Path.cwd() / ".dagster_home")
    return Path(home).resolve() / "demo"


def demo_csv() -> Path:
    """The demo's working copy of ``examples/tasks.csv``."""
    return demo_dir() / "tasks.csv"


def seed_demo_data(*, reset: bool = False) -> Path:
    """Copy ``examples/tasks.csv`` into the demo directory (the repo's copy is never edited).

    Args:
        reset: Copy it even if the working copy exists (``make demo`` starts from the example).

    Returns:
        The working copy's path.
    """
    target = demo_csv()
    if reset or not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLES / "tasks.csv", target)
    return target


def edit_one_row(path: Path, key: str = "T-0042") -> str:
    """Retitle one task in the demo CSV (written through a temp file and ``os.replace``).

    Args:
        path: The CSV file.
        key: The task's id.

    Returns:
        The new title.
    """
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    title = f"Edited by the demo at {dt.datetime.now(dt.UTC):%H:%M:%S}"
    for row in rows:
        if row["id"] == key:
            row["title"] = title
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return title
