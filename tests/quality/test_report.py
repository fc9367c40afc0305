"""What the 01 report shows of a run: checks in words, thresholds, the verdict."""

import pandas as pd

from cemlib.collect import collect
from cemlib.quality import QualityStage
from cemlib.quality import report as qr
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"


def test_checks_failing_first_with_their_threshold_and_a_verdict(wh, base_dir, base_defects):
    collect(str(base_dir), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
    result = QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    checks = qr.check_table(result)
    order = [qr.OUTCOMES.index(o) for o in checks["outcome"]]
    assert order == sorted(order)  # failed, warning, rows quarantined, then passed
    quarantining = checks[checks["outcome"] == "rows quarantined"]
    assert int(quarantining["rows_quarantined"].sum()) == int(
        result.quarantine_by_reason["rows_quarantined"].sum()
    )
    assert (quarantining["threshold"] == "every row (else quarantined)").all()
    mostly = checks[
        checks["expectation"].str.contains("email_norm") & (checks["severity"] == "warning")
    ]
    assert "≥ 80% of rows" in set(mostly["threshold"])  # online_orders: mostly 0.8
    assert (checks.loc[checks["threshold"] == "the whole table", "rows failing"].isna()).all()

    v = qr.verdict_of(result)
    assert v["status"] in ("ok", "warning")
    assert v["figures"]["rows quarantined"].startswith(f"{len(base_defects):,} (")
    assert v["figures"]["rows conserved"] == "yes"
    assert v["comparison"] == "This is the first run in this warehouse: no trend yet."


def test_a_table_losing_a_large_share_of_its_rows_is_named_first_in_the_verdict(
    tmp_path, sources, tables
):
    # 20 clean orders; then the same orders where the second half came from another system
    # writing the month as a word ("15-Jun-2025", a format no reader here knows)
    days = range(1, 21)
    ids = [f"o{d}" for d in days]
    iso = pd.DataFrame({"order_id": ids, "ordered_at": [f"2025-06-{d:02d} 10:00" for d in days]})
    us = iso.assign(
        ordered_at=[f"2025-06-{d:02d} 10:00" if d <= 8 else f"{d:02d}-Jun-2025 10:00" for d in days]
    )
    verdicts = {}
    for name, orders in (("iso", iso), ("us", us)):
        folder = sources(tmp_path / name, {**tables, "online_orders": orders})
        with Warehouse(tmp_path / f"{name}.duckdb") as wh:
            collect(str(folder), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
            result = QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
        cons = result.conservation.set_index("table").loc["online_orders"]
        verdicts[name] = (cons["quarantined"] / cons["rows_in"], qr.verdict_of(result))
    share, v = verdicts["iso"]
    assert share == 0 and not any(c.startswith("online_orders") for c in v["caveats"])
    share, v = verdicts["us"]
    assert share == 0.6 > qr.HEAVY_QUARANTINE
    assert v["status"] == "warning"
    assert v["caveats"][0].startswith(f"online_orders: {share:.0%} of its rows quarantined")


def test_rows_after_as_of_are_named_as_such_not_as_a_format_problem(tmp_path, sources, tables):
    """Trial 7, M5: a backtest's as_of behind the export quarantined 27% of the orders as
    "after as_of", and the verdict called it a column in another format."""
    days = range(1, 21)
    orders = pd.DataFrame(
        {
            "order_id": [f"o{d}" for d in days],
            # 8 in June, 12 in July: after as_of 2025-06-30
            "ordered_at": [f"2025-06-{d:02d} 10:00" if d <= 8 else f"2025-07-{d:02d} 10:00"
                           for d in days],
        }
    )  # fmt: skip
    folder = sources(tmp_path / "later", {**tables, "online_orders": orders})
    with Warehouse(tmp_path / "later.duckdb") as wh:
        collect(str(folder), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
        result = QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    cons = result.conservation.set_index("table").loc["online_orders"]
    assert (cons["quarantined"], cons["rows_in"]) == (12, 20)
    mine = [c for c in qr.verdict_of(result)["caveats"] if c.startswith("online_orders")]
    assert mine == [
        "online_orders: 60% of its rows (12 of 20) are dated after as_of and held back from the "
        "models: as_of is behind the data (a backtest, or a scheduled run whose as_of did not "
        "move)"
    ]
