import json
import re
from pathlib import Path

import pytest

from cemlib.warehouse import Warehouse
from tests.warehouses import checked_world

NB = str(Path(__file__).resolve().parents[2] / "notebooks" / "02_profiles.ipynb")


def test_notebook_stored_without_outputs():
    nb = json.loads(Path(NB).read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "parameters" in nb["cells"][0]["metadata"]["tags"]
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.slow
def test_notebook_runs_and_writes_identity_tables(tmp_path):
    papermill = pytest.importorskip("papermill")
    wh_path = tmp_path / "cem.duckdb"
    checked_world(wh_path, n_people=600, seed=3, as_of="2025-06-30")  # stages 00 and 01
    out = tmp_path / "out.ipynb"
    heads = tmp_path / "h.json"
    papermill.execute_notebook(
        NB,
        str(out),
        parameters={"warehouse": str(wh_path), "seed": 3, "headlines_path": str(heads)},
        kernel_name="python3",
        progress_bar=False,
    )
    figures = json.loads(heads.read_text())
    assert figures["profiles"] > 300 and figures["pairwise F1"] > 0.8
    assert 0 <= figures["false-merge rate"] < 0.10  # of attached profiles, small world
    with Warehouse(wh_path, read_only=True) as wh:
        m = wh.read_table("identity", "map")
        p = wh.read_table("identity", "profiles")
        links = wh.read_table("identity", "links")
        raw = sum(
            len(wh.read_table("staging", t))
            for t in (
                "crm_contacts",
                "online_orders",
                "pos_receipts",
                "web_events",
                "support_tickets",
            )
        )
    assert len(m) <= raw and len(m) > 0.95 * raw  # every (distinct-id) record mapped
    assert m["profile_id"].nunique() == len(p)
    assert {"rule", "match_weight", "agreeing"} <= set(links.columns)
    nb = json.loads(out.read_text(encoding="utf-8"))
    texts = [
        "".join(v) if isinstance(v, list) else str(v)
        for c in nb["cells"]
        for o in c.get("outputs", [])
        for k, v in {**o.get("data", {}), "text": o.get("text", "")}.items()
        if not k.startswith("image/")
    ]
    rendered = "\n".join(texts)
    assert "<table" in rendered  # tables were rendered ...
    assert not re.search(r"\+7\d{10}|\b8\d{10}\b", rendered)  # ... without raw phones
    assert not re.search(r"[A-Za-z0-9._-]{2,}@", rendered)  # ... or raw emails
