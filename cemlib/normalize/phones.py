"""Phone numbers to E.164 with Google's libphonenumber port (``phonenumbers``).

Handles what Russian CRMs hold: ``8 (999) 123-45-67`` (trunk prefix 8), ``+7 999 1234567``,
``79991234567``, bare ten digits ``9991234567``, dots/dashes/brackets/spaces, and extensions
(``доб. 123``, ``ext 12``, ``x12``, ``#12``), which are dropped. Anything that is not a valid
number of its region becomes NA.

A *masked* phone (``+7 (***) ***-87-48``, ``+7 9xx xxx 12 34``, ``•••• 8748``: a marketplace
shows its buyers' numbers so) is told from garbage by :func:`masked_phone_tail`: it is never a
phone (NA here), only its visible last digits are kept, for matching together with other fields.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers

# an extension marker and everything after it
_EXTENSION = re.compile(
    r"(?:\s*[,;]?\s*(?:доб(?:авочный)?|вн(?:утр(?:енний)?)?|ext(?:ension)?|x|#)\.?\s*:?\s*\d{1,6}\s*)$",
    re.IGNORECASE,
)
_NOT_PHONE = re.compile(r"[^\d+()\-.\s/]")
#: characters a system writes in place of a hidden digit: ``*``, Latin and Cyrillic x, bullets
MASK_CHARS = "*xXхХ•●∙·#_"
_MASKED = re.compile(rf"[\d+()\-.\s/{re.escape(MASK_CHARS)}]+")
_MASK = re.compile(rf"[{re.escape(MASK_CHARS)}]")
#: a masked value needs this many hidden digits (an extension ``x12`` hides none) and, to be of
#: use, this many visible digits after the last hidden one
MIN_HIDDEN = 3
MIN_TAIL = 2


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


@lru_cache(maxsize=1)
def _plus7_valid() -> re.Pattern[str]:
    """One regex that a 10-digit national number of country code 7 fully matches exactly when
    libphonenumber calls it valid: RU numbers (leading digits ``[3489]``) against the RU types,
    otherwise KZ numbers against the KZ types -- the metadata's own patterns, combined."""
    alternatives = []
    excluded = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[7]:
        md = phonenumbers.PhoneMetadata.metadata_for_region(region)
        descs = (
            md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
            md.pager, md.uan, md.voicemail, md.fixed_line, md.mobile,
        )  # fmt: skip
        types = [
            d.national_number_pattern
            for d in descs
            if d is not None
            and d.national_number_pattern
            and (not d.possible_length or 10 in d.possible_length)
        ]
        if not types or md.leading_digits is None:  # pragma: no cover - metadata shape changed
            raise RuntimeError("unexpected phonenumbers metadata for country code 7")
        not_before = "".join(f"(?!(?:{lead}))" for lead in excluded)
        alternatives.append(
            f"{not_before}(?=(?:{md.leading_digits}))"
            f"(?=(?:{md.general_desc.national_number_pattern})$)"
            f"(?:{'|'.join(f'(?:{t})' for t in types)})"
        )
        excluded.append(md.leading_digits)
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


_PHONE_CHARS = r"\+?[\d()\-.\s/]+"


def _fast_plus7(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(handled, e164) for distinct raw values: the common Russian/Kazakh formats resolved
    vectorized against the metadata regex; ``handled`` False leaves a value to phonenumbers."""
    text = text.str.replace(_EXTENSION, "", regex=True).str.strip()
    ok = text.str.fullmatch(_PHONE_CHARS)
    digits = text.str.replace(r"\D", "", regex=True)
    n = digits.str.len()
    plus = text.str.startswith("+")
    first = digits.str[:1]
    national = pd.Series(pd.NA, index=text.index, dtype="string")
    rules = (
        (plus & n.eq(11) & first.eq("7"), 1),
        (~plus & n.eq(11) & first.isin(["7", "8"]) & ~digits.str.startswith("810"), 1),
        (~plus & n.eq(10), 0),
        (~plus & n.eq(13) & digits.str.startswith("007"), 3),
    )
    handled = pd.Series(False, index=text.index)
    for mask, cut in rules:
        mask = mask & ok & ~handled
        national[mask] = digits[mask].str[cut:]
        handled |= mask
    valid = national.str.fullmatch(_plus7_valid().pattern).fillna(False).astype(bool)
    e164 = ("+7" + national).where(valid & handled)
    return handled, e164


def normalize_phone(series: pd.Series, region: str = "RU") -> pd.Series:
    """A Series of phone numbers as E.164 strings (``string`` dtype, NA when invalid/missing).

    Parsed once per distinct value. For ``region="RU"`` the usual +7 formats are resolved
    vectorized with libphonenumber's own RU/KZ patterns; everything else goes through
    ``phonenumbers.parse`` (same answers, tested), so a million rows take seconds.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(uniques, dtype="object").astype(str).astype("string")
    result = pd.Series(pd.NA, index=text.index, dtype="string")
    todo = pd.Series(True, index=text.index)
    if region == "RU" and len(text):
        handled, e164 = _fast_plus7(text)
        result[handled] = e164[handled]
        todo = ~handled
    if todo.any():
        func = _e164_func(region)
        idx = text.index[todo.to_numpy(dtype=bool)]
        result.loc[idx] = pd.array([func(t) for t in text.loc[idx]], dtype="string")
    values = np.append(result.to_numpy(dtype=object, na_value=None), None)
    return pd.Series(values[codes], index=series.index, name=series.name).astype("string")


def _mask_tail(text: str) -> str | None:
    """``""`` for a masked phone without usable visible last digits, its last digits for one
    with them, None for a value that is not a masked phone."""
    text = text.strip()
    if not text or not _MASKED.fullmatch(text):
        return None
    hidden = len(_MASK.findall(text))
    digits = sum(ch.isdigit() for ch in text)
    # the length of a whole number (E.164: at most 15 digits), a few hidden
    if hidden < MIN_HIDDEN or not 7 <= hidden + digits <= 15:
        return None
    last = max(text.rfind(ch) for ch in MASK_CHARS)
    tail = re.sub(r"\D", "", text[last + 1 :])
    return tail if len(tail) >= MIN_TAIL else ""


def masked_phone_tail(series: pd.Series) -> pd.Series:
    """The visible last digits of masked phones (``+7 (***) ***-87-48`` -> ``8748``), NA for
    every other value, and ``""`` for a masked phone with fewer than :data:`MIN_TAIL` digits
    shown after its last hidden one (``+7 (9**) ***-**-**``: masked, nothing to match on).

    Masked: only phone characters and mask characters (:data:`MASK_CHARS`), at least
    :data:`MIN_HIDDEN` hidden digits, and as many digits, shown and hidden, as a whole number
    has (7 to 15). Such a value is never a phone (:func:`normalize_phone` gives NA): the
    digits are matched only together with a name and a second field
    (:mod:`cemlib.identity.masked`)."""
    from cemlib.normalize.unique import map_unique

    return map_unique(series, _mask_tail)


def is_masked_phone(series: pd.Series) -> pd.Series:
    """True where a value is a masked phone (:func:`masked_phone_tail`), with or without
    usable visible digits."""
    return masked_phone_tail(series).notna().astype(bool)
