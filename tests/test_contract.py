"""The stage contract: every stage's ``run`` has one signature, returns a ``StageResult``
naming what it read and wrote, and stops on a missing input instead of reading another table."""

from __future__ import annotations

import importlib
import inspect

import pytest

from cemlib.contract import STAGE_TABLES, StageResult, require_inputs, writer_of
from cemlib.errors import InputError
from cemlib.pipeline.stages import STAGES
from cemlib.warehouse import Warehouse
from tests.warehouses import AS_OF, checked_world


def test_every_stage_package_exports_run_with_the_common_signature():
    for package in STAGE_TABLES:
        run = importlib.import_module(f"cemlib.{package}").run
        params = inspect.signature(run).parameters
        assert list(params)[0] == "wh", package
        for name in ("run_id", "as_of", "seed"):
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (package, name)
        assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()), package


def test_the_pipeline_registry_declares_the_contract_tables():
    assert [s.package for s in STAGES] == list(STAGE_TABLES)
    for s in STAGES:
        assert (s.reads, s.writes) == (
            STAGE_TABLES[s.package].reads,
            STAGE_TABLES[s.package].writes,
        )
    assert writer_of("clean.crm_contacts") == "quality" and writer_of("identity.map") == "identity"
    assert writer_of("marts.churn_scores") == "churn" and writer_of("nowhere.table") is None


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every stage's ``run`` in pipeline order on one 400-person world."""
    import cemlib.churn
    import cemlib.identity
    import cemlib.monitor
    import cemlib.offers

    path = tmp_path_factory.mktemp("contract") / "w.duckdb"
    checked_world(path, n_people=400, seed=4, run_id="c")
    out: dict[str, StageResult] = {}
    with Warehouse(path) as wh:
        out["identity"] = cemlib.identity.run(wh, run_id="c", as_of=AS_OF, seed=4)
        out["churn"] = cemlib.churn.run(wh, run_id="c", as_of=AS_OF, seed=4, horizons=(90, 365))
        out["offers"] = cemlib.offers.run(wh, run_id="c", as_of=AS_OF, seed=4, horizon_days=60)
        out["monitor"] = cemlib.monitor.run(wh, run_id="c", as_of=AS_OF, seed=4)
        stamps = {t: wh.stamp(*t.split(".")) for r in out.values() for t in r.writes}
    return out, stamps


def test_each_run_reports_its_tables_and_headlines(pipeline):
    results, stamps = pipeline
    for stage, res in results.items():
        assert (res.stage, res.run_id, res.as_of) == (stage, "c", AS_OF)
        declared = STAGE_TABLES[stage]
        # every required output is written, stamped with this run
        for entry in declared.writes:
            assert any(t == entry or t.startswith(entry + ".") for t in res.writes), (stage, entry)
        assert all(stamps[t] is None or stamps[t][0] == "c" for t in res.writes)
    assert (
        "clean.crm_contacts" in results["churn"].reads and "identity.map" in results["churn"].reads
    )
    churn, offers = results["churn"], results["offers"]
    assert churn.headlines["customers scored"] == len(churn.detail.scores) > 100
    assert (
        offers.headlines["profiles with offers"]
        == offers.detail.all_offers["customer_id"].nunique()
    )
    assert results["identity"].headlines["profiles"] == results["monitor"].headlines["profiles"]


def test_a_missing_input_names_the_table_and_the_stage_that_writes_it(tmp_path):
    import cemlib.churn
    import cemlib.collect
    import cemlib.quality

    path = tmp_path / "w.duckdb"
    cemlib.collect.run(path, run_id="r", as_of=AS_OF, seed=1, n_people=150, progress=False)
    with Warehouse(path) as wh:
        with pytest.raises(
            InputError, match="needs clean, which is missing .written by the quality"
        ):
            cemlib.churn.run(wh, run_id="r", as_of=AS_OF, seed=1)
        assert not wh.has_table("marts", "churn_scores")
        cemlib.quality.run(wh, run_id="r", as_of=AS_OF, seed=1, progress=False)
        with pytest.raises(InputError, match="needs identity.map, .* identity stage"):
            cemlib.churn.run(wh, run_id="r", as_of=AS_OF, seed=1)
        # keyed by the synthetic truth for evaluation, the truth replaces identity.map
        assert "truth.record_person" in require_inputs(
            wh, "churn", instead={"identity.map": "truth.record_person"}
        )
    with Warehouse(tmp_path / "empty.duckdb") as wh, pytest.raises(InputError, match="collect"):
        cemlib.quality.run(wh, run_id="r", as_of=AS_OF, seed=1, progress=False)


@pytest.mark.parametrize("package", list(STAGE_TABLES))
def test_a_stage_run_refuses_an_ambiguous_as_of_before_it_reads_anything(package, tmp_path):
    run = importlib.import_module(f"cemlib.{package}").run
    path = tmp_path / "cem.duckdb"
    for bad in ("06/07/2025", "2025-31-06"):
        with pytest.raises(InputError, match=f"'as_of' expects a date YYYY-MM-DD, got '{bad}'"):
            run(path, run_id="r", as_of=bad, seed=1)
    assert not path.exists()  # checked before the warehouse is even opened
