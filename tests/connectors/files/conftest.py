"""Fixtures of the files connectors' tests."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

CsvWriter = Callable[[str, Sequence[str], Iterable[Sequence[object]]], Path]


@pytest.fixture
def write_csv(tmp_path: Path) -> CsvWriter:
    """Write a CSV file under tmp_path (quoting handled by the csv module) and return its path."""

    def write(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write


@pytest.fixture
def synced_at() -> dt.datetime:
    return dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
