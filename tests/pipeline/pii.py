"""Find personal data of the source tables in rendered HTML.

Phones are compared by digits (any 10-digit run of the page equal to the last 10 digits of a
source phone, whatever the formatting on either side), emails case-insensitively, names as
surname + first name pairs in either order (and whole ``full_name`` values), addresses as
whole strings. Embedded images (base64) are removed before scanning.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
_TAG = re.compile(r"<[^>]+>")
_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_LIKE = re.compile(r"\d[\d\s\-().+]{8,24}\d")
_WORD = re.compile(r"[^\W\d_]+")
NAME_COLUMNS = ("full_name", "first_name", "last_name", "middle_name")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).lower().replace("ё", "е")).strip()


@dataclass
class SourcePII:
    """Personal data present in the source tables."""

    phones: set[str] = field(default_factory=set)  # last 10 digits
    emails: set[str] = field(default_factory=set)  # lower case
    name_pairs: set[tuple[str, str]] = field(default_factory=set)  # (surname, first), both orders
    full_names: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)

    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame]) -> SourcePII:
        pii = cls()
        for name, df in tables.items():
            if name == "products":
                continue
            for col in df.columns:
                values = df[col].dropna().astype(str)
                if "phone" in col:
                    for v in values:
                        digits = re.sub(r"\D", "", v)
                        if len(digits) >= 10:
                            pii.phones.add(digits[-10:])
                elif "email" in col:
                    pii.emails.update(m.lower() for v in values for m in _EMAIL.findall(v))
                elif "address" in col:
                    pii.addresses.update(_norm(v) for v in values if len(v.strip()) >= 15)
            if "full_name" in df.columns:
                for v in df["full_name"].dropna().astype(str):
                    words = _WORD.findall(_norm(v))
                    if len(words) >= 2:
                        pii.full_names.add(" ".join(words))
                        pii.name_pairs.update({(words[0], words[1]), (words[1], words[0])})
                        if len(words) >= 3:  # "Иван Петрович Иванов": first + last
                            pii.name_pairs.update({(words[0], words[2]), (words[2], words[0])})
            if {"first_name", "last_name"} <= set(df.columns):
                pairs = df[["last_name", "first_name"]].dropna().astype(str)
                for last, first in pairs.itertuples(index=False):
                    lw, fw = _WORD.findall(_norm(last)), _WORD.findall(_norm(first))
                    if lw and fw:
                        pii.name_pairs.update({(lw[0], fw[0]), (fw[0], lw[0])})
        return pii

    def find(self, page_html: str) -> list[str]:
        """Every source phone, email, name or address found in ``page_html``."""
        text = html.unescape(_TAG.sub(" ", _DATA_URI.sub(" ", page_html)))
        hits: list[str] = []
        for m in _PHONE_LIKE.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            for i in range(len(digits) - 9):
                if digits[i : i + 10] in self.phones:
                    hits.append(f"phone {m.group().strip()!r}")
                    break
        hits += [f"email {e!r}" for e in {e.lower() for e in _EMAIL.findall(text)} & self.emails]
        low = _norm(text)
        words = _WORD.findall(low)
        pairs = set(zip(words, words[1:], strict=False))
        hits += [f"name {' '.join(p)!r}" for p in sorted(pairs & self.name_pairs)]
        hits += [f"address {a!r}" for a in self.addresses if a in low]
        return hits


def scan_files(paths: Iterable[Path], pii: SourcePII) -> dict[str, list[str]]:
    """File name -> personal data found in it (only files with findings)."""
    found = {}
    for path in paths:
        hits = pii.find(Path(path).read_text(encoding="utf-8", errors="replace"))
        if hits:
            found[str(path)] = hits
    return found
