"""Session 19's collection changes through stages 00 and 01 on the lake (``engine: spark``):
stage 00 copies ``meta.mapped_columns`` to the lake, so the Spark quality stage no longer calls
a column the mapping read "unknown" (trial 12 F5); a CRM card's second phone and e-mail and a
service ticket's customer name are checked by Spark's stage 01 as by the DuckDB engine's and
reach Spark's identity preparer. Both engines run on the same files; no Splink here."""

from __future__ import annotations

import pytest

import cemlib.collect
from cemlib.engine import Lake
from cemlib.identity.sources import read_sources, source_records
from cemlib.identity.sparkstage import collect_records, prepared_records
from cemlib.quality import QualityStage
from cemlib.quality.report import plain_words
from cemlib.quality.sparkstage import SparkQualityStage
from cemlib.warehouse import Warehouse

from .conftest import AS_OF, NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = [*NEEDS_SPARK, pytest.mark.timeout(600)]

RECEIPTS = (
    "Номер чека;Дата чека;Тип операции;Телефон\n"
    "r1;01.06.2025;Продажа;+7 912 100-00-01\nr2;02.06.2025;Возврат;+7 912 100-00-01\n"
    "r3;03.06.2025;Продажа;+7 912 100-00-03\n"
)
WEB = (
    "ID события;Время;Тип;Устройство\n"
    "1;01.06.2025 10:00;view;d1\n2;01.06.2025 10:01;add_to_cart;d1\n"
    "3;02.06.2025 11:00;В корзину;d2\n4;02.06.2025 11:05;view;d2\n"
)
TICKETS = (
    "Номер заявки;Дата обращения;ФИО клиента;Телефон\n"
    "С-1;05.06.2025;Орлова Анна;+7 999 123-45-67\n"
    "С-2;06.06.2025;Орлов Михаил;+7 999 123-45-67\n"
    "С-3;07.06.2025;-;+7 999 765-43-21\n"
)
CRM = (
    "Лицевой счет;ФИО;Телефон;Доп. телефон;Email;Доп. email;Дата подключения\n"
    "A1;Орлов Иван Петрович;+7 912 100-00-01;8 (912) 200-00-02;ivan.orlov@mail.ru;;10.01.2024\n"
    "A2;Орлов Иван Петрович;+7 912 200-00-02;;;;11.02.2024\n"
    "B1;Седова Анна Павловна;+7 912 100-00-03;;anna.sedova@ya.ru;Anna.Sedova@gmail.com;12.01.2024\n"
    "B2;Седова Анна Павловна;;;annasedova@gmail.com;;13.01.2024\n"
    # unreadable second phone and e-mail: emptied with a warning, the row kept
    "C1;Ким Лев Сергеевич;+7 912 100-00-04;12;lev.kim@ya.ru;нет;14.01.2024\n"
)
MAPPING = """\
crm_contacts:
  Лицевой счет: contact_id
  ФИО: full_name
  Телефон: phone
  Доп. телефон: phone2
  Email: email
  Доп. email: email2
  Дата подключения: registered_at
pos_receipts:
  Номер чека: receipt_id
  Дата чека: purchased_at
  Тип операции: {is_return: [Возврат]}
  Телефон: phone
support_tickets:
  Номер заявки: ticket_id
  Дата обращения: created_at
  ФИО клиента: full_name
  Телефон: phone
web_events:
  ID события: event_id
  Время: ts
  Устройство: device_id
  Тип: {event_type: {cart: [add_to_cart, В корзину]}}
"""


@pytest.fixture(scope="module")
def both(spark, tmp_path_factory):
    """``(warehouse, lake, DuckDB quality report, Spark quality report)``: the files collected
    once (the warehouse and, for engine spark, the lake), then stage 01 on each engine."""
    root = tmp_path_factory.mktemp("session19")
    src = root / "src"
    src.mkdir()
    (src / "crm_contacts.csv").write_text(CRM, encoding="utf-8")
    (src / "pos_receipts.csv").write_text(RECEIPTS, encoding="cp1251")
    (src / "web_events.csv").write_text(WEB, encoding="utf-8")
    (src / "support_tickets.csv").write_text(TICKETS, encoding="cp1251")
    (root / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    lake = Lake(root / "lake", spark_master="local[2]")
    # stage 00 as cem run calls it with engine spark: the warehouse, then copied to the lake
    cemlib.collect.run(root / "w.duckdb", run_id="r", as_of=AS_OF, source=str(src),
                       mapping=root / "mapping.yaml", progress=False, lake=lake)  # fmt: skip
    with Warehouse(root / "w.duckdb") as wh:
        duck = QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
    on_spark = SparkQualityStage(progress=False).run_spark(spark, lake, run_id="r", as_of=AS_OF)
    return root / "w.duckdb", lake, duck, on_spark


def test_mapped_columns_reach_the_lake_and_are_not_unknown(both):
    wh_path, lake, duck, on_spark = both
    with Warehouse(wh_path, read_only=True) as wh:
        want = wh.sql('SELECT "table", "column", target FROM meta.mapped_columns ORDER BY ALL')
    got = lake.sql('SELECT "table", "column", target FROM meta.mapped_columns ORDER BY ALL')
    assert got.values.tolist() == want.values.tolist()
    assert ["pos_receipts", "Тип операции", "is_return"] in got.values.tolist()
    assert ["web_events", "Тип", "event_type"] in got.values.tolist()
    spark_warnings = [plain_words(w) for w in on_spark.warnings]
    assert not [w for w in spark_warnings if "unknown column" in w], spark_warnings
    # the warnings are the DuckDB engine's, one for one
    assert sorted(spark_warnings) == sorted(plain_words(w) for w in duck.warnings)
    types = dict(lake.sql("SELECT event_type, count(*) AS n FROM clean.web_events GROUP BY 1")
                 .values.tolist())  # fmt: skip
    assert types == {"view": 2, "cart": 2}


def test_second_phones_and_ticket_names_checked_as_on_duckdb(both):
    wh_path, lake, duck, on_spark = both
    cols = ["contact_id", "phone2", "phone2_e164", "email2", "email2_norm", "phone_e164"]
    query = f"SELECT {', '.join(cols)} FROM clean.crm_contacts ORDER BY contact_id"
    with Warehouse(wh_path, read_only=True) as wh:
        want_crm = wh.sql(query)
        want_tickets = wh.sql("SELECT ticket_id, full_name FROM clean.support_tickets ORDER BY 1")
    got_crm = lake.sql(query)
    got_tickets = lake.sql("SELECT ticket_id, full_name FROM clean.support_tickets ORDER BY 1")
    assert got_crm.astype(str).values.tolist() == want_crm.astype(str).values.tolist()
    c1 = got_crm.set_index("contact_id").loc["C1"]
    assert c1[["phone2", "phone2_e164", "email2", "email2_norm"]].isna().all()  # emptied
    assert got_crm.set_index("contact_id").loc["A1", "phone2_e164"] == "+79122000002"
    assert got_tickets.values.tolist() == want_tickets.values.tolist() == [
        ["С-1", "Орлова Анна"], ["С-2", "Орлов Михаил"], ["С-3", None],
    ]  # fmt: skip
    assert on_spark.conservation.set_index("table")["quarantined"].sum() == 0


def test_spark_preparer_reads_second_phones_and_ticket_names(both, spark):
    wh_path, lake, _, _ = both
    records = collect_records(prepared_records(spark, lake)).astype("string")
    with Warehouse(wh_path, read_only=True) as wh:
        local = source_records(read_sources(wh)).astype("string")
    key = ["source", "record_id"]
    a, b = records.sort_values(key, ignore_index=True), local.sort_values(key, ignore_index=True)
    assert len(a) == len(b) == 15  # 5 cards, 3 receipts, 4 events, 3 tickets
    for c in a.columns:  # every prepared value is the DuckDB engine's, record by record
        assert a[c].fillna("<NA>").equals(b[c].fillna("<NA>")), c
    crm = records[records["source"] == "crm_contacts"].set_index("record_id")
    assert crm.loc["A1", "phone_2"] == "+79122000002"
    assert crm.loc["B1", "email_2"] == "annasedova@gmail.com"  # the e-mail key (Gmail: no dots)
    assert crm[["phone_2", "email_2"]].notna().sum().tolist() == [1, 1]  # C1's emptied
    tickets = records[records["source"] == "support_tickets"].set_index("record_id")
    assert tickets.loc["С-1", "last_name"] is not None and tickets["last_name"].notna().sum() == 2
    assert tickets["first_name"].notna().sum() == 2  # С-3's placeholder is no name
