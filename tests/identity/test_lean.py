"""The memory-lean paths give exactly what the straightforward ones give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.profile_ids import profile_ids, record_profile_ids
from cemlib.identity.roles import combination_codes
from cemlib.identity.sources import present_roles
from cemlib.identity.stage import SOURCE_ROLES, source_records
from cemlib.synth import generate


def test_record_profile_ids_equal_key_string_ids():
    rng = np.random.default_rng(3)
    # "a" is a prefix of "ab": the order of "a|…" and "ab|…" keys must still hold
    for sources in (["crm_contacts", "web_events"], ["a", "ab", "b"], ["x|y", "x"]):
        n = 2000
        src = pd.Series(rng.choice(sources, n), dtype="string")
        rid = pd.Series([str(v) for v in rng.integers(0, 10**6, n)], dtype="string")
        labels = rng.integers(0, 400, n)
        expected = profile_ids(src.astype(str) + "|" + rid.astype(str), labels)
        got = record_profile_ids(src, rid, labels)
        assert (got == expected).all()
        assert len(set(got)) == len(np.unique(labels))


def test_combination_codes_by_column_equal_whole_frame_hash():
    df = pd.DataFrame(
        {
            "a": ["x", None, "x", "y", "x"],
            "b": pd.array([1, 2, 1, None, 1], dtype="Int64"),
            "c": pd.Series(["p", "q", "p", None, "r"], dtype="string"),
        }
    )
    hashed = pd.util.hash_pandas_object(df.astype("string"), index=False).to_numpy()
    expected = pd.factorize(hashed)[0]
    got = combination_codes(df)
    assert (got == expected).all()
    assert got.tolist() == [0, 1, 0, 2, 3]
    assert (combination_codes(df, ["a"]) == [0, 1, 0, 2, 0]).all()


def test_source_records_consume_frees_tables_and_keeps_rows():
    world = generate(300, seed=5, defects=True)
    tables = {k: v for k, v in world.sources.items()}
    kept = source_records(dict(tables))
    n_in = sum(
        (~tables[t][SOURCE_ROLES[t][0]].astype("string").duplicated()).sum()
        for t in SOURCE_ROLES
        if t in tables
    )
    consumed = source_records(tables, consume=True)
    pd.testing.assert_frame_equal(kept, consumed)
    assert len(consumed) == n_in > 0
    assert not {"crm_contacts", "web_events", "pos_receipts"} & set(tables)


def test_record_timestamps_iso_fast_path_and_other_formats():
    from cemlib.identity.roles import _timestamps

    raw = pd.Series(
        ["2022-01-05 12:45:22", "2022-03-01T08:00:00", "05.01.2022 12:45", "bad", None],
        dtype="string",
    )
    ts = _timestamps(raw)
    assert str(ts.dtype) == "datetime64[ns]"
    assert ts.iloc[0] == pd.Timestamp("2022-01-05 12:45:22")
    assert ts.iloc[1] == pd.Timestamp("2022-03-01 08:00:00")
    assert ts.iloc[2].year == 2022 and ts.iloc[2].hour == 12  # parsed, not dropped
    assert ts.iloc[3:].isna().all()
    aware = _timestamps(pd.Series(["2022-01-05T12:00:00+03:00"]))
    assert aware.iloc[0] == pd.Timestamp("2022-01-05 09:00:00")


def test_shared_values_across_tables_give_the_same_records():
    from cemlib.identity.roles import prepare_records
    from cemlib.identity.sources import in_record_order

    world = generate(400, seed=8, defects=False)
    together = source_records(dict(world.sources))
    one_by_one = pd.concat(
        [  # sources by name, each in record-id order
            prepare_records(
                in_record_order(world.sources[t], SOURCE_ROLES[t][0]),
                present_roles(SOURCE_ROLES[t][1], world.sources[t].columns),
                id_column=SOURCE_ROLES[t][0],
                source=t,
            ).astype("string")
            for t in sorted(SOURCE_ROLES)
        ],
        ignore_index=True,
    )
    expected = together.astype("string")
    pd.testing.assert_frame_equal(expected, one_by_one)
