"""Stage 05 with customers who left between two runs (every CRM record closed, trial 11): a
change counted on its own, apart from the forecast's customers no longer scored for another
reason, and graded as a churn forecast (who left, by the previous risk segment)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib.collect import collect
from cemlib.identity.stage import run_stage as resolve
from cemlib.monitor import report
from cemlib.monitor.movement import closed_between, closures
from cemlib.monitor.stage import run_stage as monitor
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

BEFORE, NOW = "2025-03-31", "2025-06-30"
CRM = (
    "contact_id;full_name;phone;birth_date;registered_at;closed_at\n"
    # A leaves between the runs: both contracts close in May
    "A1;Орлов Иван Петрович;+7 912 100-00-01;01.02.1980;10.01.2023;10.05.2025\n"
    "A2;Орлов Иван Петрович;+7 912 100-00-01;01.02.1980;10.02.2023;20.05.2025\n"
    # B closes one contract of two: stays
    "B1;Седова Анна Павловна;+7 912 100-00-02;03.04.1985;11.01.2024;01.05.2025\n"
    "B2;Седова Анна Павловна;+7 912 100-00-02;03.04.1985;20.01.2024;\n"
    # C left before the first run: not a change of this one
    "C1;Ким Лев Сергеевич;+7 912 100-00-03;05.06.1990;12.01.2024;01.12.2024\n"
    # D open; E closes after the second run's as_of (no leakage): open then
    "D1;Зуев Олег Ильич;+7 912 100-00-04;07.08.1970;13.01.2024;\n"
    "E1;Лис Ольга Петровна;+7 912 100-00-05;09.10.1975;14.01.2024;15.07.2025\n"
)
# D's purchases (the monitor grades on sales tables), one before each as_of
ORDERS = "order_id;ordered_at;phone\nO1;2025-03-20;+7 912 100-00-04\nO2;2025-06-20;89121000004\n"
LINES = "order_id;sku;quantity;price\nO1;S1;1;100\nO2;S1;1;100\n"


def _source(tmp_path: Path, crm: str) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "crm_contacts.csv").write_text(crm, encoding="utf-8")
    (src / "online_orders.csv").write_text(ORDERS, encoding="utf-8")
    (src / "order_lines.csv").write_text(LINES, encoding="utf-8")
    return src


def _stages(wh: Warehouse, src: Path, as_of: str, run_id: str) -> dict[str, str]:
    collect(str(src), warehouse=wh, run_id=run_id, as_of=as_of, progress=False)
    QualityStage(progress=False).run(wh, run_id=run_id, as_of=as_of)
    resolve(wh, run_id=run_id, as_of=as_of)
    m = wh.read_table("identity", "map")
    return dict(zip(m["record_id"].astype(str), m["profile_id"].astype(str), strict=True))


def _scores(ids: list[str], segments: list[str], p: list[float]) -> pd.DataFrame:
    """marts.churn_scores as stage 03 writes it (the columns the monitor keeps)."""
    n = len(ids)
    return pd.DataFrame({
        "customer_id": ids, "p_purchase_90": p, "expected_purchases_90": [1.0] * n,
        "expected_revenue_90": [100.0] * n, "risk_segment": segments,
        "mean_amount": [50.0] * n, "n_purchases": [4] * n, "clv": [500.0] * n,
    })  # fmt: skip


def test_customers_who_left_between_runs_are_a_change_of_their_own(tmp_path):
    src = _source(tmp_path, CRM)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        pid = _stages(wh, src, BEFORE, "r1")
        a, b, d, e = (pid[r] for r in ("A1", "B1", "D1", "E1"))
        assert pid["A1"] == pid["A2"] and pid["B1"] == pid["B2"]
        # stage 03 of run 1 scored the 4 open customers and one whose id no longer exists
        scores = _scores([a, b, d, e, "Pgone"], ["high", "low", "medium", "high", "low"],
                         [0.10, 0.80, 0.50, 0.30, 0.90])  # fmt: skip
        wh.write_table("marts", "churn_scores", scores, run_id="r1", as_of=BEFORE)
        first = monitor(wh, BEFORE, run_id="r1", horizon_days=90)
        assert first.previous_run_id is None

        pid2 = _stages(wh, src, NOW, "r2")
        assert pid2["A1"] == a  # the ids last
        assert closed_between(wh, BEFORE, NOW) == {a}  # C left before the first run
        assert closed_between(wh, "2025-05-20", NOW) == set()  # closed on that day: before
        # stage 03 of run 2 no longer scores A (every contract closed)
        scores2 = _scores([b, d, e], ["low", "high", "high"], [0.8, 0.2, 0.3])
        wh.write_table("marts", "churn_scores", scores2, run_id="r2", as_of=NOW)
        res = monitor(wh, NOW, run_id="r2", horizon_days=90)
        kept = wh.read_table("monitor", "profiles").set_index("figure")["value"]

    assert res.previous_run_id == "r1"
    assert res.profiles["profiles closed since the previous run"] == 1
    assert kept["profiles closed since the previous run"] == 1.0
    assert res.risk["customers in both runs"] == 3  # B, D, E
    assert res.risk["customers who left since (every contract closed)"] == 1  # A
    assert res.risk["customers who left since: high-risk before"] == 1
    assert res.risk["customers no longer scored (not closed)"] == 1  # Pgone
    # A had the lowest p_purchase of the forecast: ranked first among who left
    assert res.risk["auc of the forecast on who left"] == 1.0
    # the previous forecast is still graded on them: leaving is the outcome it forecast
    assert res.churn["customers graded"] == 5 and res.churn["buyers"] == 1  # D bought again
    assert res.churn["graded customers who left since"] == 1
    assert res.churn["of them bought before leaving"] == 0
    text = report.summary_markdown(res)
    assert "1 profiles closed since the previous run" in text and "AUC 1.000" in text
    assert report.verdict_of(res)["figures"]["customers who left (all contracts closed)"] == "1"


def test_closures_without_closing_dates_add_nothing(tmp_path):
    crm = "\n".join(";".join(r.split(";")[:5]) for r in CRM.strip().split("\n")) + "\n"
    src = _source(tmp_path, crm)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _stages(wh, src, BEFORE, "r1")
        assert closed_between(wh, BEFORE, NOW) is None
        res = monitor(wh, BEFORE, run_id="r1", horizon_days=90, write=False)
    assert "profiles closed since the previous run" not in res.profiles
    assert report.closures_markdown(res) == ""


def test_closures_count_by_previous_segment():
    prev = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                         "risk_segment": ["high", "low", "high", "medium"],
                         "p_purchase": [0.2, 0.9, 0.4, 0.1]})  # fmt: skip
    got = closures(prev, pd.Series(["a", "b", "c", "d"]), {"a", "d"}, pd.Series(["b"]))
    assert got["customers who left since (every contract closed)"] == 2
    assert got["customers who left since: high-risk before"] == 1
    assert got["customers no longer scored (not closed)"] == 1  # c
    assert got["auc of the forecast on who left"] == 1.0  # a, d least likely to buy
