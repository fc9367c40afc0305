"""What a run and each of its stages did: ``reports/<run_id>/run.json``.

Shared by the runner (which fills it) and the index pages (which render it), so that neither
imports the other.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAILED, SKIPPED, NOT_AVAILABLE = "ok", "failed", "skipped", "not available"


@dataclass
class StageStatus:
    """What happened to one stage's notebook in a run (status, timing, reports, headlines);
    ``error`` describes the failing cell when it failed. Not to be confused with
    :class:`cemlib.contract.StageResult`, what a stage's ``run`` returns inside the notebook."""

    key: str
    name: str
    title: str
    status: str
    depends_on: list[str] = field(default_factory=list)
    started_at: str | None = None
    duration: float | None = None
    reason: str | None = None
    notebook: str | None = None
    html: str | None = None
    html_code: str | None = None
    headlines: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    #: input tables this stage read that another run wrote: ``{"identity.map": "<run id>"}``
    inputs_from_other_runs: dict[str, str] = field(default_factory=dict)
    #: seconds one cell of this stage might run (``execution_timeout``, or what ``auto`` chose)
    cell_timeout: float | None = None

    @property
    def error_summary(self) -> str:
        """``code cell 3 (In [4]): ValueError: boom`` or the skip reason."""
        if self.error:
            e = self.error
            where = ""
            if e.get("code_cell"):
                where = f"code cell {e['code_cell']}"
                if e.get("execution_count"):
                    where += f" (In [{e['execution_count']}])"
                where += ": "
            what = e.get("ename") or e.get("kind") or "error"
            if e.get("evalue"):
                what += f": {e['evalue']}"
            return where + what
        return self.reason or ""


@dataclass
class RunResult:
    """A whole run, as written to ``reports/<run_id>/run.json``."""

    run_id: str
    as_of: str
    status: str
    started_at: str
    finished_at: str | None
    duration: float | None
    run_dir: str
    config: dict[str, Any]
    config_yaml: str
    git: dict[str, Any]
    versions: dict[str, str]
    stages: list[StageStatus]
    #: what happened to the warehouse: ``status`` (published / unchanged), ``path``, ``kept``
    #: (the failed run's working copy) and ``tables`` (``schema.table`` -> run id and rows)
    warehouse: dict[str, Any] = field(default_factory=dict)
    #: what the run must say loudly though every stage ran (``as_of`` behind the data)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when no stage failed and the warehouse could be settled; 2 when every failed
        stage stopped on bad input (an ``InputError`` naming a file and column: nothing is
        published, as for a bad configuration, which exits 2 before anything runs); else 1."""
        failed = [s for s in self.stages if s.status == FAILED]
        if failed and all((s.error or {}).get("kind") == "input" for s in failed):
            return 2
        return 1 if self.status == FAILED or failed else 0

    def to_json(self) -> str:
        """The run as the JSON of ``run.json``."""
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """A run from the dict of a ``run.json``."""
        data = dict(data)
        data["stages"] = [StageStatus(**s) for s in data.get("stages", [])]
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        """A run from its ``run.json``."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_status(stages: Sequence[StageStatus]) -> str:
    """``failed`` when a stage failed, ``incomplete`` when one was not ok, else ``ok``."""
    statuses = {s.status for s in stages}
    if FAILED in statuses:
        return FAILED
    if statuses - {OK}:
        return "incomplete"
    return OK
