"""The house style of every table in the reports.

``show_table(df)`` displays a DataFrame as a reviewer reads it: no index column, plain-language
headers (:mod:`cemlib.reports.glossary`), thousands separators, integers as integers, shares as
percentages, money in ₽, no scientific notation, an em dash for a missing value, at most
``max_rows`` rows on the page and the rest in a collapsed ``<details>``. Long text wraps inside
the page instead of running off its right edge.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cemlib.reports.glossary import label

DASH = "—"
MAX_ROWS = 15
#: rows put in the collapsed part at most; more are counted, not shown
MAX_HIDDEN = 300

_CSS = """<style>
.cem-table { max-width: 100%; overflow-x: auto; margin: 0.4em 0 1em; }
.cem-table table { border-collapse: collapse; font-size: 0.9em; table-layout: auto; }
.cem-table th, .cem-table td { text-align: left !important; }
.cem-table th { text-align: left; background: #f6f8fa; font-weight: 600; padding: 4px 9px;
                border-bottom: 1px solid #d0d7de; vertical-align: bottom; }
.cem-table td { padding: 3px 9px; border-bottom: 1px solid #eaeef2; vertical-align: top;
                overflow-wrap: break-word; max-width: 520px; }
.cem-table td.n, .cem-table th.n { text-align: right !important; font-variant-numeric: tabular-nums;
                                   white-space: nowrap; }
.cem-table caption { caption-side: top; text-align: left; color: #59636e; padding: 2px 0; }
.cem-table details summary { cursor: pointer; color: #0969da; margin: 4px 0; }
</style>"""


def fmt_number(value: Any, decimals: int | None = None) -> str:
    """``12345`` -> ``12,345``; ``3.0`` -> ``3``; ``0.000123`` -> ``0.000123``; NaN -> ``—``.

    Never scientific notation: three significant digits below 1 (``< 0.001`` below that), two
    decimals below 1,000 and none above (unless ``decimals`` says otherwise).
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return DASH
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return DASH
        if decimals is not None:
            return f"{value:,.{decimals}f}"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        if 0 < abs(value) < 0.001:
            return "< 0.001" if value > 0 else "> -0.001"
        return np.format_float_positional(value, precision=3, fractional=False, trim="-")
    return str(value)


def fmt_pct(value: Any, decimals: int = 1) -> str:
    """A share (0.1234) as ``12.3%``; NaN -> ``—``."""
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return f"{100.0 * float(value):.{decimals}f}%"


def fmt_rub(value: Any) -> str:
    """Money as ``1,234 ₽`` (kopecks only below 100 ₽)."""
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    v = float(value)
    return f"{v:,.2f} ₽" if abs(v) < 100 and not v.is_integer() else f"{v:,.0f} ₽"


def fmt_probability(value: Any) -> str:
    """A probability with the digits that tell it apart from 0 and 1: three decimals, more when
    it lies within 0.001 of either end, until the distance to that end shows two significant
    digits (``0.99987``, not ``1.000``: trial 12 F9)."""
    if value is None or value is pd.NA or not math.isfinite(float(value)):
        return DASH
    p = float(value)
    gap = min(p, 1.0 - p)
    decimals = 3 if gap <= 0 or gap >= 0.001 else min(12, 1 - math.floor(math.log10(gap)))
    return f"{p:.{decimals}f}"


def fmt_days(value: Any) -> str:
    """``365`` -> ``365 days``."""
    text = fmt_number(value)
    return text if text == DASH else f"{text} day{'' if text == '1' else 's'}"


def fmt_cell(value: Any, kind: str | None = None, decimals: int | None = None) -> str:
    """One value in the house style; ``kind`` is ``pct``, ``rub``, ``days`` or ``None``."""
    if kind == "pct":
        return fmt_pct(value, 1 if decimals is None else decimals)
    if kind == "rub":
        return fmt_rub(value)
    if kind == "days":
        return fmt_days(value)
    if isinstance(value, pd.Timestamp | dt.datetime):
        if pd.isna(value):
            return DASH
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if value.strip() and value.lower() not in ("nan", "none") else DASH
    if isinstance(value, list | tuple | set | dict | np.ndarray):
        items = value.values() if isinstance(value, dict) else value
        return ", ".join(fmt_cell(v) for v in items) or DASH
    return fmt_number(value, decimals)


def _kinds(df: pd.DataFrame, pct: Iterable[str], rub: Iterable[str], days: Iterable[str]):
    kinds: dict[str, str] = {}
    for names, kind in ((pct, "pct"), (rub, "rub"), (days, "days")):
        for c in names:
            if c in df.columns:
                kinds[c] = kind
    return kinds


def _row_html(row, columns, kinds, decimals, numeric) -> str:
    cells = []
    for c, v in zip(columns, row, strict=True):
        cls = ' class="n"' if numeric[c] else ""
        cells.append(f"<td{cls}>{html.escape(fmt_cell(v, kinds.get(c), decimals.get(c)))}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def table_html(
    df: pd.DataFrame,
    *,
    max_rows: int = MAX_ROWS,
    pct: Iterable[str] = (),
    rub: Iterable[str] = (),
    days: Iterable[str] = (),
    decimals: Mapping[str, int] | None = None,
    names: Mapping[str, str] | None = None,
    index: bool = False,
    caption: str | None = None,
    more: str = "more rows",
) -> str:
    """The HTML of :func:`show_table` (see there)."""
    if index:
        df = df.rename_axis(df.index.name or "").reset_index()
    kinds = _kinds(df, pct, rub, days)
    decimals = dict(decimals or {})
    columns = list(df.columns)
    numeric = {
        c: kinds.get(c) is not None
        or pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
        for c in columns
    }
    header = "".join(
        f"<th{' class=n' if numeric[c] else ''}>"
        f"{html.escape((names or {}).get(str(c)) or label(c))}</th>"
        for c in columns
    )
    head = f"<thead><tr>{header}</tr></thead>"
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    rows = [
        _row_html(r, columns, kinds, decimals, numeric)
        for r in df.head(max_rows).itertuples(index=False)
    ]
    parts = [f"<table>{cap}{head}<tbody>{''.join(rows)}</tbody></table>"] if rows else []
    if not len(df):
        parts = [f"<p><em>{html.escape(caption or 'No rows.')}</em></p>"]
    rest = len(df) - max_rows
    if rest > 0:
        hidden = df.iloc[max_rows : max_rows + MAX_HIDDEN]
        body = "".join(
            _row_html(r, columns, kinds, decimals, numeric) for r in hidden.itertuples(index=False)
        )
        untold = rest - len(hidden)
        tail = f"<p>… and {untold:,} more not shown.</p>" if untold > 0 else ""
        parts.append(
            f"<details><summary>{rest:,} {html.escape(more)}</summary>"
            f"<table>{head}<tbody>{body}</tbody></table>{tail}</details>"
        )
    return f'<div class="cem-table">{"".join(parts)}</div>'


def show_table(df: pd.DataFrame | pd.Series, **options: Any) -> None:
    """Display ``df`` in the house style (see the module docstring).

    ``pct``/``rub``/``days`` name the columns holding shares (0–1), roubles and day counts;
    ``decimals`` fixes the decimals of a column; ``names`` overrides the glossary for this
    table; ``index=True`` keeps the index as the first column (for a labelled index);
    ``max_rows`` rows are shown, the rest collapsed.
    """
    from IPython.display import HTML, display

    if isinstance(df, pd.Series):
        df = df.to_frame()
    display(HTML(_CSS + table_html(df, **options)))


def show_figures(figures: Mapping[str, Any], **options: Any) -> None:
    """A two-column table (figure, value) of already formatted or plain values."""
    names = [label(k) for k in figures]
    # a figure whose name says ₽ is money: ``1,234 ₽`` (trial 12 F9: "85,388,160" bare)
    values = [
        fmt_rub(v) if n.endswith(", ₽") and isinstance(v, int | float) else fmt_cell(v)
        for n, v in zip(names, figures.values(), strict=True)
    ]
    frame = pd.DataFrame({"figure": names, "value": values})
    show_table(frame, **options)
