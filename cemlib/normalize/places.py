"""Settlement names as exports write them: ``г. Москва``, ``г.Москва``, ``г Москва``,
``город Москва``, ``Москва г.`` and ``Москва`` are one city. The settlement-type word is
dropped and white space collapsed; the spelling of the name itself is kept (for reports)."""

from __future__ import annotations

import re

import pandas as pd

# a type word is a word of its own: followed by a dot or a space ("с. Ивановка", "г Москва"),
# never the start of the name ("Сочи", "Городец")
_TYPE = r"(?:г|гор|город|пгт|пос|п|с|дер|д|ст|рп|поселок|посёлок|село|деревня)(?:\.|(?=\s))"
_PREFIX = re.compile(rf"^(?:{_TYPE})\s*", re.IGNORECASE)
_SUFFIX = re.compile(r"[\s,]+(?:г|гор)\.?$|[\s,]+город$", re.IGNORECASE)


def _city(text: str) -> str | None:
    name = " ".join(text.split())
    name = _SUFFIX.sub("", _PREFIX.sub("", name)).strip(" ,")
    return name or None


def city_name(series: pd.Series) -> pd.Series:
    """The settlement name without its type word (``г. Москва`` -> ``Москва``); NA when
    nothing is left."""
    from cemlib.normalize.unique import map_unique

    return map_unique(series, _city)
