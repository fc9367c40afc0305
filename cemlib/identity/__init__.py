"""Identity resolution: one profile per real person from records of many sources."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.contract import StageResult, run_declared
from cemlib.identity.evaluate import evaluate
from cemlib.identity.golden import golden_records
from cemlib.identity.graph import ChainGuardClusterer
from cemlib.identity.model import SplinkModel
from cemlib.identity.registry import assign_ids, resolve_id, resolve_ids
from cemlib.identity.resolve import IdentityResolver, resolve
from cemlib.identity.roles import ROLES, load_roles, prepare_records
from cemlib.identity.rules import HubGuard, deterministic_links

__all__ = [
    "run",
    "ROLES",
    "ChainGuardClusterer",
    "HubGuard",
    "IdentityResolver",
    "SplinkModel",
    "assign_ids",
    "deterministic_links",
    "evaluate",
    "golden_records",
    "load_roles",
    "prepare_records",
    "resolve",
    "resolve_id",
    "resolve_ids",
]


def run(
    wh, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED, **params: Any
) -> StageResult:
    """Resolve the records of ``clean.*`` into profiles and write ``identity.*`` (the stage 02
    contract). ``params`` are ``cemlib.identity.stage.run_stage``'s options (``guard``,
    ``match_threshold``, ``household_signals``, ``identity_mode``, ``keep_records``);
    ``detail`` is its ``IdentityResult``. ``wh`` a :class:`~cemlib.engine.Lake`: the stage
    runs on Spark (:mod:`cemlib.identity.sparkstage`)."""
    from cemlib.engine import Lake
    from cemlib.identity import report
    from cemlib.identity.stage import run_stage

    if isinstance(wh, Lake):  # engine spark
        from cemlib.identity.sparkstage import run_on_spark

        return run_on_spark(wh, run_id=run_id, as_of=as_of, seed=seed, spark=wh.spark(), **params)

    def call():
        return run_stage(wh, run_id=run_id, as_of=str(as_of), seed=seed, **params)

    return run_declared("identity", wh, call, report.headlines, run_id=run_id, as_of=as_of)
