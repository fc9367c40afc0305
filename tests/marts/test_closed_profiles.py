"""``identity.profiles.closed_at``: stage 02 says which profiles left (every CRM record closed
by ``as_of``) and when their last record closed, with the definition of
:func:`cemlib.marts.closed.crm_closure` (which keeps its behaviour)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib.collect import collect
from cemlib.identity.stage import run_stage as resolve
from cemlib.marts.closed import closed_since, crm_closure
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"
CRM = (
    "contact_id;full_name;phone;email;birth_date;registered_at;closed_at\n"
    # A left: both contracts closed, the last on 01.03.2024
    "A1;Орлов Иван Петрович;+7 912 100-00-01;ivan.orlov@mail.ru;01.02.1980;10.01.2023;01.02.2024\n"
    "A2;Орлов Иван Петрович;+7 912 100-00-01;;01.02.1980;10.02.2023;01.03.2024\n"
    # B: one contract of two closed: open
    "B1;Седова Анна Павловна;+7 912 100-00-02;anna.sedova@ya.ru;03.04.1985;11.01.2024;15.01.2025\n"
    "B2;Седова Анна Павловна;;anna.sedova@ya.ru;03.04.1985;20.01.2024;\n"
    # C closes after as_of: open then (no leakage), closed at a later as_of
    "C1;Ким Лев Сергеевич;+7 912 100-00-03;lev.kim@gmail.com;05.06.1990;12.01.2024;01.08.2025\n"
    # Z closed on as_of itself: closed (as_of is inclusive)
    "Z1;Зуев Олег Ильич;+7 912 100-00-04;oleg.zuev@gmail.com;07.08.1970;13.01.2024;30.06.2025\n"
)
ORDERS = (
    "order_id;ordered_at;email\n"
    "O1;2025-06-20;ivan.orlov@mail.ru\n"
    # an order of someone without a CRM record: never "closed"
    "O2;2025-06-25;nobody.here@mail.ru\n"
    # dated after the first as_of (quarantined then), keeps the orders fresh at the second
    "O3;2025-08-02;lev.kim@gmail.com\n"
)


def _run(tmp_path: Path, crm: str, as_of: str, wh: Warehouse | None = None) -> Warehouse:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "crm_contacts.csv").write_text(crm, encoding="utf-8")
    (src / "online_orders.csv").write_text(ORDERS, encoding="utf-8")
    wh = wh or Warehouse(tmp_path / "w.duckdb")
    collect(str(src), warehouse=wh, run_id=f"r{as_of}", as_of=as_of, progress=False)
    QualityStage(progress=False).run(wh, run_id=f"r{as_of}", as_of=as_of)
    result = resolve(wh, run_id=f"r{as_of}", as_of=as_of)
    return wh, result


def _closed_at(wh: Warehouse) -> dict[str, pd.Timestamp | None]:
    m = wh.read_table("identity", "map")
    pid = dict(zip(m["record_id"].astype(str), m["profile_id"].astype(str), strict=True))
    prof = wh.read_table("identity", "profiles")
    at = dict(zip(prof["profile_id"].astype(str), prof["closed_at"], strict=True))
    return {r: (None if pd.isna(at[p]) else pd.Timestamp(at[p])) for r, p in pid.items()}


def test_profiles_say_when_they_closed(tmp_path):
    wh, result = _run(tmp_path, CRM, AS_OF)
    with wh:
        at = _closed_at(wh)
        # the same verdict as crm_closure, profile by profile
        closure = crm_closure(wh, AS_OF).set_index("customer_id")["closed"]
        prof = wh.read_table("identity", "profiles").set_index("profile_id")
        assert len(prof) == 5  # A, B, C, Z and the order without a CRM record
        for pid, closed in closure.items():
            assert pd.notna(prof.loc[pid, "closed_at"]) == bool(closed)
        assert int(prof["closed_at"].notna().sum()) == int(closure.sum()) == 2
        # crm_closure itself unchanged: A holds 2 records, 2 closed; B 2 records, 1 closed
        counts = crm_closure(wh, AS_OF).set_index("customer_id")
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        assert counts.loc[str(mapped["A1"]), ["crm_records", "crm_closed"]].tolist() == [2, 2]
        assert counts.loc[str(mapped["B1"]), ["crm_records", "crm_closed"]].tolist() == [2, 1]
    assert result.figures["closed_profiles"] == 2
    assert at["A1"] == at["A2"] == pd.Timestamp("2024-03-01")  # the last of her closures
    assert at["Z1"] == pd.Timestamp("2025-06-30")
    assert at["B1"] is None and at["B2"] is None and at["C1"] is None
    assert at["O2"] is None and at["O1"] == at["A1"]
    assert "O3" not in at  # quarantined: dated after as_of  # the order joined A's profile

    # a month later C's contract has closed too: the column follows as_of
    later = "2025-08-05"
    wh2, result2 = _run(tmp_path, CRM, later, wh=Warehouse(tmp_path / "w.duckdb"))
    with wh2:
        at2 = _closed_at(wh2)
        assert len(closed_since(wh2, later)) == 3
        # the in-place (incremental) path of stage 02 sets the column too
        assert result2.figures["identity_mode"]["used"] == "incremental"
    assert result2.figures["closed_profiles"] == 3
    assert at2["C1"] == pd.Timestamp("2025-08-01") and at2["A1"] == at["A1"]


def test_without_closed_at_the_column_is_absent(tmp_path):
    crm = "\n".join(";".join(r.split(";")[:6]) for r in CRM.strip().split("\n")) + "\n"
    wh, result = _run(tmp_path, crm, AS_OF)
    with wh:
        assert "closed_at" not in wh.read_table("identity", "profiles").columns
        assert closed_since(wh, AS_OF) is None
    assert "closed_profiles" not in result.figures
