"""Staging one table: its raw text typed (numbers, dates, flags) and its identifiers
normalized (phones, e-mails, names), with per-column figures of what changed and what could
not be read, and the identifier coverage of the table."""

from __future__ import annotations

import pandas as pd

from cemlib.collect.loaders import (
    SOURCE_ROW,
    LoadedTable,
)
from cemlib.normalize import (
    gender_hint,
    masked_phone_tail,
    name_norm,
    normalize_phone,
    parse_amounts,
    parse_bools,
    parse_dates,
    split_full_name,
    translit_key,
)
from cemlib.normalize.emails import email_norm_and_key
from cemlib.schema import BOOL, DATE, NAME_PARTS, NUMBER, TIMESTAMP, TableSpec


def _present(text: pd.Series) -> pd.Series:
    """Rows where the raw text holds something other than blanks."""
    return text.notna() & text.str.strip().ne("").fillna(False)


def _stat(table, column, kind, present, normalized, changed=None, masked=None) -> dict:
    """Figures of one normalized column: ``changed`` counts values normalization rewrote
    (not those it could not parse, which ``n_unparsed`` counts); ``masked`` the values that
    are masked phones (``+7 *** ***-12-34``: among the unparsed, told apart from garbage)."""
    unparsed = present & normalized.isna()
    return {
        "table": table,
        "column": column,
        "kind": kind,
        "n_values": int(present.sum()),
        "n_changed": int(changed.sum()) if changed is not None else pd.NA,
        "n_unparsed": int(unparsed.sum()),
        "n_masked": int((unparsed & masked).sum()) if masked is not None else 0,
    }


def _split_names(staged: pd.DataFrame, raw: pd.DataFrame, stats: list[dict], table: str) -> None:
    """Fill name parts from ``full_name`` where they are absent; add ``*_norm``/``*_lat``."""
    hint = None
    if "full_name" in staged.columns:
        parts = split_full_name(staged["full_name"])
        for part in NAME_PARTS:
            if part in staged.columns:
                before = staged[part].notna()
                staged[part] = staged[part].astype("string").fillna(parts[part])
            else:
                before = pd.Series(False, index=staged.index)
                staged[part] = parts[part]
            filled = ~before & staged[part].notna()
            stats.append(
                {
                    "table": table,
                    "column": part,
                    "kind": "name split",
                    "n_values": int(_present(raw["full_name"]).sum()),
                    "n_changed": int(filled.sum()),
                    "n_unparsed": 0,
                    "n_masked": 0,
                }
            )
        hint = parts["gender_hint"]
    for part in NAME_PARTS:
        if part not in staged.columns:
            continue
        text = staged[part].astype("string")
        present = _present(text)
        norm = name_norm(text)
        staged[f"{part}_norm"] = norm
        staged[f"{part}_lat"] = translit_key(text)
        stats.append(
            _stat(
                table,
                part,
                "name",
                present,
                norm,
                present & norm.ne(text.str.strip().str.lower()).fillna(False),
            )
        )
    if any(p in staged.columns for p in NAME_PARTS):
        derived = gender_hint(*(staged[p] if p in staged.columns else None for p in NAME_PARTS))
        staged["gender_hint"] = hint.fillna(derived) if hint is not None else derived


def stage_table(
    spec: TableSpec, loaded: LoadedTable, as_of=None
) -> tuple[pd.DataFrame, list[dict]]:
    """The staging frame of one loaded table and its per-column normalization figures.

    ``as_of``: the run's last day; a date column (a birth date, never ahead of the run)
    written with a two-digit year is read in the century that does not put it after ``as_of``.
    """
    raw = loaded.frame
    typed = loaded.typed
    staged = raw.copy(deep=False)  # text columns shared with raw; typed ones replaced
    stats: list[dict] = []
    for col in raw.columns:
        if col == SOURCE_ROW:
            continue
        kind = spec.kind(col)
        if kind == "text":
            continue
        src = typed[col] if typed is not None and col in typed.columns else raw[col]
        present = _present(raw[col])
        if kind in (TIMESTAMP, DATE):
            values = parse_dates(
                src,
                order=loaded.date_orders.get(col),
                not_after=as_of if kind == DATE else None,
            )
            if kind == DATE:
                values = values.dt.normalize()
            values = values.astype("datetime64[us]")
        elif kind == NUMBER:
            values = parse_amounts(src)
        elif kind == BOOL:
            values = parse_bools(src)
        else:  # pragma: no cover - schema kinds are fixed
            raise ValueError(kind)
        staged[col] = values.set_axis(staged.index)
        stats.append(_stat(spec.name, col, kind, present, staged[col]))
    for col in spec.phones:
        if col in raw.columns:
            e164 = normalize_phone(raw[col])
            staged[f"{col}_e164"] = e164
            # a masked phone (+7 (***) ***-87-48): never a phone, its shown last digits kept
            # ("" when none are shown) for identity's partial key (cemlib.identity.masked)
            staged[f"{col}_tail"] = masked_phone_tail(raw[col])
            present = _present(raw[col])
            stats.append(
                _stat(
                    spec.name,
                    col,
                    "phone",
                    present,
                    e164,
                    present & e164.ne(raw[col]).fillna(False),
                    staged[f"{col}_tail"].notna(),
                )
            )
    for col in spec.emails:
        if col in raw.columns:
            norm, key = email_norm_and_key(raw[col])
            staged[f"{col}_norm"], staged[f"{col}_key"] = norm, key
            present = _present(raw[col])
            stats.append(
                _stat(
                    spec.name,
                    col,
                    "email",
                    present,
                    norm,
                    present & norm.ne(raw[col]).fillna(False),
                )
            )
            stats.append(
                _stat(
                    spec.name,
                    f"{col}_key",
                    "email key",
                    norm.notna(),
                    key,
                    norm.notna() & key.ne(norm).fillna(False),
                )
            )
    if spec.name == "crm_contacts":
        _split_names(staged, raw, stats, spec.name)
    return staged, stats


# -- figures ----------------------------------------------------------------------------------
def coverage_rows(
    name: str, spec: TableSpec, raw: pd.DataFrame, staged: pd.DataFrame
) -> list[dict]:
    """Per identifier: rows, rows carrying it, rows where it normalized to a value (counts, so
    that the figures of a table's chunks add up; :func:`coverage_frame` adds the shares)."""
    rows = []
    any_present = pd.Series(False, index=raw.index)
    any_valid = pd.Series(False, index=raw.index)
    for ident in spec.identifiers:
        if ident not in raw.columns:
            continue
        present = _present(raw[ident])
        norm_col = next(
            (c for c in (f"{ident}_e164", f"{ident}_key", f"{ident}_norm") if c in staged.columns),
            ident,
        )
        valid = staged[norm_col].notna() & present
        any_present |= present
        any_valid |= valid
        rows.append((ident, present, valid))
    if rows:
        rows.append(("any identifier", any_present, any_valid))
    return [
        {
            "table": name,
            "identifier": ident,
            "n_rows": len(raw),
            "n_present": int(present.sum()),
            "n_valid": int(valid.sum()),
        }
        for ident, present, valid in rows
    ]


def coverage_frame(rows: list[dict]) -> pd.DataFrame:
    """The identifier coverage rows as a frame with the present and valid shares."""
    out = pd.DataFrame(rows)
    if len(out):
        n = out["n_rows"].where(out["n_rows"] > 0)
        out.insert(4, "share_present", out["n_present"] / n)
        out["share_valid"] = out["n_valid"] / n
    return out


def add_up(acc: dict, rows: list[dict], keys: tuple[str, ...], counts: tuple[str, ...]) -> None:
    """Sum the count fields of ``rows`` into ``acc`` (keyed by ``keys``, first-seen order); a
    count that is NA in any chunk stays NA."""
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key not in acc:
            acc[key] = dict(row)
            continue
        total = acc[key]
        for c in counts:
            a, b = total[c], row[c]
            total[c] = pd.NA if a is pd.NA or b is pd.NA else a + b
