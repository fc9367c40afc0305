import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.identity import evaluate


def test_pairwise_bcubed_and_false_merges():
    truth = pd.DataFrame({"record_id": list("abcdef"), "person_id": [1, 1, 1, 2, 2, 3]})
    # one profile mixes person 1 and 2 (c+d), person 1 is split (a,b | c)
    pred = pd.DataFrame({"record_id": list("abcdef"), "profile_id": ["x", "x", "y", "y", "z", "w"]})
    m = evaluate(pred, truth)
    # true pairs: ab ac bc de = 4; predicted: ab cd = 2; correct: ab = 1
    assert m["true_pairs"] == 4 and m["predicted_pairs"] == 2
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.25)
    assert m["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert m["false_merge_rate"] == pytest.approx(1 / 4)
    # profiles of 2+ records: x (a,b) and y (c,d); y mixes
    assert m["multi_record_profiles"] == 2
    assert m["false_merge_rate_multi"] == pytest.approx(1 / 2)
    # B-cubed precision: a,b 1; c,d 1/2; e,f 1 -> 5/6
    assert m["bcubed_precision"] == pytest.approx(5 / 6)
    # B-cubed recall: a,b 2/3; c 1/3; d,e 1/2; f 1 -> (4/3+1/3+1+1)/6
    assert m["bcubed_recall"] == pytest.approx((2 / 3 * 2 + 1 / 3 + 0.5 * 2 + 1) / 6)


def test_perfect_and_unattached_records_are_singletons():
    truth = pd.DataFrame({"record_id": ["1", "2", "3"], "person_id": ["p", "p", "q"]})
    pred = pd.DataFrame({"record_id": ["1", "2", "3"], "profile_id": ["A", "A", None]})
    m = evaluate(pred, truth)
    assert m["f1"] == 1.0 and m["false_merge_rate"] == 0.0 and m["profiles"] == 2
    assert m["multi_record_profiles"] == 1 and m["false_merge_rate_multi"] == 0.0


def test_source_table_is_part_of_the_key_and_missing_column_is_named():
    truth = pd.DataFrame(
        {"source_table": ["t", "u"], "record_id": ["1", "1"], "person_id": ["p", "q"]}
    )
    pred = pd.DataFrame({"source_table": ["t", "u"], "record_id": ["1", "1"], "profile_id": "A"})
    assert evaluate(pred, truth)["precision"] == 0.0
    with pytest.raises(InputError, match="profile_id"):
        evaluate(pred.drop(columns="profile_id"), truth)


def test_counted_in_the_warehouse_gives_the_same_figures(tmp_path):
    """evaluate_warehouse (a GROUP BY in DuckDB) = evaluate (in memory) on the attached records."""
    import numpy as np

    from cemlib.identity.evaluate import evaluate_warehouse
    from cemlib.warehouse import Warehouse

    rng = np.random.default_rng(3)
    n = 3000
    person = rng.integers(0, 700, n)
    profile = np.where(rng.random(n) < 0.9, person, rng.integers(0, 700, n)).astype(str)
    profile = pd.Series(np.char.add("P", profile), dtype=object)
    profile[rng.random(n) < 0.1] = None  # unattached
    source = rng.choice(["crm_contacts", "web_events"], n)
    rid = [f"r{i}" for i in range(n)]
    rmap = pd.DataFrame({"source_table": source, "record_id": rid, "profile_id": profile})
    truth = pd.DataFrame({"source_table": source, "record_id": rid, "person_id": person})
    with Warehouse(tmp_path / "cem.duckdb") as wh:
        wh.write_table("identity", "map", rmap, run_id="r", as_of="2025-06-30")
        assert evaluate_warehouse(wh) is None  # no truth table
        wh.write_table("truth", "record_person", truth, run_id="r", as_of="2025-06-30")
        got = evaluate_warehouse(wh)
    want = evaluate(rmap[rmap["profile_id"].notna()], truth)
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v), k
