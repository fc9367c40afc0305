import json
import re

import pytest

from cemlib.collect import collect
from cemlib.config import project_root
from cemlib.warehouse import Warehouse


@pytest.mark.slow
def test_01_quality_notebook_runs_twice_with_trend_and_data_docs(tmp_path):
    import papermill as pm

    wh_path = tmp_path / "cem.duckdb"
    with Warehouse(wh_path) as wh:
        collect("synthetic", warehouse=wh, n_people=800, seed=3, run_id="a", progress=False)
    nb = project_root() / "notebooks" / "01_quality.ipynb"
    for run in ("a", "b"):
        run_dir = tmp_path / "reports" / run
        run_dir.mkdir(parents=True)
        headlines = run_dir / "01_quality.headlines.json"
        pm.execute_notebook(
            str(nb),
            str(run_dir / "01_quality.ipynb"),
            parameters={"run_id": run, "warehouse": str(wh_path), "headlines_path": str(headlines)},
            kernel_name="python3",
            progress_bar=False,
        )
        figures = json.loads(headlines.read_text(encoding="utf-8"))
        assert figures["rows conserved"] is True
        assert figures["rows in"] == figures["rows clean"] + figures["rows quarantined"]
        assert 0.5 < figures["quarantined %"] < 5
        assert (run_dir / "01_quality_data_docs" / "index.html").is_file()
    text = (run_dir / "01_quality.ipynb").read_text(encoding="utf-8")
    # the Data Docs are written and named, not linked: offline they are unstyled and call a
    # suite failed when rows were quarantined (issue 16)
    assert "01_quality_data_docs/" in text and "](01_quality_data_docs/index.html)" not in text
    assert "Against the previous run a" in text  # the second run has a trend
    with Warehouse(wh_path, read_only=True) as wh:
        emails = wh.sql("SELECT email FROM raw.crm_contacts WHERE email IS NOT NULL LIMIT 50")
        phones = wh.sql("SELECT phone FROM raw.crm_contacts WHERE phone IS NOT NULL LIMIT 200")
    assert not any(e in text for e in emails["email"])
    docs = "".join(
        p.read_text(encoding="utf-8") for p in (run_dir / "01_quality_data_docs").rglob("*.html")
    )
    digits_in_page = set(re.findall(r"\d{10,11}", re.sub(r"[\s()\-+]", "", text + docs)))
    for phone in phones["phone"]:
        d = re.sub(r"\D", "", phone)
        assert len(d) < 10 or not any(d[-10:] in run for run in digits_in_page)
