"""Warehouses as the pipeline leaves them, for the tests of later stages: the real stages run
on a small synthetic world (no table is faked), through the stage contract."""

from __future__ import annotations

from pathlib import Path

import cemlib.collect
import cemlib.quality
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"


def checked_world(
    path: str | Path, *, n_people: int, seed: int, as_of: str = AS_OF, run_id: str = "t"
) -> Path:
    """The synthetic world of ``n_people`` collected (stage 00) and checked (stage 01) into
    ``path``: ``raw.*``, ``staging.*``, ``truth.*``, ``clean.*`` and ``quarantine.*``."""
    path = Path(path)
    cemlib.collect.run(path, run_id=run_id, as_of=as_of, seed=seed, n_people=n_people,
                       progress=False)  # fmt: skip
    with Warehouse(path) as wh:
        cemlib.quality.run(wh, run_id=run_id, as_of=as_of, seed=seed, progress=False)
    return path


def profiled_both_ways(
    path: str | Path, tmp_path_factory, *, run_id: str, as_of: str, tables: tuple[str, ...]
) -> dict[str, tuple]:
    """The warehouse at ``path`` profiled (stage 02) once per identity mode, ``auto``
    (incremental after an earlier run with the same settings) and ``full``, each on a copy of
    its own: ``{mode: (the stage's result, identity.<table> for each of tables)}``."""
    import shutil

    from cemlib.identity.stage import run_stage

    out = {}
    for mode in ("auto", "full"):
        copy = tmp_path_factory.mktemp(mode) / "w.duckdb"
        shutil.copyfile(path, copy)
        with Warehouse(copy) as wh:
            res = run_stage(wh, run_id=run_id, as_of=as_of, identity_mode=mode)
            out[mode] = (res, *(wh.read_table("identity", t) for t in tables))
    return out


def source_schema(wh: Warehouse, table: str) -> str:
    """``clean`` once 01 ran, else ``staging``: where a source table's rows are read from."""
    return "clean" if wh.has_table("clean", table) else "staging"


def insert_row(wh: Warehouse, table: str, values: dict) -> None:
    """One row of ``values`` into ``table`` of ``clean`` (or ``staging`` before 01 ran): a
    hand-made record added to a collected world."""
    schema = source_schema(wh, table)
    cols = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join("?" for _ in values)
    wh.con.execute(
        f'INSERT INTO {schema}."{table}" ({cols}) VALUES ({marks})', list(values.values())
    )


def partition(rmap) -> set[frozenset]:
    """The profiles of a record map as sets of ``source|record_id`` (attached records only):
    two maps give the same profiles when their partitions are equal."""
    att = rmap.dropna(subset=["profile_id"])
    key = att["source_table"].astype(str) + "|" + att["record_id"].astype(str)
    return set(key.groupby(att["profile_id"].astype(str).to_numpy()).agg(frozenset))


def profile_of(rmap, source: str, record_id: str):
    """The profile id of one record of a record map (exactly one row)."""
    row = rmap[
        rmap["source_table"].astype(str).eq(source) & rmap["record_id"].astype(str).eq(record_id)
    ]
    assert len(row) == 1, (source, record_id)
    return row["profile_id"].iloc[0]
