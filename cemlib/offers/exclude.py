"""Products kept out of outbound offers (prescription-only medicines, tobacco, alcohol...).

An exclusion list names items (SKUs, or categories at ``granularity="category"``) and/or
categories: an entry equal to an item id keeps that item out, an entry equal to a category keeps
every item of the category out. The excluded items are removed from each customer's candidates
before ranking, and the best sellers that fill short lists are the best *allowed* sellers, so
every customer still gets ``k`` offers when enough allowed items exist. The model is trained on
every purchase as before (an excluded purchase still says what else the customer needs).

The list is given as a list of entries, a comma-separated text, or a file: one entry a line
(``#`` starts a comment) or a CSV/Parquet with a column ``item_id`` (or ``sku``) and/or
``category``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.errors import InputError

_FILE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".lst")


def read_exclusions(spec, *, source: str = "exclude") -> list[str]:
    """The entries of ``spec``: None (none), a list of entries, a comma-separated text, or the
    path of a file (a text ending in .csv/.txt/.tsv/.parquet/.lst, naming an existing file or
    starting with ``/``, ``./``, ``../`` or ``~``; a missing file is an input error, never read
    as an entry)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return []
    if isinstance(spec, list | tuple | set | pd.Series | np.ndarray):
        entries = [str(v).strip() for v in spec]
        return [e for e in dict.fromkeys(entries) if e]
    text = str(spec).strip()
    path = Path(text).expanduser()
    # a path: a file's suffix, an existing file, or written as one ("/...", "./...", "~/...");
    # "Простуда/грипп" is a category with a slash in its name, not a folder
    as_path = text.startswith(("/", "./", "../", "~"))
    if text.lower().endswith(_FILE_SUFFIXES) or as_path or path.is_file():
        if not path.is_absolute() and not path.is_file():
            from cemlib.config import resolve_path

            path = resolve_path(text, text)
        if not path.is_file():
            raise InputError("exclusion file not found", source=text)
        return _read_file(path)
    return [e for e in dict.fromkeys(v.strip() for v in text.split(",")) if e]


def _read_file(path: Path) -> list[str]:
    """Entries of an exclusion file: a table with ``item_id``/``sku``/``category`` columns, or
    one entry a line."""
    if path.suffix.lower() in (".csv", ".tsv", ".parquet"):
        from cemlib.offers.data import read_table

        table = read_table(str(path), name="exclude")
        cols = [c for c in ("item_id", "sku", "category") if c in table.columns]
        if not cols:
            raise InputError(
                "no item_id, sku or category column", source=str(path), column="item_id"
            )
        values = pd.concat([table[c].dropna().astype(str) for c in cols], ignore_index=True)
        return read_exclusions(values.tolist())
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return read_exclusions([line.split("#", 1)[0] for line in lines])


@dataclass
class Exclusion:
    """The entries of an exclusion list resolved on a model's items."""

    entries: list[str] = field(default_factory=list)
    codes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    by_item: int = 0  # entries that name an item
    by_category: int = 0  # entries that name a category
    unmatched: list[str] = field(default_factory=list)  # entries naming neither
    candidates_dropped: int = 0  # (customer, item) candidates removed before ranking
    customers_affected: int = 0  # customers who had at least one excluded candidate
    #: category codes every item of which is kept out (a category entry, or all its items
    #: listed): a reason never names them ("popular with customers who like <payments>")
    categories: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def items(self) -> int:
        """How many of the model's items are kept out."""
        return len(self.codes)

    def figures(self) -> dict[str, int]:
        """The counts the report shows."""
        return {
            "exclusion entries": len(self.entries),
            "items excluded from offers": self.items,
            "exclusion entries matching nothing": len(self.unmatched),
            "excluded candidates removed": self.candidates_dropped,
            "profiles with an excluded candidate": self.customers_affected,
        }


def resolve_exclusion(entries: list[str], enc) -> Exclusion:
    """``entries`` as item codes of ``enc`` (a model's :class:`~cemlib.offers.snapshot.Encoded`):
    an entry equal to an item id, or to a category (every item of it)."""
    out = Exclusion(entries=list(entries))
    if not entries:
        return out
    items = pd.Index(enc.items).astype(str)
    cats = pd.Index(enc.categories).astype(str)
    codes: set[int] = set()
    for entry in entries:
        hit = False
        i = items.get_indexer([entry])[0]
        if i >= 0:
            codes.add(int(i))
            out.by_item += 1
            hit = True
        c = cats.get_indexer([entry])[0]
        if c >= 0:
            codes.update(int(v) for v in np.flatnonzero(np.asarray(enc.item_category) == c))
            out.by_category += 1
            hit = True
        if not hit:
            out.unmatched.append(entry)
    out.codes = np.array(sorted(codes), dtype=np.int64)
    item_cat = np.asarray(enc.item_category, dtype=np.int64)
    if out.codes.size and item_cat.size:
        kept_out = np.zeros(item_cat.size, dtype=bool)
        kept_out[out.codes] = True
        every = pd.Series(kept_out).groupby(item_cat).all()  # per category: all its items out
        out.categories = np.array(sorted(c for c in every.index[every] if c >= 0), dtype=np.int64)
    return out


def drop_candidates(frame: pd.DataFrame, exclusion: Exclusion | None) -> pd.DataFrame:
    """``frame`` (candidates ``c, i, ...``) without the excluded items; counts what it drops."""
    if exclusion is None or not exclusion.items:
        return frame
    hit = np.isin(frame["i"].to_numpy(), exclusion.codes)
    if not hit.any():
        return frame
    exclusion.candidates_dropped += int(hit.sum())
    exclusion.customers_affected += int(pd.unique(frame["c"].to_numpy()[hit]).size)
    return frame[~hit].reset_index(drop=True)


def allowed_ranking(ranked: pd.DataFrame, excluded: set[str], k: int) -> pd.DataFrame:
    """A ranked list ``customer_id, rank, item_id, ...`` (asked for ``k + len(excluded)`` items
    per customer) without the ``excluded`` item ids, re-ranked, the first ``k`` each: the
    ranking the list would have had without those items, for rankings that score each item on
    its own (the baselines)."""
    if not excluded:
        return ranked
    keep = ranked[~ranked["item_id"].astype(str).isin(excluded)]
    keep = keep.sort_values(["customer_id", "rank"], kind="stable")
    rank = keep.groupby("customer_id", sort=False).cumcount() + 1
    return keep.assign(rank=rank.to_numpy())[rank.to_numpy() <= k].reset_index(drop=True)
