"""The previous run's forecasts graded against what happened: the monitor's AUC on files of
the synthetic world agrees with the same AUC computed independently from the synthetic truth;
hit rate and NDCG of offers on a case counted by hand."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cemlib.marts.popularity import personal_then_popular
from cemlib.monitor.window import (
    baseline_offers_sql,
    ranking_sql,
    window_items,
    window_outcomes,
)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "monitor_runs.py"


def _bench(name: str = "monitor_runs.py"):
    spec = importlib.util.spec_from_file_location(name[:-3], BENCH.with_name(name))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hit_rate_and_ndcg_counted_by_hand():
    import duckdb

    recs = pd.DataFrame({"customer_id": ["a"] * 3 + ["b"] * 3, "rank": [1, 2, 3] * 2,
                         "item_id": ["x", "y", "z", "x", "y", "z"]})  # fmt: skip
    bought = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "item_id": ["y", "q", "w", "x"]})
    con = duckdb.connect()
    con.register("recs", recs)
    con.register("bought", bought)
    customers, hit, ndcg = con.execute(ranking_sql("recs", "bought", 3)).fetchone()
    assert customers == 3  # c bought but was offered nothing: a miss
    assert hit == pytest.approx(1 / 3)
    # a: a hit at rank 2 of two relevant items -> (1/log2 3) / (1 + 1/log2 3)
    ndcg_a = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg == pytest.approx(ndcg_a / 3)


def _sales_warehouse(path, tx: pd.DataFrame, headers_only: pd.DataFrame | None = None):
    """A warehouse holding ``tx`` (customer_id, ts, order_id, item_id, amount) as clean online
    orders with one line each (``headers_only``: orders whose lines all failed the checks), and
    an identity map of the orders (customer None: unattached)."""
    from cemlib.warehouse import Warehouse

    wh = Warehouse(path)
    orders = pd.concat([tx, headers_only]).drop_duplicates("order_id")
    kw = {"run_id": "t", "as_of": "2025-06-30"}
    wh.write_table("clean", "online_orders", pd.DataFrame({
        "order_id": orders["order_id"], "ordered_at": orders["ts"]}), **kw)  # fmt: skip
    wh.write_table("clean", "order_lines", pd.DataFrame({
        "order_id": tx["order_id"], "sku": tx["item_id"], "quantity": 1.0,
        "price": tx["amount"]}), **kw)  # fmt: skip
    wh.write_table("identity", "map", pd.DataFrame({
        "source_table": "online_orders", "record_id": orders["order_id"],
        "profile_id": orders["customer_id"]}), **kw)  # fmt: skip
    return wh


def test_window_counts_customer_days_inside_the_edges_only(tmp_path):
    ts = pd.to_datetime(["2025-04-30 23:00", "2025-05-01 01:00", "2025-05-01 09:00",
                         "2025-05-31 23:59", "2025-06-01 00:00", "2025-05-10 12:00"])  # fmt: skip
    tx = pd.DataFrame({"customer_id": ["a"] * 5 + [None], "ts": ts,
                       "amount": [1.0, 2, 3, 4, 5, 6], "order_id": list("123456"),
                       "item_id": list("xxyyzz")})  # fmt: skip
    # b's order in the window has no line left (its only line was quarantined): a purchase
    no_lines = pd.DataFrame({"customer_id": ["b"], "ts": pd.to_datetime(["2025-05-05 10:00"]),
                             "order_id": ["7"]})  # fmt: skip
    with _sales_warehouse(tmp_path / "w.duckdb", tx, no_lines) as wh:
        got = window_outcomes(wh, "2025-04-30", "2025-05-31")
        items = window_items(wh, "2025-04-30", "2025-05-31", pd.Index(["a", "b"]))
    # two days (05-01 twice, 05-31), the edges and the unattached order (no profile) left out
    assert got.sort_index().to_dict("index") == {
        "a": {"purchases": 2.0, "revenue": 9.0}, "b": {"purchases": 1.0, "revenue": 0.0}
    }  # fmt: skip
    assert sorted(items["item_id"]) == ["x", "y"]


def test_baseline_in_sql_equals_personal_then_popular(tmp_path):
    rng = np.random.default_rng(5)
    n = 400
    tx = pd.DataFrame({
        "customer_id": rng.choice([f"c{i}" for i in range(30)], n),
        "ts": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 150, n), "D"),
        "item_id": rng.choice([f"i{i:02d}" for i in range(25)], n),
        "amount": 1.0, "order_id": [f"o{i}" for i in range(n)],
    })  # fmt: skip
    offered = pd.Index(["c1", "c5", "c7", "nobody"])  # "nobody" has no history: popular only
    with _sales_warehouse(tmp_path / "w.duckdb", tx) as wh:
        got = baseline_offers_sql(wh, "2025-04-30", offered, k=10)
    history = tx[tx["ts"] < "2025-05-01"].assign(
        order_id=lambda d: "online_orders:" + d["order_id"]
    )
    want = personal_then_popular(history, 10, offered, basket="order_id")
    key = ["customer_id", "rank"]
    got, want = (d.sort_values(key).reset_index(drop=True) for d in (got, want))
    assert len(got) == 40 and (got["rank"].to_numpy() == want["rank"].to_numpy()).all()
    assert got[key + ["item_id"]].astype(str).equals(want[key + ["item_id"]].astype(str))


def _month(folder, warehouse, as_of: str, run_id: str, *, churn: bool):
    """One monthly run in process (the stage functions the notebooks call; the notebook is
    not what is tested here): collection, quality, identity, (``churn``) churn scores, the
    monitor."""
    from cemlib.churn import ChurnModel
    from cemlib.collect import collect
    from cemlib.identity.stage import run_stage as identity_stage
    from cemlib.marts import profile_transactions
    from cemlib.monitor import run_stage
    from cemlib.quality import QualityStage
    from cemlib.warehouse import Warehouse

    with Warehouse(warehouse) as wh:
        collect(source=folder, warehouse=wh, run_id=run_id, as_of=as_of, progress=False)
        QualityStage(progress=False).run(wh, run_id=run_id, as_of=as_of)
        identity_stage(wh, run_id=run_id, as_of=as_of, keep_records=False)
        if churn:  # the stage's model, lighter (one AFT family, no booster, no backtest blend)
            model = ChurnModel(horizons=(30, 365), families=("weibull",), n_sims=20,
                               supervised=False, calibrate=False, seed=3)  # fmt: skip
            model.fit(profile_transactions(wh, as_of), as_of=as_of)
            wh.write_table("marts", "churn_scores", model.predict(), run_id=run_id, as_of=as_of)
        return run_stage(wh, as_of, run_id=run_id)


@pytest.fixture(scope="module")
def april(tmp_path_factory):
    """A 1,000-person world written as files (history to 2025-06-30) and its April run, which
    keeps its identity map and 30-day churn forecast for the next run."""
    from cemlib.synth import generate
    from cemlib.warehouse import Warehouse

    base = tmp_path_factory.mktemp("grading")
    world, db = base / "world", base / "cem.duckdb"
    generate(n_people=1000, seed=3, as_of="2025-06-30").write(world)
    res = _month(world, db, "2025-04-30", "april", churn=True)
    with Warehouse(db, read_only=True) as wh:
        identity_map = wh.sql("SELECT source_table, record_id, profile_id FROM identity.map")
        forecast = wh.read_table("monitor", "churn_forecast")
        scores = wh.con.execute("SELECT count(*) FROM marts.churn_scores").fetchone()[0]
    return SimpleNamespace(world=world, db=db, res=res, map=identity_map, forecast=forecast,
                           scores=scores)  # fmt: skip


@pytest.fixture(scope="module")
def may(april):
    """The May run on the same warehouse and files, grading April's forecast; each graded
    customer labelled by the monitor and by the synthetic truth (``monitor_gap.labels_for``),
    and the truth's AUC on the customers the monitor graded."""
    res = _month(april.world, april.db, "2025-05-31", "may", churn=False)
    gap = _bench("monitor_gap.py")
    per = gap.labels_for(april.world, april.map, april.forecast, april.db, "2025-04-30",
                         "2025-05-31")  # fmt: skip
    # the truth: the person of each graded April profile bought in May (identity not consulted)
    truth = _bench().truth_auc(april.world, april.map, april.forecast, "2025-04-30",
                               "2025-05-31", graded=per["customer_id"])  # fmt: skip
    return SimpleNamespace(res=res, churn=res.churn, per=per, truth=truth,
                           like=gap.like_with_like(per))  # fmt: skip


@pytest.mark.slow
def test_first_run_keeps_its_30_day_forecast_and_grades_nothing(april):
    assert april.res.previous_run_id is None and april.res.churn == {}
    assert len(april.res.alerts) == 0 and len(april.res.offers) == 0
    # one forecast row per scored customer, for the schedule's period: marts.churn_scores
    # carries p_purchase_30
    assert len(april.forecast) == april.scores > 500
    assert april.forecast["horizon_days"].eq(30).all()
    assert april.forecast["p_purchase"].between(0, 1).all()


@pytest.mark.slow
def test_graded_churn_auc_agrees_with_the_auc_from_the_synthetic_truth(april, may):
    c, forecast = may.churn, april.forecast
    assert (c["forecast run"], c["forecast as_of"], c["elapsed days"]) == (
        "april",
        "2025-04-30",
        31,
    )
    left = c["customers left out: outcome unknown"]
    assert c["customers graded"] + left == len(forecast) and 0 < c["buyers"] < len(forecast)
    assert 0 < left < 0.1 * len(forecast)
    assert len(may.per) == c["customers graded"] and int(may.per["bought"].sum()) == c["buyers"]
    assert abs(c["auc"] - may.truth) <= 0.01, (c["auc"], may.truth)
    assert c["auc"] > 0.6  # the forecast has signal


@pytest.mark.slow
def test_customers_of_unknown_outcome_have_no_purchase_and_bought_only_in_part(may):
    # left out: no purchase on the profile, and by the truth some of them did buy (an
    # unattributed receipt or order was theirs), some did not (it was a relative's)
    unknown = may.per.attrs["unknown"]
    left = may.churn["customers left out: outcome unknown"]
    assert len(unknown) == left and (unknown["bought"] == 0).all()
    assert 0 < unknown["truth"].sum() < left


@pytest.mark.slow
def test_on_the_customers_identity_attributed_right_the_grade_is_the_truths(may):
    # like with like: on the customers whose purchases identity attributed right, the grade
    # is the truth's (what is left is the monitor's own: window, ids followed, definitions)
    per, like = may.per, may.like
    assert per["cause"].isin(["", "a", "b", "c", "d"]).all()
    assert like["left out (identity)"] == per["cause"].isin(["a", "b"]).sum() < 0.02 * len(per)
    assert like["customers"] + like["left out (identity)"] == len(per)
    assert abs(like["monitor auc"] - like["truth auc"]) <= 0.002, like
    assert per["cause"].isin(["c", "d"]).sum() <= 0.002 * len(per)  # the monitor's own causes


@pytest.mark.slow
def test_calibration_bins_hold_every_graded_customer(may):
    c, cal = may.churn, may.res.calibration
    assert cal["n"].sum() == c["customers graded"] and len(cal) == 10
    assert np.isclose((cal["observed"] * cal["n"]).sum(), c["buyers"])
    assert np.isclose((cal["predicted"] * cal["n"]).sum(), may.per["p_purchase"].sum())


def test_offers_and_baseline_are_graded_without_the_excluded_items(tmp_path):
    """Trial 7 M2: with ``04_next_offer.exclude: [TOPUP]`` the offers never hold the monthly
    top-up, so it is no target: graded with it, the baseline hits everyone (1.0) and the
    offers look worse than they are; the entries come from the previous run's run.json."""
    import json

    from cemlib.monitor.forecasts import grade_offers
    from cemlib.monitor.stage import previous_exclusion

    rows, n = [], 0
    for c in range(20):
        cust = f"c{c:02d}"
        for day in ["2025-04-10", "2025-05-10", "2025-06-10", "2025-07-10"]:
            rows.append((cust, pd.Timestamp(day), f"o{n}", "TOPUP", 5.0))
            n += 1
        rows.append((cust, pd.Timestamp("2025-05-20"), f"o{n}", f"A{c % 3}", 20.0))
        n += 1
        if c < 8:  # 8 customers buy something besides the top-up after as_of
            rows.append((cust, pd.Timestamp("2025-07-15"), f"o{n}", "A0", 20.0))
            n += 1
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "order_id", "item_id", "amount"])
    wh = _sales_warehouse(tmp_path / "w.duckdb", tx)
    try:
        # the previous run's offers: A0 first for everyone (TOPUP kept out)
        offers = pd.DataFrame({"profile_id": [f"c{c:02d}" for c in range(20) for _ in range(2)],
                               "rank": [1, 2] * 20, "item_id": ["A0", "A1"] * 20})  # fmt: skip
        wh.write_table("monitor", "prev_offers", offers, run_id="r1", as_of="2025-06-30")
        counted = grade_offers(wh, "monitor.prev_offers", "2025-06-30", "2025-07-31", k=2)
        graded = grade_offers(
            wh, "monitor.prev_offers", "2025-06-30", "2025-07-31", k=2, exclude=["TOPUP"]
        )
        run_dir = tmp_path / "reports" / "r1"
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(json.dumps({"stages": [
            {"name": "03_churn", "parameters": {}},
            {"name": "04_next_offer", "parameters": {"exclude": ["TOPUP"]}}]}))  # fmt: skip
        wh.con.execute(
            "CREATE TABLE meta.runs (run_id VARCHAR, as_of DATE, started_at VARCHAR, "
            "published_at VARCHAR, stages VARCHAR, run_dir VARCHAR)"
        )
        wh.con.execute("INSERT INTO meta.runs VALUES ('r1', '2025-06-30', '', '', '', ?)",
                       [str(run_dir)])  # fmt: skip
        entries = previous_exclusion(wh, "r1")
        none = previous_exclusion(wh, "r0")
    finally:
        wh.close()
    assert entries == ["TOPUP"] and none == []
    # the other forms the offers stage reads: a comma-separated text, a file one entry a line
    from cemlib.monitor.stage import _exclusion_entries

    rx = tmp_path / "rx.txt"
    rx.write_text("# never offered\nTOPUP\nSIM  # a category\n")
    assert _exclusion_entries("TOPUP, SIM") == _exclusion_entries(str(rx)) == ["TOPUP", "SIM"]
    hit = "hitrate@2"
    # counted: all 20 bought the top-up; the baseline (own items by baskets) offers it first
    assert counted["customers"].tolist() == [20, 20]
    assert counted[hit].tolist() == [pytest.approx(8 / 20), 1.0]
    # graded as sent: the 8 who bought A0, the offers hit all of them at rank 1
    assert graded["customers"].tolist() == [8, 8]
    assert graded[hit].iloc[0] == 1.0 and graded["ndcg@2"].iloc[0] == pytest.approx(1.0)
    # the baseline without the top-up: own A-item (A0 for c0, c3, c6), then best seller A0
    assert graded[hit].iloc[1] == 1.0
