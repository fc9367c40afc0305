"""Phone numbers to E.164 with Google's libphonenumber port (``phonenumbers``).

Handles what Russian CRMs hold: ``8 (999) 123-45-67`` (trunk prefix 8), ``+7 999 1234567``,
``79991234567``, bare ten digits ``9991234567``, dots/dashes/brackets/spaces, and extensions
(``доб. 123``, ``ext 12``, ``x12``, ``#12``), which are dropped. Anything that is not a valid
number of its region becomes NA.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd
import phonenumbers

# an extension marker and everything after it
_EXTENSION = re.compile(
    r"(?:\s*[,;]?\s*(?:доб(?:авочный)?|вн(?:утр(?:енний)?)?|ext(?:ension)?|x|#)\.?\s*:?\s*\d{1,6}\s*)$",
    re.IGNORECASE,
)
_NOT_PHONE = re.compile(r"[^\d+()\-.\s/]")


@lru_cache(maxsize=8)
def _e164_func(region: str):
    def e164(text: str) -> str | None:
        text = _EXTENSION.sub("", text.strip())
        if not text or _NOT_PHONE.search(text):
            return None
        digits = re.sub(r"\D", "", text)
        if len(digits) < 7 or len(digits) > 15:
            return None
        if text.startswith("00"):  # international dialling prefix written as 00
            text = "+" + text[2:]
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    return e164


def phone_e164(text: object, region: str = "RU") -> str | None:
    """One phone number as E.164 (``+79991234567``), or ``None`` when it is not a valid number."""
    if text is None or (isinstance(text, float) and text != text) or text is pd.NA:
        return None
    return _e164_func(region)(str(text))


def normalize_phone(series: pd.Series, region: str = "RU") -> pd.Series:
    """A Series of phone numbers as E.164 strings (``string`` dtype, NA when invalid/missing).

    Parsed once per distinct value, so a million rows take seconds.
    """
    from cemlib.collect.normalize.unique import map_unique

    return map_unique(series, _e164_func(region))
