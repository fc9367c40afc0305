"""Profile-level marts shared by the churn and next-offer stages."""

from cemlib.marts.covariates import profile_covariates
from cemlib.marts.transactions import (
    TRANSACTION_COLUMNS,
    profile_transactions,
    returned_items,
    sales_headers_sql,
    sales_lines_sql,
    source_schema,
    unattributed_orders,
)

__all__ = [
    "TRANSACTION_COLUMNS",
    "profile_covariates",
    "profile_transactions",
    "returned_items",
    "sales_headers_sql",
    "sales_lines_sql",
    "source_schema",
    "unattributed_orders",
]
