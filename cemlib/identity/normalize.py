"""Identifier normalization for matching.

Uses the collection stage's normalizers (:mod:`cemlib.collect`) when they are available, so a
phone or an email is keyed the same way in ``staging`` and here; a small built-in fallback
keeps the identity command usable on its own. Every function maps a Series to a Series of the
same index, with ``<NA>`` for values that cannot be normalized.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
from unidecode import unidecode


def _collect(name: str) -> Callable | None:
    try:
        module = importlib.import_module("cemlib.collect")
    except ImportError:
        return None
    return getattr(module, name, None)


def _na(s: pd.Series) -> pd.Series:
    s = s.astype("string")
    return s.mask(s.str.strip() == "")


# -- phones ---------------------------------------------------------------------------------
def _phone_one(value: str, region: str) -> str | None:
    digits = re.sub(r"\D", "", value)
    if region == "RU" and len(digits) == 10 and digits[0] == "9":
        digits = "7" + digits
    if region == "RU" and len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    text = "+" + digits if value.strip().startswith("+") or len(digits) == 11 else value
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(series: pd.Series, region: str = "RU") -> pd.Series:
    """Phones in E.164 (``+79991234567``), NA when not a valid number."""
    fn = _collect("normalize_phone")
    if fn is not None:
        return _na(pd.Series(fn(series, region=region), index=series.index))
    s = _na(series)
    uniq = s.dropna().unique()
    lookup = {v: _phone_one(v, region) for v in uniq}
    return s.map(lookup, na_action="ignore").astype("string")


# -- emails ---------------------------------------------------------------------------------
_YANDEX = {"ya.ru", "yandex.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua"}


def _email_key_one(value: str) -> str | None:
    v = value.strip().lower()
    if v.count("@") != 1:
        return None
    local, domain = v.split("@")
    if not local or "." not in domain:
        return None
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.split("+")[0].replace(".", ""), "gmail.com"
    elif domain in _YANDEX:
        local, domain = local.split("+")[0].replace(".", "-"), "yandex.ru"
    else:
        local = local.split("+")[0]
    return f"{local}@{domain}"


def email_key(series: pd.Series) -> pd.Series:
    """Provider-canonical email match key (Gmail dots and ``+tags``, Yandex aliases folded)."""
    fn = _collect("email_key")
    if fn is not None:
        return _na(pd.Series(fn(series), index=series.index))
    s = _na(series)
    uniq = s.dropna().unique()
    lookup = {v: _email_key_one(v) for v in uniq}
    return s.map(lookup, na_action="ignore").astype("string")


# -- names ----------------------------------------------------------------------------------
def name_norm(series: pd.Series) -> pd.Series:
    """Lower case, ``ё`` -> ``е``, letters and hyphens only (Cyrillic kept)."""
    fn = _collect("name_norm")
    if fn is not None:
        return _na(pd.Series(fn(series), index=series.index))
    s = _na(series).str.lower().str.replace("ё", "е", regex=False)
    s = s.str.replace(r"[^\w\-]+", "", regex=True).str.replace(r"[\d_]+", "", regex=True)
    return s.mask(s == "")


_LAT_FOLD = [
    (r"kh", "h"),
    (r"ts|tz", "c"),
    (r"(iy|yi|ij|yj|ii|y)$", "i"),
    (r"ya", "ia"),
    (r"yu", "iu"),
    (r"ye|je", "e"),
    (r"y", "i"),
    (r"j", "i"),
    (r"w", "v"),
    (r"x", "ks"),
    (r"(.)\1+", r"\1"),
]


_LAT_FOLD_RE = [(re.compile(p), r) for p, r in _LAT_FOLD]
_NON_AZ = re.compile(r"[^a-z]")


@lru_cache(maxsize=262144)
def _translit_one(value: str) -> str:
    v = _NON_AZ.sub("", unidecode(value).lower())
    for pattern, repl in _LAT_FOLD_RE:
        v = pattern.sub(repl, v)
    return v


def first_name_key(series: pd.Series) -> pd.Series:
    """:func:`translit_key` of a first name with everyday short forms read as their full
    name (Саша -> aleksandr, Таня -> tatiana)."""
    fn = _collect("first_name_key")
    if fn is not None:
        return _na(pd.Series(fn(series), index=series.index))
    return translit_key(series)


def translit_key(series: pd.Series) -> pd.Series:
    """Latin matching key: Иванов, Ivanov and Iwanow all give ``ivanov``."""
    fn = _collect("translit_key")
    if fn is not None:
        return _na(pd.Series(fn(series), index=series.index))
    s = _na(series)
    uniq = s.dropna().unique()
    lookup = {v: _translit_one(v) or None for v in uniq}
    return s.map(lookup, na_action="ignore").astype("string")


def split_full_name(series: pd.Series) -> pd.DataFrame:
    """``full_name`` -> first/last/middle: ``Фамилия Имя Отчество`` or ``Имя Фамилия``."""
    fn = _collect("split_full_name")
    if fn is not None:
        res = fn(series)
        if isinstance(res, pd.DataFrame) and {"first_name", "last_name"} <= set(res.columns):
            if "middle_name" not in res:
                res = res.assign(middle_name=pd.NA)
            return res[["first_name", "last_name", "middle_name"]].set_index(series.index)
    parts = _na(series).str.split()
    first, last, middle = [], [], []
    for p in parts:
        if not isinstance(p, list) or not p:
            first.append(None), last.append(None), middle.append(None)
        elif len(p) >= 3:
            # Russian order with a patronymic (…вич/…вна) in third place; else Имя Отчество Фамилия
            if re.search(r"(вич|вна|ich|vna|ichna)$", p[2].lower()):
                last.append(p[0]), first.append(p[1]), middle.append(" ".join(p[2:]))
            else:
                first.append(p[0]), middle.append(p[1]), last.append(" ".join(p[2:]))
        elif len(p) == 2:
            first.append(p[0]), last.append(p[1]), middle.append(None)
        else:
            first.append(p[0]), last.append(None), middle.append(None)
    return pd.DataFrame(
        {"first_name": first, "last_name": last, "middle_name": middle},
        index=series.index,
        dtype="string",
    )


# -- dates and free text --------------------------------------------------------------------
def parse_dates(series: pd.Series) -> pd.Series:
    """Dates in any common format (ISO, ``dd.mm.yyyy``, ``yyyymmdd``) -> datetime64, NaT else."""
    fn = _collect("parse_dates")
    if fn is not None:
        return pd.to_datetime(pd.Series(fn(series), index=series.index), errors="coerce")
    s = _na(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    out = pd.to_datetime(s, errors="coerce", format="ISO8601")
    for fmt in ("%Y%m%d", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d"):
        miss = out.isna() & s.notna()
        if not miss.any():
            break
        out = out.fillna(pd.to_datetime(s.where(miss), errors="coerce", format=fmt))
    return out


def text_norm(series: pd.Series) -> pd.Series:
    """Lower case, ``ё`` -> ``е``, punctuation to single spaces: for addresses and cities."""
    s = _na(series).str.lower().str.replace("ё", "е", regex=False)
    s = s.str.replace(r"[^\w]+", " ", regex=True).str.strip()
    return s.mask(s == "")


def city_key(series: pd.Series) -> pd.Series:
    """A city for matching: the settlement type word dropped (``г. Москва`` -> ``Москва``, via
    :func:`cemlib.collect.normalize.city_name`), then :func:`text_norm`."""
    name = _collect("city_name")
    return text_norm(name(series) if name else series)


# -- name hints: gender and first names hidden in emails ------------------------------------
_SURNAME_F = re.compile(r"(ova|eva|ina|aia|kaia|skaia)$")
_SURNAME_M = re.compile(r"(ov|ev|in|ii|skii|ski|oi)$")


def _fold(words) -> set[str]:
    keys = translit_key(pd.Series(list(words), dtype="string"))
    return {k for k in keys.dropna() if " " not in k and len(k) >= 3}


def first_name_sets() -> tuple[frozenset[str], frozenset[str]]:
    """Latin keys of Russian male and female first names (Faker's ``ru_RU`` lists)."""
    global _NAME_SETS
    if _NAME_SETS is None:
        from faker.providers.person.ru_RU import Provider

        male = _fold(Provider.first_names_male)
        female = _fold(Provider.first_names_female)
        _NAME_SETS = (frozenset(male - female), frozenset(female - male))
    return _NAME_SETS


_NAME_SETS: tuple[frozenset[str], frozenset[str]] | None = None


def name_gender(first_lat: pd.Series, middle_lat: pd.Series, last_lat: pd.Series) -> pd.Series:
    """``M``/``F`` from the first name, else the patronymic, else the surname ending."""
    male, female = first_name_sets()
    out = first_lat.map(
        lambda v: "M" if v in male else ("F" if v in female else None), na_action="ignore"
    ).astype("string")
    mid = middle_lat.str.extract(r"(vna|ichna)$|(vich|ich)$")
    out = out.fillna(
        pd.Series(
            np.where(mid[0].notna(), "F", np.where(mid[1].notna(), "M", None)),
            index=out.index,
            dtype="string",
        )
    )
    sur = last_lat.map(_surname_gender, na_action="ignore").astype("string")
    return out.fillna(sur)


def _surname_gender(token: str) -> str | None:
    if len(token) < 5:
        return None
    if _SURNAME_F.search(token):
        return "F"
    if _SURNAME_M.search(token):
        return "M"
    return None


def _email_hint(local: str) -> tuple[str | None, str | None]:
    male, female = first_name_sets()
    names = male | female
    tokens = [t for t in re.split(r"[^a-z]+", unidecode(local).lower()) if t]
    first = gender = None
    for raw in tokens:
        tok = _translit_one(raw) if raw else raw
        if tok in names:
            first = tok
            break
        for n in range(min(len(tok) - 4, 10), 2, -1):
            head, rest = tok[:n], tok[n:]
            if head in names and len(rest) >= 4:
                first = head
                if gender is None:
                    gender = _surname_gender(rest)
                break
        if first:
            break
    if first:
        gender = "M" if first in male else "F"
    else:
        for raw in tokens:
            g = _surname_gender(_translit_one(raw))
            if g:
                gender = g
                break
    return first, gender


def email_hints(email_keys: pd.Series) -> pd.DataFrame:
    """First-name and gender hints from email local parts (``irina.sokolova@`` -> irina, F)."""
    s = email_keys.astype("string")
    local = s.str.split("@").str[0]
    uniq = local.dropna().unique()
    lookup = {v: _email_hint(v) for v in uniq}
    first = local.map(lambda v: lookup[v][0], na_action="ignore").astype("string")
    gender = local.map(lambda v: lookup[v][1], na_action="ignore").astype("string")
    return pd.DataFrame({"first_hint": first, "gender_hint": gender}, index=s.index)
