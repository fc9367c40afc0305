"""The stages of a run: which notebook each executes and which stages it needs first.

The registry lists every stage of the pipeline, whether or not its notebook exists yet: a
missing notebook is reported as "not available" and the stages that depend on it are skipped,
so a partial checkout still runs what it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cemlib.contract import STAGE_TABLES, covered, writer_of
from cemlib.errors import InputError


@dataclass(frozen=True)
class Stage:
    """One stage: ``key`` ("03"), ``name`` ("03_churn", also the notebook's file stem).

    ``reads`` and ``writes`` declare the warehouse tables the stage needs and produces, each
    ``"schema"`` (at least one table of it) or ``"schema.table"``, with a trailing ``?`` when
    the stage does without it. Before a stage starts the runner checks that every input is
    there and says which inputs another run wrote (a stage run on its own reads the tables an
    earlier run left).
    """

    key: str
    name: str
    title: str
    depends_on: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    #: the ``cemlib`` stage package the notebook runs (``cemlib.<package>.run``)
    package: str = ""

    @property
    def notebook(self) -> str:
        """The notebook's file name, ``<name>.ipynb``."""
        return f"{self.name}.ipynb"


def _stage(key: str, name: str, title: str, package: str, depends_on=()) -> Stage:
    """A registry entry whose ``reads``/``writes`` are the tables ``cemlib.contract`` declares
    for the stage package ``package``."""
    tables = STAGE_TABLES[package]
    return Stage(key, name, title, tuple(depends_on), tables.reads, tables.writes, package)


STAGES: tuple[Stage, ...] = (
    _stage("00", "00_collect", "Collection: raw and staged source tables", "collect"),
    _stage("01", "01_quality", "Quality checks: clean tables and quarantine", "quality", ("00",)),
    _stage("02", "02_profiles", "Identity resolution: one profile per person", "identity",
           ("01",)),
    _stage("03", "03_churn", "Churn and customer lifetime value", "churn", ("02",)),
    _stage("04", "04_next_offer", "Next offer per profile", "offers", ("02", "03")),
    _stage("05", "05_monitor",
           "Monitoring: what changed since the last run, its forecasts graded", "monitor",
           ("01",)),
)  # fmt: skip


def matching_tables(entry: str, tables: Iterable[str]) -> list[str]:
    """The ``schema.table`` names of ``tables`` that a ``reads``/``writes`` entry covers."""
    return covered(entry, set(tables))


def producer(entry: str, stages: Sequence[Stage]) -> Stage | None:
    """The stage of ``stages`` whose declared tables include the one ``entry`` names."""
    package = writer_of(entry)
    return next((s for s in stages if package and s.package == package), None)


def feeders(stage: Stage, stages: Sequence[Stage] = STAGES) -> list[Stage]:
    """The stages listed before ``stage`` that write a table it reads, required or optional
    (``05_monitor`` reads ``identity.map?`` and ``marts.churn_scores?``: 02 and 03 feed it),
    in pipeline order. A stage that did not end ok in a run leaves the previous run's table, or
    half of its own, where this one would look for its output."""
    before = [s for s in stages[: list(stages).index(stage)]] if stage in stages else []
    keys = {p.key for e in stage.reads if (p := producer(e, before)) is not None}
    return [s for s in before if s.key in keys]


def check_inputs(
    stage: Stage,
    provenance: dict[str, dict],
    run_id: str,
    produced_now: Iterable[str],
    stages: Sequence[Stage] = STAGES,
) -> tuple[str | None, dict[str, str]]:
    """Whether ``stage`` may start on a warehouse holding ``provenance`` (``schema.table ->
    {run_id, ...}``): ``(reason it may not, or None; {input table: the other run that wrote
    it}``. An input produced by a stage of this run (``produced_now``, stage keys) that ran ok
    is trusted to exist; any other required input must be in the warehouse."""
    produced_now = set(produced_now)
    other: dict[str, str] = {}
    missing: list[str] = []
    for entry in stage.reads:
        found = matching_tables(entry, provenance)
        for t in found:
            if provenance[t].get("run_id") != run_id:
                other[t] = str(provenance[t].get("run_id"))
        maker = producer(entry, stages)
        if (
            not found
            and not entry.endswith("?")
            and (maker is None or maker.key not in produced_now)
        ):
            missing.append(entry + (f" (written by {maker.name})" if maker else ""))
    if missing:
        return (
            f"needs {', '.join(missing)}, which the warehouse does not hold: run the stage "
            "that writes it first, or include it in --stages",
            other,
        )
    return None, other


def stage_lookup(stages: Sequence[Stage]) -> dict[str, Stage]:
    """Every accepted spelling of a stage ("03", "3", "03_churn", "churn") -> the stage."""
    table: dict[str, Stage] = {}
    for s in stages:
        short = s.name.split("_", 1)[1] if "_" in s.name else s.name
        for alias in (s.key, s.key.lstrip("0") or "0", s.name, short, s.notebook):
            table[alias.lower()] = s
    return table


def find_stage(name: str, stages: Sequence[Stage] = STAGES) -> Stage:
    """The stage called ``name`` (key, file stem or short name); InputError when unknown."""
    stage = stage_lookup(stages).get(str(name).strip().lower())
    if stage is None:
        known = ", ".join(s.name for s in stages)
        raise InputError(f"unknown stage {name!r}; known stages: {known}", source="stages")
    return stage


def select_stages(
    selection: str | Iterable[str] | None, stages: Sequence[Stage] = STAGES
) -> list[Stage]:
    """The stages to run, in pipeline order. ``None``/"all" means every stage.

    ``selection`` is a comma-separated string ("01,02") or a list of stage names. Dependencies
    outside the selection are not added: their tables are expected in the warehouse already.
    """
    if selection is None:
        return list(stages)
    if isinstance(selection, str):
        if selection.strip().lower() in ("", "all"):
            return list(stages)
        selection = [part for part in selection.split(",") if part.strip()]
    chosen = {find_stage(str(name), stages).key for name in selection}
    if not chosen:
        raise InputError("no stage selected", source="stages")
    return [s for s in stages if s.key in chosen]


def check_registry(stages: Sequence[Stage]) -> None:
    """Keys unique and every dependency listed before the stage that needs it."""
    seen: set[str] = set()
    for s in stages:
        if s.key in seen:
            raise ValueError(f"stage key {s.key!r} listed twice")
        missing = [d for d in s.depends_on if d not in seen]
        if missing:
            raise ValueError(f"stage {s.name} depends on {missing}, not listed before it")
        seen.add(s.key)


check_registry(STAGES)
