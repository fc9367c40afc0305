"""Stage 04 on the lake (``engine: spark``, issue 19): the profile history built by Spark SQL,
the model fitted on the driver, the offers scored by ``mapInPandas``; the same history, offers,
consent and mart columns as the DuckDB engine on the same ``clean.*`` and ``identity.*``."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import cemlib.identity
import cemlib.offers
from cemlib.collect.sparklake import copy_to_lake
from cemlib.engine import Lake
from cemlib.offers.model import NextOfferModel
from cemlib.offers.sparkstage import SparkOffers
from cemlib.offers.stage import profile_consent_table, profile_events, profile_transactions
from cemlib.warehouse import Warehouse

from .conftest import AS_OF, NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = [*NEEDS_SPARK, pytest.mark.timeout(300)]
HORIZON = 60


@pytest.fixture(scope="module")
def both(world, spark, tmp_path_factory):
    """``(warehouse, lake, DuckDB result, Spark result)``: stage 04 on both engines over the
    same ``clean.*``, ``identity.*`` and ``truth.*`` (the DuckDB stages' own, copied to the
    lake)."""
    wh_path, lake_root, _ = world
    root = tmp_path_factory.mktemp("offers_stage")
    shutil.copy(wh_path, root / "cem.duckdb")
    shutil.copytree(lake_root, root / "lake")
    lake = Lake(root / "lake", spark_master="local[2]")
    with Warehouse(root / "cem.duckdb") as wh:
        cemlib.identity.run(wh, run_id="t", as_of=AS_OF, seed=42, identity_mode="full")
        copy_to_lake(wh, lake, run_id="t", schemas=("clean", "identity", "truth"))
        duck = cemlib.offers.run(wh, run_id="t", as_of=AS_OF, seed=42, horizon_days=HORIZON)
    on_spark = cemlib.offers.run(lake, run_id="s", as_of=AS_OF, seed=42, horizon_days=HORIZON)
    return root / "cem.duckdb", lake, duck, on_spark


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype(str).sort_values(list(df.columns), ignore_index=True)


def test_history_built_by_spark_is_the_duckdb_engine_s(both, spark):
    wh_path, lake, _, _ = both
    cut = (pd.Timestamp(AS_OF) - pd.Timedelta(days=90)).date()  # orders exist after it
    end = pd.Timestamp(cut) + pd.Timedelta(days=1)
    on = SparkOffers(spark, lake, cut)
    with Warehouse(wh_path, read_only=True) as wh:
        tx, ev = profile_transactions(wh, cut), profile_events(wh, cut)
        late = wh.sql("SELECT count(*) AS n FROM clean.online_orders WHERE ordered_at >= ?",
                      [end])["n"][0]  # fmt: skip
    tx_s, ev_s = on.transactions(), on.events()
    assert late > 20  # orders after the cut: none of them may reach the history
    assert len(tx_s) == len(tx) > 1000 and len(ev_s) == len(ev) > 1000
    assert tx_s["ts"].max() < end and ev_s["ts"].max() < end
    assert list(tx_s.columns) == list(tx.columns) and list(ev_s.columns) == list(ev.columns)
    assert _sorted(tx_s).equals(_sorted(tx))  # every line, every value
    assert _sorted(ev_s).equals(_sorted(ev))


def test_spark_scoring_is_the_driver_scoring_of_the_same_model(both, spark):
    _, lake, _, _ = both
    on = SparkOffers(spark, lake, AS_OF)
    tx, ev = on.transactions(), on.events()
    model = NextOfferModel(k=10, horizon_days=HORIZON, seed=42).fit(tx, AS_OF, events=ev)
    rng = np.random.default_rng(0)  # customer x item pairs, some among the candidates
    truth = pd.DataFrame({"customer_id": rng.permutation(tx["customer_id"].to_numpy()),
                          "item_id": tx["item_id"].to_numpy()})  # fmt: skip
    reach = model.tx_["customer_id"].unique()[::2]  # reasons for half of the customers
    here = model.recommend(recall_of=truth, explain_customers=reach)
    recall_here = model.scored_recall_
    there = on.recommend(model, recall_of=truth, explain_customers=reach)
    assert (
        on.figures["partitions"] >= 2 and on.figures["customers"] == here["customer_id"].nunique()
    )
    assert len(there) == len(here) == 10 * here["customer_id"].nunique()
    assert there[["customer_id", "rank", "item_id"]].equals(
        here[["customer_id", "rank", "item_id"]]
    )
    assert np.allclose(there["score"], here["score"], atol=1e-6)
    assert (there["reasons"] == here["reasons"]).all() and (there["reasons"] != "").sum() > 100
    assert model.scored_recall_ == pytest.approx(recall_here) and 0 < recall_here < 1


def test_stage_on_spark_agrees_with_duckdb(both):
    _, _, duck, on_spark = both
    a, b = duck.detail, on_spark.detail
    print(
        "NDCG@10 DuckDB / Spark:",
        a.metrics.loc["model", "ndcg@10"],
        b.metrics.loc["model", "ndcg@10"],
    )  # fmt: skip  (pytest -rP)
    assert b.extras["engine"] == "spark" and b.extras["spark_scoring"]["partitions"] >= 2
    assert a.evaluation == b.evaluation and a.published == b.published == "model"
    # the same history: the baselines' figures and the candidate recall are the same numbers
    base = [r for r in a.metrics.index if r != "model"]
    assert np.allclose(a.metrics.loc[base].to_numpy(float), b.metrics.loc[base].to_numpy(float))
    assert b.candidate_recall == pytest.approx(a.candidate_recall)
    # the model's NDCG@10: on 200 people it moves by up to 0.04 with the order in which DuckDB's
    # join hands over the lines of one order (item codes break ties; docs/spark.md), so the
    # 0.005 of the issue is measured on 20,000 people (benchmarks/engine_offers_parity.py)
    assert abs(a.metrics.loc["model", "ndcg@10"] - b.metrics.loc["model", "ndcg@10"]) <= 0.04
    assert set(a.all_offers["customer_id"]) == set(b.all_offers["customer_id"])
    assert set(a.offers["profile_id"]) == set(b.offers["profile_id"]) and len(b.offers) > 500
    assert (
        on_spark.headlines["profiles reachable (consent)"]
        == duck.headlines["profiles reachable (consent)"]
    )


def test_no_refused_profile_or_channel_offered(both):
    wh_path, lake, _, on_spark = both
    offers = lake.sql("SELECT * FROM marts.next_offers")
    with Warehouse(wh_path, read_only=True) as wh:
        consent = profile_consent_table(wh, as_of=AS_OF)
    refused = {
        "email": set(consent.loc[consent["consent_email"].eq(False), "customer_id"].astype(str)),
        "sms": set(consent.loc[consent["consent_sms"].eq(False), "customer_id"].astype(str)),
    }
    assert sum(len(v) for v in refused.values()) > 5  # the world has refusals to respect
    for channel, who in refused.items():
        sent = offers[offers["channel"].str.contains(channel)]["profile_id"]
        assert not set(sent) & who, channel
    minors = set(consent.loc[consent["minor"], "customer_id"].astype(str))
    assert not set(offers["profile_id"]) & minors
    assert len(offers) == len(on_spark.detail.offers)


def test_mart_has_the_warehouse_columns_and_stamps(both):
    wh_path, lake, _, on_spark = both
    with Warehouse(wh_path, read_only=True) as wh:
        want = wh.sql("SELECT * FROM marts.next_offers LIMIT 0")
    got = lake.sql("SELECT * FROM marts.next_offers LIMIT 0")
    assert list(got.columns) == list(want.columns)
    assert lake.stamp("marts", "next_offers")[0] == "s"
    assert "marts.next_offers" in on_spark.writes and "identity.map" in on_spark.reads
    assert not any(p.name.startswith(".") for p in (lake._folder() / "marts").iterdir())


def _labelled(tx: pd.DataFrame, cut: pd.Timestamp, days: int) -> set[str]:
    """The customers with history up to ``cut`` and a purchase in the ``days`` after it."""
    tx = tx[tx["quantity"] > 0]
    day = tx["ts"].dt.normalize()
    before = set(tx.loc[day <= cut, "customer_id"])
    after = set(tx.loc[(day > cut) & (day <= cut + pd.Timedelta(days=days)), "customer_id"])
    return before & after


def test_fit_sample_bounds_the_history_and_every_customer_is_offered(both, spark):
    _, lake, _, _ = both
    full = SparkOffers(spark, lake, AS_OF, horizon_days=HORIZON)
    assert full.sample is None  # 200 people: no window above the cap, every customer's history
    every = full.transactions()
    cap = 10  # (200 people: 168 customers, 24 and 19 of them labelled in the two windows)
    on = SparkOffers(spark, lake, AS_OF, horizon_days=HORIZON, max_train_customers=cap, seed=42,
                     keep_history=True)  # fmt: skip
    sample = set(on.sample.toPandas()["customer_id"])
    end = pd.Timestamp(AS_OF)
    windows = [_labelled(every, end - pd.Timedelta(days=n * HORIZON), HORIZON) for n in (1, 2)]
    assert all(len(w) > cap for w in windows)  # both windows above the cap
    # each window gets its cap of labelled customers, besides a uniform cap: at most 3 x cap
    assert all(len(sample & w) >= cap for w in windows) and 2 * cap <= len(sample) <= 3 * cap
    assert len(sample - windows[0] - windows[1]) >= 1
    graded = set(on.graded(None))  # the uniform part: the customers the metrics count
    assert len(graded) == cap and graded <= sample
    # windows under the cap: every labelled customer (the DuckDB engine's training customers)
    wide = SparkOffers(spark, lake, AS_OF, horizon_days=HORIZON, max_train_customers=30)
    wide_sample = set(wide.sample.toPandas()["customer_id"])
    assert windows[0] | windows[1] <= wide_sample and len(wide_sample) <= 90
    # seeded: the same seed picks the same customers, another seed others
    again = SparkOffers(spark, lake, AS_OF, horizon_days=HORIZON, max_train_customers=cap, seed=42)
    other = SparkOffers(spark, lake, AS_OF, horizon_days=HORIZON, max_train_customers=cap, seed=7)
    assert set(again.sample.toPandas()["customer_id"]) == sample
    assert set(other.sample.toPandas()["customer_id"]) != sample
    # the driver gets the sample's lines and events, every one of them, and nobody else's
    tx, ev = on.transactions(), on.events()
    assert set(tx["customer_id"]) == sample
    assert len(tx) == int(every["customer_id"].isin(sample).sum()) < len(every) // 2
    assert set(ev["customer_id"]) <= sample and len(ev) > 0
    # the offers are for every customer with a purchase, scored on the executors
    model = NextOfferModel(k=10, horizon_days=HORIZON, seed=42, max_train_customers=cap)
    model.fit(tx, AS_OF, events=ev)
    out = on.recommend(model)
    everyone = on.customers(model.tx_["customer_id"].unique())
    assert len(everyone) == every.loc[every["quantity"] > 0, "customer_id"].nunique() > 100
    assert set(out["customer_id"]) == set(everyone) and len(out) == 10 * len(everyone)
    assert on.figures["customers"] == on.figures["customers_with_history"] == len(everyone)
    # the sample's customers get the driver's offers of the same model (their own history)
    here = model.recommend()
    mine = out[out["customer_id"].isin(sample)].reset_index(drop=True)
    assert mine[["customer_id", "rank", "item_id"]].equals(here[["customer_id", "rank", "item_id"]])
    assert (mine["reasons"] == here["reasons"]).all()
    # the history's joins over the lake ran once: every later job scans the kept rows
    kept = on._persisted[0]
    assert kept.is_cached and kept.storageLevel.useDisk and kept.storageLevel.useMemory
    for sdf in (on.tx, on.ev, on._rows(model.as_of_)):
        assert "InMemoryTableScan" in sdf._jdf.queryExecution().executedPlan().toString()
    assert on.figures["cached_mib"] > 0
    assert {"never_kept", "fit_sample", "transactions", "events", "customers"} <= set(
        on.figures["read_seconds"]
    )
    on.close()  # released: nothing of the run stays in the block manager
    assert not any(s.is_cached for s in (kept, on.ev, on.sample, on._uniform))
    # by default the history is not kept (it did not pay at 200,000 people on 2 cores)
    assert full._persisted == [] and not full.tx.is_cached
    assert "InMemoryTableScan" not in full.tx._jdf.queryExecution().executedPlan().toString()
