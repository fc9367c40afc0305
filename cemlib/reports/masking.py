"""Masking of personal data for anything a reviewer reads.

Phones keep the country code and the last four digits (``+7 *** ***-45-67``), emails the first
character and the domain (``i***@mail.ru``), names only initials (``И. И.``).
"""

from __future__ import annotations

import re

import pandas as pd

_DIGITS = re.compile(r"\D+")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def mask_phone(value: object) -> str:
    """``+79991234567`` -> ``+7 *** ***-45-67``; anything shorter than 5 digits -> ``***``."""
    if _missing(value):
        return ""
    digits = _DIGITS.sub("", str(value))
    if len(digits) < 5:
        return "***"
    country = "7" if len(digits) == 11 and digits[0] in "78" else digits[:-10] or ""
    prefix = f"+{country} " if country else ""
    return f"{prefix}*** ***-{digits[-4:-2]}-{digits[-2:]}"


def mask_email(value: object) -> str:
    """``ivan.petrov@mail.ru`` -> ``i***@mail.ru``."""
    if _missing(value):
        return ""
    text = str(value).strip()
    if "@" not in text:
        return "***"
    local, _, domain = text.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else f"***@{domain}"


def mask_name(value: object) -> str:
    """``Иванов Иван Петрович`` -> ``И. И. П.``: initials only."""
    if _missing(value):
        return ""
    parts = [p for p in re.split(r"[\s\-]+", str(value).strip()) if p]
    return " ".join(f"{p[0].upper()}." for p in parts)


_MASKERS = {"phone": mask_phone, "email": mask_email, "name": mask_name}


def mask_frame(df: pd.DataFrame, roles: dict[str, str] | None = None) -> pd.DataFrame:
    """A copy of ``df`` with personal columns masked.

    ``roles`` maps column -> ``phone``/``email``/``name``/``drop``; without it, columns are
    recognized by name (``*phone*``, ``*email*``, ``*name*``; addresses and birth dates dropped).
    """
    out = df.copy()
    if roles is None:
        roles = {}
        for col in out.columns:
            low = str(col).lower()
            if "phone" in low:
                roles[col] = "phone"
            elif "email" in low:
                roles[col] = "email"
            elif low.endswith("name") or low in {"first_name", "last_name", "middle_name"}:
                roles[col] = "name"
            elif "address" in low or "birth" in low:
                roles[col] = "drop"
    for col, role in roles.items():
        if col not in out.columns:
            continue
        if role == "drop":
            out = out.drop(columns=[col])
        else:
            out[col] = out[col].map(_MASKERS[role])
    return out
