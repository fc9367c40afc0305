"""The contract: tables, columns, dates, truth coverage, determinism, CLI."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from cemlib.cli import main
from cemlib.errors import InputError
from cemlib.synth import RECORD_ID, SOURCE_TABLES, generate

COLUMNS = {
    "crm_contacts": [
        "contact_id",
        "full_name",
        "first_name",
        "last_name",
        "middle_name",
        "phone",
        "email",
        "birth_date",
        "gender",
        "city",
        "loyalty_card",
        "registered_at",
        "consent_email",
        "consent_sms",
    ],
    "online_orders": ["order_id", "ordered_at", "email", "phone", "device_id", "delivery_address"],
    "order_lines": ["line_id", "order_id", "sku", "quantity", "price"],
    "pos_receipts": ["receipt_id", "store_id", "purchased_at", "loyalty_card", "phone"],
    "receipt_lines": ["line_id", "receipt_id", "sku", "quantity", "price"],
    "web_events": [
        "event_id",
        "ts",
        "device_id",
        "cookie_id",
        "email",
        "event_type",
        "sku",
        "category",
    ],
    "support_tickets": ["ticket_id", "created_at", "phone", "email", "channel", "topic", "csat"],
    "products": ["sku", "name", "category", "price", "margin"],
}
TS_COLUMN = {
    "crm_contacts": "registered_at",
    "online_orders": "ordered_at",
    "pos_receipts": "purchased_at",
    "web_events": "ts",
    "support_tickets": "created_at",
}


def test_all_tables_and_columns(world):
    assert set(SOURCE_TABLES) == set(world.sources)
    for table, cols in COLUMNS.items():
        assert set(cols) <= set(world.sources[table].columns), table
        assert len(world.sources[table]) > 0
    for name in ("people", "record_person", "future_orders", "future_lines", "defects"):
        assert name in world.truth


def test_clean_rows_dated_within_history(clean_world):
    for table, col in TS_COLUMN.items():
        ts = pd.to_datetime(clean_world.sources[table][col], format="%Y-%m-%d %H:%M:%S")
        assert ts.min() >= pd.Timestamp("2022-01-01"), table
        assert ts.max() < pd.Timestamp("2025-07-01"), table


def test_record_person_covers_every_row_once(world):
    rp = world.truth["record_person"]
    assert not rp.duplicated(["source_table", "record_id"]).any()
    people = set(world.truth["people"]["person_id"])
    assert set(rp["person_id"]) <= people
    for table in ("crm_contacts", "online_orders", "pos_receipts", "web_events", "support_tickets"):
        ids = set(world.sources[table][RECORD_ID[table]].astype(str))
        assert ids == set(rp.loc[rp["source_table"] == table, "record_id"]), table


def test_future_is_after_as_of_and_within_horizon(world):
    fo, fl = world.truth["future_orders"], world.truth["future_lines"]
    assert len(fo) > 0 and len(fl) >= len(fo)
    assert fo["ts"].min() >= pd.Timestamp("2025-07-01")
    assert fo["ts"].max() < pd.Timestamp("2025-07-01") + pd.Timedelta(days=365)
    assert abs(fl["amount"].sum() - fo["amount"].sum()) < 1.0
    assert {"person_id", "ts", "channel", "sku", "category", "quantity", "amount"} <= set(
        fl.columns
    )


def _hashes(path):
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*.csv"))
    }


def test_same_seed_byte_identical_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    w = generate(n_people=600, seed=3)
    w.write(a)
    generate(n_people=600, seed=3).write(b)
    generate(n_people=600, seed=4).write(c)
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert len(ha) == len(SOURCE_TABLES) + len(w.truth)
    assert ha == hb
    differing = [k for k in ha if ha[k] != hc[k]]
    assert len(differing) >= len(ha) - 2  # all but tables independent of people (catalogue)


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="as_of"):
        generate(n_people=100, as_of="not a date")
    with pytest.raises(InputError, match="start"):
        generate(n_people=100, start="2026-01-01", as_of="2025-06-30")


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["generate", "--people", "50", "--out", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert "file.txt: --out is a file, expected a folder" in err and "Traceback" not in err
    assert main(["generate", "--people", "5", "--out", str(tmp_path / "w")]) == 2
    assert "n_people" in capsys.readouterr().err
    assert (
        main(["generate", "--people", "50", "--horizon-days", "-1", "--out", str(tmp_path / "w")])
        == 2
    )
    assert "horizon_days" in capsys.readouterr().err


def test_cli_generate_writes_files(tmp_path, capsys):
    out = tmp_path / "w"
    code = main(
        [
            "generate",
            "--people",
            "300",
            "--seed",
            "5",
            "--out",
            str(out),
            "--format",
            "parquet",
            "--no-defects",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "crm_contacts" in printed and "rows" in printed
    for table in SOURCE_TABLES:
        assert (out / f"{table}.parquet").is_file()
    assert (out / "truth" / "people.parquet").is_file()
    back = pd.read_parquet(out / "truth" / "people.parquet")
    assert len(back) == 300
    assert len(pd.read_parquet(out / "truth" / "defects.parquet")) == 0


def test_identical_across_processes_and_hash_seeds(tmp_path):
    import os
    import subprocess
    import sys

    code = "import sys; from cemlib.synth import generate; generate(800, seed=9).write(sys.argv[1])"
    for i, d in enumerate(("p1", "p2")):
        env = {**os.environ, "PYTHONHASHSEED": str(i + 1)}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / d)], check=True, env=env)
    assert _hashes(tmp_path / "p1") == _hashes(tmp_path / "p2")


def test_web_events_built_in_many_chunks(monkeypatch):
    import cemlib.synth.sources as sources

    monkeypatch.setattr(sources, "WEB_CHUNK", 3000)
    w = generate(n_people=1200, seed=2)
    ev = w.sources["web_events"]
    assert len(ev) > 4 * 3000
    assert ev["event_id"].is_unique
    ts = pd.to_datetime(ev["ts"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    d = w.truth["defects"]
    clean = ts.drop(index=d.loc[d["table"] == "web_events", "source_row"].to_numpy())
    assert clean.is_monotonic_increasing
    rp = w.truth["record_person"]
    assert set(rp.loc[rp["source_table"] == "web_events", "record_id"]) == set(ev["event_id"])
    assert ev["cookie_id"].str.len().eq(14).all() and ev["device_id"].str.len().eq(16).all()


def test_timestamp_and_date_text_as_strftime_writes_them():
    """The export text of timestamps and dates (Arrow's cast) is strftime's, NaT as null."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from cemlib.synth.text import date_text, ts_text

    rng = np.random.default_rng(0)
    ts = np.datetime64("2022-01-01T00:00:00", "s") + rng.integers(
        -3 * 10**9, 3 * 10**9, 50_000
    ).astype("timedelta64[s]")
    ts[::97] = np.datetime64("NaT")
    want = pc.strftime(pa.array(ts), format="%Y-%m-%d %H:%M:%S")
    got = ts_text(ts)
    assert got.null_count == want.null_count == len(ts[::97])
    assert got.to_pylist() == want.to_pylist()
    days = ts.astype("datetime64[D]")
    want = pc.strftime(pa.array(days.astype("datetime64[s]")), format="%Y-%m-%d")
    assert date_text(days).to_pylist() == want.to_pylist()
