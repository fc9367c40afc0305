"""Small hand-made source folders (as a user's exports would look) and a fresh warehouse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"


def write_sources(folder: Path, tables: dict[str, pd.DataFrame], **to_csv) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False, **to_csv)
    return folder


def base_tables() -> dict[str, pd.DataFrame]:
    """A tiny shop with one known defect of each kind; row i is named in the comments."""
    products = pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "name": ["Чай", "Кофе", "Сахар"],
            "category": ["drinks", "drinks", "food"],
            "price": [100.0, 250.5, 60.0],
            "margin": [0.3, 0.25, 0.1],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"],
            "ordered_at": [
                "2025-06-01 10:00",  # clean
                "2026-01-01 12:00",  # 1 after as_of
                "2019-03-01 09:00",  # 2 before start
                "2025-05-05 08:00",  # clean
                "31.02.2025",  # 4 unparseable
                "2025-06-30 23:59",  # clean: as_of is inclusive
                "2025-04-04 10:00",  # 6 malformed phone: emptied in clean, row kept
                "2025-04-05 11:00",  # 7 malformed email: emptied in clean, row kept
            ],
            "email": [
                "a@mail.ru",
                "b@mail.ru",
                None,
                "D.Ivanov@Gmail.com",
                None,
                "f@ya.ru",
                None,
                "ivan.mail.ru",
            ],
            "phone": [
                "+7 (999) 123-45-67",
                None,
                "8 999 1234567",
                None,
                "9991234567",
                None,
                "12-34",
                None,
            ],
        }
    )
    lines = pd.DataFrame(
        {
            "line_id": ["l1", "l2", "l3", "l4", "l5", "l6", "l7"],
            "order_id": ["o1", "o1", "o4", "zz", "o6", "o6", "o4"],  # 3 orphan
            "sku": ["A", "B", "C", "A", "X9", "A", "B"],  # 4 unknown sku
            "quantity": [1, 2, 1, 1, 1, -1, 1],  # 5 negative quantity
            "price": [100.0, 250.5, 60.0, 100.0, 10.0, 100.0, -5.0],  # 6 negative price
        }
    )
    return {"products": products, "online_orders": orders, "order_lines": lines}


# rows (table, _source_row) that base_tables() makes defective
BASE_DEFECTS = {
    ("online_orders", 1),
    ("online_orders", 2),
    ("online_orders", 4),
    ("order_lines", 3),
    ("order_lines", 4),
    ("order_lines", 5),
    ("order_lines", 6),
}

# rows (table, _source_row, column) whose identifier base_tables() makes invalid: the row is
# kept, the value emptied in clean
BASE_BLANKED = {("online_orders", 6, "phone"), ("online_orders", 7, "email")}


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "cem.duckdb") as w:
        yield w


@pytest.fixture
def base_dir(tmp_path) -> Path:
    return write_sources(tmp_path / "src", base_tables())


@pytest.fixture
def base_defects() -> set[tuple[str, int]]:
    return set(BASE_DEFECTS)


@pytest.fixture
def sources():
    """``sources(folder, tables, **to_csv)`` writes CSV files named after the tables."""
    return write_sources


@pytest.fixture
def tables():
    return base_tables()
