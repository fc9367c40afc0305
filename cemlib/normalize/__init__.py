"""Vectorized normalizers of identifiers and values (each parses a distinct value once)."""

from cemlib.normalize.amounts import parse_amount, parse_amounts
from cemlib.normalize.dates import parse_dates
from cemlib.normalize.emails import email_key, email_norm
from cemlib.normalize.flags import parse_bools
from cemlib.normalize.names import (
    first_name_key,
    gender_hint,
    name_norm,
    split_full_name,
    translit_key,
)
from cemlib.normalize.phones import (
    is_masked_phone,
    masked_phone_tail,
    normalize_phone,
    phone_e164,
)
from cemlib.normalize.places import city_name
from cemlib.normalize.unique import map_unique

__all__ = [
    "city_name",
    "email_key",
    "email_norm",
    "gender_hint",
    "is_masked_phone",
    "map_unique",
    "masked_phone_tail",
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
