"""``cem offers --exclude`` and a consent file with phones: the products kept out and the
family phone's refusal, through the command line."""

import pandas as pd

from cemlib.cli import main


def test_cem_offers_keeps_excluded_items_out_and_applies_a_refusal_to_the_shared_phone(
    tmp_path, transactions, capsys
):
    src = tmp_path / "tx.csv"
    transactions.to_csv(src, index=False)
    rx = tmp_path / "rx.txt"
    # the whole first "category" of items by id, one by one, and a typo
    rx.write_text("# prescription only\n" + "\n".join(f"I0{j}" for j in range(10)) + "\nI99\n")
    consent = tmp_path / "consent.csv"
    pd.DataFrame(
        {
            "customer_id": ["C0000", "C0001", "C0002"],
            "phone": ["+7 912 345-67-89", "8 912 345 67 89", "+7 903 111-22-33"],
            "consent_email": ["no", "no", "no"],
            "consent_sms": ["yes", "no", "yes"],
        }
    ).to_csv(consent, index=False)
    out = tmp_path / "offers.csv"
    args = ["offers", str(src), "--as-of", "2025-06-30", "--k", "5", "--horizon-days", "30"]
    code = main([*args, "--exclude", str(rx), "--consent", str(consent), "--out", str(out)])
    assert code == 0
    offers = pd.read_csv(out, dtype={"customer_id": str, "item_id": str})
    assert not offers["item_id"].str.match(r"^I0\d$").any()
    # C0001 refused SMS on the phone C0000 shares: only C0002 can be reached
    assert set(offers["customer_id"]) == {"C0002"} and len(offers) == 5
    err = capsys.readouterr().err
    assert (
        "11 exclusion entries -> 10 items kept out of the offers (1 match nothing, e.g. 'I99')"
        in err
    )
    assert "1 of 300 customers reachable" in err
    assert "1 lose SMS and 0 e-mail to a refusal on a shared phone or e-mail" in err


def test_a_missing_exclusion_file_is_refused_before_any_work(tmp_path, transactions, capsys):
    src = tmp_path / "tx.csv"
    transactions.head(50).to_csv(src, index=False)
    out = tmp_path / "offers.csv"
    missing = tmp_path / "rx.csv"
    code = main(
        ["offers", str(src), "--as-of", "2025-06-30", "--exclude", str(missing), "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and str(missing) in err and "not found" in err


def test_an_exclusion_whose_every_entry_matches_is_reported_without_a_failure(
    tmp_path, transactions, capsys
):
    """Trial 7, H2: ``--exclude TOPUP`` (every entry an item) ended in an IndexError."""
    src = tmp_path / "tx.csv"
    transactions.to_csv(src, index=False)
    out = tmp_path / "offers.csv"
    args = ["offers", str(src), "--as-of", "2025-06-30", "--k", "5", "--horizon-days", "30"]
    code = main([*args, "--exclude", "I00,I01", "--out", str(out)])
    assert code == 0
    offers = pd.read_csv(out, dtype={"customer_id": str, "item_id": str})
    assert len(offers) > 0 and not offers["item_id"].isin(["I00", "I01"]).any()
    err = capsys.readouterr().err
    assert "2 exclusion entries -> 2 items kept out of the offers; they were candidates of" in err


def test_with_an_exclusion_the_figure_printed_is_a_backtest_without_the_excluded_items(
    tmp_path, transactions, capsys
):
    """Trial 7 M2: the validation NDCG ranks and counts the excluded items; with ``--exclude``
    the command prints the backtest of the lists without them, on the customers who bought
    something else in the last ``--horizon-days``."""
    import re

    src = tmp_path / "tx.csv"
    transactions.to_csv(src, index=False)
    out = tmp_path / "offers.csv"
    excluded = [f"I0{j}" for j in range(10)]
    code = main(["offers", str(src), "--as-of", "2025-06-30", "--k", "5", "--horizon-days", "30",
                 "--exclude", ",".join(excluded), "--out", str(out)])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "validation NDCG" not in err
    found = re.search(
        r"backtest NDCG@5 (\d\.\d{3}) without the 10 excluded items: refitted at 2025-05-31, "
        r"scored on (\d+) customers' purchases of the last 30 days",
        err,
    )
    assert found, err
    back = pd.Timestamp("2025-05-31") + pd.Timedelta(days=1)
    had = set(transactions.loc[transactions["ts"] < back, "customer_id"])
    window = transactions[(transactions["ts"] >= back) & transactions["customer_id"].isin(had)]
    graded = window.loc[~window["item_id"].isin(excluded), "customer_id"].nunique()
    assert graded < window["customer_id"].nunique()
    assert int(found.group(2)) == graded
    assert 0.05 < float(found.group(1)) < 1


def test_a_wrong_consent_record_column_is_refused_before_any_work(tmp_path, transactions, capsys):
    """Trial 7 L3: checked after the whole fit, and the error named --record-column."""
    src = tmp_path / "tx.csv"
    transactions.rename(columns={"customer_id": "rec"}).to_csv(src, index=False)
    ids = transactions["customer_id"].unique()
    cmap = tmp_path / "clusters.csv"
    pd.DataFrame({"record_id": ids, "profile_id": "P" + pd.Series(ids)}).to_csv(cmap, index=False)
    consent = tmp_path / "consent.csv"
    pd.DataFrame({"contact": ids[:5], "consent_email": "yes", "consent_sms": "yes"}).to_csv(
        consent, index=False
    )
    out = tmp_path / "offers.csv"
    code = main(["offers", str(src), "--as-of", "2025-06-30", "--profiles-map", str(cmap),
                 "--record-column", "rec", "--consent", str(consent),
                 "--consent-record-column", "Абонент", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(consent) in err and "'Абонент'" in err and "--consent-record-column" in err
    assert "--record-column names" not in err


def test_profiles_without_a_crm_record_are_counted_when_the_map_names_sources(
    tmp_path, transactions, capsys
):
    """Trial 7 M3: the recipe scored held-back receipts as customers; a map with each record's
    source says how many profiles with offers hold no CRM record."""
    src = tmp_path / "tx.csv"
    transactions.rename(columns={"customer_id": "rec"}).to_csv(src, index=False)
    ids = pd.Series(transactions["customer_id"].unique())
    receipts = pd.DataFrame({"record_id": ids, "profile_id": "P" + ids, "source": "pos_receipts"})
    crm = receipts.iloc[:120].assign(record_id="K" + ids.iloc[:120], source="crm_contacts")
    cmap = tmp_path / "clusters.csv"
    pd.concat([receipts, crm]).to_csv(cmap, index=False)
    out = tmp_path / "offers.csv"
    code = main(["offers", str(src), "--as-of", "2025-06-30", "--k", "3", "--profiles-map",
                 str(cmap), "--record-column", "rec", "--out", str(out)])  # fmt: skip
    assert code == 0
    offered = pd.read_csv(out, dtype=str)["customer_id"].unique()
    without = len(set(offered) - set("P" + ids.iloc[:120]))
    assert 100 < without < len(offered)
    err = capsys.readouterr().err
    assert (
        f"cem offers: {without:,} of {len(offered):,} profiles with offers hold no record of "
        f"source 'crm_contacts' in {cmap}"
    ) in err
    # the map as cem identity writes it (no source): nothing is claimed
    pd.concat([receipts, crm])[["record_id", "profile_id"]].to_csv(cmap, index=False)
    assert main(["offers", str(src), "--as-of", "2025-06-30", "--k", "3", "--profiles-map",
                 str(cmap), "--record-column", "rec", "--out", str(out)]) == 0  # fmt: skip
    assert "hold no record of source" not in capsys.readouterr().err
