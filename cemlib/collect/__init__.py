"""Collection stage: load source tables (CSV, Parquet or the synthetic world) into ``raw`` and
normalized ``staging`` tables; the normalizers are shared with the identity stage."""

from cemlib.collect.loaders import (
    LoadedTable,
    SourceFolder,
    frame_to_text,
    load_folder,
    load_mapping,
    plan_folder,
    read_csv_text,
    read_table_file,
)
from cemlib.collect.stage import CollectResult, collect, stage_table
from cemlib.normalize import (
    city_name,
    email_key,
    email_norm,
    first_name_key,
    gender_hint,
    name_norm,
    normalize_phone,
    parse_amounts,
    parse_bools,
    parse_dates,
    phone_e164,
    split_full_name,
    translit_key,
)
from cemlib.schema import TABLES, TableSpec, table_spec

__all__ = [
    "TABLES",
    "CollectResult",
    "LoadedTable",
    "SourceFolder",
    "TableSpec",
    "city_name",
    "collect",
    "email_key",
    "email_norm",
    "frame_to_text",
    "gender_hint",
    "load_folder",
    "load_mapping",
    "name_norm",
    "normalize_phone",
    "parse_amounts",
    "parse_bools",
    "parse_dates",
    "phone_e164",
    "plan_folder",
    "read_csv_text",
    "read_table_file",
    "split_full_name",
    "stage_table",
    "table_spec",
    "translit_key",
    "first_name_key",
]
