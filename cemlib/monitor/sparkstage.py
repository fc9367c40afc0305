"""Stage 05 with ``engine: spark``: the monitor over the lake.

The monitor compares this run's tables with what the previous run kept (``monitor.*``) and
grades the previous forecasts. Everything it reads is an aggregate (row and null counts,
column profiles, quarantine reasons, the purchases since the forecast) or a small kept table,
so it runs on the lake's reading surface (:class:`~cemlib.engine.Lake`: DuckDB views over the
Parquet files where they are; no table is pulled into the driver, no Spark job is needed) with
the DuckDB engine's own code (:func:`cemlib.monitor.stage.run_stage`). Its writes go beside
their folders and are renamed into place together when every one of them is written
(:class:`LakeWrites`); ``monitor.offer_forecast`` is copied from ``marts.next_offers`` by
DuckDB's ``COPY``, one row per offer, not through pandas.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


class LakeWrites:
    """``lake`` with the writing surface of :func:`cemlib.monitor.stage.run_stage`:
    ``write_table`` and ``drop_table`` inside :meth:`transaction` are staged and applied
    together when it ends (discarded when it fails); everything else is the lake's."""

    def __init__(self, lake):
        self.lake = lake
        self._staged: dict | None = None
        self._dropped: list[tuple[str, str]] = []

    def __getattr__(self, name):
        return getattr(self.lake, name)

    @contextmanager
    def transaction(self):
        """Stage the writes of the block; publish them together at its end."""
        self._staged, self._dropped = {}, []
        try:
            yield self
        except BaseException:
            self.lake.discard(self._staged)
            raise
        finally:
            staged, dropped = self._staged, self._dropped
            self._staged, self._dropped = None, []
        for schema, name in dropped:
            self.lake.drop_table(schema, name)
        self.lake.publish(staged)

    def write_table(self, schema: str, name: str, df: pd.DataFrame, *, run_id: str, as_of):
        """Write ``df`` as ``schema.name`` (staged inside a transaction)."""
        if self._staged is None:
            return self.lake.write_table(schema, name, df, run_id=run_id, as_of=as_of)
        folder = self.lake.staging_path(schema, name, run_id)
        self.lake._write_frame(df, folder, run_id, as_of)
        self._staged[(schema, name)] = folder
        return len(df)

    def drop_table(self, schema: str, name: str) -> None:
        """Remove ``schema.name`` (when the transaction ends)."""
        if self._staged is None:
            self.lake.drop_table(schema, name)
        else:
            self._dropped.append((schema, name))

    def keep_offers(self, run_id: str, as_of) -> None:
        """``monitor.offer_forecast``: the profile, rank and item of every offer of
        ``marts.next_offers``, copied by DuckDB from the lake's Parquet files to the staged
        folder, stamped with ``run_id`` and the offers' ``as_of``."""
        folder = Path(self.lake.staging_path("monitor", "offer_forecast", run_id))
        folder.mkdir(parents=True, exist_ok=True)
        target = str(folder / "part-00000.parquet").replace("'", "''")
        self.lake.con.execute(
            "COPY (SELECT profile_id, rank, item_id, CAST(? AS VARCHAR) AS _run_id, "
            f"CAST(? AS DATE) AS _as_of FROM marts.next_offers) TO '{target}' (FORMAT PARQUET)",
            [run_id, pd.Timestamp(as_of).date()],
        )
        if self._staged is None:
            self.lake.publish({("monitor", "offer_forecast"): str(folder)})
        else:
            self._staged[("monitor", "offer_forecast")] = str(folder)


def run_on_lake(lake, *, run_id: str, as_of: str | dt.date, **params):
    """Stage 05 over ``lake`` (a :class:`~cemlib.contract.StageResult` as
    :func:`cemlib.monitor.run` gives; ``params`` are its options)."""
    from cemlib.contract import as_of_date, require_inputs, stage_result
    from cemlib.monitor import report
    from cemlib.monitor.stage import run_stage

    as_of_date(as_of)

    reads = sorted(require_inputs(lake, "monitor"))
    detail = run_stage(LakeWrites(lake), as_of, run_id=run_id, **params)
    return stage_result(lake, "monitor", run_id=run_id, as_of=as_of, reads=reads,
                        headlines=report.headlines(detail), detail=detail)  # fmt: skip
