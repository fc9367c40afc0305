"""Collection stage: load source tables (CSV, Parquet or the synthetic world) into ``raw`` and
normalized ``staging`` tables. The normalizers (:mod:`cemlib.normalize`), the table contracts
(:mod:`cemlib.schema`) and the file reader (:mod:`cemlib.io`) are the core below the stages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.collect.loaders import (
    LoadedTable,
    SourceFolder,
    load_folder,
    load_mapping,
    plan_folder,
    read_table_file,
)
from cemlib.collect.stage import CollectResult, collect, stage_table
from cemlib.contract import StageResult, run_declared

__all__ = [
    "run",
    "CollectResult",
    "LoadedTable",
    "SourceFolder",
    "collect",
    "load_folder",
    "load_mapping",
    "plan_folder",
    "read_table_file",
    "stage_table",
]


def run(
    wh, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    source: str = "synthetic", lake: Any = None, **params: Any,
) -> StageResult:  # fmt: skip
    """Load ``source`` into ``raw.*`` and ``staging.*`` of ``wh`` (the stage 00 contract).

    ``params`` are :func:`collect`'s keyword arguments (``n_people``, ``mapping``,
    ``encoding``, ``progress``, ...); ``detail`` is its :class:`CollectResult`. ``lake`` (engine
    spark): the tables are also copied there (:mod:`cemlib.collect.sparklake`).
    """
    from cemlib.collect import report

    if lake is not None:  # engine spark
        from cemlib.collect.sparklake import run_to_lake

        return run_to_lake(wh, lake, run_id=run_id, as_of=as_of, seed=seed, source=source,
                           **params)  # fmt: skip

    def call():
        return collect(source, warehouse=wh, run_id=run_id, as_of=as_of, seed=seed, **params)

    return run_declared("collect", wh, call, report.headlines, run_id=run_id, as_of=as_of)
