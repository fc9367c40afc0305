import pandas as pd

from cemlib.cli import main

from .conftest import AS_OF, bgnbd_world


def test_cem_churn_on_a_russian_export(tmp_path, capsys):
    tx, cov, _ = bgnbd_world(150, seed=5)
    ru = pd.DataFrame(
        {
            "Клиент": tx["customer_id"],
            "Дата": tx["ts"].dt.strftime("%d.%m.%Y %H:%M"),
            "Сумма": tx["amount"].map(lambda v: f"{v:.2f}".replace(".", ",")),
        }
    )
    src = tmp_path / "tx.csv"
    ru.to_csv(src, sep=";", index=False, encoding="cp1251")
    cov_path = tmp_path / "cov.csv"
    cov.to_csv(cov_path, index=False)
    out = tmp_path / "scores.csv"
    rc = main(
        [
            "churn",
            str(src),
            "--as-of",
            AS_OF.strftime("%d.%m.%Y"),
            "--horizon-days",
            "180",
            "--covariates",
            str(cov_path),
            "--out",
            str(out),
            "--map",
            "Клиент=customer_id",
            "--map",
            "Дата=ts",
            "--map",
            "Сумма=amount",
        ]
    )
    assert rc == 0
    s = pd.read_csv(out)
    assert list(s.columns[:5]) == [
        "customer_id",
        "p_purchase",
        "expected_purchases",
        "expected_revenue",
        "risk_segment",
    ]
    assert len(s) == tx[tx.ts <= AS_OF].customer_id.nunique()
    assert s["p_purchase"].between(0, 1).all()
    assert (s["p_purchase"] == s["p_purchase_180"]).all()
    assert "scored as of 2024-06-30 over 180 days" in capsys.readouterr().out


def test_cem_churn_errors_exit_2(tmp_path, capsys):
    src = tmp_path / "tx.csv"
    pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"]}).to_csv(src, index=False)
    rc = main(["churn", str(src), "--as-of", "2024-06-30", "--out", str(tmp_path / "o.csv")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "tx.csv" in err and "'amount'" in err
    assert not (tmp_path / "o.csv").exists()
    rc = main(["churn", str(src), "--as-of", "когда-то", "--out", str(tmp_path / "o.csv")])
    assert rc == 2 and "not a date" in capsys.readouterr().err


def test_cem_churn_subscriptions(tmp_path):
    from .test_subscriptions import subs_frame

    src = tmp_path / "subs.csv"
    subs_frame(600).to_csv(src, index=False)
    out = tmp_path / "s.csv"
    rc = main(
        [
            "churn",
            "--subscriptions",
            str(src),
            "--as-of",
            "2024-06-30",
            "--horizon-days",
            "90",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    s = pd.read_csv(out)
    assert list(s.columns[:2]) == ["customer_id", "start"]
    assert {"p_churn", "expected_remaining_days", "risk_segment"} <= set(s.columns)
    assert s["p_churn"].between(0, 1).all()


def test_cem_churn_empty_and_header_only_files(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert (
        main(["churn", str(empty), "--as-of", "2024-06-30", "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "empty.csv" in capsys.readouterr().err
    header = tmp_path / "header.csv"
    header.write_text("customer_id,ts,amount\n", encoding="utf-8")
    assert (
        main(["churn", str(header), "--as-of", "2024-06-30", "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "no data rows" in capsys.readouterr().err
    future = tmp_path / "future.csv"
    future.write_text("customer_id,ts,amount\n1,2025-01-01,10\n", encoding="utf-8")
    assert (
        main(["churn", str(future), "--as-of", "2024-06-30", "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "no transactions on or before 2024-06-30" in capsys.readouterr().err


def test_cem_churn_on_too_little_history_is_one_line_exit_2(tmp_path, capsys):
    src = tmp_path / "t.csv"
    src.write_text(
        "customer_id,ts,item_id,quantity,amount\n"
        "c1,2024-01-01,a,1,10\nc1,2024-02-01,a,1,12\nc2,2024-01-05,b,1,5\n",
        encoding="utf-8",
    )
    out = tmp_path / "s.csv"
    code = main(["churn", str(src), "--as-of", "2024-03-01", "--out", str(out)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("cem churn: error:")]
    assert code == 2 and "Traceback" not in err and not out.exists()
    assert len(lines) == 1 and "too little history" in lines[0] and str(src) in lines[0]
    assert "2 customers, 1 with a repeat purchase" in lines[0]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*partial*"))
