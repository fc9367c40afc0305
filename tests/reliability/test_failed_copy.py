"""The working copy of a failed run is kept for inspection until a later run publishes."""

from __future__ import annotations

import duckdb

from cemlib.pipeline.isolation import WorkingCopy, failed_copy_path


def _write(path, value: int) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE OR REPLACE TABLE t AS SELECT ? AS v", [value])
    finally:
        con.close()


def _value(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT v FROM t").fetchone()[0]
    finally:
        con.close()


def test_a_failed_copy_is_kept_then_removed_by_the_next_published_run(tmp_path):
    wh = tmp_path / "clinic.duckdb"
    _write(wh, 1)
    failed = WorkingCopy(wh, "m3")
    with failed.open():
        _write(failed.path, 2)  # what the failed run wrote
    kept = failed.discard(keep=True)
    assert kept == failed_copy_path(wh) == tmp_path / "clinic.failed.duckdb"
    assert _value(kept) == 2 and _value(wh) == 1  # the warehouse is left as it was
    ok = WorkingCopy(wh, "m3b")
    with ok.open():
        _write(ok.path, 3)
    ok.publish()
    assert _value(wh) == 3
    assert not kept.exists() and ok.removed_failed == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinic.duckdb"]


def test_a_run_that_publishes_with_no_failed_copy_removes_nothing(tmp_path):
    wh = tmp_path / "shop.duckdb"
    _write(wh, 1)
    other = tmp_path / "other.failed.duckdb"  # another warehouse's copy in the same folder
    _write(other, 9)
    ok = WorkingCopy(wh, "r1")
    with ok.open():
        _write(ok.path, 2)
    ok.publish()
    assert ok.removed_failed is None and _value(other) == 9 and _value(wh) == 2
