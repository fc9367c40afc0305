"""The stage contract: one entry point shape, one result shape, the tables of each stage.

Every stage package exports ``run(wh, *, run_id, as_of, seed, **params) -> StageResult``
(``cemlib.collect.run``, ``cemlib.quality.run``, ``cemlib.identity.run``, ``cemlib.churn.run``,
``cemlib.offers.run``, ``cemlib.monitor.run``). :data:`STAGE_TABLES` declares once which
warehouse tables each stage reads and writes; the pipeline's stage registry and
:func:`require_inputs` both use it, so a stage whose input is missing stops with one line naming
the table and the stage that writes it instead of reading something else in its place.

A table entry is ``"schema"`` (at least one table of that schema) or ``"schema.table"``, with a
trailing ``?`` when the stage does without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cemlib.errors import InputError


@dataclass(frozen=True)
class StageTables:
    """The warehouse tables one stage reads (``reads``) and writes (``writes``)."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()


#: stage package name -> its declared tables, in pipeline order
STAGE_TABLES: dict[str, StageTables] = {
    "collect": StageTables(writes=("raw", "staging")),
    "quality": StageTables(
        reads=("staging",), writes=("clean", "quarantine", "quality.results")
    ),
    "identity": StageTables(
        reads=("clean", "identity.record_ids?", "identity.registry?", "identity.state?",
               "identity.prepared?", "identity.map?", "identity.profiles?", "identity.links?",
               "identity.guarded?", "identity.source_hashes?", "identity.model?",
               "identity.model_tf?"),
        writes=("identity.map", "identity.profiles", "identity.links", "identity.guarded",
                "identity.registry", "identity.changes", "identity.record_ids",
                "identity.state", "identity.prepared", "identity.source_hashes",
                "identity.model", "identity.model_tf"),
    ),
    "churn": StageTables(reads=("clean", "identity.map"), writes=("marts.churn_scores",)),
    "offers": StageTables(
        reads=("clean", "identity.map", "marts.churn_scores?"), writes=("marts.next_offers",)
    ),
    "monitor": StageTables(
        reads=("staging", "quarantine?", "identity.registry?", "identity.map?",
               "marts.churn_scores?", "marts.next_offers?", "monitor?"),
        writes=("monitor",),
    ),
}  # fmt: skip


@dataclass
class StageResult:
    """What one call of a stage's ``run`` did.

    Attributes
    ----------
    stage : str
        The stage package (``"churn"``).
    run_id, as_of : str
        The run that stamped the tables written, and the last day of known history.
    reads, writes : list of str
        The ``schema.table`` names the stage found to read and the ones it wrote.
    headlines : dict
        The stage's headline figures (its ``report.headlines``), as the run index shows them.
    detail : Any
        The stage's own result object (``CollectResult``, ``QualityReport``, ...), for the
        notebook's tables and plots.
    """

    stage: str
    run_id: str
    as_of: str
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    headlines: dict[str, Any] = field(default_factory=dict)
    detail: Any = None


def covered(entry: str, tables: list[str] | set[str]) -> list[str]:
    """The ``schema.table`` names of ``tables`` that a declared entry covers."""
    entry = entry.rstrip("?")
    if "." in entry:
        return sorted(t for t in tables if t == entry)
    return sorted(t for t in tables if t.split(".", 1)[0] == entry)


def writer_of(entry: str) -> str | None:
    """The stage whose declared ``writes`` cover the table or schema ``entry`` names."""
    entry = entry.rstrip("?")
    for stage, tables in STAGE_TABLES.items():
        for w in tables.writes:
            if w == entry or w == entry.split(".", 1)[0] or entry == w.split(".", 1)[0]:
                return stage
    return None


def warehouse_tables(wh) -> set[str]:
    """Every ``schema.table`` name the warehouse ``wh`` holds (a :class:`Warehouse`, the Spark
    engine's :class:`~cemlib.engine.Lake`, or the path of a warehouse, opened read-only for the
    question)."""
    from cemlib.warehouse import SCHEMAS, Warehouse

    if hasattr(wh, "publish") and hasattr(wh, "tables"):  # a Lake: its folders, schema by schema
        return {f"{s}.{t}" for s in SCHEMAS for t in wh.tables(s)}
    if not isinstance(wh, Warehouse):
        with Warehouse(wh, read_only=True) as opened:
            return warehouse_tables(opened)
    rows = wh.con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database()"
    ).fetchall()
    return {f"{s}.{t}" for s, t in rows}


def require_inputs(wh, stage: str, *, instead: dict[str, str] | None = None) -> list[str]:
    """Check that ``wh`` holds every required input of ``stage``; return the tables it reads.

    ``instead`` replaces a declared entry by another (``{"identity.map":
    "truth.record_person"}`` when a stage is keyed by the synthetic truth). Raises
    :class:`~cemlib.errors.InputError` naming the first missing table and the stage that writes
    it; optional entries (``?``) that are absent are skipped.
    """
    reads = STAGE_TABLES[stage].reads
    have = warehouse_tables(wh) if reads else set()
    found: list[str] = []
    for entry in reads:
        entry = (instead or {}).get(entry, entry)
        hits = covered(entry, have)
        if not hits and not entry.endswith("?"):
            maker = writer_of(entry)
            by = f" (written by the {maker} stage: run it first)" if maker else ""
            raise InputError(f"the {stage} stage needs {entry}, which is missing{by}",
                             source=str(getattr(wh, "path", wh)))  # fmt: skip
        found += hits
    return found


def stage_result(
    wh, stage: str, *, run_id: str, as_of: str | dt.date, reads: list[str],
    headlines: dict[str, Any], detail: Any,
) -> StageResult:  # fmt: skip
    """The :class:`StageResult` of ``stage`` after its run: ``writes`` are the declared output
    tables ``wh`` now holds."""
    have = warehouse_tables(wh)
    writes = sorted({t for e in STAGE_TABLES[stage].writes for t in covered(e, have)})
    return StageResult(stage, run_id, str(as_of), reads, writes, headlines, detail)


def as_of_date(as_of: str | dt.date) -> dt.date:
    """``as_of`` as a date: a ``datetime.date`` or ISO text ``YYYY-MM-DD`` only, as ``cem run``
    takes it (``06/07/2025`` is 6 July to some readers and 7 June to others: InputError)."""
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of).strip())
    except ValueError:
        raise InputError(f"'as_of' expects a date YYYY-MM-DD, got {str(as_of)!r}") from None


def run_declared(
    stage: str, wh, call: Callable[[], Any], headlines: Callable[[Any], dict[str, Any]], *,
    run_id: str, as_of: str | dt.date, instead: dict[str, str] | None = None,
) -> StageResult:  # fmt: skip
    """Check ``stage``'s inputs in ``wh``, run ``call()`` and wrap what it returns (the stage's
    own result) with its ``headlines`` in a :class:`StageResult`: the body of every stage's
    ``run``."""
    as_of_date(as_of)
    reads = require_inputs(wh, stage, instead=instead)
    detail = call()
    return stage_result(wh, stage, run_id=run_id, as_of=as_of, reads=reads,
                        headlines=headlines(detail), detail=detail)  # fmt: skip
