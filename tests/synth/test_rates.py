"""Every documented rate of ``SynthConfig`` measured back on a generated world."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cemlib.synth import SynthConfig
from cemlib.synth.noise import translit

CFG = SynthConfig()
NZ, DF = CFG.noise, CFG.defects
LATIN = re.compile(r"[A-Za-z]")


def digits10(s: pd.Series) -> pd.Series:
    return s.str.replace(r"\D", "", regex=True).str[-10:]


def canon_email(s: pd.Series) -> pd.Series:
    s = s.str.lower()
    local = s.str.split("@").str[0].str.split("+").str[0]
    domain = s.str.split("@").str[1]
    local = local.where(domain != "gmail.com", local.str.replace(".", "", regex=False))
    return local + "@" + domain


def rows_of(world, table):
    """Source rows (defect rows dropped) joined to their true person."""
    src = world.sources[table]
    d = world.truth["defects"]
    src = src.drop(index=d.loc[d["table"] == table, "source_row"].to_numpy())
    rp = world.truth["record_person"]
    rp = rp[rp["source_table"] == table]
    key = {
        "crm_contacts": "contact_id",
        "online_orders": "order_id",
        "pos_receipts": "receipt_id",
        "web_events": "event_id",
        "support_tickets": "ticket_id",
    }[table]
    src = src.drop_duplicates(key)
    out = src.merge(rp[["record_id", "person_id"]], left_on=key, right_on="record_id", how="left")
    return out.merge(world.truth["people"], on="person_id", how="left", suffixes=("", "_true"))


def close(measured, expected, tol):
    assert abs(measured - expected) <= tol, (
        f"measured {measured:.4f}, expected {expected:.4f} ± {tol}"
    )


def test_people_level_rates(world):
    p = world.truth["people"]
    close(p["phone2"].notna().mean(), NZ.second_phone, 0.02)
    close(p["email"].isna().mean(), NZ.no_email, 0.02)
    close(p["email2"].notna().mean(), NZ.second_email * (1 - NZ.no_email), 0.02)
    # every address belongs to one person
    emails = pd.concat([p["email"], p["email2"]]).dropna()
    assert not emails.duplicated().any()
    assert not pd.concat([p["phone"], p["phone2"]]).dropna().duplicated().any()


def test_crm_rates(world):
    c = rows_of(world, "crm_contacts")
    per_person = c.groupby("person_id").size()
    close((per_person >= 2).mean(), NZ.crm_duplicate, 0.02)
    close(c["full_name"].notna().mean(), NZ.crm_full_name_style, 0.03)
    parts = c[c["full_name"].isna()]
    close(parts["middle_name"].isna().mean(), NZ.missing_patronymic, 0.03)
    close(c["phone"].isna().mean(), NZ.crm_missing_phone, 0.02)
    close(c["city"].isna().mean(), NZ.crm_missing_city, 0.02)
    close(c["birth_date"].isna().mean(), NZ.crm_missing_birth_date, 0.02)
    name = c["full_name"].fillna(c["last_name"])
    close(name.str.contains(LATIN).mean(), NZ.latin_name, 0.015)
    # order: among full-name rows, how many start with the first name (cyrillic or latin)
    full = c[c["full_name"].notna()]
    first_token = full["full_name"].str.split(" ").str[0]
    starts_first = (first_token == full["first_name_true"]) | (
        first_token == full["first_name_true"].map(translit)
    )
    close(starts_first.mean(), NZ.name_order_first_last, 0.04)


def test_name_typos_and_swapped_birth_dates(world):
    c = rows_of(world, "crm_contacts")
    parts = c[c["full_name"].isna()]
    truth_last = parts["last_name_true"]
    typo = (parts["last_name"] != truth_last) & (parts["last_name"] != truth_last.map(translit))
    close(typo.mean(), NZ.name_typo, 0.015)
    b = c[c["birth_date"].notna()]
    true_b = pd.to_datetime(b["birth_date_true"]).dt.strftime("%Y-%m-%d")
    close((b["birth_date"] != true_b).mean(), NZ.birth_date_swapped, 0.012)
    swapped = b[b["birth_date"] != true_b]
    assert (swapped["birth_date"].str[5:7] == true_b[swapped.index].str[8:10]).all()


def test_email_variant_rates(world):
    o = rows_of(world, "online_orders")
    e = o["email"].dropna()
    close((e != e.str.lower()).mean(), NZ.email_case, 0.02)
    gm = e[e.str.lower().str.endswith("@gmail.com")]
    close(gm.str.contains("+", regex=False).mean(), NZ.gmail_variant / 2, 0.05)
    # typos: the canonical address is none of the person's own addresses
    oo = o[o["email"].notna() & o["email_true"].notna()]  # people without one borrow a relative's
    canon = canon_email(oo["email"])
    own = (canon == canon_email(oo["email_true"].fillna(""))) | (
        canon == canon_email(oo["email2"].fillna(""))
    )
    close((~own).mean(), NZ.email_typo, 0.012)


def test_order_receipt_ticket_rates(world):
    o = rows_of(world, "online_orders")
    close(o["phone"].isna().mean(), NZ.order_missing_phone, 0.015)
    fam = o[(o["household_size"] > 1) & o["phone"].notna()]
    own = (
        digits10(fam["phone"]).isin([])
        | (digits10(fam["phone"]) == fam["phone_true"].str[-10:])
        | (digits10(fam["phone"]) == fam["phone2"].fillna("").str[-10:])
    )
    close((~own).mean(), NZ.order_family_phone, 0.03)
    r = rows_of(world, "pos_receipts")
    loyal = r[r["loyalty_member"]]
    close(loyal["loyalty_card"].notna().mean(), NZ.receipt_card, 0.03)
    nocard = r[r["loyalty_card"].isna()]
    close(nocard["phone"].notna().mean(), NZ.receipt_phone, 0.02)
    assert (r["loyalty_card"].isna() & r["phone"].isna()).mean() > 0.35  # a large anonymous share
    t = rows_of(world, "support_tickets")
    close((t["phone"].notna() & t["email"].isna()).mean(), NZ.ticket_phone_only, 0.04)
    # e-mail-only tickets: people without e-mail fall back to nothing, so allow for them
    close(
        (t["email"].notna() & t["phone"].isna()).mean(),
        NZ.ticket_email_only * (1 - NZ.no_email),
        0.04,
    )


def test_web_login_rate(world):
    w = rows_of(world, "web_events")
    acct = w[w["account_email"].notna() & (w["event_type"] != "cart")]
    acct = acct[pd.to_datetime(acct["ts"]) >= pd.to_datetime(acct["joined_at"])]
    close(acct["email"].notna().mean(), NZ.web_logged_in, 0.02)
    assert w.loc[w["account_email"].isna(), "email"].isna().all()


def test_shared_family_identifiers(world):
    p = world.truth["people"]
    multi = p[p["household_size"] > 1]
    cards = multi.dropna(subset=["loyalty_card"])
    shared = cards.groupby("loyalty_card")["person_id"].nunique()
    assert (shared > 1).sum() > 20  # households sharing one card
    assert cards["loyalty_card"].duplicated().any()
    # same surname inside most households of two or more
    same = multi.groupby("household_id")["last_name"].agg(lambda s: s.str[:4].nunique() == 1)
    assert same.mean() > 0.7


def test_common_names_repeat_across_people(world):
    p = world.truth["people"]
    key = p["last_name"] + " " + p["first_name"] + " " + p["city"]
    by_key = p.groupby(key)["household_id"].nunique()
    assert (by_key > 1).sum() >= 5  # different people, same name, same city


@pytest.mark.parametrize("kind", [k for k in DF.__dataclass_fields__])
def test_defect_rates(world, kind):
    d = world.truth["defects"]
    d = d[d["defect"] == kind]
    assert len(d) > 0
    rate = getattr(DF, kind)
    for (table, _column), g in d.groupby(["table", "column"]):
        n = len(world.sources[table])
        expected = rate / 2 if (table == "crm_contacts" and kind == "unparseable_date") else rate
        if kind in ("malformed_phone", "malformed_email"):
            assert len(g) <= np.ceil(expected * n) + 1
        else:
            close(len(g) / n, expected, max(0.0015, 2 / n))


def test_second_identifier_use_and_crm_details(world):
    b = CFG.behaviour
    t = rows_of(world, "support_tickets")
    with2 = t[t["phone2"].notna() & t["phone"].notna()]
    uses2 = digits10(with2["phone"]) == with2["phone2"].str[-10:]
    expected = NZ.use_second * (1 - 0.05)
    close(uses2.mean(), expected, max(0.03, 3 * np.sqrt(expected * (1 - expected) / len(with2))))
    answered = t["csat"].dropna()
    close(t["csat"].isna().mean(), b.csat_missing, 0.03)
    close((answered <= 2).mean(), b.bad_ticket_share, 0.04)
    c = rows_of(world, "crm_contacts")
    has_email = c[c["email_true"].notna()]
    close(has_email["email"].isna().mean(), NZ.crm_missing_email, 0.015)
    per_person = c.groupby("person_id").size()
    dup = per_person[per_person >= 2]
    close((dup >= 3).mean(), NZ.crm_triplicate, 0.04)


def test_family_email_borrowed_by_people_without_one(world):
    o = rows_of(world, "online_orders")
    p = world.truth["people"].set_index("person_id")
    no_own = o[o["email_true"].isna() & (o["household_size"] > 1)]
    assert len(no_own) > 30
    has = no_own["email"].notna()
    # a relative's address (when the relative has one), minus phone-only orders
    assert 0.15 < has.mean() < NZ.family_email * (1 - NZ.order_missing_email) + 0.15
    owners = p.loc[p["email"].notna(), "email"]
    borrowed = canon_email(no_own.loc[has, "email"])
    assert borrowed.isin(canon_email(owners)).mean() > 0.8


def test_config_rates_drive_the_world():
    from cemlib.synth import generate

    cfg = SynthConfig().with_rates(crm_duplicate=0.35, malformed_phone=0.02, loyalty_member=0.2)
    assert cfg.noise.crm_duplicate == 0.35 and cfg.defects.malformed_phone == 0.02
    w = generate(n_people=2500, seed=3, config=cfg)
    c = rows_of(w, "crm_contacts")
    close((c.groupby("person_id").size() >= 2).mean(), 0.35, 0.04)
    d = w.truth["defects"]
    n = len(w.sources["online_orders"])
    close(
        ((d["table"] == "online_orders") & (d["defect"] == "malformed_phone")).sum() / n,
        0.02,
        0.003,
    )
    assert w.truth["people"]["loyalty_member"].mean() < 0.3
    with pytest.raises(TypeError):
        SynthConfig().with_rates(no_such_rate=0.1)
