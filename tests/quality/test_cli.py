import pandas as pd

from cemlib.cli import main


def test_cem_validate_writes_quarantine_as_received_and_clean_parquet(
    tmp_path, tables, sources, capsys
):
    src = sources(tmp_path / "src", tables, sep=";", encoding="cp1251")
    out = tmp_path / "out"
    code = main(["validate", str(src), "--out", str(out), "--as-of", "2025-06-30"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "rows in = clean + quarantined: yes" in printed
    assert "online_orders" in printed and "orphan line" in printed
    q = pd.read_csv(out / "quarantine" / "online_orders.csv", dtype=str)
    assert list(q.columns[-2:]) == ["expectation", "reason"]
    assert len(q) == 3
    # exactly as received: the unparseable date keeps its text
    assert "31.02.2025" in set(q["ordered_at"])
    clean = pd.read_parquet(out / "clean" / "online_orders.parquet").set_index("order_id")
    # the malformed phone (o7) and e-mail (o8) are emptied, their rows kept and counted
    assert sorted(clean.index) == ["o1", "o4", "o6", "o7", "o8"]
    assert pd.isna(clean.loc["o7", "phone"]) and pd.isna(clean.loc["o8", "email"])
    assert "online_orders: 1 phone values not valid: left empty in clean, rows kept" in printed
    assert pd.api.types.is_datetime64_any_dtype(clean["ordered_at"])
    lines = pd.read_parquet(out / "clean" / "order_lines.parquet")
    assert len(lines) + len(pd.read_csv(out / "quarantine" / "order_lines.csv")) == 7


def test_cem_validate_on_generated_files(tmp_path, capsys):
    from cemlib.synth import generate

    world = generate(n_people=300, seed=5)
    world.write(tmp_path / "src", format="csv")
    code = main(["validate", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    kinds = world.truth["defects"]["defect"]
    n_defects = int((~kinds.isin(["malformed_phone", "malformed_email"])).sum())  # rows kept
    total_q = sum(len(pd.read_csv(p)) for p in (tmp_path / "out" / "quarantine").glob("*.csv"))
    assert total_q >= 0.99 * n_defects
    assert "rows in = clean + quarantined: yes" in printed
