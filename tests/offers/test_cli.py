import pandas as pd

from cemlib.cli import main


def test_cem_offers_writes_k_offers_per_customer(tmp_path, transactions, capsys):
    src = tmp_path / "tx.csv"
    transactions.assign(order_id=range(len(transactions))).to_csv(src, index=False)
    consent = tmp_path / "consent.csv"
    pd.DataFrame(
        {
            "customer_id": ["C0000", "C0001"],
            "consent_email": ["yes", "no"],
            "consent_sms": ["no", "no"],
        }
    ).to_csv(consent, index=False)
    out = tmp_path / "offers.csv"
    code = main(
        [
            "offers",
            str(src),
            "--as-of",
            "2025-06-15",
            "--k",
            "4",
            "--horizon-days",
            "30",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    offers = pd.read_csv(out, dtype={"customer_id": str, "item_id": str})
    assert list(offers.columns) == ["customer_id", "rank", "item_id", "score", "reasons"]
    hist = transactions[transactions["ts"] <= "2025-06-15 23:59:59"]
    assert offers["customer_id"].nunique() == hist["customer_id"].nunique()
    assert offers.groupby("customer_id").size().eq(4).all()
    err = capsys.readouterr().err
    n_after = int((transactions["ts"] > "2025-06-15 23:59:59").sum())
    assert f"{n_after} after 2025-06-15 ignored" in err
    code = main(
        [
            "offers",
            str(src),
            "--as-of",
            "2025-06-15",
            "--k",
            "4",
            "--horizon-days",
            "30",
            "--consent",
            str(consent),
            "--out",
            str(out),
        ]
    )
    offers = pd.read_csv(out, dtype={"customer_id": str})
    assert (
        code == 0
        and set(offers["customer_id"]) == {"C0000"}
        and set(offers["channel"]) == {"email"}
    )


def test_cem_offers_bad_input_exits_2_with_a_clear_message(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,ts,item_id,quantity\n1,2025-01-01,x,1\n", encoding="utf-8")
    assert (
        main(["offers", str(bad), "--as-of", "2025-06-30", "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "column 'amount'" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert (
        main(["offers", str(empty), "--as-of", "2025-06-30", "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "empty" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_cem_offers_does_not_offer_back_an_item_returned_and_never_kept(
    tmp_path, transactions, capsys
):
    hist = transactions[transactions["ts"] <= "2025-06-15 23:59:59"]
    mine = hist[hist["customer_id"] == "C0000"]
    item = mine["item_id"].value_counts().index[0]  # her staple: offered back without returns
    args = ["--as-of", "2025-06-15", "--k", "5", "--horizon-days", "30"]

    def offers_of_c0000(frame, name):
        src, out = tmp_path / f"{name}.csv", tmp_path / f"{name}_offers.csv"
        frame.to_csv(src, index=False)
        assert main(["offers", str(src), *args, "--out", str(out)]) == 0
        offers = pd.read_csv(out, dtype={"customer_id": str, "item_id": str})
        return offers[offers["customer_id"] == "C0000"], capsys.readouterr().err

    before, _ = offers_of_c0000(transactions, "sales")
    assert item in set(before["item_id"])
    sold = mine[mine["item_id"] == item]
    back = sold.assign(
        ts=sold["ts"] + pd.Timedelta(days=1),
        quantity=-sold["quantity"],
        amount=-sold["amount"],
    )
    after, err = offers_of_c0000(pd.concat([transactions, back], ignore_index=True), "returns")
    assert item not in set(after["item_id"]) and len(after) == 5
    assert f"{len(sold)} of items returned and never kept left out" in err


def test_cem_offers_names_the_validation_figure_by_its_own_cut_not_k(
    tmp_path, transactions, capsys
):
    """Trial 10 L4: ``--k 100`` printed "validation NDCG@100" beside the early-stopping figure,
    which LightGBM measures at 10 whatever the list length: the label names that cut, and the
    figure is the same for two list lengths (the model does not depend on ``k``)."""
    src = tmp_path / "tx.csv"
    transactions.to_csv(src, index=False)
    figures = {}
    for k in (4, 25):
        out = tmp_path / f"offers{k}.csv"
        args = ["offers", str(src), "--as-of", "2025-06-15", "--k", str(k)]
        assert main([*args, "--horizon-days", "30", "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert f"customers x {k} offers" in err
        assert f"NDCG@{k} " not in err
        figure = err.split("validation NDCG@10 ")[1].split(",")[0]
        figures[k] = float(figure)
        assert pd.read_csv(out).groupby("customer_id").size().eq(k).all()
    assert 0.0 < figures[4] == figures[25] <= 1.0
