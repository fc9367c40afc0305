"""No personal data of the source in any rendered report."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.warehouse import Warehouse
from tests.pipeline.pii import SourcePII, scan_files


def test_scanner_finds_planted_personal_data():
    """The scanner itself: reformatted phones, case-changed emails, names in either order."""
    pii = SourcePII.from_tables(
        {
            "crm_contacts": pd.DataFrame(
                {
                    "full_name": ["Иванов Иван Петрович", None],
                    "last_name": [None, "Smirnova"],
                    "first_name": [None, "Olga"],
                    "phone": ["+7 (999) 123-45-67", "8 912 0001122"],
                    "email": ["Ivan.Petrov@Mail.ru", "olga@ya.ru"],
                }
            ),
            "online_orders": pd.DataFrame({"delivery_address": ["г. Казань, ул. Баумана, д. 5"]}),
            "products": pd.DataFrame({"name": ["Чайник Электрический"]}),
        }
    )
    assert pii.phones == {"9991234567", "9120001122"}
    page = (
        "<td>89991234567</td><p>ivan.petrov@mail.ru</p><p>Olga   Smirnova</p>"
        "<p>ИВАНОВ ИВАН</p><p>Г. Казань, ул. Баумана, д. 5</p>"
        '<img src="data:image/png;base64,9991234567AAAA">'
    )
    hits = pii.find(page)
    assert len(hits) == 5, hits
    assert "phone '89991234567'" in hits and "email 'ivan.petrov@mail.ru'" in hits
    assert "name 'olga smirnova'" in hits and "name 'иванов иван'" in hits
    masked = "<td>+7 *** ***-45-67</td><td>i***@mail.ru</td><td>И. И. П.</td><td>Чайник Электрический</td>"
    assert pii.find(masked) == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_full_run_reports_hold_no_source_personal_data(full_run):
    run, cfg = full_run
    assert run.stages[0].status == "ok", run.stages[0].error_summary
    with Warehouse(cfg.warehouse_path, read_only=True) as wh:
        tables = {name: wh.read_table("raw", name) for name in wh.tables("raw")}
    assert "crm_contacts" in tables
    pii = SourcePII.from_tables(tables)
    assert len(pii.phones) > 300 and len(pii.emails) > 300 and len(pii.name_pairs) > 300

    # positive control on the real formats: the raw rows themselves are found
    leaked = tables["crm_contacts"].head(20).to_html()
    kinds = {hit.split()[0] for hit in pii.find(leaked)}
    assert kinds >= {"phone", "email", "name"}, kinds

    # every HTML of the run, including what stages write beside their reports (GE Data Docs)
    pages = sorted(cfg.run_dir.rglob("*.html")) + [cfg.reports_path / "index.html"]
    ran = [s for s in run.stages if s.html]
    assert len(pages) >= 2 * len(ran) + 2
    assert scan_files(pages, pii) == {}
