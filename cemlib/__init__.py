"""cemlib: a Customer Experience Management workbench.

Stages (see ``docs/design.md``): collect -> quality -> identity -> churn -> offers,
each a tested module here and a parameterized notebook in ``notebooks/``.
"""

__version__ = "0.1.0"

DEFAULT_AS_OF = "2025-06-30"
DEFAULT_SEED = 42
DEFAULT_PEOPLE = 20_000
DEFAULT_WAREHOUSE = "data/cem.duckdb"
#: the synthetic world is generated to this day and cut at ``as_of`` (``cemlib.synth``)
DEFAULT_WORLD_END = "2026-12-31"

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_PEOPLE",
    "DEFAULT_SEED",
    "DEFAULT_WAREHOUSE",
    "DEFAULT_WORLD_END",
    "__version__",
]
