"""Execute 00_collect.ipynb with Papermill on a small synthetic world."""

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from cemlib.warehouse import Warehouse

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "00_collect.ipynb"


@pytest.mark.slow
def test_collect_notebook_runs_and_writes_tables(tmp_path):
    wh_path = tmp_path / "cem.duckdb"
    headlines = tmp_path / "headlines.json"
    out = tmp_path / "00_collect.out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={
            "run_id": "nbtest",
            "n_people": 300,
            "seed": 7,
            "warehouse": str(wh_path),
            "headlines_path": str(headlines),
        },
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    with Warehouse(wh_path, read_only=True) as wh:
        raw, staging, truth = wh.tables("raw"), wh.tables("staging"), wh.tables("truth")
        assert (
            set(raw)
            == set(staging)
            >= {"crm_contacts", "online_orders", "pos_receipts", "web_events"}
        )
        assert {"people", "record_person", "defects"} <= set(truth)
        for t in raw:
            n_raw = wh.sql(f"SELECT count(*) AS n FROM raw.{t}")["n"][0]
            n_stg = wh.sql(f"SELECT count(*) AS n FROM staging.{t}")["n"][0]
            assert n_raw == n_stg
            assert wh.stamp("staging", t)[0] == "nbtest"
        n_people = wh.sql("SELECT count(*) AS n FROM truth.people")["n"][0]
        assert n_people == 300
        rows = sum(wh.sql(f"SELECT count(*) AS n FROM raw.{t}")["n"][0] for t in raw)
    figures = json.loads(headlines.read_text(encoding="utf-8"))
    assert figures["rows loaded"] == rows
    assert figures["tables loaded"] == 8
    nb = nbformat.read(str(out), as_version=4)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 4
    # no raw phone or email in anything rendered
    rendered = json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)
    with Warehouse(wh_path, read_only=True) as wh:
        phones = wh.sql("SELECT phone_e164 FROM staging.crm_contacts WHERE phone_e164 IS NOT NULL")
        emails = wh.sql("SELECT email_norm FROM staging.crm_contacts WHERE email_norm IS NOT NULL")
    assert not any(p in rendered for p in phones["phone_e164"])
    assert not any(e in rendered for e in emails["email_norm"])


@pytest.mark.slow
def test_collect_notebook_on_own_exports_with_mapping(russian_export, tmp_path):
    from tests.collect.conftest import write

    mapping = write(
        tmp_path / "mapping.yaml", "crm_contacts:\n  ФИО: full_name\n  Телефон: phone\n"
    )
    write(russian_export / "web_events.csv", "event_id;ts;event_type;email\n")  # header only
    wh_path = tmp_path / "cem.duckdb"
    headlines = tmp_path / "headlines.json"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        parameters={
            "source": str(russian_export),
            "mapping": str(mapping),
            "warehouse": str(wh_path),
            "headlines_path": str(headlines),
            "n_examples": 2,
        },
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    figures = json.loads(headlines.read_text(encoding="utf-8"))
    assert figures["tables loaded"] == 4
    assert figures["rows loaded"] == 10
    assert figures["values not parseable"] == 4
    with Warehouse(wh_path, read_only=True) as wh:
        assert wh.tables("truth") == []
        assert len(wh.read_table("staging", "web_events")) == 0
