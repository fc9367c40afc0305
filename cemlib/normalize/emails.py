"""Email addresses: a cleaned form (``X_norm``) and a provider-canonical match key (``X_key``).

``email_norm`` trims and lower-cases (and drops a ``mailto:`` prefix and surrounding ``<>``);
spaces typed next to the ``@`` (``name@ list.ru``) are removed; values that are not an address
(no single ``@``, no dot in the domain, spaces elsewhere inside) become NA.
``email_key`` additionally folds what the provider treats as one mailbox:

* ``+tags`` are removed for every provider (``ivan+shop@mail.ru`` -> ``ivan@mail.ru``);
* Gmail ignores dots and ``googlemail.com`` is ``gmail.com``;
* Yandex: ``ya.ru``, ``yandex.ru/.com/.by/.kz/.ua/.com.tr``, ``narod.ru`` are one domain and dots
  in the login equal hyphens;
* the ``mail.ru`` family (``mail.ru``, ``inbox.ru``, ``list.ru``, ``bk.ru``, ``internet.ru``) are
  distinct mailboxes and are kept apart;
* frequent domain typos (``gmial.com``, ``mail.ry``, ``yandex.ry`` ...) are corrected.

The original column is never overwritten.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.normalize.unique import map_unique

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
YANDEX_DOMAINS = frozenset(
    {
        "ya.ru",
        "yandex.ru",
        "yandex.com",
        "yandex.by",
        "yandex.kz",
        "yandex.ua",
        "yandex.com.tr",
        "narod.ru",
    }
)
#: domain typos seen in real CRM exports -> the intended domain
DOMAIN_TYPOS: dict[str, str] = {
    "gmial.com": "gmail.com",
    "gmal.com": "gmail.com",
    "gmai.com": "gmail.com",
    "gmail.co": "gmail.com",
    "gmail.cm": "gmail.com",
    "gmail.con": "gmail.com",
    "gmaill.com": "gmail.com",
    "mail.ry": "mail.ru",
    "mail.rj": "mail.ru",
    "mai.ru": "mail.ru",
    "mal.ru": "mail.ru",
    "maill.ru": "mail.ru",
    "yandex.ry": "yandex.ru",
    "yandeks.ru": "yandex.ru",
    "yandx.ru": "yandex.ru",
    "yndex.ru": "yandex.ru",
    "inbox.ry": "inbox.ru",
    "list.ry": "list.ru",
    "bk.ry": "bk.ru",
    "rambler.ry": "rambler.ru",
}


#: spaces typed around the ``@`` (``name@ list.ru``, ``name @list.ru``)
_AROUND_AT = re.compile(r"\s*@\s*")


def _norm(text: str) -> str | None:
    value = text.strip().strip("<>").strip().lower()
    if value.startswith("mailto:"):
        value = value[7:]
    # only the spaces next to the @ go: a space elsewhere still makes the text no address
    value = _AROUND_AT.sub("@", value)
    return value if _ADDRESS.match(value) else None


def _key(text: str) -> str | None:
    return _key_of_norm(_norm(text))


def _key_of_norm(value: str | None) -> str | None:
    """The match key of an address already cleaned by :func:`_norm` (None stays None)."""
    if value is None:
        return None
    local, _, domain = value.rpartition("@")
    domain = DOMAIN_TYPOS.get(domain, domain)
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        domain = "gmail.com"
        local = local.replace(".", "")
    elif domain in YANDEX_DOMAINS:
        domain = "yandex.ru"
        local = local.replace(".", "-")
    if not local:
        return None
    return f"{local}@{domain}"


def email_norm(series: pd.Series) -> pd.Series:
    """Trimmed, lower-case addresses; NA for missing values and for text that is no address."""
    return map_unique(series, _norm)


def email_key(series: pd.Series) -> pd.Series:
    """Provider-canonical match keys (see the module docstring); NA where ``email_norm`` is NA."""
    return email_norm_and_key(series)[1]


#: an address already clean: lower-case ASCII letters, digits, ``._-``, one ``@``, a dot in the
#: domain and two characters or more after its last dot. For such text :func:`_norm` changes
#: nothing (nothing to strip or lower, no ``mailto:``, no space) and its match key is made by
#: :func:`_clean_keys`, vectorized; any other text goes through :func:`_norm` one value at a time
_CLEAN = r"^[a-z0-9._-]+@[a-z0-9._-]+\.[a-z0-9_-]{2,}$"


def _clean_keys(addresses: pa.Array) -> pa.Array:
    """:func:`_key_of_norm` of addresses that match :data:`_CLEAN`, as one Arrow string array
    (no ``+`` tag to drop: the characters exclude it)."""
    parts = pc.split_pattern(addresses, "@")
    local, domain = pc.list_element(parts, 0), pc.list_element(parts, 1)
    codes, domains = pd.factorize(np.asarray(domain.to_numpy(zero_copy_only=False), dtype=object))
    fixed = [DOMAIN_TYPOS.get(d, d) for d in domains]
    gmail = np.array([d in GMAIL_DOMAINS for d in fixed], dtype=bool)[codes]
    yandex = np.array([d in YANDEX_DOMAINS for d in fixed], dtype=bool)[codes]
    canonical = np.array(
        ["gmail.com" if d in GMAIL_DOMAINS else "yandex.ru" if d in YANDEX_DOMAINS else d
         for d in fixed] or [""],
        dtype=object,
    )  # fmt: skip
    local = pc.if_else(
        pa.array(gmail),
        pc.replace_substring(local, ".", ""),
        pc.if_else(pa.array(yandex), pc.replace_substring(local, ".", "-"), local),
    )
    key = pc.binary_join_element_wise(local, pa.array(canonical[codes], type=pa.string()), "@")
    return pc.if_else(pc.equal(pc.utf8_length(local), 0), pa.scalar(None, pa.string()), key)


def email_norm_and_key(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``(email_norm(series), email_key(series))`` in one pass: each distinct value is cleaned
    once and its key made from the cleaned address (what ``email_key`` does inside); distinct
    values already clean (:data:`_CLEAN`) are keyed all at once."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = np.asarray(uniques, dtype=object)
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # values that are not text: as str
        text = pa.array([str(u) for u in values], type=pa.string())
    clean = pc.fill_null(pc.match_substring_regex(text, _CLEAN), False)
    clean = clean.to_numpy(zero_copy_only=False)
    norms = np.empty(len(uniques) + 1, dtype=object)
    keys = np.empty(len(norms), dtype=object)
    norms[-1] = keys[-1] = None  # code -1: missing stays missing
    at = np.flatnonzero(clean)
    if len(at):
        norms[at] = text.take(pa.array(at)).to_numpy(zero_copy_only=False)
        keys[at] = _clean_keys(text.take(pa.array(at))).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(~clean)
    if len(rest):
        norms[rest] = [_norm(str(uniques[i])) for i in rest]
        keys[rest] = [_key_of_norm(v) for v in norms[rest]]
    return tuple(
        pd.Series(values[codes], index=series.index, name=series.name).astype("string")
        for values in (norms, keys)
    )
