"""What the monitor stage found: :class:`MonitorResult`, also written as ``monitor.json``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from cemlib.monitor.alerts import alert_frame


@dataclass
class MonitorResult:
    """What changed since the previous run and how its forecasts did (``monitor.json``)."""

    run_id: str
    as_of: str
    previous_run_id: str | None = None
    previous_as_of: str | None = None
    note: str = ""
    alerts: pd.DataFrame = field(default_factory=lambda: alert_frame([]))
    data: dict[str, pd.DataFrame] = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)
    risk: dict = field(default_factory=dict)
    transitions: pd.DataFrame = field(default_factory=pd.DataFrame)
    became_high_risk: pd.DataFrame = field(default_factory=pd.DataFrame)
    churn: dict = field(default_factory=dict)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    offers: pd.DataFrame = field(default_factory=pd.DataFrame)
    thresholds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON document of ``monitor.json`` (frames as lists of records)."""

        def rec(df: pd.DataFrame) -> list[dict]:
            return json.loads(df.to_json(orient="records", date_format="iso")) if len(df) else []

        return {
            "run_id": self.run_id,
            "as_of": self.as_of,
            "previous_run_id": self.previous_run_id,
            "previous_as_of": self.previous_as_of,
            "note": self.note,
            "alerts": rec(self.alerts),
            "thresholds": self.thresholds,
            "data": {k: rec(v) for k, v in self.data.items()},
            "profiles": _plain(self.profiles),
            "risk": {
                **_plain(self.risk),
                "transitions": rec(self.transitions),
                "became_high_risk": rec(self.became_high_risk),
            },  # fmt: skip
            "forecasts": {
                "churn": _plain(self.churn),
                "calibration": rec(self.calibration),
                "offers": rec(self.offers),
            },  # fmt: skip
        }


def _plain(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
