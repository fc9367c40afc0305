"""Collection stage: load source tables (CSV, Parquet or the synthetic world) into ``raw`` and
normalized ``staging`` tables. The normalizers (:mod:`cemlib.normalize`), the table contracts
(:mod:`cemlib.schema`) and the file reader (:mod:`cemlib.io`) are the core below the stages."""

from cemlib.collect.loaders import (
    LoadedTable,
    SourceFolder,
    load_folder,
    load_mapping,
    plan_folder,
    read_table_file,
)
from cemlib.collect.stage import CollectResult, collect, stage_table

__all__ = [
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
