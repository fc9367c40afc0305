"""Trial 6 findings: tiny files fail on one line (H3, M5); lapsed regular buyers (H1)."""

from cemlib.cli import main


def _run(tmp_path, capsys, text: str, *args: str) -> tuple[int, str, object]:
    src = tmp_path / "tx.csv"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "scores.csv"
    code = main(["churn", str(src), *args, "--out", str(out)])
    return code, capsys.readouterr().err, (src, out)


def test_one_customer_file_is_one_line_exit_2(tmp_path, capsys):
    # H3: lifelines' AttributeError from the cross-validation folds, exit 1, before
    code, err, (src, out) = _run(
        tmp_path,
        capsys,
        "client_id,date,sum\nA,2025-01-05,10\nA,2025-03-01,10\n",
        "--as-of",
        "2025-06-30",
    )
    assert code == 2 and not out.exists()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(src) in err
    assert "1 customers, 1 with a repeat purchase on or before 2025-06-30" in err
    assert err.strip().endswith(
        "1 repeat purchases to learn the 13 parameters of the gap model from"
    )


def test_three_customer_file_is_one_line_with_its_reason(tmp_path, capsys):
    # M5: 12 lines of ConvergenceWarning, then a line ending in an empty reason, before
    text = (
        "Клиент;Дата;Сумма\nA;05.01.2025;1 234,50\nA;05.03.2025;100,00\nA;05.05.2025;100,00\n"
        "B;10.02.2025;50,00\nB;10.04.2025;70,00\nB;10.06.2025;70,00\n"
        "C;01.06.2025;10\nC;20.06.2025;10\n"
    )
    code, err, (src, out) = _run(
        tmp_path, capsys, text, "--as-of", "30.06.2025", "--horizon-days", "180"
    )
    assert code == 2 and not out.exists()
    assert "Warning" not in err and len(err.strip().splitlines()) == 1
    assert f"{src}: too little history" in err
    assert "(3 customers, 3 with a repeat purchase on or before 2025-06-30)" in err
    # the reason is there: 2 + 2 + 1 ended spells against the model's parameters
    assert "5 repeat purchases to learn the" in err and not err.strip().endswith(":")
