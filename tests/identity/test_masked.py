"""Records whose only contact is a masked phone (trial 9, H2): attached only to the one profile
their shown digits, first name and a second field name; never a link, never two profiles."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from cemlib.identity import resolve
from cemlib.identity.masked import LINK_COLUMNS, RULE, attach_masked, attach_masked_links
from cemlib.identity.roles import prepare_records

ROLES = {
    "first": "first_name",
    "last": "last_name",
    "phone": "phone",
    "birth": "birth_date",
    "city": "city",
    "address": "address",
}

CRM = [
    # id, first, last, phone, birth, city
    ("c1", "Оксана", "Борисова", "8(935)605-87-48", "1976-04-21", "Москва"),
    ("c2", "Оксана", "Петрова", "+7 916 111 87 48", "1980-01-02", "Казань"),
    ("c3", "Ирина", "Смирнова", "+7 903 222 33 44", "1990-05-06", "Москва"),
    # two Марина of one city whose phones end alike: their orders cannot be told apart
    ("c4", "Марина", "Козлова", "+7 926 555 12 12", "1985-03-03", "Тула"),
    ("c5", "Марина", "Лебедева", "+7 915 777 12 12", "1988-08-08", "Тула"),
]


def _records(orders: list[tuple]) -> pd.DataFrame:
    crm = pd.DataFrame(CRM, columns=["id", "first", "last", "phone", "birth", "city"])
    mp = pd.DataFrame(orders, columns=["id", "first", "phone", "address"])
    return pd.concat([crm, mp], ignore_index=True)


def _profiles(df: pd.DataFrame, **kw) -> pd.Series:
    out = resolve(df, ROLES, id_column="id", use_model=False, **kw)
    return out.set_index("record_id")["profile_id"]


def test_a_unique_key_attaches_and_the_figures_count_it():
    df = _records(
        [
            ("m1", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Москва, ул. Новая, 67"),
            ("m2", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Казань, ул. Ленина, 1"),
            ("m3", "Ирина", "+7 (xxx) xxx-33-44", "ПВЗ г. Москва, ул. Новая, 1"),
            ("m4", "Оксана", "+7 (***) ***-99-99", "ПВЗ г. Москва, ул. Новая, 1"),  # nobody's
        ]
    )
    pid, resolver = resolve(df, ROLES, id_column="id", use_model=False, return_resolver=True)
    pid = pid.set_index("record_id")["profile_id"]
    # two Оксана end in 87-48: the place tells which one each order is
    assert pid["m1"] == pid["c1"] and pid["m2"] == pid["c2"] and pid["m3"] == pid["c3"]
    assert pid["m4"] not in set(pid[["c1", "c2", "c3", "c4", "c5"]])
    assert pid.nunique() == 6  # 5 people and the order naming nobody
    assert resolver.masked_["masked_only"] == 4
    assert resolver.masked_["attached"] == 3
    assert resolver.masked_["no_candidate"] == 1


def test_each_attach_leaves_a_link_with_the_fields_that_agreed():
    df = _records(
        [
            ("m1", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Москва, ул. Новая, 67"),
            ("m2", "Оксана", "+7 (***) ***-87-48", None),  # no place: nothing to attach by
            ("m3", "Ирина", "+7 (xxx) xxx-33-44", "ПВЗ г. Москва, ул. Новая, 1"),
        ]
    )
    df.loc[df["id"] == "m2", "birth"] = "1980-01-02"  # c2's birth date instead
    prepared = prepare_records(df, ROLES, id_column="id")
    pid = pd.Series([f"P{i}" for i in range(5)] + [None] * 3)
    attached, figures, links = attach_masked_links(prepared, pid)
    assert figures["attached"] == 3 and attached.iloc[5:].tolist() == ["P0", "P1", "P2"]
    assert len(links) == 3 and (links["rule"] == RULE).all() and links["accepted"].all()
    pairs = dict(zip(links["left_record_id"], links["right_record_id"], strict=True))
    assert pairs == {"m1": "c1", "m2": "c2", "m3": "c3"}  # the record whose phone ends so
    agreed = dict(zip(links["left_record_id"], links["agreeing"], strict=True))
    assert agreed["m1"] == "phone_tail,first_name,place"
    assert agreed["m2"] == "phone_tail,first_name,birth_date"
    # one minus the chance the profile is not the buyer's: every masked record here names a
    # profile, so the share of buyers without one (a) is 0, and so is that chance
    assert figures["share_without_profile"] == 0 and (links["match_probability"] == 1).all()
    # records held in a profile with others are not attached: no link
    _, figures, links = attach_masked_links(prepared, pd.Series(["P0"] * 8))
    assert (
        figures["attached"] == 0 and len(links) == 0 and list(links.columns) == list(LINK_COLUMNS)
    )


def test_cem_identity_links_and_profiles_hold_the_attach(tmp_path):
    from cemlib.identity.files import run_identity

    df = _records([("m1", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Москва, ул. Новая, 67")])
    df["when"] = ["2024-01-01"] * 5 + ["2025-05-10"]
    df.to_csv(tmp_path / "r.csv", index=False)
    roles = "\n".join(f"{k}: {v}" for k, v in {**ROLES, "when": "updated_at"}.items())
    (tmp_path / "roles.yaml").write_text(roles + "\n")
    run = run_identity(
        tmp_path / "r.csv", id_column="id", roles_path=tmp_path / "roles.yaml",
        out_path=tmp_path / "c.csv", rules_only=True, links_path=tmp_path / "l.csv",
        profiles_path=tmp_path / "p.csv",
    )  # fmt: skip
    links = pd.read_csv(tmp_path / "l.csv")
    mk = links[links["rule"] == RULE]
    assert len(mk) == 1 and mk["left_record_id"].iloc[0] == "m1"
    assert mk["right_record_id"].iloc[0] == "c1" and mk["agreed"].iloc[0].endswith(",place")
    assert mk["left_profile_id"].iloc[0] == mk["right_profile_id"].iloc[0]
    prof = pd.read_csv(tmp_path / "p.csv", dtype=str).set_index("profile_id")
    row = prof.loc[mk["left_profile_id"].iloc[0]]
    assert row["n_records"] == "2" and row["phones"] == "+79356058748"
    assert str(row["last_seen"]).startswith("2025-05-10")
    assert run.masked["attached"] == 1


def test_an_ambiguous_key_does_not_attach():
    df = _records(
        [
            # two Марина of Тула end in 12-12: no place, birth date or surname tells them apart
            ("m1", "Марина", "+7 (***) ***-12-12", "ПВЗ г. Тула, ул. Мира, 3"),
            # the first name is a third person's: nothing to attach to
            ("m2", "Анна", "+7 (***) ***-12-12", "ПВЗ г. Тула, ул. Мира, 3"),
        ]
    )
    pid, resolver = resolve(df, ROLES, id_column="id", use_model=False, return_resolver=True)
    pid = pid.set_index("record_id")["profile_id"]
    crm = set(pid[["c1", "c2", "c3", "c4", "c5"]])
    assert pid["m1"] not in crm and pid["m2"] not in crm
    assert pid["c4"] != pid["c5"]
    assert resolver.masked_["ambiguous"] == 1 and resolver.masked_["attached"] == 0


def test_a_profile_that_cannot_be_told_apart_makes_the_key_ambiguous():
    # c6 has the digits and the first name but no city, birth date or surname to compare
    extra = pd.DataFrame([("c6", "Ирина", "+7 999 000 33 44")], columns=["id", "first", "phone"])
    df = pd.concat(
        [_records([("m1", "Ирина", "+7 (***) ***-33-44", "ПВЗ г. Москва, ул. Новая, 1")]), extra],
        ignore_index=True,
    )
    pid = _profiles(df)
    assert pid["m1"] not in {pid["c3"], pid["c6"]}


def test_a_masked_record_never_joins_two_profiles():
    # the digits and first name fit c1 by the city and c2 by the birth date: two profiles
    # named, so none; c1 and c2 stay two people
    df = _records([("m1", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Москва, ул. Новая, 67")])
    df.loc[df["id"] == "m1", "birth"] = "1980-01-02"
    pid = _profiles(df)
    assert pid["c1"] != pid["c2"]
    assert pid["m1"] not in {pid["c1"], pid["c2"]}
    # and the partial key never links two masked records to each other
    df2 = _records(
        [
            ("m1", "Анна", "+7 (***) ***-55-55", "ПВЗ г. Москва, ул. Новая, 67"),
            ("m2", "Анна", "+7 (***) ***-55-55", "ПВЗ г. Москва, ул. Новая, 67"),
        ]
    )
    pid2 = _profiles(df2)
    assert pid2["m1"] != pid2["m2"]


def test_too_few_digits_shown_do_not_attach_among_many_namesakes():
    # 60 Елена of Москва, one ending in 48: two digits shown are 0.59 namesakes by chance
    crm = pd.DataFrame(
        {
            "id": [f"e{i}" for i in range(60)],
            "first": "Елена",
            "last": [f"Фамилия{i}" for i in range(60)],
            "phone": [f"+7 916 {i:03d} 10 {i + 10:02d}" for i in range(60)],
            "city": "Москва",
            "birth": None,
        }
    )
    # a share of buyers with no profile at all: an order whose digits name no Елена
    orders = [("m0", "Елена", "+7 (***) ***-**-48", "ПВЗ г. Москва, ул. Новая, 67")] + [
        (f"n{i}", "Елена", "+7 (***) ***-**-0" + str(i), "ПВЗ г. Москва, ул. Новая, 1")
        for i in range(1)
    ]
    mp = pd.DataFrame(orders, columns=["id", "first", "phone", "address"])
    df = pd.concat([crm, mp], ignore_index=True)
    prepared = prepare_records(df, ROLES, id_column="id")
    attached, figures = attach_masked(
        prepared, pd.Series([f"P{i}" for i in range(60)] + [None] * 2)
    )
    assert attached.isna().all()
    assert figures["key_too_weak"] == 1 and figures["attached"] == 0
    # the same key with four digits shown is enough
    df.loc[df["id"] == "m0", "phone"] = "+7 (***) ***-10-48"
    prepared = prepare_records(df, ROLES, id_column="id")
    attached, figures = attach_masked(
        prepared, pd.Series([f"P{i}" for i in range(60)] + [None] * 2)
    )
    assert attached.iloc[60] == "P38" and figures["attached"] == 1


def test_a_record_with_a_whole_identifier_is_not_masked_only():
    df = _records([("m1", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Москва, ул. Новая, 67")])
    prepared = prepare_records(
        df.assign(email=["x@y.ru" if i == "m1" else None for i in df["id"]]),
        {**ROLES, "email": "email"},
        id_column="id",
    )
    attached, figures = attach_masked(prepared, pd.Series([f"P{i}" for i in range(6)]))
    assert figures["masked_only"] == 0 and attached.isna().all()
    # the masked phone itself is never a phone
    assert pd.isna(prepared["phone"].iloc[5]) and prepared["phone_tail"].iloc[5] == "8748"


# -- the warehouse: full and incremental runs attach the same records ---------------------------
def _write(folder, crm_rows, orders):
    folder.mkdir(parents=True, exist_ok=True)
    crm = pd.DataFrame(
        crm_rows, columns=["contact_id", "first_name", "last_name", "phone", "birth_date", "city"]
    ).assign(registered_at="2024-01-01")
    crm.to_csv(folder / "crm_contacts.csv", index=False)
    pd.DataFrame(
        orders, columns=["order_id", "ordered_at", "first_name", "phone", "delivery_address"]
    ).to_csv(folder / "online_orders.csv", index=False)


MAY_ORDERS = [
    ("o1", "2025-05-10 10:00", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Москва, ул. Новая, 67"),
    ("o2", "2025-05-11 10:00", "Марина", "+7 (***) ***-12-12", "ПВЗ г. Тула, ул. Мира, 3"),
]
JUNE_ORDERS = [
    ("o3", "2025-06-10 10:00", "Оксана", "+7 (***) ***-87-48", "ПВЗ г. Казань, ул. Ленина, 1"),
    ("o4", "2025-06-11 10:00", "Ирина", "+7 (xxx) xxx-33-44", "ПВЗ г. Москва, ул. Новая, 1"),
]


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    from cemlib.collect.stage import collect
    from cemlib.identity.stage import run_stage
    from cemlib.warehouse import Warehouse

    root = tmp_path_factory.mktemp("masked")
    src = root / "src"
    _write(src, CRM, MAY_ORDERS)
    path = root / "w.duckdb"
    collect(src, warehouse=path, as_of="2025-05-31", progress=False)
    with Warehouse(path) as wh:
        run_stage(wh, run_id="may", as_of="2025-05-31")
    _write(src, CRM, MAY_ORDERS + JUNE_ORDERS)
    collect(src, warehouse=path, as_of="2025-06-30", progress=False)
    out = {}
    for mode in ("incremental", "full"):
        copy = root / f"{mode}.duckdb"
        shutil.copyfile(path, copy)
        with Warehouse(copy) as wh:
            res = run_stage(wh, run_id="june", as_of="2025-06-30", identity_mode=mode)
            recs = wh.sql(
                "SELECT p.*, m.profile_id FROM identity.prepared p JOIN identity.map m ON "
                "m.source_table = p.source AND m.record_id = p.record_id "
                "WHERE m.profile_id IS NOT NULL"
            )
            out[mode] = (res, wh.read_table("identity", "map"), wh.sql("SELECT * FROM identity.links"),
                         wh.read_table("identity", "profiles"), recs)  # fmt: skip
    return out


def test_full_and_incremental_attach_the_same_masked_records(warehouses):
    maps = {}
    for mode, (res, m, *_) in warehouses.items():
        assert res.figures["identity_mode"]["used"] == mode
        m = m.assign(key=m["source_table"] + "|" + m["record_id"]).set_index("key")["profile_id"]
        crm = {c: m[f"crm_contacts|{c}"] for c in ("c1", "c2", "c3", "c4", "c5")}
        assert m["online_orders|o1"] == crm["c1"]  # May's order, judged again
        assert m["online_orders|o3"] == crm["c2"]
        assert m["online_orders|o4"] == crm["c3"]
        assert pd.isna(m["online_orders|o2"])  # two Марина of Тула: ambiguous
        mk = res.figures["masked_phone"]
        assert mk["masked_only"] == 4 and mk["attached"] == 3 and mk["ambiguous"] == 1
        maps[mode] = m.map(lambda p, crm=crm: next((k for k, v in crm.items() if v == p), p))
    assert maps["incremental"].sort_index().equals(maps["full"].sort_index())


def test_the_warehouse_links_and_golden_records_hold_the_attaches(warehouses):
    from cemlib.identity.golden import golden_records

    for mode, (res, m, links, profiles, recs) in warehouses.items():
        mk = links[links["rule"] == RULE]
        # one link per attached record (May's attach replaced, not doubled, in June's run)
        assert len(mk) == 3 and mk["accepted"].all(), mode
        pairs = dict(zip(mk["left_record_id"], mk["right_record_id"], strict=True))
        assert pairs == {"o1": "c1", "o3": "c2", "o4": "c3"}, mode
        assert (mk["_run_id"] == "june").all()
        assert (res.links["rule"] == RULE).sum() == 3  # the report's links too
        # the golden records count the attached orders, as for records merged by a rule
        of = dict(zip(m["source_table"] + "|" + m["record_id"], m["profile_id"], strict=True))
        p = profiles.set_index("profile_id")
        c1, c4 = p.loc[of["crm_contacts|c1"]], p.loc[of["crm_contacts|c4"]]
        assert c1["n_records"] == 2 and list(c1["sources"]) == ["crm_contacts", "online_orders"]
        assert c1["last_seen"] == pd.Timestamp("2025-05-10 10:00")
        assert list(c1["phones"]) == ["+79356058748"]  # never the masked one
        assert c4["n_records"] == 1  # the ambiguous order went nowhere
        # every profile as golden_records makes it from its records
        again = golden_records(recs, profile_id=recs["profile_id"]).set_index("profile_id")
        assert again["n_records"].sort_index().equals(p["n_records"].sort_index())
        assert int(p["n_records"].sum()) == int(m["profile_id"].notna().sum()) == 8


def test_an_attached_order_fills_a_gap_but_never_replaces_a_registered_address():
    from cemlib.identity.masked import golden_weak_fills

    recs = pd.DataFrame(
        {
            "source": ["crm_contacts", "online_orders", "online_orders", "online_orders"],
            "record_id": ["c1", "o1", "o2", "o3"],
            "updated_at": pd.to_datetime(["2024-01-01", "2025-05-10", "2025-06-10", "2025-06-11"]),
            "first_name": ["оксана", "оксана", "оксана", "ирина"],
            "address": ["ул. садовая, 5", "пвз ул. новая, 67", "пвз ул. новая, 67", "пвз мира, 1"],
        }
    )
    pid = pd.Series(["p1", "p1", "p1", "p2"])
    weak = np.array([False, True, True, True])
    golden = golden_weak_fills(recs, pid, weak).set_index("profile_id")
    # two pick-up orders outnumber the registration, yet the registered address survives
    assert golden.loc["p1", "address"] == "ул. садовая, 5"
    assert golden.loc["p1", "n_records"] == 3
    assert golden.loc["p1", "last_seen"] == pd.Timestamp("2025-06-10")
    assert list(golden.loc["p1", "sources"]) == ["crm_contacts", "online_orders"]
    # a profile with nothing else keeps the pick-up point rather than no address
    assert golden.loc["p2", "address"] == "пвз мира, 1"
    # without weak records: golden_records as it is (the orders' address wins by count)
    plain = golden_weak_fills(recs, pid, np.zeros(4, dtype=bool)).set_index("profile_id")
    assert plain.loc["p1", "address"] == "пвз ул. новая, 67"
