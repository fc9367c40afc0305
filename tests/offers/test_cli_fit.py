"""``cem offers --consent`` with ``gender`` and ``birth_date`` (trial 8 M2, M3): no item of one
gender's buyers to the other gender, no outbound offer to a minor, as the warehouse stage."""

import pandas as pd
import pytest

from cemlib.cli import main

AS_OF = "2025-06-15"


@pytest.fixture(scope="module")
def clinic_files(tmp_path_factory, transactions):
    """The shared transactions plus a 'GYN' visit on every shopping day of every woman (even
    customers): the best seller, bought with everything, so that long lists (k 45 of 61 items)
    give it to men too; customers C0000-C0019 are children."""
    folder = tmp_path_factory.mktemp("fit")
    people = pd.Series(sorted(transactions["customer_id"].unique()))
    women = people[people.str[1:].astype(int) % 2 == 0]
    days = transactions[transactions["customer_id"].isin(women)]
    gyn = days.drop_duplicates(["customer_id", "ts"]).assign(item_id="GYN", quantity=1, amount=50.0)
    tx = pd.concat([transactions, gyn], ignore_index=True)
    tx.to_csv(folder / "tx.csv", index=False)
    children = set(people.iloc[:20])
    consent = pd.DataFrame(
        {
            "customer_id": people,
            "consent_email": "yes",
            "consent_sms": "yes",
            "gender": ["F" if int(p[1:]) % 2 == 0 else "M" for p in people],
            "birth_date": ["2015-03-01" if p in children else "1980-05-05" for p in people],
        }
    )
    consent.to_csv(folder / "consent.csv", index=False)
    consent.drop(columns=["gender", "birth_date"]).to_csv(folder / "plain.csv", index=False)
    return folder, set(women), children


def _offers(folder, consent, capsys, *extra):
    out = folder / "offers.csv"
    code = main(
        ["offers", str(folder / "tx.csv"), "--as-of", AS_OF, "--k", "45", "--horizon-days", "30",
         "--consent", str(folder / consent), "--out", str(out), *extra]
    )  # fmt: skip
    assert code == 0
    return pd.read_csv(out, dtype={"customer_id": str, "item_id": str}), capsys.readouterr().err


def test_men_are_not_offered_the_womens_item_and_minors_get_no_offer(clinic_files, capsys):
    folder, women, children = clinic_files
    before, err = _offers(folder, "plain.csv", capsys)
    men_before = before[~before["customer_id"].isin(women) & before["item_id"].eq("GYN")]
    assert "not checked against gender/age" in err and "no contact-age rule" in err
    assert men_before["customer_id"].nunique() > 20  # without the rule, men get it
    after, err = _offers(folder, "consent.csv", capsys)
    men = after[~after["customer_id"].isin(women)]
    assert not men["item_id"].eq("GYN").any()
    assert men.groupby("customer_id").size().eq(45).all()  # ranked deeper: k remain
    assert after.groupby("customer_id")["rank"].apply(list).map(list(range(1, 46)).__eq__).all()
    # every GYN offer a man had in his top 45 is counted as held back
    held = int(err.split(" offers held back")[0].rsplit(" ", 1)[-1])
    assert held >= len(men_before[men_before["customer_id"].isin(after["customer_id"])])
    assert "held back as not fitting the customer's gender/age" in err
    # minors: no outbound offer, counted
    assert not after["customer_id"].isin(children).any()
    assert f"{len(children)} younger than 16 (birth_date) get no outbound offer" in err
    # women keep it
    assert after[after["customer_id"].isin(women)]["item_id"].eq("GYN").any()


def test_min_contact_age_zero_and_a_bad_birth_date(clinic_files, capsys, tmp_path):
    folder, _, children = clinic_files
    offers, err = _offers(folder, "consent.csv", capsys, "--min-contact-age", "0")
    assert set(children) <= set(offers["customer_id"]) and "--min-contact-age 0" in err
    bad = pd.read_csv(folder / "consent.csv", dtype=str)
    bad.loc[3, "birth_date"] = "31.02.2015"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code = main(
        ["offers", str(folder / "tx.csv"), "--as-of", AS_OF, "--consent",
         str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o.csv")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "bad.csv" in err[0] and "birth_date" in err[0] and "'31.02.2015'" in err[0]
