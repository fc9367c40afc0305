"""Settlement names as exports write them: ``г. Москва``, ``г.Москва``, ``город Москва``,
``Москва г.`` and ``Москва`` are one city. The settlement-type word is dropped and white space
collapsed; the spelling of the name itself is kept (for reports)."""

from __future__ import annotations

import re

import pandas as pd

# abbreviations need their dot ("с." is a village, "Сочи" is not); full words need a space
_TYPE = r"(?:г|гор|пгт|пос|п|с|дер|д|ст|рп)\.|(?:город|пгт|поселок|посёлок|село|деревня)(?=\s)"
_PREFIX = re.compile(rf"^(?:{_TYPE})\s*", re.IGNORECASE)
_SUFFIX = re.compile(r"[\s,]+(?:г|гор)\.?$|[\s,]+город$", re.IGNORECASE)


def _city(text: str) -> str | None:
    name = " ".join(text.split())
    name = _SUFFIX.sub("", _PREFIX.sub("", name)).strip(" ,")
    return name or None


def city_name(series: pd.Series) -> pd.Series:
    """The settlement name without its type word (``г. Москва`` -> ``Москва``); NA when
    nothing is left."""
    from cemlib.collect.normalize.unique import map_unique

    return map_unique(series, _city)
