import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.errors import InputError
from cemlib.warehouse import Warehouse
from tests.collect.conftest import MAPPING, write


@pytest.fixture
def collected(russian_export, tmp_path):
    wh = tmp_path / "cem.duckdb"
    result = collect(
        russian_export,
        warehouse=wh,
        run_id="t1",
        as_of="2025-06-30",
        mapping=MAPPING,
        progress=False,
    )
    return result, wh


def test_raw_and_staging_conserve_rows_and_source_row(collected):
    result, wh = collected
    with Warehouse(wh) as w:
        assert sorted(w.tables("raw")) == ["crm_contacts", "online_orders", "order_lines"]
        for name, n in [("crm_contacts", 3), ("online_orders", 3), ("order_lines", 4)]:
            raw, staging = w.read_table("raw", name), w.read_table("staging", name)
            assert len(raw) == len(staging) == n
            assert list(raw["_source_row"]) == list(range(n))
            assert list(staging["_source_row"]) == list(range(n))
        types = w.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'order_lines'"
        )
        assert set(types.loc[types.column_name != "_source_row", "data_type"]) == {
            "VARCHAR",
            "DATE",
        }
        assert w.stamp("staging", "order_lines")[0] == "t1"
    tables = result.tables.set_index("table")
    assert tables.loc["order_lines", "n_raw"] == 4
    assert tables.loc["crm_contacts", "encoding"] == "cp1251"
    assert tables.loc["crm_contacts", "delimiter"] == ";"
    assert result.missing_tables == [
        "pos_receipts",
        "receipt_lines",
        "web_events",
        "support_tickets",
        "products",
    ]


def test_staging_types_and_normalized_columns(collected):
    _, wh = collected
    with Warehouse(wh) as w:
        crm = w.read_table("staging", "crm_contacts").set_index("contact_id")
        raw = w.read_table("raw", "crm_contacts").set_index("contact_id")
        lines = w.read_table("staging", "order_lines").set_index("line_id")
        orders = w.read_table("staging", "online_orders").set_index("order_id")
    assert crm.loc["1", "phone_e164"] == "+79991234567"
    assert crm.loc["2", "phone_e164"] == "+79997654321"
    assert pd.isna(crm.loc["3", "phone_e164"])
    assert raw.loc["3", "phone"] == "12345"  # raw keeps what the file held
    assert crm.loc["1", "email_norm"] == "ivan.petrov+shop@gmail.com"
    assert crm.loc["1", "email_key"] == "ivanpetrov@gmail.com"
    assert crm.loc["2", "email_key"] == "maria@yandex.ru"
    assert pd.isna(crm.loc["3", "email_norm"])
    assert crm.loc["1", "email"] == "Ivan.Petrov+shop@GMAIL.com "
    # full name split in both orders, normalized and transliterated
    assert list(crm.loc["2", ["last_name", "first_name", "middle_name"]]) == [
        "Петрова",
        "Мария",
        "Сергеевна",
    ]
    assert crm.loc["3", "last_name_norm"] == "елкин"
    assert crm.loc["3", "first_name_lat"] == "petr"
    assert list(crm["gender_hint"]) == ["M", "F", "M"]
    assert crm.loc["1", "birth_date"] == pd.Timestamp("1990-03-05")
    assert pd.isna(crm.loc["2", "birth_date"])  # 31.02 does not exist
    assert crm.loc["2", "registered_at"] == pd.Timestamp("2024-03-06 09:15")
    assert [crm.loc[i, "consent_sms"] for i in "12"] == [True, False]
    assert pd.isna(crm.loc["3", "consent_sms"])
    assert lines.loc["L1", "price"] == pytest.approx(1234.5)
    assert lines.loc["L2", "price"] == pytest.approx(99.9)
    assert pd.isna(lines.loc["L3", "price"])
    assert orders.loc["O1", "ordered_at"] == pd.Timestamp("2024-07-01 10:00")


def test_figures_count_unparsed_changes_coverage_and_dates(collected):
    result, _ = collected
    norm = result.normalization[result.normalization["kind"] != "name split"]
    norm = norm.set_index(["table", "column"]).sort_index()
    split = result.normalization[result.normalization["kind"] == "name split"]
    assert split.set_index("column")["n_changed"].to_dict() == {
        "last_name": 3,
        "first_name": 3,
        "middle_name": 2,
    }
    assert norm.loc[("crm_contacts", "birth_date"), "n_values"] == 2
    assert norm.loc[("crm_contacts", "birth_date"), "n_unparsed"] == 1
    assert norm.loc[("crm_contacts", "phone"), "n_unparsed"] == 1
    assert norm.loc[("crm_contacts", "phone"), "n_changed"] == 2
    assert norm.loc[("crm_contacts", "email"), "n_unparsed"] == 1
    assert norm.loc[("order_lines", "price"), "n_unparsed"] == 1
    assert norm.loc[("online_orders", "ordered_at"), "n_unparsed"] == 0
    assert result.n_unparsed == 4
    cov = result.coverage.set_index(["table", "identifier"]).sort_index()
    assert cov.loc[("online_orders", "email"), "n_present"] == 2
    assert cov.loc[("online_orders", "device_id"), "share_present"] == pytest.approx(2 / 3)
    assert cov.loc[("online_orders", "any identifier"), "n_present"] == 3
    assert cov.loc[("crm_contacts", "phone"), "n_valid"] == 2
    tables = result.tables.set_index("table")
    assert tables.loc["online_orders", "first_date"] == pd.Timestamp("2024-07-01 10:00")
    assert tables.loc["online_orders", "last_date"] == pd.Timestamp("2025-12-31 23:59")
    assert tables.loc["online_orders", "n_after_as_of"] == 1  # kept in staging, reported


def test_header_only_table_is_loaded_and_reported(russian_export, tmp_path):
    write(russian_export / "web_events.csv", "event_id;ts;event_type;email\n")
    result = collect(
        russian_export, warehouse=tmp_path / "w.duckdb", mapping=MAPPING, progress=False
    )
    row = result.tables.set_index("table").loc["web_events"]
    assert row["n_raw"] == 0
    assert row["status"] == "header only: 0 rows"
    assert "web_events: header only, loaded as 0 rows" in result.warnings
    with Warehouse(tmp_path / "w.duckdb") as w:
        assert len(w.read_table("staging", "web_events")) == 0


def test_bad_file_leaves_no_partial_output(russian_export, tmp_path):
    wh = tmp_path / "w.duckdb"
    collect(russian_export, warehouse=wh, run_id="good", mapping=MAPPING, progress=False)
    with Warehouse(wh) as w:
        before = {s: w.tables(s) for s in ("raw", "staging")}
        n_log = len(w.read_table("meta", "table_log"))
    # crm_contacts and online_orders are written (in chunks of 1 row) before order_lines fails
    write(russian_export / "order_lines.csv", "order_id;sku;price\nO1;S1;10\n")
    with pytest.raises(InputError, match=r"order_lines\.csv.*'quantity'"):
        collect(
            russian_export,
            warehouse=wh,
            run_id="bad",
            mapping=MAPPING,
            progress=False,
            chunk_rows=1,
        )
    with Warehouse(wh) as w:
        assert {s: w.tables(s) for s in ("raw", "staging")} == before  # no shadow left behind
        assert {w.stamp("raw", t)[0] for t in w.tables("raw")} == {"good"}
        assert {w.stamp("staging", t)[0] for t in w.tables("staging")} == {"good"}
        assert len(w.read_table("raw", "online_orders")) == 3
        assert len(w.read_table("meta", "table_log")) == n_log


def test_a_failed_first_load_leaves_no_warehouse_file(russian_export, tmp_path):
    # the docs promise the warehouse is left as it was: when there was none, none is left
    wh = tmp_path / "new.duckdb"
    write(russian_export / "order_lines.csv", "order_id;sku;price\nO1;S1;10\n")
    with pytest.raises(InputError, match=r"order_lines\.csv.*'quantity'"):
        collect(russian_export, warehouse=wh, mapping=MAPPING, progress=False, chunk_rows=1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new")) == []


def test_rerun_drops_tables_the_source_no_longer_has(russian_export, tmp_path):
    wh = tmp_path / "w.duckdb"
    write(russian_export / "products.csv", "sku;name;price\nS1;Чай;100,00\n")
    collect(russian_export, warehouse=wh, mapping=MAPPING, progress=False)
    (russian_export / "products.csv").unlink()
    collect(russian_export, warehouse=wh, mapping=MAPPING, progress=False)
    with Warehouse(wh) as w:
        assert "products" not in w.tables("raw")
        assert "products" not in w.tables("staging")


def test_in_memory_typed_frames_stage_like_files(tmp_path):
    from cemlib.collect.loaders import tables_from_frames
    from cemlib.collect.stage import stage_table
    from cemlib.schema import TABLES

    typed = pd.DataFrame(
        {
            "receipt_id": ["R1", "R2"],
            "store_id": [1, 2],
            "purchased_at": pd.to_datetime(["2024-01-01 10:00:00", "2024-01-02 00:00:00"]),
            "loyalty_card": [None, "77001"],
            "phone": ["8 999 123 45 67", None],
        }
    )
    loaded = tables_from_frames({"pos_receipts": typed})["pos_receipts"]
    assert list(loaded.frame["purchased_at"]) == ["2024-01-01 10:00:00", "2024-01-02 00:00:00"]
    assert list(loaded.frame["store_id"]) == ["1", "2"]
    staged, stats = stage_table(TABLES["pos_receipts"], loaded)
    assert loaded.frame["purchased_at"].tolist() == ["2024-01-01 10:00:00", "2024-01-02 00:00:00"]
    assert staged["phone"].tolist()[0] == "8 999 123 45 67"  # the raw column stays beside
    assert staged["purchased_at"].iloc[1] == pd.Timestamp("2024-01-02")
    assert list(staged["phone_e164"].fillna("-")) == ["+79991234567", "-"]


def test_report_on_a_folder_source(russian_export, tmp_path):
    from cemlib.collect.report import (
        headlines,
        masked_examples,
        summary_markdown,
        verdict_of,
    )

    write(russian_export / "web_events.csv", "event_id;ts;event_type;email\n")
    wh = tmp_path / "w.duckdb"
    result = collect(russian_export, warehouse=wh, mapping=MAPPING, progress=False)
    text = summary_markdown(result)
    assert "4 of 8 canonical tables were loaded, 10 rows in all" in text
    assert "**Header only (0 rows):** web_events." in text
    assert (
        "Not in the source (optional): pos_receipts, receipt_lines, support_tickets, products."
        in text
    )
    figures = headlines(result)
    assert figures["rows loaded"] == 10
    v = verdict_of(result)
    assert v["status"] == "warning"  # web_events has its header only
    assert v["figures"]["rows collected"] == "10" and v["figures"]["tables"] == "4 of 8"
    assert any("web_events" in c for c in v["caveats"])
    assert any(c.startswith("4 values could not be read") for c in v["caveats"])
    assert figures["values not parseable"] == 4
    assert figures["orders with email"] == "66.7%"
    with Warehouse(wh, read_only=True) as w:
        examples = masked_examples(w, "crm_contacts", n=3)
    assert len(examples) == 3
    shown = examples.astype(str).to_string()
    assert "+7999" not in shown and "gmail.com" in shown and "Ivan" not in shown
    assert "loyalty_card" not in examples.columns and "birth_date" not in examples.columns


def test_memory_limit_applies_to_the_run_only(russian_export, tmp_path):
    """collect caps DuckDB's memory while it runs and gives a caller's connection back as it was."""
    with Warehouse(tmp_path / "w.duckdb") as wh:
        setting = "SELECT current_setting('memory_limit')"
        before = wh.con.execute(setting).fetchone()[0]
        seen = []
        real = wh.transaction

        def spy():
            seen.append(wh.con.execute(setting).fetchone()[0])
            return real()

        wh.transaction = spy
        result = collect(
            russian_export, warehouse=wh, mapping=MAPPING, memory_limit="300MB", progress=False
        )
        assert seen and seen[0] != before and seen[0].startswith("28")  # 300 MB = 286.1 MiB
        assert wh.con.execute(setting).fetchone()[0] == before
        assert result.tables["n_raw"].sum() == sum(
            len(wh.read_table("raw", t)) for t in result.tables["table"]
        )


def test_two_digit_birth_years_are_read_in_the_past(tmp_path):
    """Trial 4 (H2): ``18.12.59`` became 2059-12-18 (the POSIX pivot), 260 of 780 such birth
    dates of a telecom CRM landed in the future. A birth date never lies after ``as_of``; an
    event timestamp written the same way keeps the POSIX reading (a future one is a defect)."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "crm_contacts.csv").write_text(
        "contact_id;birth_date;registered_at\n"
        "1;18.12.59;05.03.24 14:30\n"
        "2;01.02.03;01.02.03\n"
        "3;30.06.25;30.06.25\n"
        "4;01.07.25;01.07.68\n"
        "5;05.03.1990;\n",
        encoding="utf-8",
    )
    collect(folder, tmp_path / "w.duckdb", as_of="2025-06-30", progress=False)
    with Warehouse(tmp_path / "w.duckdb", read_only=True) as w:
        crm = w.read_table("staging", "crm_contacts").set_index("contact_id")
    assert crm["birth_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "1959-12-18", "2003-02-01", "2025-06-30", "1925-07-01", "1990-03-05",
    ]  # fmt: skip
    assert crm["registered_at"].dt.strftime("%Y-%m-%d %H:%M").tolist()[:4] == [
        "2024-03-05 14:30", "2003-02-01 00:00", "2025-06-30 00:00", "2068-07-01 00:00",
    ]  # fmt: skip


def test_a_long_line_is_counted_in_the_summary_the_report_and_the_cli(tmp_path, capsys):
    from cemlib.cli import main
    from cemlib.collect.report import headlines, verdict_of

    src = tmp_path / "src"
    src.mkdir()
    rows = [f"C{i};Имя {i};+7 916 {1000000 + i}" for i in range(30)]
    rows[9] = "C9;Сидорова; Анна;+7 916 1000009"  # 4 fields where the header has 3
    write(src / "crm_contacts.csv", "contact_id;full_name;phone\n" + "\n".join(rows) + "\n")
    wh = tmp_path / "cem.duckdb"
    result = collect(src, warehouse=wh, run_id="t1", as_of="2025-06-30", progress=False)
    t = result.tables.set_index("table").loc["crm_contacts"]
    # rows in = loaded + set aside: every line is a row of raw and staging
    assert (t["n_raw"], t["n_staging"], t["n_set_aside"], t["set_aside_lines"]) == (30, 30, 1, "11")
    assert headlines(result)["lines set aside (more fields than the header)"] == 1
    verdict = verdict_of(result)
    assert verdict["status"] == "warning" and verdict["figures"]["lines set aside"] == "1"
    assert any("1 of 30 lines set aside" in c for c in verdict["caveats"])
    with Warehouse(wh) as w:
        raw = w.read_table("raw", "crm_contacts").set_index("_source_row")
        assert raw.loc[9, "_raw_line"] == rows[9] and raw.loc[9, "_line"] == 11
        assert raw["_row_defect"].notna().sum() == 1 and raw["contact_id"].notna().sum() == 29
    code = main(
        ["collect", "--source", str(src), "--warehouse", str(tmp_path / "w2.duckdb"), "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "1 line(s) set aside (note)" in out
    assert "note: crm_contacts.csv: 1 of 30 lines set aside" in out and "line 11" in out


def test_email_norm_and_key_in_one_pass_equal_the_two_normalizers():
    """Staging cleans each distinct address once and makes its key from the cleaned text:
    the same columns as ``email_norm`` and ``email_key`` apart, on the awkward cases."""
    from cemlib.normalize import email_key, email_norm
    from cemlib.normalize.emails import email_norm_and_key

    values = [" Ivan+shop@Gmail.com ", "<mailto:A.B@ya.ru>", "no address", None, "x @ list.ry",
              "mailto:mailto:a@b.cc", "", "a.b@googlemail.com", pd.NA, "+tag@mail.ru",
              "two@@at.ru", "name@ mail.ry"]  # fmt: skip
    series = pd.Series(values * 2, dtype="string", index=range(7, 7 + 2 * len(values)), name="e")
    norm, key = email_norm_and_key(series)
    pd.testing.assert_series_equal(norm, email_norm(series))
    pd.testing.assert_series_equal(key, email_key(series))
    assert norm.notna().sum() == 2 * 7 and key.notna().sum() == 2 * 6  # "+tag" has no login
    assert key.iloc[0] == "ivan@gmail.com" and key.iloc[1] == "a-b@yandex.ru"


def test_masked_examples_do_not_depend_on_the_stored_row_order(tmp_path):
    """The report's example rows are the same whichever order the staging rows were written in
    (stage 00 writes them in parallel chunks): chosen by a seeded hash of ``_source_row``."""
    from cemlib.collect.report import masked_examples

    rows = pd.DataFrame(
        {
            "contact_id": [f"C{i:03d}" for i in range(200)],
            "first_name": [f"Name{i}" for i in range(200)],
            "phone_e164": [f"+7999{i:07d}" for i in range(200)],
            "_source_row": range(200),
        }
    )
    shown = []
    for name, order in (
        ("a", rows),
        ("b", rows.iloc[::-1]),
        ("c", rows.sample(frac=1, random_state=3)),
    ):
        with Warehouse(tmp_path / f"{name}.duckdb") as wh:
            wh.write_table(
                "staging",
                "crm_contacts",
                order.reset_index(drop=True),
                run_id="r",
                as_of="2025-06-30",
            )
            shown.append(masked_examples(wh, "crm_contacts", n=5, seed=42))
    assert len(shown[0]) == 5 and shown[0]["contact_id"].nunique() == 5
    for other in shown[1:]:
        pd.testing.assert_frame_equal(shown[0], other)
    with Warehouse(tmp_path / "a.duckdb") as wh:  # another seed, other rows
        again = masked_examples(wh, "crm_contacts", n=5, seed=7)
    assert set(again["contact_id"]) != set(shown[0]["contact_id"])
