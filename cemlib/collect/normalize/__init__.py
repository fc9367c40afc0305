"""Vectorized normalizers of identifiers and values (each parses a distinct value once)."""

from cemlib.collect.normalize.amounts import parse_amount, parse_amounts
from cemlib.collect.normalize.dates import parse_dates
from cemlib.collect.normalize.emails import email_key, email_norm
from cemlib.collect.normalize.flags import parse_bools
from cemlib.collect.normalize.names import (
    first_name_key,
    gender_hint,
    name_norm,
    split_full_name,
    translit_key,
)
from cemlib.collect.normalize.phones import normalize_phone, phone_e164
from cemlib.collect.normalize.places import city_name
from cemlib.collect.normalize.unique import map_unique

__all__ = [
    "city_name",
    "email_key",
    "email_norm",
    "gender_hint",
    "map_unique",
    "name_norm",
    "normalize_phone",
    "parse_amount",
    "parse_amounts",
    "parse_bools",
    "parse_dates",
    "phone_e164",
    "split_full_name",
    "translit_key",
    "first_name_key",
]
