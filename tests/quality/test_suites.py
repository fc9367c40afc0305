from pathlib import Path

import pytest

from cemlib.errors import InputError
from cemlib.quality import RunParams, load_suite, load_suites
from cemlib.quality.suites import default_suites_dir

CANONICAL = {
    "crm_contacts",
    "online_orders",
    "order_lines",
    "pos_receipts",
    "receipt_lines",
    "web_events",
    "support_tickets",
    "products",
}


def test_one_suite_per_canonical_table_with_severity_and_reason():
    suites = load_suites()
    assert set(suites) == CANONICAL
    for suite in suites.values():
        assert suite.path.parent == default_suites_dir()
        assert len(suite.checks) >= 6
        for check in suite.checks:
            assert check.severity in ("critical", "warning")
            assert len(check.reason) > 8


def test_every_expectation_builds_a_great_expectations_object():
    params = RunParams(
        as_of="2025-06-30", start="2022-01-01", previous_counts={t: 100 for t in CANONICAL}
    )
    built = 0
    for table, suite in load_suites().items():
        for i, check in enumerate(suite.checks):
            kwargs = check.resolved_kwargs(params, table)
            assert kwargs is not None
            if hasattr(kwargs.get("value_set"), "table"):
                kwargs["value_set"] = ["x"]
            exp = check.to_gx(kwargs, i)
            assert exp.severity == check.severity
            assert exp.meta["reason"] == check.reason
            built += 1
    assert built > 80


def test_volume_check_only_once_a_previous_run_exists():
    suite = load_suites()["online_orders"]
    volume = [c for c in suite.checks if "volume_min" in str(c.kwargs)][0]
    assert volume.resolved_kwargs(RunParams(), "online_orders") is None
    kw = volume.resolved_kwargs(RunParams(previous_counts={"online_orders": 1000}), "online_orders")
    assert kw == {"min_value": 500, "max_value": 1500}


def test_bad_suite_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "x.yaml"
    bad.write_text(
        "table: x\nexpectations:\n  - type: expect_column_values_to_not_be_null\n"
        "    kwargs: {column: a}\n    severity: fatal\n    reason: because\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="severity"):
        load_suite(bad)
    bad.write_text(
        "table: x\nexpectations:\n  - type: expect_column_values_to_not_be_null\n"
        "    kwargs: {column: a}\n    severity: warning\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="reason"):
        load_suite(bad)


def test_keep_is_an_option_of_uniqueness_only(tmp_path):
    suite = tmp_path / "online_orders.yaml"
    entry = (
        "table: online_orders\nexpectations:\n  - type: {type}\n    kwargs: {{column: order_id}}\n"
        "    keep: {keep}\n    severity: critical\n    reason: r\n"
    )
    suite.write_text(entry.format(type="expect_column_values_to_be_unique", keep="identical"))
    assert load_suite(suite).checks[0].keep == "identical"
    suite.write_text(entry.format(type="expect_column_values_to_be_unique", keep="last"))
    with pytest.raises(InputError, match="'keep: last' is not an option"):
        load_suite(suite)
    suite.write_text(entry.format(type="expect_column_values_to_not_be_null", keep="first"))
    with pytest.raises(InputError, match="first or identical"):
        load_suite(suite)


def test_checks_are_named_apart_by_strict_bounds_and_repeats_refused(tmp_path):
    suite = tmp_path / "products.yaml"
    check = (
        "  - type: expect_column_values_to_be_between\n    kwargs: {{column: price, min_value: 0{x}}}\n"
        "    severity: {sev}\n    reason: r{i}\n"
    )
    head = "table: products\nexpectations:\n"
    suite.write_text(head + check.format(x="", sev="critical", i=1)
                     + check.format(x=", strict_min: true", sev="warning", i=2))  # fmt: skip
    names = [c.name for c in load_suite(suite).checks]
    assert names == [
        "expect_column_values_to_be_between(price, min_value=0)",
        "expect_column_values_to_be_between(price, min_value=0, strict_min)",
    ]
    suite.write_text(head + check.format(x="", sev="critical", i=1)
                     + check.format(x="", sev="warning", i=2))  # fmt: skip
    with pytest.raises(InputError, match="the same check as expectation #1") as err:
        load_suite(suite)
    assert "products.yaml expectation #2" in str(err.value)
