"""The same records give the same profiles, whatever order their tables store them in.

Stage 00 writes its tables in parallel chunks and stage 01 its clean tables from a parallel
join, so two runs on the same input store the rows in different orders. Identity puts every
table's records in the total order (source, record id) before it decides anything
(:func:`cemlib.identity.sources.in_record_order`); these tests hold it to that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cemlib.identity.sources import SOURCE_ROLES, in_record_order, in_total_order
from cemlib.identity.stage import resolve_records, resolve_sources, source_records
from cemlib.synth import generate

ROOT = Path(__file__).resolve().parents[2]


def _members(rmap: pd.DataFrame) -> pd.Series:
    """Per record (``source|record_id``), the sorted records of its profile (NA: none)."""
    key = rmap["source_table"].astype(str) + "|" + rmap["record_id"].astype(str)
    pid = rmap["profile_id"]
    has = pid.notna().to_numpy()
    sets = key[has].groupby(pid[has].to_numpy()).agg(lambda s: ",".join(sorted(s)))
    return pd.Series(pid.map(sets).to_numpy(), index=key.to_numpy())


def _shuffled(tables: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """The same tables, each row order permuted and the tables given in reverse order."""
    rng = np.random.default_rng(seed)
    return {
        name: df.iloc[rng.permutation(len(df))].reset_index(drop=True)
        for name, df in reversed(tables.items())
    }


@pytest.fixture(scope="module")
def world():
    # 5,000 people: before the fix a shuffled copy put 40 of its 105,250 records in another
    # profile (the world's defects are what make ties)
    return generate(5000, seed=42)


def test_a_shuffled_world_gives_the_same_profiles_golden_records_and_links(world):
    first = resolve_sources(dict(world.sources), seed=42)
    again = resolve_sources(_shuffled(world.sources, seed=1), seed=42)
    # every record once (the world repeats 56 receipt ids: a repeated id is one record)
    n_records = sum(
        world.sources[name][id_col].nunique() for name, (id_col, _) in SOURCE_ROLES.items()
    )
    assert len(first.map) == len(again.map) == n_records == 105_250
    # the map itself comes out in the same order, record by record
    pd.testing.assert_frame_equal(first.map, again.map)
    a, b = _members(first.map), _members(again.map)
    moved = int((a.fillna("-") != b.reindex(a.index).fillna("-")).sum())
    assert moved == 0
    n_profiles = first.map["profile_id"].nunique()
    assert n_profiles == again.map["profile_id"].nunique() and 5000 <= n_profiles <= 9000
    pd.testing.assert_frame_equal(first.profiles, again.profiles)  # the golden records
    # the links: the same pairs, each the same way round, accepted or refused the same way
    pd.testing.assert_frame_equal(first.links, again.links)
    assert first.figures["links_accepted"] == again.figures["links_accepted"] > 10_000


def test_prepared_records_in_any_order_give_the_same_profiles():
    """The Spark engine gathers prepared records from its partitions in no set order:
    resolve_records puts them in (source, record id) order first."""
    records = source_records(dict(generate(1500, seed=7).sources))
    assert in_total_order(records) is records  # source_records' frame: already in order
    first = resolve_records(records.copy(), seed=7)
    shuffled = records.iloc[np.random.default_rng(3).permutation(len(records))]
    again = resolve_records(shuffled.reset_index(drop=True), seed=7)
    pd.testing.assert_frame_equal(first.map, again.map)
    pd.testing.assert_frame_equal(first.profiles, again.profiles)
    pd.testing.assert_frame_equal(first.links, again.links)
    assert len(first.map) == len(records) and first.map["profile_id"].nunique() > 1500


def _hand_built() -> dict[str, pd.DataFrame]:
    """Exact ties: contact C4 stored twice with different phones (a staging table holds such
    repeats; which copy is the record decides which order joins it), and two namesakes who
    share a phone with a third record carrying only that name."""
    text = ["contact_id", "first_name", "last_name", "birth_date", "phone", "email"]
    crm = pd.DataFrame(
        {
            "contact_id": ["C1", "C2", "C3", "C4", "C4", "C5"],
            "first_name": ["Анна", "Анна", "Анна", "Борис", "Борис", "Вера"],
            "last_name": ["Иванова", "Иванова", "Иванова", "Петров", "Петров", "Сидорова"],
            "birth_date": ["1990-01-01", "1975-06-15", None, "1980-03-03", "1980-03-03", None],
            "phone": ["+79990000001"] * 3 + ["+79990000004", "+79990000005", "+79990000006"],
            "email": [None, None, None, None, None, "vera@mail.ru"],
            "registered_at": pd.to_datetime(["2024-01-01"] * 6),
        }
    ).astype({c: "string" for c in text})
    orders = pd.DataFrame(
        {
            "order_id": ["O1", "O2", "O3", "O4"],
            "phone": ["+79990000005", "+79990000004", None, "+79990000006"],
            "email": [None, None, "Vera@mail.ru", None],
            "ordered_at": pd.to_datetime(["2024-02-01", "2024-02-02", "2024-02-03", "2024-02-04"]),
        }
    ).astype({"order_id": "string", "phone": "string", "email": "string"})
    return {"crm_contacts": crm, "online_orders": orders}


def _groups(rmap: pd.DataFrame) -> list[str]:
    g = rmap.dropna(subset=["profile_id"]).groupby("profile_id")["record_id"]
    return sorted(g.agg(lambda s: ",".join(sorted(s))))


def test_exact_ties_are_decided_by_source_and_record_id_in_every_row_order():
    tables = _hand_built()
    seen = set()
    for perm in ([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 4, 0, 3, 5, 1]):
        shuffled = dict(tables, crm_contacts=tables["crm_contacts"].iloc[perm])
        shuffled["online_orders"] = tables["online_orders"].iloc[::-1]
        result = resolve_sources(shuffled, seed=42)
        assert len(result.map) == 5 + 4  # C4's repeat is one record
        seen.add(tuple(_groups(result.map)))
        profiles = result.profiles.set_index("n_records")
        assert profiles.loc[3, "phones"] == ["+79990000006"]  # Vera: C5, O3, O4
    # one answer for every order: C4 is its copy with the smaller phone (the rows of a repeated
    # id are ordered by their values), so O2 joins it and O1 stays alone; Vera's three records
    # are one profile; Anna's namesakes and the record with only her name stay apart
    assert seen == {("C1", "C2", "C3", "C4,O2", "C5,O3,O4", "O1")}


def test_in_record_order_keeps_sorted_tables_and_orders_the_rest():
    ids = pd.array(["a1", "a2", "b1"], dtype="string[pyarrow]")
    df = pd.DataFrame({"id": ids, "x": [3, 1, 2]})
    assert in_record_order(df, "id") is df  # already in order: not copied
    rev = df.iloc[::-1].reset_index(drop=True)
    assert in_record_order(rev, "id")["id"].tolist() == ["a1", "a2", "b1"]
    # a repeated id keeps the copy that is smallest by its other values, in any row order
    dup = pd.DataFrame({"id": ["b", "a", "b", "b"], "x": ["z", "q", None, "m"]})
    for perm in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        out = in_record_order(dup.iloc[perm], "id")
        assert out["id"].tolist() == ["a", "b"] and out["x"].tolist() == ["q", "m"]
    # numeric ids are ordered as text, like the record ids of identity.map
    num = pd.DataFrame({"id": [10, 9, 100], "x": [1, 2, 3]})
    assert in_record_order(num, "id")["id"].tolist() == [10, 100, 9]


_CONFLICT = """
from cemlib.identity.graph import _conflict
a = {('zz%03d' % i, 'ivanov', None, None) for i in range(600)}
a.add(('aaron', 'ivanov', '1980-01-01', None))
b = {('boris%d' % i, 'petrov', '1990-05-05', None) for i in range(5)}
print(_conflict(a, b, False))
"""


def test_a_large_clusters_checked_names_do_not_depend_on_string_hashing():
    """The chain guard compares at most 50 name states of a large cluster: the same 50 in
    every process (a set's order follows Python's per-process string hashing)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    answers = set()
    for hash_seed in ("0", "1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", _CONFLICT],
            env=dict(env, PYTHONHASHSEED=hash_seed),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        answers.add(out.stdout.strip())
    # Aaron (born 1980) is the smallest state, and clearly another person than the Borises
    assert answers == {"True"}


_STAGES = """
import sys
import cemlib.collect, cemlib.identity, cemlib.quality
from cemlib.warehouse import Warehouse
path = sys.argv[1]
kw = dict(run_id="r", as_of="2025-06-30", seed=42)
cemlib.collect.run(path, source="synthetic", n_people=int(sys.argv[2]), progress=False, **kw)
with Warehouse(path) as wh:
    cemlib.quality.run(wh, progress=False, **kw)
with Warehouse(path) as wh:
    cemlib.identity.run(wh, keep_records=False, **kw)
"""


def _digest(path: Path, table: str, columns: str, order: str) -> tuple[int, str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            f"SELECT count(*), md5(string_agg(concat_ws('|', {columns}), ',' ORDER BY {order})) "
            f"FROM identity.{table}"
        ).fetchone()
    finally:
        con.close()


def test_two_runs_of_stages_00_to_02_write_the_same_identity_tables(tmp_path):
    """Stages 00-02 as the notebooks of ``cem run`` call them, twice, each run in a process of
    its own (its own string hashing, its own workers): byte-identical ``identity.map`` in its
    stored order and ordered by record, and the same links and golden records."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), CEM_HOME=str(tmp_path))
    paths = [tmp_path / f"run{i}.duckdb" for i in (1, 2)]
    script = tmp_path / "stages.py"  # a file: ``python -c`` and an import of GX end silently
    script.write_text(_STAGES, encoding="utf-8")
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), str(p), "400"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in paths
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    stored = [_digest(p, "map", "source_table, record_id, profile_id", "rowid") for p in paths]
    ordered = [
        _digest(p, "map", "source_table, record_id, profile_id", "source_table, record_id")
        for p in paths
    ]
    assert stored[0] == stored[1] and ordered[0] == ordered[1]
    import duckdb

    con = duckdb.connect(str(paths[0]), read_only=True)
    try:  # every clean record of the 400-person world has its row in the map
        clean = sum(
            con.execute(f"SELECT count(*) FROM clean.{name}").fetchone()[0] for name in SOURCE_ROLES
        )
    finally:
        con.close()
    assert stored[0][0] == clean > 5_000
    links = (
        "left_source, left_record_id, right_source, right_record_id, rule, accepted, refused_by, "
        "match_probability"
    )
    for table, columns, order in (
        ("links", links, links),
        (
            "profiles",
            "profile_id, n_records, first_name, last_name, birth_date, CAST(phones AS VARCHAR)",
            "profile_id",
        ),
    ):
        assert _digest(paths[0], table, columns, order) == _digest(paths[1], table, columns, order)
