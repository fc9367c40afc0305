"""The business's own words in the reports: ``vocabulary`` of the run configuration.

cemlib's reports speak of a shop (customers, purchases, baskets, till receipts). A clinic's
medical director reads patients and visits. ``vocabulary`` maps the words the reports use to
the business's own (``{customer: patient, purchase: visit, basket: visit, shop: clinic}``):

* a word matches whole and in any of three casings (``customer``, ``Customer``, ``CUSTOMER``);
  the replacement takes the same casing;
* a key also replaces its plural with ``-s``/``-es`` on its last word (``customers`` ->
  ``patients``, ``till receipts`` -> ``visits``) unless the plural is given as a key of its
  own (irregular plurals: give both);
* a key that is a verb of the reports (:data:`VERB_FORMS`: ``buy``, ``purchase``) also
  replaces the forms the reports use (``buys``, ``buying``, ``bought``) with the replacement's
  regular forms (``visits``, ``visiting``, ``visited``) unless a form is a key of its own
  (``bought: had``);
* longer keys win over shorter ones (``till receipt`` before ``receipt``);
* text inside backticks (Markdown code: table and column names such as ``marts.next_offers``
  or ``customer_id``) and inside HTML ``<code>``, ``<pre>``, ``<style>`` and ``<script>`` is
  left alone, and so are identifiers: ``customer_id`` is one word, not ``customer``.

:func:`reword_notebook` rewrites an executed notebook's Markdown cells and its Markdown, HTML
and plain-text outputs before it is rendered (the stage pages); :func:`reword` one text (the
offer reasons of ``marts.next_offers``). Charts are images: their labels keep the default words.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"^[^\W\d_]+(?:[' -]+[^\W\d_]+)*$")
_HTML_SKIP = re.compile(r"(<(code|pre|style|script)\b.*?</\2\s*>)", re.S | re.I)
_TAG = re.compile(r"(<[^>]*>)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def check_vocabulary(value: Any, key: str = "vocabulary") -> dict[str, str]:
    """``value`` as ``{word: replacement}``: text to text, each key a word or words (letters,
    spaces, hyphens, apostrophes); None or empty: no rewording. TypeError/ValueError naming
    ``key`` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{key!r} expects a mapping of words, e.g. {{customer: patient}}, "
            f"got {type(value).__name__} {value!r}"
        )
    out: dict[str, str] = {}
    for word, new in value.items():
        if not isinstance(word, str) or not isinstance(new, str):
            raise TypeError(f"{key!r}: {word!r}: {new!r} must map text to text")
        w, n = word.strip(), new.strip()
        if not _WORD.match(w):
            raise ValueError(f"{key!r}: {word!r} is not a word (letters, spaces, hyphens)")
        if not n:
            raise ValueError(f"{key!r}: {word!r} maps to nothing")
        out[w.lower()] = n
    return out


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s")


#: the verbs of the reports' texts and the forms they use ("who buys again", "most likely to
#: buy next", "bought", "purchased"): a key that is one of them covers its forms too
VERB_FORMS: dict[str, dict[str, str]] = {
    "buy": {"s": "buys", "ing": "buying", "ed": "bought"},
    "purchase": {"s": "purchases", "ing": "purchasing", "ed": "purchased"},
}


def _inflected(new: str, form: str) -> str:
    """The replacement ``new`` (a verb, regular; of several words the first is inflected) in
    ``form``: ``s`` (visits), ``ing`` (visiting), ``ed`` (visited). An irregular replacement
    (had, came) is given as a key of its own: ``bought: had``."""
    head, _, rest = new.partition(" ")
    if form == "s":
        head = _plural(head)
    elif form == "ing":
        head = (head[:-1] if head.endswith("e") and not head.endswith("ee") else head) + "ing"
    else:
        head = head + ("d" if head.endswith("e") else "ed")
    return f"{head} {rest}" if rest else head


def _cased(src: str, new: str) -> str:
    """``new`` in the casing of ``src`` (lower, Capitalized or UPPER)."""
    if src.isupper() and len(src) > 1:
        return new.upper()
    if src[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


@lru_cache(maxsize=16)
def _compiled(items: tuple[tuple[str, str], ...]) -> tuple[re.Pattern, dict[str, str]]:
    table = dict(items)
    for word, new in items:
        # a verb of the reports first: "purchases" is a verb form there and a plural alike
        for form, text in VERB_FORMS.get(word, {}).items():
            table.setdefault(text, _inflected(new, form))
        if not word.endswith("s"):
            table.setdefault(_plural(word), _plural(new))
    keys = sorted(table, key=len, reverse=True)
    words = "|".join(r"\s+".join(map(re.escape, k.split())) for k in keys)
    return re.compile(rf"(?<![\w-])({words})(?![\w-])", re.I), table


def reword(text: str, words: Mapping[str, str] | None) -> str:
    """``text`` with the vocabulary's words replaced (Markdown code spans left alone)."""
    if not words or not text:
        return text
    pattern, table = _compiled(tuple(sorted(words.items())))

    def sub(m: re.Match) -> str:
        found = m.group(1)
        return _cased(found, table[" ".join(found.lower().split())])

    parts = _CODE_SPAN.split(text)
    # split keeps (fence, content) pairs: every 3rd piece is outside code
    out = []
    for i, part in enumerate(parts):
        if i % 3 == 0:
            out.append(pattern.sub(sub, part))
        elif i % 3 == 1:
            out.append(part + parts[i + 1] + part)
    return "".join(out)


def reword_html(html: str, words: Mapping[str, str] | None) -> str:
    """``html`` with the words of its text replaced; tags, attributes and the contents of
    ``<code>``, ``<pre>``, ``<style>`` and ``<script>`` are left alone."""
    if not words or not html:
        return html
    out = []
    for i, chunk in enumerate(_HTML_SKIP.split(html)):
        if i % 3 == 1:
            out.append(chunk)
        elif i % 3 == 0:
            out.append(
                "".join(
                    piece if piece.startswith("<") else _reword_plain(piece, words)
                    for piece in _TAG.split(chunk)
                )
            )
    return "".join(out)


def _reword_plain(text: str, words: Mapping[str, str]) -> str:
    pattern, table = _compiled(tuple(sorted(words.items())))
    return pattern.sub(lambda m: _cased(m.group(1), table[" ".join(m.group(1).lower().split())]),
                       text)  # fmt: skip


def reword_notebook(nb, words: Mapping[str, str] | None):
    """A copy of the executed notebook ``nb`` with its Markdown cells and its Markdown, HTML
    and plain-text outputs reworded (code cells and images are left as they are)."""
    if not words:
        return nb
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = reword(cell.source, words)
            continue
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            for mime, fix in (
                ("text/markdown", reword),
                ("text/html", reword_html),
                ("text/plain", _reword_plain),
            ):
                if mime in data:
                    value = data[mime]
                    text = "".join(value) if isinstance(value, list) else value
                    data[mime] = fix(text, words)
    return nb
