import pandas as pd
import pytest

from cemlib.collect import load_folder, load_mapping, read_table_file
from cemlib.errors import InputError
from tests.collect.conftest import CRM_CP1251, MAPPING, ORDER_LINES, write


def test_cp1251_semicolon_file_reads_as_text(tmp_path):
    path = write(tmp_path / "crm_contacts.csv", CRM_CP1251, "cp1251")
    t = read_table_file(path, "crm_contacts", mapping=MAPPING["crm_contacts"])
    assert t.encoding == "cp1251"
    assert t.delimiter == ";"
    assert t.n_rows == 3
    assert t.renamed == {"ФИО": "full_name", "Телефон": "phone"}
    df = t.frame
    assert all(isinstance(df[c].dtype, pd.StringDtype) for c in df.columns if c != "_source_row")
    # raw is exactly as received: spaces, case, the odd date kept
    assert df.loc[0, "email"] == "Ivan.Petrov+shop@GMAIL.com "
    assert df.loc[1, "birth_date"] == "31.02.1990"
    assert df.loc[0, "full_name"] == "Иванов Иван Иванович"
    assert df.loc[0, "loyalty_card"] == "7700123"
    assert df["loyalty_card"].isna().sum() == 2
    assert list(df["_source_row"]) == [0, 1, 2]


@pytest.mark.parametrize("bom", ["", "\ufeff"])
@pytest.mark.parametrize("sep", [";", ",", "\t"])
def test_utf8_with_or_without_bom_any_delimiter(tmp_path, bom, sep):
    text = bom + ORDER_LINES.replace(";", sep).replace("1 234,50", '"1 234,50"').replace(
        "99,90 руб.", '"99,90 руб."'
    )
    path = write(tmp_path / "order_lines.csv", text)
    t = read_table_file(path, "order_lines")
    assert t.delimiter == sep
    assert t.encoding == ("utf-8-sig" if bom else "utf-8")
    assert list(t.frame.columns) == [
        "line_id",
        "order_id",
        "sku",
        "quantity",
        "price",
        "_source_row",
    ]
    assert t.frame.loc[0, "price"] == "1 234,50"


def test_missing_required_column_names_file_and_column(tmp_path):
    path = write(tmp_path / "order_lines.csv", "order_id;sku;qty;price\nO1;S1;1;10\n")
    with pytest.raises(InputError) as err:
        read_table_file(path, "order_lines")
    msg = str(err.value)
    assert "order_lines.csv" in msg
    assert "'quantity'" in msg
    assert "found ['order_id', 'sku', 'qty', 'price']" in msg
    assert err.value.column == "quantity"


def test_column_mapping_fixes_the_missing_column(tmp_path):
    path = write(tmp_path / "order_lines.csv", "Order;SKU;qty;Price\nO1;S1;1;10\n")
    t = read_table_file(path, "order_lines", mapping={"Order": "order_id", "qty": "quantity"})
    # 'SKU' and 'Price' match canonical names case-insensitively
    assert list(t.frame.columns) == ["order_id", "sku", "quantity", "price", "_source_row"]
    assert t.renamed == {"Order": "order_id", "qty": "quantity", "SKU": "sku", "Price": "price"}


def test_mapping_naming_an_absent_column_is_an_error(tmp_path):
    path = write(tmp_path / "order_lines.csv", "order_id;sku;quantity;price\nO1;S1;1;10\n")
    with pytest.raises(InputError, match="'Количество'"):
        read_table_file(path, "order_lines", mapping={"Количество": "quantity"})


def test_zero_byte_file_is_an_error(tmp_path):
    path = write(tmp_path / "web_events.csv", "")
    with pytest.raises(InputError, match=r"web_events\.csv.*empty file \(0 bytes\)"):
        read_table_file(path, "web_events")


def test_header_only_file_loads_as_zero_rows(tmp_path):
    path = write(tmp_path / "web_events.csv", "event_id;ts;event_type;device_id\n")
    t = read_table_file(path, "web_events")
    assert t.header_only
    assert t.n_rows == 0
    assert list(t.frame.columns) == ["event_id", "ts", "event_type", "device_id", "_source_row"]


def test_undecodable_bytes_with_explicit_encoding(tmp_path):
    path = write(tmp_path / "products.csv", "sku;name\nS1;Чай\n", "cp1251")
    with pytest.raises(InputError, match=r"products\.csv.*cannot decode as utf-8.*line 2"):
        read_table_file(path, "products", encoding="utf-8")


def test_undecodable_in_both_encodings(tmp_path):
    # 0x98 is the one byte cp1251 leaves undefined
    (tmp_path / "products.csv").write_bytes(b"sku;name\nS1;\x98\xff\n")
    with pytest.raises(InputError, match="neither UTF-8 nor cp1251"):
        read_table_file(tmp_path / "products.csv", "products")


def test_unreadable_parquet(tmp_path):
    (tmp_path / "products.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"products\.parquet.*unreadable Parquet"):
        read_table_file(tmp_path / "products.parquet", "products")


def test_malformed_csv(tmp_path):
    path = write(tmp_path / "products.csv", "sku;name\nS1;a;b;c\n")
    with pytest.raises(InputError, match="malformed CSV"):
        read_table_file(path, "products")


def test_parquet_reads_as_text_and_keeps_types(tmp_path):
    df = pd.DataFrame(
        {
            "sku": ["S1", "S2"],
            "price": [10.5, None],
            "margin": [0.2, 0.3],
            "launched": pd.to_datetime(["2024-01-01", "2024-02-01"]),
        }
    )
    df.to_parquet(tmp_path / "products.parquet")
    t = read_table_file(tmp_path / "products.parquet", "products")
    assert t.format == "parquet"
    assert list(t.frame["price"]) == ["10.5", pd.NA]
    assert t.frame.loc[0, "launched"] == "2024-01-01"
    assert t.extra_columns == ["launched"]
    assert t.typed["price"].dtype == "float64"


def test_load_folder_lists_missing_tables_and_needs_headers(russian_export):
    folder = load_folder(russian_export, mapping=MAPPING)
    assert sorted(folder.tables) == ["crm_contacts", "online_orders", "order_lines"]
    assert folder.missing == [
        "pos_receipts",
        "receipt_lines",
        "web_events",
        "support_tickets",
        "products",
    ]
    (russian_export / "online_orders.csv").unlink()
    with pytest.raises(InputError, match="order_lines needs its header table online_orders"):
        load_folder(russian_export, mapping=MAPPING)


def test_load_folder_errors(tmp_path):
    with pytest.raises(InputError, match="source folder not found"):
        load_folder(tmp_path / "nope")
    with pytest.raises(InputError, match="no canonical table found"):
        load_folder(tmp_path)
    write(tmp_path / "products.csv", "sku\nS1\n")
    pd.DataFrame({"sku": ["S1"]}).to_parquet(tmp_path / "products.parquet")
    with pytest.raises(InputError, match="several files for table products"):
        load_folder(tmp_path)


def test_yaml_mapping_with_files(tmp_path):
    write(
        tmp_path / "mapping.yaml",
        "files:\n  crm_contacts: clients_2024.csv\ncrm_contacts:\n  ФИО: full_name\n  Телефон: phone\n",
    )
    columns, files = load_mapping(tmp_path / "mapping.yaml")
    assert columns == MAPPING
    assert files == {"crm_contacts": "clients_2024.csv"}
    write(tmp_path / "clients_2024.csv", CRM_CP1251, "cp1251")
    folder = load_folder(tmp_path, mapping=tmp_path / "mapping.yaml")
    assert folder.tables["crm_contacts"].n_rows == 3
    with pytest.raises(InputError, match="unknown table 'clients'"):
        load_mapping({"clients": {"a": "b"}})


def test_a_mapping_target_that_is_no_column_of_its_table_is_refused():
    # a typo on the canonical side ("fullname") used to load the names under a column nothing
    # reads: matching then ran without names
    typo = {"crm_contacts": {"ФИО": "fullname", "Телефон": "phone"},
            "online_orders": {"Дата заказа": "ordred_at"}}  # fmt: skip
    with pytest.raises(InputError) as err:
        load_mapping(typo)
    msg = str(err.value)
    assert "table 'crm_contacts': 'ФИО' -> 'fullname': not a column of crm_contacts" in msg
    assert "full_name" in msg and err.value.column == "fullname"
    # every table's typo in the one message, not one per run
    assert "table 'online_orders': 'Дата заказа' -> 'ordred_at': not a column" in msg
    assert "\n" not in msg
    typo["crm_contacts"]["ФИО"] = "full_name"
    with pytest.raises(InputError, match="'Дата заказа' -> 'ordred_at': not a column"):
        load_mapping(typo)


def test_a_value_list_fills_a_yes_no_column_and_keeps_their_column(tmp_path):
    write(
        tmp_path / "mapping.yaml",
        "pos_receipts:\n  Чек: receipt_id\n  Дата: purchased_at\n"
        "  Тип операции: {is_return: [Возврат, 'возврат товара']}\n",
    )
    columns, _ = load_mapping(tmp_path / "mapping.yaml")
    path = write(
        tmp_path / "pos_receipts.csv",
        "Чек;Дата;Тип операции\n1;01.02.2025;Продажа\n2;03.02.2025; ВОЗВРАТ \n"
        "3;04.02.2025;\n4;05.02.2025;Возврат товара\n",
    )
    t = read_table_file(path, "pos_receipts", mapping=columns["pos_receipts"])
    assert t.frame["is_return"].tolist() == ["0", "1", None, "1"]
    kept = t.frame["Тип операции"].fillna("").tolist()
    assert kept == ["Продажа", " ВОЗВРАТ ", "", "Возврат товара"]
    assert "Тип операции" in t.extra_columns
    with pytest.raises(InputError, match="a list of values fills only a yes/no column") as err:
        load_mapping({"pos_receipts": {"Тип операции": {"store_id": ["Возврат"]}}})
    assert "is_return" in str(err.value) and err.value.column == "Тип операции"
    with pytest.raises(InputError, match="expected a column name or"):
        load_mapping({"pos_receipts": {"Тип операции": {"is_return": []}}})


def test_trailing_delimiter_of_1c_exports(tmp_path):
    path = write(tmp_path / "products.csv", "sku;name;\nS1;Чай;\nS2;Кофе;\n")
    t = read_table_file(path, "products")
    assert list(t.frame.columns) == ["sku", "name", "_source_row"]
    assert t.n_rows == 2


def test_gzip_csv_in_cp1251(tmp_path):
    import gzip

    (tmp_path / "crm_contacts.csv.gz").write_bytes(gzip.compress(CRM_CP1251.encode("cp1251")))
    folder = load_folder(tmp_path, mapping=MAPPING)
    t = folder.tables["crm_contacts"]
    assert (t.encoding, t.delimiter, t.n_rows) == ("cp1251", ";", 3)
    assert t.frame.loc[2, "full_name"] == "Ёлкин Пётр"


def test_cp1251_detected_even_when_cyrillic_starts_late(tmp_path):
    # a large ASCII head, Cyrillic only far beyond the first read chunk
    rows = "".join(f"S{i};item {i}\n" for i in range(20_000))
    path = write(tmp_path / "products.csv", "sku;name\n" + rows + "S_last;Чай зелёный\n", "cp1251")
    t = read_table_file(path, "products")
    assert t.encoding == "cp1251"
    assert t.frame["name"].iloc[-1] == "Чай зелёный"
    assert t.n_rows == 20_001


def test_duplicate_header_is_an_error(tmp_path):
    path = write(tmp_path / "products.csv", "sku;name;name\nS1;a;b\n")
    with pytest.raises(InputError, match=r"duplicate column\(s\) \['name'\]") as err:
        read_table_file(path, "products")
    assert err.value.column == "name"


TICKETS_RU = (
    "ticket_id;created_at;channel;topic\n"
    "T1;05.03.2024 10:00;звонок;не работает мобильный интернет после смены тарифа\n"
    "T2;06.03.2024 11:30;салон;замена сим-карты и перенос номера с другого оператора\n"
    "T3;07.03.2024 12:45;чат;вопрос о начислениях за роуминг в прошлом месяце\n"
)


@pytest.mark.parametrize("encoding", ["koi8_r", "cp866", "cp1251"])
def test_single_byte_cyrillic_code_page_is_told_from_the_text(tmp_path, encoding):
    """Trial 4 (M1): a KOI8-R file read as cp1251 gave ``ЪЧПОПЛ`` for ``звонок`` with exit 0.
    The code page whose letters look like Russian is chosen."""
    path = write(tmp_path / "support_tickets.csv", TICKETS_RU, encoding)
    t = read_table_file(path, "support_tickets")
    assert t.encoding == encoding
    assert t.frame["channel"].tolist() == ["звонок", "салон", "чат"]


def test_upper_case_cp1251_names_stay_cp1251(tmp_path):
    crm = "contact_id;full_name\n" + "".join(
        f"{i};{name}\n"
        for i, name in enumerate(
            ["ИВАНОВ ИВАН ИВАНОВИЧ", "ПЕТРОВА МАРИЯ СЕРГЕЕВНА", "СИДОРОВ ПЁТР НИКОЛАЕВИЧ"] * 3
        )
    )
    path = write(tmp_path / "crm_contacts.csv", crm, "cp1251")
    t = read_table_file(path, "crm_contacts")
    assert t.encoding == "cp1251" and t.frame["full_name"].iloc[0] == "ИВАНОВ ИВАН ИВАНОВИЧ"


# -- a line with more fields than the header: a row defect, not a bad file -------------------
def _crm_lines(n: int) -> list[str]:
    return [f"C{i};Name {i};+7 916 {1000000 + i};c{i}@mail.ru" for i in range(n)]


def test_one_long_line_is_set_aside_and_the_rest_loads(tmp_path):
    lines = _crm_lines(50)
    lines[20] = "C20;Иванова; Анна;+7 916 1000020;c20@mail.ru"  # an unquoted ';' in the name
    path = write(
        tmp_path / "crm_contacts.csv",
        "contact_id;full_name;phone;email\n" + "\n".join(lines) + "\n",
    )
    t = read_table_file(path, "crm_contacts")
    df = t.frame
    # every line is a row: 49 read + 1 set aside, at its place in the file
    assert t.n_rows == 50
    assert list(df["_source_row"]) == list(range(50))
    bad = df[df["_row_defect"].notna()]
    assert list(bad["_source_row"]) == [20]
    assert bad["_row_defect"].iloc[0] == "5 fields where the header has 4"
    assert bad["_line"].iloc[0] == 22  # the header is line 1, the first data row line 2
    assert bad["_raw_line"].iloc[0] == lines[20]
    assert bad[["contact_id", "full_name", "phone", "email"]].isna().all(axis=None)
    good = df[df["_row_defect"].isna()]
    assert len(good) == 49 and good["contact_id"].notna().all()
    assert df.loc[21, "contact_id"] == "C21" and df.loc[19, "full_name"] == "Name 19"
    assert list(t.long_lines["line"]) == [22]
    assert t.extra_columns == []  # cemlib's own columns are not the user's extra ones


def test_long_first_line_and_quoted_multiline_value(tmp_path):
    text = (
        "contact_id;full_name;phone;email\n"
        "C0;A;B;C;D\n"  # long, and first: pandas would take its first field for an index
        'C1;"Петров\nИван";;\n'  # a quoted value spanning two lines is one row
        "C2;Short\n"  # a short line loads, padded with empty cells
        "\n"
        "C3;X;;x@y.ru\n"
    )
    t = read_table_file(write(tmp_path / "crm_contacts.csv", text), "crm_contacts")
    df = t.frame
    assert list(df["contact_id"].fillna("-")) == ["-", "C1", "C2", "C3"]
    assert df.loc[1, "full_name"] == "Петров\nИван"
    assert pd.isna(df.loc[2, "phone"])
    assert list(df["_line"].dropna()) == [2]
    assert df["_row_defect"].notna().sum() == 1


def test_mostly_long_lines_is_still_a_malformed_file(tmp_path):
    lines = [line + ";x" for line in _crm_lines(10)]  # 10 long lines
    lines += _crm_lines(9)  # 9 good ones: 10 of 19 are long, more than half
    path = write(
        tmp_path / "crm_contacts.csv",
        "contact_id;full_name;phone;email\n" + "\n".join(lines) + "\n",
    )
    with pytest.raises(InputError, match=r"crm_contacts\.csv: malformed CSV.*10 of 19 lines"):
        read_table_file(path, "crm_contacts")


def test_clean_file_has_no_defect_columns(tmp_path):
    path = write(tmp_path / "crm_contacts.csv", "contact_id;full_name\n" + "C1;A\nC2;B\n")
    t = read_table_file(path, "crm_contacts")
    assert "_row_defect" not in t.frame.columns and t.long_lines is None


def test_other_readers_still_refuse_a_long_line(tmp_path):
    from cemlib.io import read_file

    path = write(tmp_path / "x.csv", "a;b\n1;2\n3;4;5\n6;7\n")
    with pytest.raises(InputError, match="malformed CSV"):
        read_file(path)


def test_long_line_in_a_windows_cp1251_export(tmp_path):
    text = "sku;name\r\nS1;Чай\r\nS2;Кофе; молотый\r\nS3;Сахар\r\n"
    t = read_table_file(write(tmp_path / "products.csv", text, "cp1251"), "products")
    assert t.encoding == "cp1251"
    assert list(t.frame["sku"].fillna("-")) == ["S1", "-", "S3"]
    assert t.frame.loc[1, "_raw_line"] == "S2;Кофе; молотый"  # no \r, decoded
    assert t.frame.loc[1, "_line"] == 3
    assert t.frame.loc[1, "_row_defect"] == "3 fields where the header has 2"


def test_a_value_translation_fills_event_type_and_keeps_their_column(tmp_path):
    """Trial 12 F4: a web export's ``add_to_cart`` was read as an unknown type (weighted as a
    view). A mapping translates their values into the contract's vocabulary."""
    write(
        tmp_path / "mapping.yaml",
        "web_events:\n  ID: event_id\n  Время: ts\n"
        "  Тип события: {event_type: {cart: [add_to_cart, В корзину], view: просмотр}}\n",
    )
    columns, _ = load_mapping(tmp_path / "mapping.yaml")
    path = write(
        tmp_path / "web_events.csv",
        "ID;Время;Тип события\n1;01.02.2025;add_to_cart\n2;01.02.2025; В КОРЗИНУ \n"
        "3;01.02.2025;просмотр\n4;01.02.2025;search\n5;01.02.2025;\n6;01.02.2025;wishlist\n",
    )
    t = read_table_file(path, "web_events", mapping=columns["web_events"])
    assert t.frame["event_type"].tolist() == ["cart", "cart", "view", "search", None, "wishlist"]
    kept = t.frame["Тип события"].fillna("").tolist()  # raw keeps what the file held
    assert kept == ["add_to_cart", " В КОРЗИНУ ", "просмотр", "search", "", "wishlist"]
    assert t.mapped == {"Тип события": "event_type"}
    assert "Тип события" in t.extra_columns


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"event_type": {"cart": []}}, r"'cart': expected \{event_type: \{canonical_value"),
        (
            {"event_type": {"cart": ["add_to_cart"], "view": ["ADD_TO_CART"]}},
            "value 'ADD_TO_CART' is listed under both 'cart' and 'view'",
        ),
        ({"is_return": {"1": ["Возврат"]}}, "a yes/no column takes a list of the values"),
    ],
)
def test_a_bad_value_translation_is_one_line_naming_file_and_column(tmp_path, target, message):
    path = write(tmp_path / "m.yaml", "")
    import yaml

    table = "pos_receipts" if "is_return" in target else "web_events"
    path.write_text(yaml.safe_dump({table: {"Тип события": target}}, allow_unicode=True))
    with pytest.raises(InputError, match=message) as err:
        load_mapping(path)
    assert err.value.column == "Тип события"
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_translation_onto_a_column_the_file_has_is_an_error(tmp_path):
    columns, _ = load_mapping({"web_events": {"Тип": {"event_type": {"cart": ["add_to_cart"]}}}})
    path = write(
        tmp_path / "web_events.csv", "event_id;ts;event_type;Тип\n1;01.02.2025;view;add_to_cart\n"
    )
    with pytest.raises(InputError, match="the file already has a column 'event_type'") as err:
        read_table_file(path, "web_events", mapping=columns["web_events"])
    assert err.value.column == "event_type" and str(path) in str(err.value)
