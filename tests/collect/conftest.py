"""Small hand-made exports as Russian systems write them."""

from __future__ import annotations

from pathlib import Path

import pytest

CRM_CP1251 = (
    "contact_id;ФИО;Телефон;email;birth_date;registered_at;consent_email;consent_sms;loyalty_card\r\n"
    "1;Иванов Иван Иванович;8 (999) 123-45-67;Ivan.Petrov+shop@GMAIL.com ;05.03.1990;05.03.2024 14:30;1;да;7700123\r\n"
    "2;Мария Сергеевна Петрова;+7 999 765 43 21 доб. 12;maria@ya.ru;31.02.1990;2024-03-06 09:15:00;0;нет;\r\n"
    "3;Ёлкин Пётр;12345;not-an-email;;07.03.2024;;;\r\n"
)

ORDERS = (
    "order_id;ordered_at;email;phone;device_id;delivery_address\n"
    "O1;01.07.2024 10:00;a@b.ru;89991234567;d1;Москва, ул. Ленина, 1\n"
    "O2;2024-07-02 11:30:00;;;d2;\n"
    "O3;31.12.2025 23:59;c@d.ru;;;\n"
)

ORDER_LINES = (
    "line_id;order_id;sku;quantity;price\n"
    "L1;O1;S1;2;1 234,50\n"
    "L2;O1;S2;1;99,90 руб.\n"
    "L3;O2;S1;1;abc\n"
    "L4;O3;S3;3;10\n"
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def russian_export(tmp_path: Path) -> Path:
    """A folder with a cp1251 ';' CRM file (needs a mapping for ФИО/Телефон), UTF-8 orders with
    a BOM, and order lines with decimal commas."""
    folder = tmp_path / "export"
    folder.mkdir()
    write(folder / "crm_contacts.csv", CRM_CP1251, "cp1251")
    write(folder / "online_orders.csv", "\ufeff" + ORDERS)
    write(folder / "order_lines.csv", ORDER_LINES)
    return folder


MAPPING = {"crm_contacts": {"ФИО": "full_name", "Телефон": "phone"}}
