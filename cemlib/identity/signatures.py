"""Records with equal identifying values are resolved once: a code per record and one
representative row per code (the graph's nodes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.roles import CONTACT_ROLE, PREPARED_COLUMNS, combination_codes
from cemlib.identity.rules import IDENTIFIER_FIELDS

# The identifying values of a prepared record: everything but its key, source, timestamp, the
# raw name spellings (their Latin keys stand for them) and hints derived from other columns.
_NOT_SIGNATURE = frozenset(
    {
        "record_id",
        "source",
        "updated_at",
        "first_name",
        "last_name",
        "middle_name",
        "gender",
        "first_hint",
    }
)
SIGNATURE_COLUMNS: tuple[str, ...] = tuple(c for c in PREPARED_COLUMNS if c not in _NOT_SIGNATURE)


def record_signatures(prepared: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Code per record of its identifying values, and one representative row per code with
    ``_weight`` = records it stands for. Names keep their first spelling per code. Records
    without any identifier (a name, a birth date, a city) keep a code of their own."""
    cols = [c for c in SIGNATURE_COLUMNS if c in prepared]
    codes = combination_codes(prepared, cols)
    # equal values are one person's only when they include an identifier: a thousand till
    # receipts signed "Ольга" with no phone are a thousand Olgas, not one
    # (an event naming its CRM contact is that contact's: equal references are one node)
    ident = [c for c in (*IDENTIFIER_FIELDS, CONTACT_ROLE) if c in prepared]
    bare = ~prepared[ident].notna().any(axis=1).to_numpy() if ident else np.ones(len(codes), bool)
    if bare.any():
        codes = codes.astype(np.int64, copy=True)
        codes[bare] = codes.max() + 1 + np.arange(int(bare.sum()))
        codes = pd.factorize(codes, sort=True)[0]
    first_row = pd.Series(np.unique(codes, return_index=True)[1])
    nodes = prepared.iloc[first_row.to_numpy()].reset_index(drop=True)
    nodes["_weight"] = np.bincount(codes)
    return codes, nodes
