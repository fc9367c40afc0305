"""The stage against the synthetic world's recorded defects (truth.defects)."""

import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

#: defects of an identifier's value: the value is emptied in clean, the row kept
IDENTIFIER_DEFECTS = {"malformed_phone": "phone", "malformed_email": "email"}


def _blanked(wh, tables) -> set[tuple[str, int, str]]:
    """(table, _source_row, column) of the identifiers present in raw and empty in clean."""
    out = set()
    for t in tables:
        cols = set(wh.sql(f"SELECT * FROM clean.{t} LIMIT 0").columns)
        for col in ("phone", "email"):
            if col not in cols:
                continue
            rows = wh.sql(
                f"SELECT c._source_row FROM clean.{t} c JOIN raw.{t} r USING (_source_row) "
                f"WHERE nullif(trim(r.{col}), '') IS NOT NULL AND c.{col} IS NULL"
            )["_source_row"]
            out |= {(t, int(r), col) for r in rows}
    return out


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "cem.duckdb"
    with Warehouse(path) as wh:
        collect("synthetic", warehouse=wh, n_people=2000, seed=11, run_id="w", progress=False)
        report = QualityStage(progress=False).run(wh, run_id="w", as_of="2025-06-30")
        defects = wh.read_table("truth", "defects")
        quarantined = pd.concat(
            [
                wh.read_table("quarantine", t)[["_source_row", "reason"]].assign(table=t)
                for t in report.outcomes
            ]
        )
        report.blanked = _blanked(wh, report.outcomes)
        yield report, defects, quarantined


def test_quarantines_at_least_99_percent_of_injected_defects(world_run):
    report, defects, quarantined = world_run
    injected = set(zip(defects["table"], defects["source_row"], strict=True))
    held = set(zip(quarantined["table"], quarantined["_source_row"], strict=True))
    assert len(injected) > 1000
    assert set(defects["defect"]) >= {
        "malformed_phone",
        "malformed_email",
        "ts_after_as_of",
        "ts_before_start",
        "unparseable_date",
        "nonpositive_quantity",
        "nonpositive_price",
        "duplicate_receipt_id",
        "orphan_line",
        "unknown_sku",
    }
    # a row defect is quarantined; an invalid identifier is emptied in clean, the row kept
    # (or quarantined when the row has another defect too)
    blanked = report.blanked
    d = defects.assign(
        held=[
            (t, r) in held
            if k not in IDENTIFIER_DEFECTS
            else (t, r, IDENTIFIER_DEFECTS[k]) in blanked or (t, r) in held
            for t, r, k in zip(
                defects["table"], defects["source_row"], defects["defect"], strict=True
            )
        ]
    )
    recall = d["held"].mean()
    assert recall >= 0.99, f"recall {recall:.4f}"
    # per defect kind too: none is left mostly unseen
    assert d.groupby("defect")["held"].mean().min() >= 0.99
    ident = d[d["defect"].isin(IDENTIFIER_DEFECTS)]
    assert len(ident) > 50
    kept = [(t, r) not in held for t, r in zip(ident["table"], ident["source_row"], strict=True)]
    assert sum(kept) >= 0.9 * len(ident)  # most of them keep their row
    assert len(blanked) >= sum(kept)
    warned = " ".join(report.warnings)
    assert "phone values not valid: left empty in clean, rows kept" in warned


def test_wrongly_quarantines_at_most_0_1_percent_of_clean_rows(world_run):
    report, defects, quarantined = world_run
    injected = set(zip(defects["table"], defects["source_row"], strict=True))
    held = set(zip(quarantined["table"], quarantined["_source_row"], strict=True))
    n_clean_truth = int(report.conservation["rows_in"].sum()) - len(injected)
    wrong = len(held - injected)
    assert wrong / n_clean_truth <= 0.001, f"{wrong} clean rows quarantined"


def test_duplicated_receipt_keeps_the_first_copy(world_run):
    report, defects, quarantined = world_run
    dup = defects[defects["defect"] == "duplicate_receipt_id"]
    q = quarantined[quarantined["table"] == "pos_receipts"].set_index("_source_row")
    for row in dup["source_row"]:
        assert "duplicated receipt id" in q.loc[row, "reason"]
    assert report.conservation["conserved"].all()


def test_great_expectations_and_sql_agree_on_every_row_check(world_run):
    report, _, _ = world_run
    r = report.results[(report.results["level"] == "row") & report.results["success"].notna()]
    keep_first = r["expectation"].str.startswith("expect_column_values_to_be_unique(receipt_id")
    r = r[~keep_first & (r["table"] != "products")]
    assert len(r) > 60
    assert (r["unexpected_count"].astype(int) == r["sql_unexpected_count"].astype(int)).all()
    assert int(r["unexpected_count"].sum()) > 1000
