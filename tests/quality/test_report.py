"""What the 01 report shows of a run: checks in words, thresholds, the verdict."""

from cemlib.collect import collect
from cemlib.quality import QualityStage
from cemlib.quality import report as qr

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
