"""Events that name their CRM record (``contact_id``): a clinic's visits carry the patient's
registry id, while the family's phone on them is (rightly) held back by the household guard."""

from __future__ import annotations

import pandas as pd

from cemlib.collect import collect
from cemlib.identity.report import headlines, summary_markdown
from cemlib.identity.resolve import resolve
from cemlib.identity.rules import contact_links
from cemlib.identity.stage import run_stage
from cemlib.warehouse import Warehouse

FAMILY_PHONE = "+7 900 111-22-33"
#: a family of four sharing one phone, and Oleg, who lives alone
PATIENTS = [
    ("c1", "Анна", "Петрова", "1982-03-02", FAMILY_PHONE, "anna.p@mail.ru"),
    ("c2", "Иван", "Петров", "1980-01-15", "8 900 111 22 33", "ivan.p@mail.ru"),
    ("c3", "Мария", "Петрова", "2012-05-20", FAMILY_PHONE, None),
    ("c4", "Пётр", "Петров", "2015-09-11", "89001112233", None),
    ("c5", "Олег", "Сидоров", "1975-07-30", "+79005556677", "oleg.s@yandex.ru"),
]
ROLES = {
    "first_name": "first_name",
    "last_name": "last_name",
    "birth_date": "birth_date",
    "phone": "phone",
    "email": "email",
    "src": "source",
    "ref": "contact_id",
}


def _clinic(with_ref: bool = True) -> pd.DataFrame:
    """Five patients; three visits of each family member with the family phone and the
    patient's id (one written with spaces around it), two of Oleg's with his own phone and no
    id, one with the family phone and no id, one naming a patient id the registry lacks."""
    rows = [(c, "crm_contacts", f, la, d, p, e, None) for c, f, la, d, p, e in PATIENTS]
    for c in ("c1", "c2", "c3", "c4"):
        for k in range(3):
            ref = f" {c} " if k == 2 else c
            rows.append((f"v-{c}-{k}", "pos_receipts", None, None, None, FAMILY_PHONE, None, ref))
    rows.append(("v-oleg-0", "pos_receipts", None, None, None, "+79005556677", None, None))
    rows.append(("v-oleg-1", "pos_receipts", None, None, None, "+79005556677", None, None))
    rows.append(("v-anon", "pos_receipts", None, None, None, FAMILY_PHONE, None, None))
    rows.append(("v-lost", "pos_receipts", None, None, None, FAMILY_PHONE, None, "c99"))
    cols = ["id", "src", "first_name", "last_name", "birth_date", "phone", "email", "ref"]
    df = pd.DataFrame(rows, columns=cols)
    return df if with_ref else df.drop(columns="ref")


def _owner(visit_id: str) -> str | None:
    return visit_id.split("-")[1] if visit_id.startswith("v-c") else None


def test_every_visit_naming_its_patient_lands_on_that_patients_profile():
    df = _clinic()
    out, res = resolve(df, ROLES, id_column="id", use_model=False, return_resolver=True)
    pid = dict(zip(out["record_id"], out["profile_id"], strict=True))
    reason = dict(zip(df["id"], res.unattached_reason_, strict=True))
    # five patients, five profiles: the family phone merged nobody
    assert len({pid[c] for c, *_ in PATIENTS}) == 5
    family_visits = [v for v in df["id"] if _owner(v)]
    assert len(family_visits) == 12
    on_own = sum(pid[v] == pid[_owner(v)] for v in family_visits)
    on_relative = sum(
        pid[v] == pid[c] for v in family_visits for c in ("c1", "c2", "c3", "c4") if c != _owner(v)
    )
    assert (on_own, on_relative) == (12, 0)
    assert all(reason[v] is None for v in family_visits)
    assert res.contact_linked_.sum() == 12
    # the other visits as without the column: Oleg's by his phone, the family phone alone
    # (and an id naming no patient, ignored and counted) to nobody
    assert pid["v-oleg-0"] == pid["v-oleg-1"] == pid["c5"]
    assert reason["v-anon"] == reason["v-lost"] == "shared_identifier_only"
    assert res.contact_refs_ == {"with_contact_id": 13, "matched": 12, "unmatched": 1}
    # the evidence names the rule: one accepted link per distinct (patient, id as written)
    lk = res.link_table()
    by_rule = lk[lk["rule"] == "contact_id"]
    assert len(by_rule) == 4 and by_rule["accepted"].all()
    assert set(by_rule["left_record_id"]) == {"c1", "c2", "c3", "c4"}
    assert (by_rule["agreeing"] == "contact_id").all()


def test_without_the_column_the_family_visits_stay_unattached():
    """The new user's finding, as it was: the same visits without the patient id attach to
    nobody (the family phone is shared), Oleg's still attach to him."""
    df = _clinic(with_ref=False)
    roles = {k: v for k, v in ROLES.items() if k != "ref"}
    out, res = resolve(df, roles, id_column="id", use_model=False, return_resolver=True)
    pid = dict(zip(out["record_id"], out["profile_id"], strict=True))
    reason = pd.Series(res.unattached_reason_, index=df["id"])
    family_visits = [v for v in df["id"] if _owner(v)]
    assert (reason[family_visits] == "shared_identifier_only").sum() == 12
    assert not any(pid[v] == pid[c] for v in family_visits for c in ("c1", "c2", "c3", "c4"))
    assert pid["v-oleg-0"] == pid["c5"]
    assert res.contact_refs_ == {"with_contact_id": 0, "matched": 0, "unmatched": 0}
    assert not res.contact_linked_.any()
    assert "contact_id" not in set(res.link_table()["rule"])


def test_an_event_naming_its_contact_never_merges_two_crm_records():
    """A child's visit booked with the father's e-mail: it belongs to the child, and its e-mail
    may not join the father's record to the child's (no birth dates here, so no constraint
    would refuse it). Two registrations of one person (one e-mail) still merge, each with the
    visits naming it."""
    rows = [
        ("c2", "crm_contacts", "Иван", "Петров", None, "ivan.p@mail.ru", None),
        ("c3", "crm_contacts", "Мария", "Петрова", None, None, None),
        ("v1", "pos_receipts", None, None, None, "ivan.p@mail.ru", "c3"),
        ("c6", "crm_contacts", "Ольга", "Лебедева", None, "olga.l@mail.ru", None),
        ("c7", "crm_contacts", "Ольга", "Лебедева", None, "olga.l@mail.ru", None),
        ("v6", "pos_receipts", None, None, None, None, "c6"),
        ("v7", "pos_receipts", None, None, None, None, "c7"),
    ]
    cols = ["id", "src", "first_name", "last_name", "phone", "email", "ref"]
    df = pd.DataFrame(rows, columns=cols)
    roles = {k: v for k, v in ROLES.items() if k != "birth_date"}
    out, res = resolve(df, roles, id_column="id", use_model=False, return_resolver=True)
    pid = dict(zip(out["record_id"], out["profile_id"], strict=True))
    assert pid["v1"] == pid["c3"] != pid["c2"]
    lk = res.link_table()
    email = lk[(lk["rule"] == "email") & (lk["right_record_id"] == "v1")]
    assert len(email) == 1 and email["refused_by"].tolist() == ["contact"]
    assert pid["c6"] == pid["c7"] == pid["v6"] == pid["v7"]
    # without the id, the visit goes with its e-mail to the father (as before)
    out0 = resolve(df.drop(columns="ref"), {k: v for k, v in roles.items() if k != "ref"},
                   id_column="id", use_model=False)  # fmt: skip
    pid0 = dict(zip(out0["record_id"], out0["profile_id"], strict=True))
    assert pid0["v1"] == pid0["c2"] != pid0["c3"]


def test_contact_links_count_matched_and_unmatched_references():
    prepared = pd.DataFrame(
        {
            "source": ["crm_contacts", "crm_contacts", "web_events", "web_events",
                       "support_tickets", "pos_receipts"],
            "record_id": ["A", "B", "w1", "w2", "t1", "r1"],
            "contact_id": [None, None, " B", "B", "Z", None],
        }
    )  # fmt: skip
    links, target, counts = contact_links(prepared, codes=[0, 1, 2, 2, 3, 4])
    assert counts == {"with_contact_id": 3, "matched": 2, "unmatched": 1}
    assert target.tolist() == [-1, -1, 1, 1, -1, -1]
    assert links[["rid_l", "rid_r"]].values.tolist() == [[1, 2]]
    assert links["rule"].tolist() == ["contact_id"]


def _export(tmp_path):
    """A folder with the patients as ``crm_contacts.csv``, and the family's visits."""
    folder = tmp_path / "export"
    folder.mkdir()
    crm = pd.DataFrame(PATIENTS, columns=["contact_id", "first_name", "last_name",
                                          "birth_date", "phone", "email"])  # fmt: skip
    crm["registered_at"] = "2024-01-10"
    crm.to_csv(folder / "crm_contacts.csv", index=False)
    visits = _clinic()
    return folder, visits[visits["src"] == "pos_receipts"]


def test_collect_maps_stages_and_identity_links_the_users_patient_column(tmp_path):
    """Through the stages: the clinic's own column name ("Амб. карта") mapped to ``contact_id``
    on the visits is staged as text and attaches every family visit to its own patient."""
    folder, visits = _export(tmp_path)
    pd.DataFrame(
        {
            "receipt_id": visits["id"],
            "purchased_at": "2024-05-01 10:00",
            "phone": visits["phone"],
            "Амб. карта": visits["ref"],
        }
    ).to_csv(folder / "pos_receipts.csv", index=False)
    # Maria's online booking made with her father's e-mail: the contact pin refuses that link
    pd.DataFrame(
        {"order_id": ["o-c3"], "ordered_at": ["2024-05-02 09:00"], "email": ["ivan.p@mail.ru"],
         "Амб. карта": ["c3"]}
    ).to_csv(folder / "online_orders.csv", index=False)  # fmt: skip
    wh_path = tmp_path / "cem.duckdb"
    mapping = {"pos_receipts": {"Амб. карта": "contact_id"},
               "online_orders": {"Амб. карта": "contact_id"}}  # fmt: skip
    collect(folder, warehouse=wh_path, run_id="t1", as_of="2024-06-30", mapping=mapping,
            progress=False)  # fmt: skip
    with Warehouse(wh_path) as wh:
        staged = wh.read_table("staging", "pos_receipts")
        assert "contact_id" in staged.columns and "Амб. карта" not in staged.columns
        assert staged["contact_id"].notna().sum() == 13
        result = run_stage(wh, run_id="t1", as_of="2024-06-30")
        rmap = wh.con.execute(
            "SELECT record_id, profile_id FROM identity.map WHERE source_table = 'pos_receipts'"
        ).fetchdf()
        crm_map = wh.con.execute(
            "SELECT record_id, profile_id FROM identity.map WHERE source_table = 'crm_contacts'"
        ).fetchdf()
        rules = wh.con.execute(
            "SELECT rule, count(*) FROM identity.links WHERE accepted GROUP BY 1"
        ).fetchall()
        refused = wh.con.execute(
            "SELECT rule, refused_by, count(*) FROM identity.links "
            "WHERE refused_by = 'contact' GROUP BY ALL"
        ).fetchall()
    pid = dict(zip(crm_map["record_id"], crm_map["profile_id"], strict=True))
    visit = dict(zip(rmap["record_id"], rmap["profile_id"], strict=True))
    family = [v for v in visit if _owner(v)]
    assert len(family) == 12
    assert sum(visit[v] == pid[_owner(v)] for v in family) == 12
    assert pd.isna(visit["v-anon"]) and pd.isna(visit["v-lost"])
    assert dict(rules)["contact_id"] == 5  # one per patient's visits, and Maria's booking
    assert result.resolver.contact_refs_["unmatched"] == 1
    text = summary_markdown(result)
    assert "13 events name their CRM record" in text and "1 name an id no CRM record" in text
    # the link of Maria's e-mail visit to her father's record: refused by the pin, and counted
    assert refused == [("email", "contact", 1)]
    assert "the contact pin 1 that would have joined two CRM records" in text
    assert headlines(result)["merges refused by contact pin"] == 1


def test_an_incremental_run_attaches_a_new_visit_to_the_patient_it_names(tmp_path):
    folder, visits = _export(tmp_path)
    new = pd.DataFrame([{"id": "v-c3-new", "src": "pos_receipts", "phone": FAMILY_PHONE,
                         "ref": "c3"}])  # fmt: skip
    wh_path = tmp_path / "cem.duckdb"
    mapping = {"pos_receipts": {"Амб. карта": "contact_id"}}
    for run_id, as_of, rows in (("t1", "2024-06-30", visits), ("t2", "2024-07-31",
                                                                pd.concat([visits, new]))):  # fmt: skip
        pd.DataFrame(
            {"receipt_id": rows["id"], "purchased_at": "2024-05-01 10:00",
             "phone": rows["phone"], "Амб. карта": rows["ref"]}
        ).to_csv(folder / "pos_receipts.csv", index=False)  # fmt: skip
        collect(folder, warehouse=wh_path, run_id=run_id, as_of=as_of, mapping=mapping,
                progress=False)  # fmt: skip
        with Warehouse(wh_path) as wh:
            result = run_stage(wh, run_id=run_id, as_of=as_of)
            pid = dict(wh.con.execute("SELECT record_id, profile_id FROM identity.map").fetchall())
    assert result.figures["identity_mode"]["used"] == "incremental"
    assert pid["v-c3-new"] == pid["c3"]
