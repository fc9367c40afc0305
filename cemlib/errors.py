"""Errors a user sees: they name the file or table, the column and what was expected."""

from __future__ import annotations


class CemError(Exception):
    """Base class of every error cemlib raises on purpose (bad input, failed stage)."""


class InputError(CemError):
    """Bad input data: a missing column, a wrong type, an empty or unreadable file."""

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None):
        self.source = source
        self.column = column
        where = []
        if source:
            where.append(str(source))
        if column:
            where.append(f"column {column!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


class StageFailure(CemError):
    """A stage that must stop the run (e.g. a critical table-level quality failure)."""


def one_line(exc: BaseException) -> str:
    """``exc`` as one line for an :class:`InputError`: a YAML error as ``line 3, column 9:
    <problem>`` (PyYAML's own text spans four lines with a caret), anything else with its line
    breaks folded."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())
