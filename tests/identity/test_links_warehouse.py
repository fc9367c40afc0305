"""M1 (trial 6): the warehouse's ``identity.links`` says which links joined records, as the
links file of ``cem identity --links`` does (one mechanism: ``IdentityResolver.applied_links``).

A link the clusterer accepted whose record the household guard then held back (nameless, in a
household profile: NA in ``identity.map``) did not join anything. On trial 6's first night
815 such links said ``accepted`` with no reason. Checked on a real stage run, full and
incremental, by joining the table to ``identity.map``."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.collect.stage import collect
from cemlib.identity import report
from cemlib.identity.examples import _sample_merges
from cemlib.identity.resolve import HELD_BACK_REASONS
from cemlib.identity.stage import run_stage
from cemlib.warehouse import Warehouse

N, SEED, MAY, JUNE = 800, 5, "2025-05-31", "2025-06-30"

_ENDS = """
SELECT l.accepted, l.refused_by, l.rule, ml.profile_id AS lp, mr.profile_id AS rp
  FROM identity.links l
  JOIN identity.map ml ON ml.source_table = l.left_source AND ml.record_id = l.left_record_id
  JOIN identity.map mr ON mr.source_table = l.right_source AND mr.record_id = l.right_record_id
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A full May run, then an incremental June run on the same warehouse: each run's links
    joined to its map, its figures and its report summary."""
    path = tmp_path_factory.mktemp("links") / "w.duckdb"
    out = {}
    for as_of, run_id in ((MAY, "may"), (JUNE, "june")):
        collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=as_of, progress=False)
        with Warehouse(path) as wh:
            res = run_stage(wh, run_id=run_id, as_of=as_of)
            n_links = wh.con.execute("SELECT count(*) FROM identity.links").fetchone()[0]
            ends = wh.con.execute(_ENDS).df()
        out[run_id] = (res, ends, n_links)
    assert out["may"][0].figures["identity_mode"]["used"] == "full"
    assert out["june"][0].figures["identity_mode"]["used"] == "incremental"
    return out


@pytest.mark.parametrize("run_id", ["may", "june"])
def test_accepted_links_join_their_records_and_refused_ones_name_their_guard(runs, run_id):
    res, ends, n_links = runs[run_id]
    assert len(ends) == n_links > 1000  # every link's two records are in the map
    accepted = ends["accepted"].astype(bool)
    same = (ends["lp"] == ends["rp"]).fillna(False).astype(bool)
    # accepted <=> the two records share a profile
    assert same[accepted].all()
    assert not same[~accepted].any()
    # every refused link names its guard; the household guard's refusals are there
    assert ends.loc[~accepted, "refused_by"].notna().all()
    held = ends["refused_by"].isin(HELD_BACK_REASONS)
    assert held.sum() > 10
    # ... and they are identifier links to a record left without a profile
    assert (ends.loc[held, "lp"].isna() | ends.loc[held, "rp"].isna()).all()
    assert not ends.loc[held, "rule"].eq("model").any()
    # the figures of the report count the table as written
    f = res.figures
    assert f["links"] == n_links
    assert f["links_accepted"] == int(accepted.sum())
    assert f["links_refused_by_household_guard"] == int(held.sum())
    assert f"{f['links_accepted']:,} of {f['links']:,} links were accepted" in (
        report.summary_markdown(res)
    )
    assert f"{int(held.sum()):,} links were not applied" in report.summary_markdown(res)
    assert report.headlines(res)["links not applied (household guard)"] == int(held.sum())


def test_the_guard_reads_the_clusterers_decisions_not_the_table(runs):
    """The table's correction does not feed back: the resolver's own links keep the
    clusterer's decisions (the household guard reads its refusals)."""
    res = runs["may"][0]
    own = pd.Series(res.resolver.links_["refused_by"])
    assert not own.isin(HELD_BACK_REASONS).any()
    # the report's sample merges are drawn from the links that joined records
    accepted, refused_by = res.resolver.applied_links()
    sample = _sample_merges(res, 10**6, seed=0)
    assert len(sample) == int(accepted.sum()) < int(res.resolver.links_["accepted"].sum())
    assert not pd.Series(refused_by[sample.index.to_numpy()]).isin(HELD_BACK_REASONS).any()
