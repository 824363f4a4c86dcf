"""FilesSource: paging, resumable cursors, globs, type conversion, config errors, O(N) passes."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from connectors.core import ConfigError, Record, SourceSpec, neutral_type_error
from connectors.files import FileSpec, FilesSource

REPO = Path(__file__).resolve().parents[3]

TASK_TYPES = {
    "priority": "int",
    "estimate_hours": "float",
    "done": "bool",
    "tags": "list",
    "due": "date",
    "updated_at": "datetime",
}


def spec_of(source: FilesSource, key: str) -> SourceSpec:
    (spec,) = [s for s in source.specs() if s.key == key]
    return spec


async def drain(source: FilesSource, spec: SourceSpec, cursor: str | None = None) -> tuple[list[Record], list[str]]:
    """All records from ``cursor`` on, and the cursors handed out on the way."""
    records: list[Record] = []
    cursors: list[str] = []
    while True:
        page, cursor = await source.fetch_page(spec, None, cursor)
        records.extend(page)
        if cursor is None:
            return records, cursors
        cursors.append(cursor)


@pytest.fixture
def numbered_csv(write_csv):
    return write_csv("rows.csv", ["id", "n"], ([f"r{i:05d}", i] for i in range(1234)))


# --------------------------------------------------------------------------------------------------
# Paging and cursors


async def test_pages_to_the_end_with_stable_cursors(numbered_csv, tmp_path):
    source = FilesSource([FileSpec("rows", str(numbered_csv), "id", {"n": "int"})], page_size=100)
    spec = spec_of(source, "rows")

    records, cursors = await drain(source, spec)

    assert [r.primary_key for r in records] == [f"r{i:05d}" for i in range(1234)]
    assert [r.properties["n"] for r in records] == list(range(1234))
    assert len(cursors) == 12  # 13 pages; the last one says None instead of an extra empty page
    assert len(set(cursors)) == 12
    for i, cursor in enumerate(cursors, start=1):
        assert json.loads(cursor) == {"v": 1, "file": str(numbered_csv), "row": 100 * i}
    # Replaying a stored cursor gives the same page again (an engine retry of a page).
    page, nxt = await source.fetch_page(spec, None, cursors[4])
    assert [r.primary_key for r in page] == [f"r{i:05d}" for i in range(500, 600)]
    assert nxt == cursors[5]


async def test_resume_in_a_fresh_source_returns_exactly_the_remaining_rows(numbered_csv):
    first = FilesSource([FileSpec("rows", str(numbered_csv), "id")], page_size=100)
    spec = spec_of(first, "rows")
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page, cursor = await first.fetch_page(spec, None, cursor)
        seen += [r.primary_key for r in page]
    stored = json.loads(json.dumps(cursor))  # as a checkpoint table would keep it

    # A new process: a new source, nothing cached.
    second = FilesSource([FileSpec("rows", str(numbered_csv), "id")], page_size=100)
    rest, _ = await drain(second, spec_of(second, "rows"), stored)

    assert seen + [r.primary_key for r in rest] == [f"r{i:05d}" for i in range(1234)]
    assert second.rows_read == 1234  # the 300 skipped rows, read once, and the rest


async def test_consecutive_pages_continue_one_reader_and_read_each_row_once(numbered_csv):
    source = FilesSource([FileSpec("rows", str(numbered_csv), "id")], page_size=100)
    spec = spec_of(source, "rows")

    page, cursor = await source.fetch_page(spec, None, None)
    assert len(page) == 100
    assert source.rows_read == 101  # one row read ahead, to know whether another page exists
    await drain(source, spec, cursor)
    assert source.rows_read == 1234

    # A cursor that is not the one the cached reader expects reopens the file and skips to it.
    source.rows_read = 0
    _, cursors = await drain(FilesSource([FileSpec("rows", str(numbered_csv), "id")], page_size=100), spec)
    page, _ = await source.fetch_page(spec, None, cursors[9])
    assert page[0].primary_key == "r01000"
    assert source.rows_read == 1000 + 100 + 1


async def test_interleaved_passes_of_two_specs_keep_their_own_readers(write_csv):
    a = write_csv("a.csv", ["id"], ([f"a{i}"] for i in range(250)))
    b = write_csv("b.csv", ["id"], ([f"b{i}"] for i in range(250)))
    source = FilesSource([FileSpec("a", str(a), "id"), FileSpec("b", str(b), "id")], page_size=50)
    cursors: dict[str, str | None] = {"a": None, "b": None}
    keys: dict[str, list[str]] = {"a": [], "b": []}
    done: set[str] = set()
    while len(done) < 2:
        for key in ("a", "b"):
            if key in done:
                continue
            page, cursors[key] = await source.fetch_page(spec_of(source, key), None, cursors[key])
            keys[key] += [r.primary_key for r in page]
            if cursors[key] is None:
                done.add(key)

    assert keys == {"a": [f"a{i}" for i in range(250)], "b": [f"b{i}" for i in range(250)]}
    assert source.rows_read == 500


async def test_only_items_returns_just_those_keys_in_one_page(numbered_csv):
    source = FilesSource([FileSpec("rows", str(numbered_csv), "id", {"n": "int"})], page_size=10)

    page, cursor = await source.fetch_page(spec_of(source, "rows"), ["r00007", "r01200", "nope"], None)

    assert cursor is None
    assert [(r.primary_key, r.properties["n"]) for r in page] == [("r00007", 7), ("r01200", 1200)]
    assert await source.fetch(spec_of(source, "rows"), ["r00003"]) == [Record("r00003", {"id": "r00003", "n": 3}, None)]


async def test_fetch_drains_every_page(numbered_csv):
    source = FilesSource([FileSpec("rows", str(numbered_csv), "id")], page_size=100)
    assert len(await source.fetch(spec_of(source, "rows"))) == 1234


async def test_a_foreign_cursor_is_a_config_error(numbered_csv):
    source = FilesSource([FileSpec("rows", str(numbered_csv), "id")])
    for bad in ("17", "not json", '{"v": 99, "file": "x", "row": 1}', '{"v": 1, "file": "x", "row": -1}'):
        with pytest.raises(ConfigError, match="cursor"):
            await source.fetch_page(spec_of(source, "rows"), None, bad)


# --------------------------------------------------------------------------------------------------
# Globs


async def test_glob_reads_files_in_sorted_order_and_pages_across_them(write_csv, tmp_path):
    write_csv("data/b.csv", ["id"], [["b0"], ["b1"], ["b2"], ["b3"]])
    write_csv("data/a.csv", ["id"], [["a0"], ["a1"], ["a2"], ["a3"]])
    write_csv("data/ignored.jsonl", ["id"], [["x"]])
    source = FilesSource([FileSpec("both", "data/*.csv", "id")], page_size=3, base_dir=tmp_path)
    spec = spec_of(source, "both")

    records, cursors = await drain(source, spec)

    assert [r.primary_key for r in records] == ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
    assert [json.loads(c) for c in cursors] == [
        {"v": 1, "file": "data/a.csv", "row": 3},
        {"v": 1, "file": "data/b.csv", "row": 2},
    ]
    # Resuming in a fresh source from the cursor that points into the second file.
    fresh = FilesSource([FileSpec("both", "data/*.csv", "id")], page_size=3, base_dir=tmp_path)
    rest, _ = await drain(fresh, spec, cursors[1])
    assert [r.primary_key for r in rest] == ["b2", "b3"]


async def test_resume_after_the_cursor_file_disappeared_continues_with_the_next_file(write_csv, tmp_path):
    for name in ("a", "b", "c"):
        write_csv(f"{name}.csv", ["id"], [[f"{name}{i}"] for i in range(3)])
    source = FilesSource([FileSpec("all", "*.csv", "id")], page_size=4, base_dir=tmp_path)
    spec = spec_of(source, "all")
    _, cursor = await source.fetch_page(spec, None, None)
    assert json.loads(cursor) == {"v": 1, "file": "b.csv", "row": 1}

    (tmp_path / "b.csv").unlink()
    (tmp_path / "a0.csv").write_text("id\nnew\n")  # sorts before the cursor: next pass reads it
    rest, _ = await drain(FilesSource([FileSpec("all", "*.csv", "id")], page_size=4, base_dir=tmp_path), spec, cursor)

    assert [r.primary_key for r in rest] == ["c0", "c1", "c2"]


async def test_a_glob_matching_nothing_is_an_empty_source(tmp_path):
    source = FilesSource([FileSpec("none", "nothing/*.csv", "id")], base_dir=tmp_path)
    assert await source.fetch_page(spec_of(source, "none"), None, None) == ([], None)


# --------------------------------------------------------------------------------------------------
# Types


async def test_csv_cells_convert_to_their_declared_neutral_types(write_csv):
    header = ["id", "i", "f", "b", "d", "dt", "tags", "s", "untyped"]
    path = write_csv(
        "t.csv",
        header,
        [
            ["k1", " 42 ", "2.5", "TRUE", "2024-05-01", "2024-05-01T10:30:00Z", " a ;b;; c ", "text ", "x"],
            ["k2", "-3.0", "1e3", "no", "2024-12-31", "2024-05-01T10:30:00", "", "", ""],
            ["k3", "", "", "Y", "", "2024-05-01T10:30:00+02:00", ";", " ", "y"],
            ["k4", "0", "-0.5", "0", "2024-02-29", "2024-05-01", "solo", "s", "z"],
        ],
    )
    types = {"i": "int", "f": "float", "b": "bool", "d": "date", "dt": "datetime", "tags": "list", "s": "str"}
    source = FilesSource([FileSpec("t", str(path), "id", types)])

    r1, r2, r3, r4 = await source.fetch(spec_of(source, "t"))

    utc = dt.UTC
    assert r1.properties == {
        "id": "k1",
        "i": 42,
        "f": 2.5,
        "b": True,
        "d": dt.date(2024, 5, 1),
        "dt": dt.datetime(2024, 5, 1, 10, 30, tzinfo=utc),
        "tags": ["a", "b", "c"],
        "s": "text ",
        "untyped": "x",
    }
    # Empty cells are None; a naive datetime is taken as UTC.
    assert r2.properties == {
        "id": "k2",
        "i": -3,
        "f": 1000.0,
        "b": False,
        "d": dt.date(2024, 12, 31),
        "dt": dt.datetime(2024, 5, 1, 10, 30, tzinfo=utc),
        "tags": None,
        "s": None,
        "untyped": None,
    }
    assert r3.properties["i"] is None and r3.properties["f"] is None and r3.properties["d"] is None
    assert r3.properties["b"] is True
    assert r3.properties["dt"] == dt.datetime(2024, 5, 1, 8, 30, tzinfo=utc)
    assert r3.properties["dt"].utcoffset() == dt.timedelta(hours=2)  # the offset is kept, not rewritten
    assert r3.properties["tags"] == []
    assert r3.properties["s"] == " "
    assert r4.properties["i"] == 0 and r4.properties["b"] is False and r4.properties["f"] == -0.5
    assert r4.properties["dt"] == dt.datetime(2024, 5, 1, tzinfo=utc)
    assert r4.properties["tags"] == ["solo"]
    for record in (r1, r2, r3, r4):
        assert type(record.properties["id"]) is str
        for name, value in record.properties.items():
            assert neutral_type_error(name, value) is None
    assert source.conversion_failures == 0


async def test_a_cell_that_does_not_fit_its_type_fails_its_record_and_is_counted(write_csv, caplog):
    path = write_csv(
        "bad.csv",
        ["id", "i", "b", "d", "f", "s"],
        [["k1", "3.5", "maybe", "01/05/2024", "1,5", "fine"], ["k2", "7", "yes", "2024-05-01", "1.5", "ok"]],
    )
    source = FilesSource([FileSpec("bad", str(path), "id", {"i": "int", "b": "bool", "d": "date", "f": "float"})])

    bad, good = await source.fetch(spec_of(source, "bad"))

    # Each bad cell is a stand-in the engine rejects (the record fails); the raw text never passes on.
    problems = {name: neutral_type_error(name, value) for name, value in bad.properties.items()}
    assert {name: p and p.split(" (")[0] for name, p in problems.items()} == {
        "id": None,
        "i": "property 'i': '3.5' is not an int",
        "b": "property 'b': 'maybe' is not a bool",
        "d": "property 'd': '01/05/2024' is not a date",
        "f": "property 'f': '1,5' is not a float",
        "s": None,
    }
    assert [bad.properties[c].raw for c in "ibdf"] == ["3.5", "maybe", "01/05/2024", "1,5"]
    assert bad.properties["d"].message.startswith("'01/05/2024' is not a date (")
    assert good.properties == {"id": "k2", "i": 7, "b": True, "d": dt.date(2024, 5, 1), "f": 1.5, "s": "ok"}
    assert source.conversion_failures == 4
    assert "bad.csv line 2 column d: '01/05/2024' is not a date" in caplog.text


async def test_nan_converts_faithfully_so_the_engine_rejects_it(write_csv):
    path = write_csv("nan.csv", ["id", "f"], [["k", "nan"], ["j", "inf"]])
    source = FilesSource([FileSpec("nan", str(path), "id", {"f": "float"})])

    nan, inf = await source.fetch(spec_of(source, "nan"))

    assert math.isnan(nan.properties["f"]) and inf.properties["f"] == math.inf
    assert "finite" in neutral_type_error("f", nan.properties["f"])


async def test_jsonl_values_pass_through_and_declared_types_convert(tmp_path):
    lines = [
        {
            "id": 1,
            "due": "2024-05-01",
            "at": "2024-05-01T10:00:00Z",
            "n": 3.0,
            "ok": 1,
            "tags": ["a", 2, None],
        },
        {"id": "two", "due": None, "nested": {"a": 1}, "count": 5, "tags": "x;y", "ok": "no"},
        {"id": 3.5, "n": "12", "at": "not a date"},
    ]
    path = tmp_path / "t.ndjson"
    path.write_text("\n".join(json.dumps(x) for x in lines[:2]) + "\n\n" + json.dumps(lines[2]) + "\n")
    types = {"due": "date", "at": "datetime", "n": "int", "ok": "bool", "tags": "list"}
    source = FilesSource([FileSpec("j", str(path), "id", types)])

    r1, r2, r3 = await source.fetch(spec_of(source, "j"))

    assert r1.primary_key == "1"
    assert r1.properties == {
        "id": 1,
        "due": dt.date(2024, 5, 1),
        "at": dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC),
        "n": 3,
        "ok": True,
        "tags": ["a", "2"],
    }
    # Nested objects pass through unchanged: the engine rejects that record with a clear error.
    assert r2.properties == {
        "id": "two",
        "due": None,
        "nested": {"a": 1},
        "count": 5,
        "tags": ["x", "y"],
        "ok": False,
    }
    assert "unsupported type dict" in neutral_type_error("nested", r2.properties["nested"])
    assert r3.primary_key == "3.5" and r3.properties["n"] == 12
    assert (type(r3.properties["at"]).__name__, r3.properties["at"].raw) == ("NotADatetime", "not a date")
    assert source.conversion_failures == 1


async def test_body_column_becomes_the_body_and_leaves_the_properties(write_csv):
    path = write_csv("b.csv", ["id", "notes", "x"], [["k1", 'multi\nline, "quoted"', "1"], ["k2", "", "2"]])
    source = FilesSource([FileSpec("b", str(path), "id", body_column="notes")])

    r1, r2 = await source.fetch(spec_of(source, "b"))

    assert r1 == Record("k1", {"id": "k1", "x": "1"}, 'multi\nline, "quoted"')
    assert r2.body is None


async def test_columns_whitelist_keeps_only_those_columns(write_csv):
    path = write_csv("w.csv", ["id", "a", "b", "notes"], [["k1", "1", "2", "n"]])
    source = FilesSource([FileSpec("w", str(path), "id", columns=["a", "missing"], body_column="notes")])

    (record,) = await source.fetch(spec_of(source, "w"))

    assert record == Record("k1", {"a": "1", "missing": None}, "n")


async def test_a_missing_or_empty_key_still_yields_a_record_with_an_empty_key(write_csv, tmp_path):
    path = write_csv("k.csv", ["id", "x"], [["  k1 ", "a"], ["", "b"], ["   ", "c"]])
    jsonl = tmp_path / "k.jsonl"
    jsonl.write_text('{"x": "no key"}\n{"id": null}\n')
    source = FilesSource([FileSpec("k", str(path), "id"), FileSpec("j", str(jsonl), "id")])

    assert [r.primary_key for r in await source.fetch(spec_of(source, "k"))] == ["k1", "", ""]
    assert [r.primary_key for r in await source.fetch(spec_of(source, "j"))] == ["", ""]


async def test_the_example_tasks_file_reads_with_bom_quotes_and_newlines(tmp_path):
    example = (REPO / "examples" / "tasks.csv").read_bytes()
    (tmp_path / "tasks.csv").write_bytes(b"\xef\xbb\xbf" + example)  # as Excel saves it
    source = FilesSource(
        [FileSpec("tasks", "tasks.csv", "id", TASK_TYPES, body_column="notes")],
        page_size=64,
        base_dir=tmp_path,
    )

    records = await source.fetch(spec_of(source, "tasks"))

    assert len(records) == 300
    assert [r.primary_key for r in records] == [f"T-{i:04d}" for i in range(1, 301)]
    assert source.conversion_failures == 0
    assert any(r.body and "\n" in r.body and '"' in r.body and "," in r.body for r in records)
    for record in records:
        assert record.properties["status"] in {"todo", "doing", "done"}
        assert record.properties["priority"] in {1, 2, 3, 4}
        assert record.properties["done"] is (record.properties["status"] == "done")
        assert record.properties["updated_at"].tzinfo is not None
        for name, value in record.properties.items():
            assert neutral_type_error(name, value) is None


# --------------------------------------------------------------------------------------------------
# Configuration and file errors


def test_specs_have_one_source_spec_per_file_spec(tmp_path):
    source = FilesSource(
        [FileSpec("a", "a.csv", "id", interval_minutes=5), FileSpec("b", "x/*.ndjson", "id")],
        base_dir=tmp_path,
    )

    assert source.name == "files"
    assert source.specs() == [
        SourceSpec("a", 5, {"path": "a.csv", "format": "csv"}),
        SourceSpec("b", 30, {"path": "x/*.ndjson", "format": "jsonl"}),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_column": ""}, "key_column"),
        ({"key_column": "id", "types": {"n": "integer"}}, r"types\['n'\]"),
        ({"key_column": "id", "format": "xlsx"}, "format"),
        ({"key_column": "id", "path": "data.txt"}, "format"),
        ({"key_column": "id", "interval_minutes": 0}, "interval_minutes"),
        ({"key_column": "id", "body_column": "notes", "types": {"notes": "int"}}, "body_column"),
        ({"key_column": "id", "body_column": "id"}, "body_column"),
        ({"key_column": "id", "list_separator": ""}, "list_separator"),
        ({"key_column": "id", "columns": ["a", "a"]}, "columns"),
        ({"key_column": "id", "key": " "}, "key"),
    ],
)
def test_bad_file_spec_is_a_config_error_naming_the_field(kwargs, message):
    args = {"key": "tasks", "path": "tasks.csv", **kwargs}
    with pytest.raises(ConfigError, match=message):
        FileSpec(**args)


def test_duplicate_spec_keys_and_bad_page_size_are_config_errors():
    with pytest.raises(ConfigError, match="spec key 'a'"):
        FilesSource([FileSpec("a", "a.csv", "id"), FileSpec("a", "b.csv", "id")])
    with pytest.raises(ConfigError, match="page_size"):
        FilesSource([FileSpec("a", "a.csv", "id")], page_size=0)


async def test_a_missing_file_is_a_config_error_naming_the_path(tmp_path):
    source = FilesSource([FileSpec("gone", "gone.csv", "id")], base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"gone\.csv"):
        await source.fetch_page(spec_of(source, "gone"), None, None)


async def test_a_missing_key_column_is_a_config_error_naming_the_column_and_file(write_csv):
    path = write_csv("nokey.csv", ["ident", "x"], [["1", "a"]])
    source = FilesSource([FileSpec("t", str(path), "id")])
    with pytest.raises(ConfigError, match=r"key_column 'id'.*nokey\.csv|nokey\.csv.*key_column 'id'"):
        await source.fetch_page(spec_of(source, "t"), None, None)


async def test_malformed_jsonl_is_a_config_error_naming_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n\n{"id": 2,\n')
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    source = FilesSource([FileSpec("bad", "bad.jsonl", "id"), FileSpec("list", "list.jsonl", "id")], base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"bad\.jsonl line 3"):
        await source.fetch(spec_of(source, "bad"))
    with pytest.raises(ConfigError, match="line 1: expected a JSON object"):
        await source.fetch(spec_of(source, "list"))


async def test_an_unknown_spec_is_a_config_error(numbered_csv):
    source = FilesSource([FileSpec("rows", str(numbered_csv), "id")])
    with pytest.raises(ConfigError, match="no FileSpec with key 'other'"):
        await source.fetch_page(SourceSpec("other"), None, None)


def test_the_package_never_imports_dagster():
    code = (
        "import sys, connectors.files; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'sync_assets')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --------------------------------------------------------------------------------------------------
# Large files: one pass is O(N) and memory stays flat


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("id,n,title,done\n")
        for i in range(200_000):
            f.write(f"k{i:06d},{i},Task number {i} with some text,{'true' if i % 2 else 'false'}\n")
    return path


async def test_a_pass_over_a_large_file_reads_each_row_once(big_csv):
    source = FilesSource([FileSpec("big", str(big_csv), "id", {"n": "int", "done": "bool"})], page_size=500)
    spec = spec_of(source, "big")
    count, pages, last_n, cursor = 0, 0, -1, None
    while True:
        page, cursor = await source.fetch_page(spec, None, cursor)
        pages += 1
        count += len(page)
        assert page[0].properties["n"] == last_n + 1
        last_n = page[-1].properties["n"]
        # Never more than one row ahead of what was returned: nothing is read or held in advance.
        assert source.rows_read == count + (cursor is not None)
        if cursor is None:
            break

    assert (count, pages) == (200_000, 400)
    # Re-reading from the start on every page would be 400 * 401 / 2 * 500 = 40,100,000 rows.
    assert source.rows_read == 200_000


async def test_resuming_a_large_file_in_a_new_source_skips_once(big_csv):
    cursor = json.dumps({"v": 1, "file": str(big_csv), "row": 150_000})
    source = FilesSource([FileSpec("big", str(big_csv), "id")], page_size=500)

    records, _ = await drain(source, spec_of(source, "big"), cursor)

    assert len(records) == 50_000 and records[0].primary_key == "k150000"
    assert source.rows_read == 200_000


async def test_paging_a_large_file_does_not_load_it(big_csv):
    source = FilesSource([FileSpec("big", str(big_csv), "id", {"n": "int"})], page_size=500)
    spec = spec_of(source, "big")
    size = big_csv.stat().st_size
    tracemalloc.start()
    try:
        cursor = None
        for _ in range(40):  # 20,000 rows
            page, cursor = await source.fetch_page(spec, None, cursor)
            del page
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        source.close()
    # A page of 500 records is well under 1 MB; the file is about 9 MB.
    assert size > 8_000_000
    assert peak < size / 4
