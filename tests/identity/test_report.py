"""The 02 report's Splink charts for sample merges: weights that add up, no personal data."""

import copy
import re

import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.identity import report
from cemlib.identity.stage import run_stage
from cemlib.warehouse import Warehouse


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("wf") / "cem.duckdb"
    collect(source="synthetic", warehouse=str(path), n_people=800, seed=3, progress=False)
    with Warehouse(path) as wh:
        return run_stage(wh, run_id="wf", as_of="2025-06-30")


def test_waterfall_steps_add_up_to_the_links_match_weight(result):
    records, titles = report.merge_waterfalls(result, seed=1, n=12)
    assert len(records) == len(titles) == 12
    lk = result.resolver.links_
    links = lk[lk["rule"] == "model"].set_index(["rid_l", "rid_r"])["match_weight"]
    steps = result.resolver.model_.waterfall_steps(records)
    rows, moved = result.resolver.model_rows_, 0  # the model's ids: positions of named records
    for i, rec in enumerate(records):
        # Splink's rescoring of the pair gives the weight the run accepted it with
        node_l, node_r = (rows[int(rec[f"unique_id_{s}"])] for s in ("l", "r"))
        moved += (node_l, node_r) != (rec["unique_id_l"], rec["unique_id_r"])
        stored = links.loc[(node_l, node_r)]
        assert rec["match_weight"] == pytest.approx(stored, abs=1e-6)
        pair = steps[steps["pair"] == i]
        assert pair["comparison"].iloc[0] == "prior"
        assert pair["weight"].sum() == pytest.approx(rec["match_weight"], abs=1e-9)
        # every accepted model merge had more evidence for than against
        assert (pair["weight"].iloc[1:] > 0).sum() >= 2
    # the prior is the same for every pair: log2 of the odds that two records match
    assert moved  # a merge of records behind an unnamed one: the id mapping is exercised
    priors = steps.loc[steps["comparison"] == "prior", "weight"]
    assert priors.max() - priors.min() < 1e-9 and priors.iloc[0] < 0
    assert all(" \N{LEFT RIGHT ARROW} " in t for t in titles)


def test_splink_waterfall_page_is_offline_and_holds_no_compared_value(result, tmp_path):
    records, titles = report.merge_waterfalls(result, seed=1, n=2)
    name = report.save_splink_waterfall(result, records, tmp_path / "02_profiles.headlines.json")
    assert name == "02_profiles_merge_waterfall.html"
    html = (tmp_path / name).read_text(encoding="utf-8")
    assert "<script src=" not in html  # vega's JavaScript is inlined
    values = {
        str(rec[f"{c}_{side}"])
        for rec in records
        for c in ("phone", "email", "birth_date", "first_lat", "last_lat")
        for side in ("l", "r")
        if rec.get(f"{c}_{side}") not in (None, "")
    }
    assert values  # the scored records did hold personal values
    assert not [v for v in values if v in html]
    assert set(re.findall(r'"value_[lr]": *"([^"]*)"', html)) == {""}
    fig = report.plot_merge_waterfalls(result, records, titles)
    assert len(fig.axes) == 2 and all(ax.get_title() for ax in fig.axes)


def test_no_waterfall_without_a_model(result, tmp_path):
    # a rules-only resolution (too few named records for the model) has no model merges
    rules_only = copy.copy(result)
    rules_only.resolver = copy.copy(result.resolver)
    rules_only.resolver.model_ = None
    assert report.merge_waterfalls(rules_only) == ([], [])
    assert report.save_splink_waterfall(rules_only, [], tmp_path / "x.headlines.json") is None


def test_calibration_note_when_kept_links_rarely_share_their_identifiers():
    """Trial 4 (M3): the kept bands showed a silver share of 0% beside "right 99 times in 100"
    (subscribers with two SIMs): the report says what a low floor can mean."""
    from cemlib.identity.report import calibration_note

    cal = pd.DataFrame({
        "match probability": ["0.5–0.9", "0.9–0.95", "0.95–0.99", "0.99–1"],
        "pairs": [400, 120, 90, 300], "mean_probability": [0.7, 0.93, 0.97, 0.999],
        "with_evidence": [100, 30, 25, 5], "silver_share": [0.1, 0.0, 0.04, 1.0],
        "kept": ["no", "from 0.904", "yes", "yes"],
    })  # fmt: skip
    note = calibration_note(cal)
    assert note is not None and "60 linked pairs" in note and "only 10%" in note
    agreeing = cal.assign(silver_share=[0.1, 0.9, 0.95, 1.0])
    assert calibration_note(agreeing) is None
    few = cal.assign(with_evidence=[100, 5, 5, 5])  # 15 pairs with evidence: cannot tell
    assert calibration_note(few) is None
    assert calibration_note(None) is None
