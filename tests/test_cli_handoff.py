"""L5 (trial 6): from ``cem identity`` to ``cem churn`` and ``cem offers`` on files.

``cem identity`` writes ``record_id,profile_id``; ``--profiles-map`` keys a transactions file
whose rows name their record (the receipt each line belongs to) by those profiles. Checked end
to end: a shop's CRM records and card receipts go through ``cem identity``, the receipt lines
through ``cem churn`` / ``cem offers --profiles-map``, and the scores and offers are those of the
same lines keyed by the true customer, once the profile is named by its customer."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.cli import main
from tests.churn.conftest import AS_OF, bgnbd_world
from tests.offers.conftest import make_transactions

SURNAMES = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев",
            "Козлов", "Новиков", "Морозов", "Волков", "Алексеев", "Лебедев", "Семенов"]  # fmt: skip
FIRST = ["Иван", "Пётр", "Олег", "Сергей", "Андрей", "Дмитрий", "Роман", "Павел", "Егор", "Игорь",
         "Максим", "Кирилл", "Артём", "Никита", "Антон"]  # fmt: skip
ROLES = "name: full_name\ntel: phone\ncard: loyalty_card\n"


def _shop(tx: pd.DataFrame, d, n_anonymous: int = 40) -> dict:
    """Files of a shop whose true customers are ``tx``'s: ``records.csv`` (one CRM record per
    customer, name, phone and card; one receipt record per basket, with the card only),
    ``lines.csv`` (``tx`` keyed by receipt, plus anonymous receipts no record names)."""
    customers = sorted(tx["customer_id"].unique())
    idx = {c: i for i, c in enumerate(customers)}
    crm = pd.DataFrame(
        {
            "rec_id": [f"K{idx[c]:05d}" for c in customers],
            "name": [f"{SURNAMES[i % 15]} {FIRST[(i // 15) % 15]}" for i in range(len(customers))],
            "tel": [f"+7 9{100000000 + 7919 * i:09d}"[:16] for i in range(len(customers))],
            "card": [f"2777{i:08d}" for i in range(len(customers))],
        }
    )
    baskets = tx[["customer_id", "ts"]].drop_duplicates().reset_index(drop=True)
    baskets["receipt"] = [f"R{k:06d}" for k in range(len(baskets))]
    card = dict(zip(customers, crm["card"], strict=True))
    receipts = pd.DataFrame({"rec_id": baskets["receipt"],
                             "card": baskets["customer_id"].map(card)})  # fmt: skip
    pd.concat([crm, receipts]).to_csv(d / "records.csv", index=False)
    (d / "roles.yaml").write_text(ROLES, encoding="utf-8")
    lines = tx.merge(baskets, on=["customer_id", "ts"])
    anon = lines.sample(n_anonymous, random_state=1).assign(
        receipt=[f"A{k:05d}" for k in range(n_anonymous)]
    )
    keyed = pd.concat([lines, anon], ignore_index=True).drop(columns="customer_id")
    keyed.to_csv(d / "lines.csv", index=False)
    return {"crm": crm, "lines": lines, "customers": customers, "anonymous": n_anonymous}


def _by_hand(shop: dict, clusters: pd.Series, path) -> dict:
    """The shop's lines keyed by hand (customer -> CRM record -> profile), as a user would
    join them, written to ``path``; returns customer -> profile."""
    profile = dict(zip(shop["customers"], clusters[shop["crm"]["rec_id"]].to_numpy(), strict=True))
    lines = shop["lines"]
    lines.assign(customer_id=lines["customer_id"].map(profile)).to_csv(path, index=False)
    return profile


def _identity(d, capsys) -> pd.Series:
    code = main(["identity", str(d / "records.csv"), "--id-column", "rec_id", "--roles",
                 str(d / "roles.yaml"), "--rules-only", "--out", str(d / "clusters.csv")])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    return pd.read_csv(d / "clusters.csv", dtype=str).set_index("record_id")["profile_id"]


@pytest.fixture(scope="module")
def churn_shop(tmp_path_factory):
    d = tmp_path_factory.mktemp("churn_shop")
    tx, _, _ = bgnbd_world(60, seed=5)
    return d, tx, _shop(tx, d)


def test_churn_scores_by_profile_are_those_of_the_lines_keyed_by_hand(churn_shop, capsys):
    d, tx, shop = churn_shop
    clusters = _identity(d, capsys)
    profile = _by_hand(shop, clusters, d / "by_hand.csv")
    assert len(set(profile.values())) == len(profile)  # one profile per customer
    common = ["--as-of", str(AS_OF.date()), "--horizon-days", "180"]
    code = main(["churn", str(d / "lines.csv"), *common, "--profiles-map", str(d / "clusters.csv"),
                 "--record-column", "receipt", "--out", str(d / "by_map.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    n, anon = len(shop["lines"]), shop["anonymous"]
    assert f"{n:,} of {n + anon:,} rows keyed by {d / 'clusters.csv'} through 'receipt'" in err
    assert f"{anon:,} rows whose record is not in the map left out" in err
    assert main(["churn", str(d / "by_hand.csv"), *common, "--out", str(d / "want.csv")]) == 0
    capsys.readouterr()
    got, want = pd.read_csv(d / "by_map.csv"), pd.read_csv(d / "want.csv")
    assert len(got) == tx["customer_id"].nunique() > 50
    assert set(got["customer_id"]) == set(profile.values())
    pd.testing.assert_frame_equal(got, want)


def test_offers_and_consent_by_profile_are_those_keyed_by_hand(tmp_path, capsys):
    tx = make_transactions(n_customers=120, seed=3)
    shop = _shop(tx, tmp_path)
    crm = shop["crm"]
    # X0001: the first customer registered twice (same name and phone): a record of its profile
    recs = pd.read_csv(tmp_path / "records.csv", dtype=str)
    twice = recs.iloc[[0]].assign(rec_id="X0001")
    pd.concat([recs, twice]).to_csv(tmp_path / "records.csv", index=False)
    clusters = _identity(tmp_path, capsys)
    assert clusters["X0001"] == clusters["K00000"]
    profile = _by_hand(shop, clusters, tmp_path / "by_hand.csv")
    # the CRM's consent per record (SMS yes, e-mail no); the second customer also allows
    # e-mail; the first customer's second record refuses SMS; a record that no input of
    # cem identity names refuses SMS on the third customer's phone
    consent = pd.DataFrame({"contact": crm["rec_id"], "consent_email": "нет", "consent_sms": "да",
                            "phone": crm["tel"]})  # fmt: skip
    consent.loc[1, "consent_email"] = "да"
    extra = pd.DataFrame({"contact": ["X0001", "Z0001"], "consent_email": ["нет", "нет"],
                          "consent_sms": ["нет", "нет"], "phone": ["", crm["tel"][2]]})  # fmt: skip
    consent = pd.concat([consent, extra], ignore_index=True)
    consent.to_csv(tmp_path / "consent.csv", index=False)
    rec_profile = clusters.to_dict()
    by_hand = consent.assign(
        customer_id=consent["contact"].map(rec_profile).fillna(consent["contact"])
    )
    by_hand.drop(columns="contact").to_csv(tmp_path / "consent_by_hand.csv", index=False)
    common = ["--as-of", "2025-06-15", "--k", "4", "--horizon-days", "30"]
    code = main(["offers", str(tmp_path / "lines.csv"), *common, "--profiles-map",
                 str(tmp_path / "clusters.csv"), "--record-column", "receipt", "--consent",
                 str(tmp_path / "consent.csv"), "--consent-record-column", "contact", "--out",
                 str(tmp_path / "by_map.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert f"{len(consent) - 1:,} of {len(consent):,} consent rows keyed" in err
    assert "the other 1 keep their record id" in err
    assert main(["offers", str(tmp_path / "by_hand.csv"), *common, "--consent",
                 str(tmp_path / "consent_by_hand.csv"), "--out", str(tmp_path / "want.csv")]) == 0  # fmt: skip
    capsys.readouterr()
    got = pd.read_csv(tmp_path / "by_map.csv", dtype=str)
    pd.testing.assert_frame_equal(got, pd.read_csv(tmp_path / "want.csv", dtype=str))
    channel = got.groupby("customer_id")["channel"].first()
    first, second, third = (profile[c] for c in shop["customers"][:3])
    assert first not in channel.index  # its second record's SMS refusal won
    assert channel[second] == "email"  # e-mail first when allowed
    assert third not in channel.index  # the unmatched record's refusal on its phone
    rest = set(profile.values()) - {first, second, third}
    assert len(channel) == len(rest) + 1 and (channel.drop(second) == "sms").all()


@pytest.mark.parametrize(
    "case, needle",
    [
        ("no_profile_column", "clusters.csv, column 'profile_id'"),
        ("no_record_column", "lines.csv, column 'nope'"),
        ("wrong_column", "lines.csv, column 'item_id': none of its"),
        ("map_twice", "--profiles-map both give customer_id"),
        ("duplicate_record", "clusters.csv, column 'record_id': 1 record ids appear twice"),
    ],
)
def test_bad_hand_off_is_one_line_naming_file_and_column(
    churn_shop, tmp_path, capsys, case, needle
):
    d, _, _ = churn_shop
    cl = pd.read_csv(d / "clusters.csv", dtype=str) if (d / "clusters.csv").exists() else None
    if cl is None:
        _identity(d, capsys)
        cl = pd.read_csv(d / "clusters.csv", dtype=str)
    cmap, column, extra = tmp_path / "clusters.csv", "receipt", []
    if case == "no_profile_column":
        cl = cl.rename(columns={"profile_id": "profile"})
    if case == "duplicate_record":
        cl = pd.concat([cl, cl.iloc[[0]]])
    cl.to_csv(cmap, index=False)
    lines = tmp_path / "lines.csv"
    lines.write_bytes((d / "lines.csv").read_bytes())
    if case == "no_record_column":
        column = "nope"
    if case == "wrong_column":
        column = "item_id"
        pd.read_csv(lines, dtype=str).assign(item_id="I1").to_csv(lines, index=False)
    if case == "map_twice":
        extra = ["--map", "receipt=customer_id"]
    code = main(["churn", str(lines), "--as-of", str(AS_OF.date()), "--profiles-map", str(cmap),
                 "--record-column", column, "--out", str(tmp_path / "s.csv"), *extra])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert needle in err[0]
    assert not (tmp_path / "s.csv").exists()
