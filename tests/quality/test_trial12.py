"""Trial 12's collection findings through the real stages (collect from files with a mapping,
then Great Expectations): a web export's ``add_to_cart`` translated to ``cart`` by the mapping
(F4), the warning that names the known event types, a column the mapping read is not "unknown"
(F5), and a service ticket's customer name kept as ``full_name`` (F6)."""

from __future__ import annotations

from cemlib.collect import collect
from cemlib.quality import QualityStage
from cemlib.quality.report import plain_words

AS_OF = "2025-06-30"

WEB = (
    "ID события;Время;Тип;Устройство\n"
    "1;01.06.2025 10:00;view;d1\n2;01.06.2025 10:01;add_to_cart;d1\n"
    "3;02.06.2025 11:00;В корзину;d2\n4;02.06.2025 11:05;view;d2\n"
    "5;03.06.2025 12:00;wishlist;d3\n6;03.06.2025 12:00;wishlist;d3\n"
)
RECEIPTS = (
    "Номер чека;Дата чека;Тип операции\n"
    "r1;01.06.2025;Продажа\nr2;02.06.2025;Возврат\nr3;03.06.2025;Продажа\n"
)
TICKETS = (
    "Номер заявки;Дата обращения;ФИО клиента;Телефон\n"
    "С-1;05.06.2025;Орлова Анна;+7 999 123-45-67\n"
    "С-2;06.06.2025;Орлов Михаил;+7 999 123-45-67\n"
    "С-3;07.06.2025;-;+7 999 765-43-21\n"
)
MAPPING = """\
pos_receipts:
  Номер чека: receipt_id
  Дата чека: purchased_at
  Тип операции: {is_return: [Возврат]}
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


def _run(wh, tmp_path, mapping: str | None):
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    (folder / "web_events.csv").write_text(WEB, encoding="utf-8")
    (folder / "pos_receipts.csv").write_text(RECEIPTS, encoding="cp1251")
    (folder / "support_tickets.csv").write_text(TICKETS, encoding="cp1251")
    path = tmp_path / "mapping.yaml"
    path.write_text(mapping or MAPPING, encoding="utf-8")
    collect(str(folder), warehouse=wh, run_id="r", as_of=AS_OF, mapping=path, progress=False)
    return QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)


def test_event_types_translated_by_the_mapping_and_the_warning_names_the_known_ones(wh, tmp_path):
    report = _run(wh, tmp_path, None)
    types = dict(
        wh.con.execute("SELECT event_type, count(*) FROM clean.web_events GROUP BY 1").fetchall()
    )
    assert types == {"view": 2, "cart": 2, "wishlist": 2}  # 6 rows in, 6 clean
    warnings = [plain_words(w) for w in report.warnings]
    assert (
        "web_events: unknown event type: 2 of 6 rows, e.g. wishlist "
        "(expected one of view, cart, search, click, purchase)"
    ) in warnings
    # the columns the mapping read to fill is_return and event_type are not "unknown" (F5)
    assert not [w for w in warnings if "unknown column" in w], warnings
    raw = wh.con.execute('SELECT "Тип" FROM raw.web_events ORDER BY _source_row').fetchall()
    assert [r[0] for r in raw][1:3] == ["add_to_cart", "В корзину"]  # raw keeps the file's text
    returns = wh.con.execute("SELECT count(*) FROM clean.pos_receipts WHERE is_return").fetchone()
    assert returns == (1,)


def test_without_a_translation_add_to_cart_is_named_in_the_warning(wh, tmp_path):
    plain = MAPPING.replace(
        "  Тип: {event_type: {cart: [add_to_cart, В корзину]}}", "  Тип: event_type"
    )
    report = _run(wh, tmp_path, plain)
    warnings = [plain_words(w) for w in report.warnings]
    hit = [w for w in warnings if w.startswith("web_events: unknown event type")]
    assert hit == [
        "web_events: unknown event type: 4 of 6 rows, e.g. wishlist, add_to_cart, В корзину "
        "(expected one of view, cart, search, click, purchase)"
    ]


def test_a_ticket_keeps_the_customers_name_and_a_placeholder_is_left_empty(wh, tmp_path):
    report = _run(wh, tmp_path, None)
    names = wh.con.execute(
        "SELECT ticket_id, full_name FROM clean.support_tickets ORDER BY ticket_id"
    ).fetchall()
    assert names == [("С-1", "Орлова Анна"), ("С-2", "Орлов Михаил"), ("С-3", None)]
    warnings = [plain_words(w) for w in report.warnings]
    assert not [w for w in warnings if "ФИО клиента" in w]  # mapped: not an unknown column
    assert (
        "support_tickets: 1 full_name values not valid: left empty in clean, rows kept "
        "(customer name holds no letter (a placeholder such as '-' or '0'); identity does not "
        "read it as a name)"
    ) in warnings
