"""The stored prepared records of the identity stage (``identity.prepared``) and its state
(``identity.state``): written by a full run, appended to by an incremental one, read back for
the records an incremental run resolves again."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.roles import PREPARED_COLUMNS, as_string, concat_categoricals

#: prepared columns kept as they are (the others are text held as categoricals)
_KEYS = ("record_id", "source")


def write_state(wh, prepared: pd.DataFrame | None, *, fingerprint, resolver, run_id, as_of,
                mode: str, new_rows: pd.DataFrame | None = None, removed=None,
                phases: dict | None = None) -> None:  # fmt: skip
    """``identity.state`` and ``identity.prepared``: replaced by a full run (``prepared``),
    appended to by an incremental one (``new_rows``, less the ``removed`` records). A full
    run also replaces the saved model (:func:`write_model`); an incremental one keeps it.
    ``phases``: the stage's ``[wall, CPU]`` seconds per phase so far (JSON in the state)."""
    con = wh.con
    as_of_d = pd.Timestamp(as_of).date()
    with wh.transaction():
        if prepared is not None:
            _write_prepared(con, prepared, "CREATE OR REPLACE TABLE identity.prepared AS", run_id,
                            as_of_d)  # fmt: skip
            n = con.execute("SELECT count(*) FROM identity.prepared").fetchall()[0][0]
            log_write(con, "prepared", run_id, as_of_d, n)
        else:
            n = update_prepared(con, new_rows, removed, run_id=run_id, as_of=as_of_d)
    if prepared is not None:  # a full run trained the model: the next runs score with it
        write_model(wh, getattr(resolver, "model_", None), fingerprint=fingerprint,
                    run_id=run_id, as_of=as_of)  # fmt: skip
    from cemlib.identity.sources import row_hash_kind

    state = state_frame(fingerprint=fingerprint, mode=mode, resolver=resolver, records=n,
                        phases=phases, hash_kind=row_hash_kind(con))  # fmt: skip
    wh.write_tables("identity", {"state": state}, run_id=run_id, as_of=as_of)


def state_frame(*, fingerprint: str, mode: str, resolver, records: int, phases,
                hash_kind: str) -> pd.DataFrame:  # fmt: skip
    """The one row of ``identity.state``. ``hash_kind``: the function the run's source row
    hashes were taken with (:func:`~cemlib.identity.sources.row_hash_kind`)."""
    return pd.DataFrame(
        {
            "fingerprint": [fingerprint],
            "mode": [mode],
            "threshold": pd.array([resolver.threshold_], dtype="Float64"),
            "constraints": [",".join(resolver.constraints_)],
            "records": [int(records)],
            "phases": [json.dumps(phases or {})],
            "row_hash_kind": [hash_kind],
        }
    )


def log_write(con, table: str, run_id: str, as_of, n: int) -> None:
    """A ``meta.table_log`` row: ``identity.<table>`` written by ``run_id`` (``n`` rows)."""
    con.execute(
        "INSERT INTO meta.table_log VALUES ('identity', ?, ?, ?, ?, ?)",
        [table, run_id, as_of, int(n), pd.Timestamp.now().to_pydatetime()],
    )


@contextlib.contextmanager
def _registered(con, name: str, frame):
    """``frame`` visible to ``con``'s SQL as ``name`` inside the block, unregistered after."""
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


def update_prepared(con, new_rows, removed, *, run_id: str, as_of) -> int:
    """``identity.prepared`` in place: the ``removed`` records (and earlier versions of the
    ``new_rows``) deleted, ``new_rows`` inserted with this run's stamps; the kept rows keep
    theirs (:func:`~cemlib.identity.incremental.previous_state` reads the table's last
    writer from ``meta.table_log``). Returns the rows the table holds. Call in a transaction."""
    if removed is not None and len(removed):
        with _registered(con, "_inc_removed_w", removed[["source", "record_id"]].astype(str)):
            con.execute(
                "DELETE FROM identity.prepared p WHERE EXISTS (SELECT 1 FROM _inc_removed_w r "
                "WHERE r.source = p.source AND r.record_id = p.record_id)"
            )
    if new_rows is not None and len(new_rows):
        _write_prepared(con, new_rows, "INSERT INTO identity.prepared", run_id, as_of)
    n = con.execute("SELECT count(*) FROM identity.prepared").fetchall()[0][0]
    log_write(con, "prepared", run_id, as_of, n)
    return int(n)


def replace_rows(con, table: str, frame: pd.DataFrame | str, *, scope: str, run_id: str,
                 as_of) -> None:  # fmt: skip
    """``identity.<table>`` in place: of the rows matching ``scope`` (SQL over the table's alias
    ``x``), those no row of ``frame`` equals are deleted, and the rows of ``frame`` no row left
    equals are inserted, stamped with ``run_id`` and ``as_of`` (columns compared without the
    stamps, NULLs equal). The result is the rows outside ``scope`` and those of ``frame``, as a
    delete of the whole scope and an insert of ``frame`` give it; only the rows that differ
    are written (most records resolved again keep their profile: a month's checkpoint then
    writes a few percent of the table, not the whole scope). A column the table holds as
    DuckDB's ``NULL`` type (written when every value was missing) takes the frame's type.
    ``frame`` may name a relation of the connection instead (a temporary table)."""
    name = frame if isinstance(frame, str) else "_inc_rows"
    if not isinstance(frame, str):
        con.register(name, frame)
    try:
        have = dict(con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'identity' "
            "AND table_name = ? AND database_name = current_database()", [table]).fetchall())  # fmt: skip
        got = {r[0]: r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
        cols = [c for c in got if c not in ("_run_id", "_as_of")]
        for c in cols:
            if have.get(c) == "NULL" and got.get(c, "NULL") != "NULL":
                con.execute(f'ALTER TABLE identity."{table}" ALTER "{c}" TYPE {got[c]}')
        quoted = ['"' + c.replace('"', '""') + '"' for c in cols]
        same = " AND ".join(f"x.{c} IS NOT DISTINCT FROM n.{c}" for c in quoted)
        con.execute(
            f'DELETE FROM identity."{table}" x WHERE ({scope}) '
            f"AND NOT EXISTS (SELECT 1 FROM {name} n WHERE {same})"
        )
        con.execute(
            f'INSERT INTO identity."{table}" ({", ".join(quoted)}, _run_id, _as_of) '
            f"SELECT {', '.join('n.' + c for c in quoted)}, CAST(? AS VARCHAR), CAST(? AS DATE) "
            f'FROM {name} n WHERE NOT EXISTS (SELECT 1 FROM identity."{table}" x WHERE {same})',
            [run_id, as_of],
        )
    finally:
        if not isinstance(frame, str):
            con.unregister(name)


def restamp(con, table: str, *, run_id: str, as_of) -> int:
    """Every row of ``identity.<table>`` stamped with this run (a table downstream stages read
    is the run's as a whole: the pipeline reads its first row's ``_run_id``); logs the write.
    Returns the rows."""
    con.execute(f'UPDATE identity."{table}" SET _run_id = ?, _as_of = ?', [run_id, as_of])
    n = con.execute(f'SELECT count(*) FROM identity."{table}"').fetchall()[0][0]
    log_write(con, table, run_id, as_of, n)
    return int(n)


def _write_prepared(con, frame: pd.DataFrame, verb: str, run_id: str, as_of) -> None:
    """``frame``'s prepared columns into ``identity.prepared`` (``verb``: create or insert),
    scanned by DuckDB as an Arrow table (the Arrow strings and categories of the frame
    without copies; scanning the pandas frame cost +0.7 GiB at 200,000 people)."""
    import pyarrow as pa

    cols = []
    for c in PREPARED_COLUMNS:
        if c == "updated_at":
            cols.append(f'CAST("{c}" AS TIMESTAMP) AS "{c}"')
        else:
            cols.append(f'CAST("{c}" AS VARCHAR) AS "{c}"')
    table = pa.Table.from_pandas(
        pd.DataFrame({c: frame[c] for c in PREPARED_COLUMNS}, copy=False), preserve_index=False
    )
    with _registered(con, "_inc_prepared", table):
        con.execute(
            f"{verb} SELECT {', '.join(cols)}, CAST(? AS VARCHAR) AS _run_id, "
            "CAST(? AS DATE) AS _as_of FROM _inc_prepared",
            [run_id, as_of],
        )
    del table


#: this run's source hashes, kept by :func:`changed_records` for :func:`write_source_hashes`
_RUN_HASHES = "_id_run_hashes"


def write_source_hashes(wh, *, run_id: str, as_of, reuse: bool = False,
                        atomic: bool = True) -> None:  # fmt: skip
    """``identity.source_hashes``: each source record's :func:`row_hashes_query` hash as this
    run read it, what the next incremental run compares to find changed records. ``reuse``:
    take the hashes :func:`changed_records` computed at the start of this (incremental) run
    instead of hashing every source record a second time. ``atomic=False``: inside the
    caller's transaction (no transaction of its own)."""
    from cemlib.identity.sources import row_hashes_query

    con = wh.con
    kept = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [_RUN_HASHES]
    ).fetchall()[0][0]
    query = f"SELECT * FROM {_RUN_HASHES}" if reuse and kept else row_hashes_query(wh)
    try:
        if query is None:
            return
        as_of_d = pd.Timestamp(as_of).date()
        with wh.transaction() if atomic else contextlib.nullcontext():
            con.execute(
                "CREATE OR REPLACE TABLE identity.source_hashes AS SELECT h.*, "
                f"CAST(? AS VARCHAR) AS _run_id, CAST(? AS DATE) AS _as_of FROM ({query}) h",
                [run_id, as_of_d],
            )
            n = con.execute("SELECT count(*) FROM identity.source_hashes").fetchall()[0][0]
            con.execute(
                "INSERT INTO meta.table_log VALUES ('identity', 'source_hashes', ?, ?, ?, ?)",
                [run_id, as_of_d, n, pd.Timestamp.now().to_pydatetime()],
            )
    finally:
        if kept:
            con.execute(f"DROP TABLE IF EXISTS {_RUN_HASHES}")


def update_source_hashes(wh, *, run_id: str, as_of, keys: pd.DataFrame | None = None) -> None:
    """``identity.source_hashes`` in place, from the hashes :func:`changed_records` took at
    the start of this incremental run: the rows of records gone from the sources or changed
    deleted, those of new and changed records inserted; the others are left as they were
    (their hash is the same). Without the kept hashes, :func:`write_source_hashes` rewrites
    the table. Call in a transaction (the temporary hashes are dropped by the caller).

    ``keys`` (``source, record_id``): the increment's records (new, dated after ``as_of``,
    changed, removed), the only ones whose row can differ: their rows are deleted and this
    run's hashes of them inserted, a join on the increment instead of two anti-joins of the
    whole table against every source record's hash. A record read as new but dated after
    ``as_of`` and then deleted at the source before the next run keeps its row (no stored
    prepared record names it gone); the row is never compared (no source record has its
    key) and goes with the next full run. Without ``keys``, the whole table is compared."""
    from cemlib.identity.sources import _columns

    con = wh.con
    kept = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [_RUN_HASHES]
    ).fetchall()[0][0]
    if (
        not kept
        or not wh.has_table("identity", "source_hashes")
        or "key_hash" not in _columns(wh, "identity", "source_hashes")  # an earlier form
    ):
        return write_source_hashes(wh, run_id=run_id, as_of=as_of, reuse=bool(kept), atomic=False)
    as_of_d = pd.Timestamp(as_of).date()
    if keys is not None:
        with _registered(con, "_inc_hash_keys", keys[["source", "record_id"]].astype(str)):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_hash_k AS SELECT DISTINCT source, record_id, "
                "hash(source, record_id) AS key_hash FROM _inc_hash_keys"
            )
        # rows found by key_hash (integers), then only those compared on the text keys
        of_keys = (
            "WITH m AS MATERIALIZED (SELECT {cols} FROM {table} s SEMI JOIN _inc_hash_k k ON "
            "k.key_hash = s.key_hash) SELECT {out} FROM m s SEMI JOIN _inc_hash_k k ON "
            "k.source = s.source AND k.record_id = s.record_id"
        )
        try:
            con.execute(
                "DELETE FROM identity.source_hashes WHERE rowid IN ("
                + of_keys.format(
                    cols="s.rowid AS r, s.source, s.record_id",
                    out="s.r",
                    table="identity.source_hashes",
                )
                + ")"
            )
            con.execute(
                "INSERT INTO identity.source_hashes SELECT h.*, CAST(? AS VARCHAR), "
                "CAST(? AS DATE) FROM ("
                + of_keys.format(cols="s.*", out="s.*", table=_RUN_HASHES)
                + ") h",
                [run_id, as_of_d],
            )
        finally:
            con.execute("DROP TABLE IF EXISTS _inc_hash_k")
    else:
        con.execute(
            f"DELETE FROM identity.source_hashes s WHERE NOT EXISTS (SELECT 1 FROM {_RUN_HASHES} "
            "h WHERE h.source = s.source AND h.record_id = s.record_id AND h.row_hash = s.row_hash)"
        )
        con.execute(
            f"INSERT INTO identity.source_hashes SELECT h.*, CAST(? AS VARCHAR), CAST(? AS DATE) "
            f"FROM {_RUN_HASHES} h ANTI JOIN identity.source_hashes s "
            "ON h.source = s.source AND h.record_id = s.record_id",
            [run_id, as_of_d],
        )
    n = con.execute("SELECT count(*) FROM identity.source_hashes").fetchall()[0][0]
    log_write(con, "source_hashes", run_id, as_of_d, n)


def drop_run_hashes(con) -> None:
    """Drop the hashes :func:`changed_records` kept for this run."""
    con.execute(f"DROP TABLE IF EXISTS {_RUN_HASHES}")


def changed_records(wh) -> pd.DataFrame:
    """``source, record_id`` of the records kept by the last run whose identifying values
    changed at the source since (their hash differs from ``identity.source_hashes``). The
    hashes of this run are kept (a temporary table) for :func:`write_source_hashes`.

    A record is changed when its ``row_hash`` and ``key_hash`` pair is not stored and its key
    is: an anti-join on two integers finds the few new or changed rows, a join on
    ``key_hash`` the stored rows of their keys, and only those are compared on the text keys
    (joining every row on the text keys was most of the compare's CPU).
    Stored hashes of another form (MD5 texts of an earlier version) compare to nothing: every
    stored record is then returned, never a change missed
    (:func:`~cemlib.identity.incremental.choose_mode` runs such a warehouse in full)."""
    from cemlib.identity.sources import _columns, row_hashes_query

    query = row_hashes_query(wh)
    if query is None or not wh.has_table("identity", "source_hashes"):
        return pd.DataFrame({"source": pd.Series([], dtype="string"),
                             "record_id": pd.Series([], dtype="string")})  # fmt: skip
    wh.con.execute(f"CREATE OR REPLACE TEMP TABLE {_RUN_HASHES} AS {query}")
    if "key_hash" not in _columns(wh, "identity", "source_hashes"):
        return fetch_frame(
            wh.con,
            f"SELECT h.source, h.record_id FROM identity.source_hashes h SEMI JOIN {_RUN_HASHES} "
            "c ON c.source = h.source AND c.record_id = h.record_id ORDER BY 1, 2",
        )
    # the stored rows are found by their key's hash, then only those compared on the keys
    return fetch_frame(
        wh.con,
        f"WITH c AS MATERIALIZED (SELECT c.* FROM {_RUN_HASHES} c ANTI JOIN identity.source_hashes "
        "h ON c.row_hash = h.row_hash AND c.key_hash = h.key_hash), k AS MATERIALIZED (SELECT "
        "h.source, h.record_id FROM identity.source_hashes h SEMI JOIN c ON c.key_hash = "
        "h.key_hash) SELECT k.source, k.record_id FROM k SEMI JOIN c ON c.source = k.source AND "
        "c.record_id = k.record_id ORDER BY 1, 2",
    )


#: the kinds of identifier whose earlier values a record keeps as former identifiers
FORMER_KINDS: tuple[str, ...] = ("phone", "email", "loyalty_card")
_FORMER_COLUMNS = ("source", "record_id", "kind", "value", "until")


def _identifier_rows(relation: str, cols: dict[str, tuple[str, ...]]) -> str:
    """SQL: ``source, record_id, kind, value`` of every identifier value of ``relation``."""
    return " UNION ALL ".join(
        f"SELECT source, record_id, '{kind}' AS kind, \"{c}\" AS value FROM {relation} "
        f'WHERE "{c}" IS NOT NULL'
        for kind, kcols in cols.items()
        for c in kcols
    )


def record_former_identifiers(wh, records: pd.DataFrame, *, run_id: str,
                              as_of) -> pd.DataFrame:  # fmt: skip
    """``identity.former_identifiers``: the identifiers (phones, e-mails, cards) a record of
    ``records`` (prepared, this run) held in the last run's ``identity.prepared`` and no
    longer holds (a CRM overwriting a card's phone), added with ``until`` = this run's
    ``as_of``, the first run that saw the change (it happened after the last run's: a receipt
    of the weeks between may carry either number; a record that changes it again keeps the
    latest date). Call before ``identity.prepared`` is written. Returns the whole
    table (``source, record_id, kind, value, until``): the history lives in the warehouse, so
    a full and an incremental run read the same evidence."""
    from cemlib.identity.rules import IDENTIFIER_COLUMNS

    con = wh.con
    cols = {k: v for k, v in IDENTIFIER_COLUMNS.items() if k in FORMER_KINDS}
    with wh.transaction():
        con.execute(
            "CREATE TABLE IF NOT EXISTS identity.former_identifiers (source VARCHAR, record_id "
            "VARCHAR, kind VARCHAR, value VARCHAR, until DATE, _run_id VARCHAR, _as_of DATE)"
        )
        until = pd.Timestamp(as_of).date()
        if wh.has_table("identity", "prepared") and records is not None and len(records):
            # the prepared columns as they are (Arrow-backed strings DuckDB scans without a
            # Python object per value: the full run passes every record)
            new = pd.DataFrame(
                {c: as_string(records[c])
                 for c in ("source", "record_id", *(c for v in cols.values() for c in v))},
                copy=False,
            )  # fmt: skip
            with _registered(con, "_former_new", new):
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE _former_add AS WITH o AS ("
                    + _identifier_rows("identity.prepared", cols)
                    + "), n AS ("
                    + _identifier_rows("_former_new", cols)
                    + ") SELECT DISTINCT o.source, o.record_id, o.kind, o.value FROM o "
                    "SEMI JOIN _former_new k ON k.source = o.source AND k.record_id = o.record_id "
                    "ANTI JOIN n ON n.source = o.source AND n.record_id = o.record_id "
                    "AND n.kind = o.kind AND n.value = o.value"
                )
            try:
                added = con.execute("SELECT count(*) FROM _former_add").fetchall()[0][0]
                if added:
                    con.execute(
                        "DELETE FROM identity.former_identifiers f WHERE EXISTS (SELECT 1 FROM "
                        "_former_add a WHERE a.source = f.source AND a.record_id = f.record_id "
                        "AND a.kind = f.kind AND a.value = f.value)"
                    )
                    con.execute(
                        "INSERT INTO identity.former_identifiers SELECT source, record_id, kind, "
                        "value, CAST(? AS DATE), CAST(? AS VARCHAR), CAST(? AS DATE) "
                        "FROM _former_add",
                        [until, run_id, pd.Timestamp(as_of).date()],
                    )
                    q = "SELECT count(*) FROM identity.former_identifiers"
                    n = con.execute(q).fetchall()[0][0]
                    log_write(con, "former_identifiers", run_id, pd.Timestamp(as_of).date(), n)
            finally:
                con.execute("DROP TABLE IF EXISTS _former_add")
    cols = ", ".join(_FORMER_COLUMNS)
    return fetch_frame(con, f"SELECT {cols} FROM identity.former_identifiers ORDER BY 1, 2, 3, 4")


def removed_records(wh, tables_of: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Prepared records whose row is no longer in its source table (deleted at the source)."""
    parts = []
    for name, (schema, id_col) in tables_of.items():
        parts.append(
            f"SELECT p.source, p.record_id FROM identity.prepared p WHERE p.source = '{name}' "
            f'AND NOT EXISTS (SELECT 1 FROM {schema}."{name}" t '
            f'WHERE CAST(t."{id_col}" AS VARCHAR) = p.record_id)'
        )
    gone_sources = ", ".join(f"'{n}'" for n in tables_of) or "''"
    parts.append(
        f"SELECT source, record_id FROM identity.prepared WHERE source NOT IN ({gone_sources})"
    )
    return fetch_frame(wh.con, " UNION ALL ".join(parts))


def read_prepared(wh, keys: pd.DataFrame) -> pd.DataFrame:
    """The stored prepared records of ``keys`` (``source, record_id``), text as categoricals
    like freshly prepared records."""
    con = wh.con
    with _registered(con, "_inc_want", keys[["source", "record_id"]]):
        cols = ", ".join(f'p."{c}"' for c in PREPARED_COLUMNS)
        frame = fetch_frame(
            con,
            f"SELECT {cols} FROM identity.prepared p SEMI JOIN _inc_want k "
            "ON p.source = k.source AND p.record_id = k.record_id "
            "ORDER BY p.source, p.record_id",
        )
    for c in PREPARED_COLUMNS:
        if c not in _KEYS and c != "updated_at":
            frame[c] = frame[c].astype("category")
    return frame


def _object_categories(v: pd.Series) -> pd.Categorical:
    """A categorical whose categories are Python strings (prepared and stored records differ)."""
    if not isinstance(v.dtype, pd.CategoricalDtype):
        return pd.Categorical(v.to_numpy(dtype=object, na_value=None))
    cats = v.cat.categories
    return pd.Categorical.from_codes(
        v.cat.codes.to_numpy(), categories=pd.Index(np.asarray(cats, dtype=object), dtype=object)
    )


def stack(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Prepared frames one under the other (categoricals united, not turned into objects)."""
    out = {}
    for c in PREPARED_COLUMNS:
        x, y = a[c], b[c]
        if isinstance(x.dtype, pd.CategoricalDtype) or isinstance(y.dtype, pd.CategoricalDtype):
            out[c] = pd.Series(concat_categoricals([_object_categories(x), _object_categories(y)]))
        elif c == "updated_at":
            out[c] = pd.concat([pd.to_datetime(x), pd.to_datetime(y)], ignore_index=True).astype(
                "datetime64[ns]"
            )
        else:
            out[c] = pd.concat([as_string(x), as_string(y)], ignore_index=True)
    return pd.DataFrame(out)


def write_model(wh, model, *, fingerprint: str, run_id: str, as_of) -> None:
    """``identity.model`` (one row: the fitted Splink model's settings JSON with its ``m``,
    ``u`` and prior, the compared columns, the EM passes, the settings ``fingerprint``) and
    ``identity.model_tf`` (``tf_column, value, tf``: its term-frequency tables), from
    :meth:`~cemlib.identity.model.SplinkModel.saved`. Without a model (too few named
    records, or a Spark fit) both are written empty: no later run scores with a stale one."""
    saved = None
    if model is not None and getattr(model, "spark", None) is None:
        saved = model.saved()
    row = {"fingerprint": [], "settings": [], "columns": [], "compared": [], "em_sessions": []}
    tf = pd.DataFrame({"tf_column": pd.Series([], dtype="string"),
                       "value": pd.Series([], dtype="string"), "tf": pd.Series([], dtype=float)})  # fmt: skip
    if saved is not None:
        row = {
            "fingerprint": [fingerprint],
            "settings": [json.dumps(saved["settings"], default=str)],
            "columns": [json.dumps(saved["columns"])],
            "compared": [json.dumps(saved["compared"])],
            "em_sessions": [json.dumps(saved["em_sessions"])],
        }
        parts = [
            pd.DataFrame(
                {
                    "tf_column": name,
                    "value": t["value"].astype("string"),
                    "tf": t["tf"].astype(float),
                }
            )  # fmt: skip
            for name, t in saved["tf"].items()
        ]
        if parts:
            tf = pd.concat(parts, ignore_index=True)
    frame = pd.DataFrame(row, dtype="string")
    wh.write_tables("identity", {"model": frame, "model_tf": tf}, run_id=run_id, as_of=as_of)


def read_model(wh, fingerprint: str) -> dict | None:
    """The model :func:`write_model` saved (:meth:`~cemlib.identity.model.SplinkModel.saved`'s
    form), or None when there is none or it was fitted with other settings (``fingerprint``)."""
    if not (wh.has_table("identity", "model") and wh.has_table("identity", "model_tf")):
        return None
    rows = wh.con.execute(  # fetched whole: no result left open on the connection
        "SELECT fingerprint, settings, columns, compared, em_sessions FROM identity.model LIMIT 1"
    ).fetchall()
    row = rows[0] if rows else None
    if row is None or row[0] != fingerprint:
        return None
    tf = fetch_frame(wh.con, "SELECT tf_column, value, tf FROM identity.model_tf")
    return {
        "settings": json.loads(row[1]),
        "columns": json.loads(row[2]),
        "compared": json.loads(row[3]),
        "em_sessions": json.loads(row[4]),
        "tf": {
            str(name): part[["value", "tf"]].reset_index(drop=True)
            for name, part in tf.groupby("tf_column", sort=True)
        },
        "run_id": (wh.stamp("identity", "model") or (None,))[0],
    }
