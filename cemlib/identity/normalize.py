"""Identifier normalization for matching, over the core normalizers (:mod:`cemlib.normalize`),
so a phone or an email is keyed the same way in ``staging`` and here. Every function maps a
Series to a Series of the same index, with ``<NA>`` for values that cannot be normalized. The
name hints (gender, first names hidden in emails) are identity's own.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
from unidecode import unidecode

from cemlib import normalize as core
from cemlib.normalize.phones import MASK_CHARS, MIN_HIDDEN

# a masked phone shows at least MIN_HIDDEN of these: only such values need the parser
_MASK_CLASS = f"[{re.escape(MASK_CHARS)}]"


def _na(s: pd.Series) -> pd.Series:
    s = s.astype("string")
    return s.mask(s.str.strip() == "")


def _same_index(values, series: pd.Series) -> pd.Series:
    return _na(pd.Series(values, index=series.index))


def normalize_phone(series: pd.Series, region: str = "RU") -> pd.Series:
    """Phones in E.164 (``+79991234567``), NA when not a valid number."""
    return _same_index(core.normalize_phone(series, region=region), series)


def masked_phone_tail(series: pd.Series) -> pd.Series:
    """Visible last digits of masked phones (``+7 (***) ***-87-48`` -> ``8748``), NA for every
    other value and for a masked phone showing fewer than two last digits.

    Only values with at least :data:`~cemlib.normalize.phones.MIN_HIDDEN` mask characters
    reach the per-value parser (every other value is no masked phone there either): a
    vectorised count instead of a Python call per distinct phone."""
    text = series.astype("string")
    maybe = (text.str.count(_MASK_CLASS) >= MIN_HIDDEN).fillna(False).to_numpy(dtype=bool)
    out = pd.Series(pd.NA, index=series.index, dtype="string")
    if maybe.any():
        out[maybe] = core.masked_phone_tail(series[maybe]).to_numpy()
    return _na(out)


def email_key(series: pd.Series) -> pd.Series:
    """Provider-canonical email match key (Gmail dots and ``+tags``, Yandex aliases folded)."""
    return _same_index(core.email_key(series), series)


def name_norm(series: pd.Series) -> pd.Series:
    """Lower case, ``ё`` -> ``е``, punctuation and digits removed (Cyrillic kept)."""
    return _same_index(core.name_norm(series), series)


def first_name_key(series: pd.Series) -> pd.Series:
    """:func:`translit_key` of a first name with everyday short forms read as their full
    name (Саша -> aleksandr, Таня -> tatiana)."""
    return _same_index(core.first_name_key(series), series)


def translit_key(series: pd.Series) -> pd.Series:
    """Latin matching key: Иванов, Ivanov and Iwanow all give ``ivanov``."""
    return _same_index(core.translit_key(series), series)


def split_full_name(series: pd.Series) -> pd.DataFrame:
    """``full_name`` -> first/last/middle: ``Фамилия Имя Отчество`` or ``Имя Фамилия``."""
    res = core.split_full_name(series)
    if "middle_name" not in res:
        res = res.assign(middle_name=pd.NA)
    return res[["first_name", "last_name", "middle_name"]].set_index(series.index)


def parse_dates(series: pd.Series) -> pd.Series:
    """Dates in any common format (ISO, ``dd.mm.yyyy``, ``yyyymmdd``) -> datetime64, NaT else."""
    return pd.to_datetime(pd.Series(core.parse_dates(series), index=series.index), errors="coerce")


# -- free text --------------------------------------------------------------------------------
def text_norm(series: pd.Series) -> pd.Series:
    """Lower case, ``ё`` -> ``е``, punctuation to single spaces: for addresses and cities."""
    s = _na(series).str.lower().str.replace("ё", "е", regex=False)
    s = s.str.replace(r"[^\w]+", " ", regex=True).str.strip()
    return s.mask(s == "")


def city_key(series: pd.Series) -> pd.Series:
    """A city for matching: the settlement type word dropped (``г. Москва`` -> ``Москва``, via
    :func:`cemlib.normalize.city_name`), then :func:`text_norm`."""
    return text_norm(core.city_name(series))


# -- the Latin fold of email local parts (``irina.sokolova`` -> irina) --------------------------
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
        if _other_gender_reading(tok, first, male, female):
            gender = None  # aleksandrapop546: Aleksandr Apop... or Aleksandra Pop...?
    else:
        for raw in tokens:
            g = _surname_gender(_translit_one(raw))
            if g:
                gender = g
                break
    return first, gender


def _other_gender_reading(tok: str, first: str, male: frozenset, female: frozenset) -> bool:
    """Whether ``tok`` also reads as a first name of the other gender one or two letters
    longer than ``first``, followed by three or more letters (``evgeniaiva`` is Evgeni + aiva
    or Evgenia + iva; ``aleksandrapop`` Aleksandr + apop or Aleksandra + pop): the gender the
    e-mail hints at cannot be told then."""
    other = female if first in male else male
    return any(
        tok[:k] in other and len(tok) - k >= 3 for k in range(len(first) + 1, len(first) + 3)
    )


def email_hints(email_keys: pd.Series) -> pd.DataFrame:
    """First-name and gender hints from email local parts (``irina.sokolova@`` -> irina, F)."""
    s = email_keys.astype("string")
    local = s.str.split("@").str[0]
    uniq = local.dropna().unique()
    lookup = {v: _email_hint(v) for v in uniq}
    first = local.map(lambda v: lookup[v][0], na_action="ignore").astype("string")
    gender = local.map(lambda v: lookup[v][1], na_action="ignore").astype("string")
    return pd.DataFrame({"first_hint": first, "gender_hint": gender}, index=s.index)
