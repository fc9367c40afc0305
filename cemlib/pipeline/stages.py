"""The stages of a run: which notebook each executes and which stages it needs first.

The registry lists every stage of the pipeline, whether or not its notebook exists yet: a
missing notebook is reported as "not available" and the stages that depend on it are skipped,
so a partial checkout still runs what it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"


STAGES: tuple[Stage, ...] = (
    Stage(
        "00", "00_collect", "Collection: raw and staged source tables",
        writes=("raw", "staging"),
    ),
    Stage(
        "01", "01_quality", "Quality checks: clean tables and quarantine", ("00",),
        reads=("staging",), writes=("clean", "quarantine", "quality.results"),
    ),
    Stage(
        "02", "02_profiles", "Identity resolution: one profile per person", ("01",),
        reads=("clean", "identity.record_ids?", "identity.registry?", "identity.state?",
               "identity.prepared?", "identity.map?", "identity.profiles?", "identity.links?",
               "identity.guarded?"),
        writes=("identity.map", "identity.profiles", "identity.links", "identity.guarded",
                "identity.registry", "identity.changes", "identity.record_ids",
                "identity.state", "identity.prepared"),
    ),
    Stage(
        "03", "03_churn", "Churn and customer lifetime value", ("02",),
        reads=("clean", "identity.map"), writes=("marts.churn_scores",),
    ),
    Stage(
        "04", "04_next_offer", "Next offer per profile", ("02", "03"),
        reads=("clean", "identity.map", "marts.churn_scores?"),
        writes=("marts.next_offers",),
    ),
    Stage(
        "05", "05_monitor", "Monitoring: what changed since the last run, its forecasts graded",
        ("01",),
        reads=("staging", "quarantine?", "identity.registry?", "identity.map?",
               "marts.churn_scores?", "marts.next_offers?", "monitor?"),
        writes=("monitor",),
    ),
)  # fmt: skip


def matching_tables(entry: str, tables: Iterable[str]) -> list[str]:
    """The ``schema.table`` names of ``tables`` that a ``reads``/``writes`` entry covers."""
    entry = entry.rstrip("?")
    if "." in entry:
        return [t for t in tables if t == entry]
    return [t for t in tables if t.split(".", 1)[0] == entry]


def producer(entry: str, stages: Sequence[Stage]) -> Stage | None:
    """The stage whose ``writes`` cover the table or schema ``entry`` names."""
    entry = entry.rstrip("?")
    for s in stages:
        for w in s.writes:
            if w == entry or w == entry.split(".", 1)[0] or entry == w.split(".", 1)[0]:
                return s
    return None


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
