"""Alert thresholds (the ``monitor:`` section of a run configuration) and the alerts raised."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

ALERT_COLUMNS = ("section", "subject", "figure", "value", "threshold", "message")


@dataclass(frozen=True)
class Thresholds:
    """When the monitor raises an alert (each compared with the previous run).

    Parameters
    ----------
    psi : a column's population stability index above this (0.25: a significant shift).
    rows_change : a source table's rows up to ``as_of`` changed by more than this share.
    quarantine_share : a table's quarantined share rose by more than this (absolute).
    null_share : a key column's null share rose by more than this (absolute).
    auc_floor : the previous run's churn forecast graded below this AUC.
    ids_changed_share : more than this share of the previous run's profile ids merged, split
        or retired.
    """

    psi: float = 0.25
    rows_change: float = 0.3
    quarantine_share: float = 0.05
    null_share: float = 0.1
    auc_floor: float = 0.6
    ids_changed_share: float = 0.05

    def as_dict(self) -> dict[str, float]:
        """The thresholds as a plain dict (``monitor.json``)."""
        return asdict(self)


def _alert(section, subject, figure, value, threshold, message) -> dict:
    return dict(zip(ALERT_COLUMNS, (section, subject, figure, float(value), float(threshold),
                                    message), strict=True))  # fmt: skip


def data_alerts(
    t: Thresholds, tables: pd.DataFrame, drift: pd.DataFrame, nulls: pd.DataFrame
) -> list[dict]:
    """Alerts of the data section: ``tables`` and ``nulls`` carry ``*_prev`` columns."""
    out = []
    for r in tables.itertuples():
        prev = getattr(r, "rows_until_as_of_prev", float("nan"))
        if prev and not math.isnan(prev):
            change = r.rows_until_as_of / prev - 1.0
            if r.rows == 0:  # the table is not in this run's source at all
                out.append(_alert("data", r.table_name, "rows change", change, t.rows_change,
                                  f"{r.table_name}: not in this run's source, "
                                  f"{int(prev):,} rows up to as_of in the previous run"))  # fmt: skip
            elif abs(change) > t.rows_change:
                out.append(_alert("data", r.table_name, "rows change", change, t.rows_change,
                                  f"{r.table_name}: {r.rows_until_as_of:,} rows up to as_of, "
                                  f"{change:+.0%} against {int(prev):,} in the previous run"))  # fmt: skip
        qprev = getattr(r, "quarantine_share_prev", float("nan"))
        if not math.isnan(qprev) and r.quarantine_share - qprev > t.quarantine_share:
            out.append(_alert("data", r.table_name, "quarantine share", r.quarantine_share,
                              t.quarantine_share,
                              f"{r.table_name}: {r.quarantine_share:.1%} of rows quarantined, "
                              f"{qprev:.1%} in the previous run"))  # fmt: skip
    for r in drift.itertuples():
        if r.psi > t.psi:
            out.append(_alert("data", f"{r.table_name}.{r.column_name}", "psi", r.psi, t.psi,
                              f"{r.table_name}.{r.column_name}: distribution shifted "
                              f"(PSI {r.psi:.2f}, {r.band})"))  # fmt: skip
    for r in nulls.itertuples():
        prev = getattr(r, "null_share_prev", float("nan"))
        if not math.isnan(prev) and r.null_share - prev > t.null_share:
            out.append(_alert("data", f"{r.table_name}.{r.column_name}", "null share",
                              r.null_share, t.null_share,
                              f"{r.table_name}.{r.column_name}: {r.null_share:.1%} empty, "
                              f"{prev:.1%} in the previous run"))  # fmt: skip
    return out


def forecast_alerts(t: Thresholds, churn: dict, profiles: dict) -> list[dict]:
    """Alerts on the graded churn AUC and on the share of profile ids that changed."""
    out = []
    auc = churn.get("auc")
    if auc is not None and not math.isnan(auc) and auc < t.auc_floor:
        out.append(_alert("forecasts", "marts.churn_scores", "graded auc", auc, t.auc_floor,
                          f"the previous run's churn forecast graded AUC {auc:.3f}, "
                          f"below the floor {t.auc_floor:.2f}"))  # fmt: skip
    share = profiles.get("share of ids changed")
    if share is not None and share > t.ids_changed_share:
        out.append(_alert("profiles", "identity.registry", "share of ids changed", share,
                          t.ids_changed_share,
                          f"{share:.1%} of the previous run's profile ids merged, split or "
                          f"retired"))  # fmt: skip
    return out


def alert_frame(alerts: list[dict]) -> pd.DataFrame:
    """The alerts as a frame with the columns of ``ALERT_COLUMNS`` (empty when there are none)."""
    return pd.DataFrame(alerts, columns=list(ALERT_COLUMNS))
