"""Quality warnings in plain words, without the Great Expectations call (trial 8 L5)."""

from cemlib.quality.report import plain_words


def test_the_suite_reason_replaces_the_expectation_call():
    raw = (
        "table online_orders: expect_column_values_to_be_in_set(contact_id, "
        "value_set={ref:crm_contacts.contact_id}) failed (contact_id names no CRM record "
        "(identity ignores it; the other identifiers decide)); observed 1 of 12096 rows"
    )
    assert plain_words(raw) == (
        "online_orders: contact_id names no CRM record (identity ignores it; the other "
        "identifiers decide): 1 of 12,096 rows"
    )


def test_bounds_in_words_and_other_warnings_unchanged():
    raw = (
        "table pos_receipts: expect_table_row_count_to_be_between() failed (the table holds "
        "rows); observed 0, expected min_value 1"
    )
    assert plain_words(raw) == "pos_receipts: the table holds rows: 0 (expected at least 1)"
    other = "patients.csv: 1 of 19,079 lines set aside (more fields than the header; line 4323)"
    assert plain_words(other) == other
