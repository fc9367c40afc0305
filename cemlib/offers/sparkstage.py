"""Stage 04 on Spark (``engine: spark``): the lake's ``clean.*`` and ``identity.map`` in,
``marts.next_offers`` out.

What runs where (docs/spark.md):

* **Spark SQL**: every purchased line and every identified web event up to ``as_of`` keyed by
  profile (:func:`spark_transactions`, :func:`spark_events`: the joins of
  :func:`~cemlib.marts.transactions.profile_transactions` and
  :func:`~cemlib.offers.stage.profile_events` over the lake's ``clean.*`` and ``identity.map``;
  nothing dated after ``as_of`` leaves Spark).
* **The driver**: the history is collected once (Arrow) and the model fitted exactly as on
  DuckDB (:class:`~cemlib.offers.model.NextOfferModel`: at most ``max_train_customers``
  (50,000) sampled, seeded customers per training window, the same LightGBM settings); the
  snapshot's item-level tables (popularity, co-purchase and bought-after neighbours, segment
  popularity) are computed there once, the baselines and the metrics as on DuckDB. So the
  driver holds the history, as the DuckDB engine does: its memory grows with the data.
* **Spark** ``mapInPandas``: scoring. The lines and events are partitioned by profile; each
  partition builds its profiles' own tables (customer x item, customer, customer x category,
  browsing) with the model's own SQL in a local DuckDB, joins the broadcast item-level tables,
  builds candidates and features, scores them with the broadcast booster, keeps the top ``k``
  (popular items filling short lists) and writes the SHAP reasons of the profiles an offer can
  be sent to. Every feature is a function of the profile's own history and the item tables, so
  the scores are the driver's.
* **The driver** again: the consent (every CRM refusal, through the lake's DuckDB views, by the
  very function of the DuckDB engine: refusals always win) and ``marts.next_offers`` written to
  the lake beside its folder and renamed into place.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.errors import InputError
from cemlib.marts.transactions import RETURN_FLAGS

#: the columns of the rows a scoring partition receives (lines and events in one frame)
_ROW_COLUMNS = ("kind", "customer_id", "ts", "order_id", "item_id", "category", "quantity",
                "amount", "event_type")  # fmt: skip
_SALES = (
    ("online_orders", "order_id", "ordered_at", "order_lines", "online"),
    ("pos_receipts", "receipt_id", "purchased_at", "receipt_lines", "store"),
)
_OUT_SCHEMA = "customer_id string, rank long, item_id string, score double, reasons string"


def _bound(as_of) -> str:
    """The exclusive end of the day ``as_of`` as a Spark SQL timestamp literal."""
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    return f"TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'"


def _view(spark, lake, schema: str, name: str) -> str | None:
    """``schema.name`` of the lake as a temporary view ``_cem_<schema>_<name>``; None if absent."""
    return lake.temp_view(spark, schema, name, f"_cem_{schema}_{name}")


def _cols(spark, view: str) -> set[str]:
    return set(spark.table(view).columns)


def _mapping(spark, lake, key: str) -> str:
    """Spark SQL relation ``(source_table, record_id, customer_id)`` of ``key``."""
    if key == "profile":
        view = _view(spark, lake, "identity", "map")
        if view is None:
            raise InputError("no identity.map: run the identity stage (02_profiles) first",
                             source=str(lake.root))  # fmt: skip
        return (f"(SELECT source_table, CAST(record_id AS STRING) AS record_id, "
                f"CAST(profile_id AS STRING) AS customer_id FROM {view})")  # fmt: skip
    view = _view(spark, lake, "truth", "record_person")
    if view is None:
        raise InputError("no truth.record_person (not a synthetic world)", source=str(lake.root))
    return (f"(SELECT source_table, CAST(record_id AS STRING) AS record_id, "
            f"CAST(person_id AS STRING) AS customer_id FROM {view})")  # fmt: skip


def spark_transactions(spark, lake, as_of, *, key: str = "profile"):
    """Every purchased line up to ``as_of`` keyed by customer, as a Spark DataFrame with the
    columns of :func:`~cemlib.marts.transactions.profile_transactions` (the same joins and
    rules in Spark SQL: quantity missing -> 1, the line's price else the product's, margin as
    a rate when every product margin is within [0, 1]); anonymous lines left out."""
    if not lake.tables("clean"):
        raise InputError("no clean.* tables: run the quality stage (01_quality) first",
                         source=str(lake.root))  # fmt: skip
    mapping = _mapping(spark, lake, key)
    products = _view(spark, lake, "clean", "products")
    pcols = _cols(spark, products) if products else set()
    rate = True
    if "margin" in pcols:
        mx, mn = spark.sql(f"SELECT max(margin), min(margin) FROM {products}").first()
        rate = mx is None or (float(mx) <= 1.0 and float(mn) >= 0.0)
    parts = []
    for (header, id_col, ts_col, lines, channel), kind in (
        (source, kind) for source in _SALES for kind in ("sale", "return")
    ):
        h, ln = _view(spark, lake, "clean", header), _view(spark, lake, "clean", lines)
        if h is None or ln is None:
            continue
        hcols, lcols = _cols(spark, h), _cols(spark, ln)
        for need, cols, tab in ((id_col, hcols, header), (ts_col, hcols, header),
                                (id_col, lcols, lines), ("sku", lcols, lines)):  # fmt: skip
            if need not in cols:
                raise InputError("missing column", source=f"clean.{tab}", column=need)
        qty = "coalesce(CAST(l.quantity AS DOUBLE), 1.0)" if "quantity" in lcols else "1.0"
        price_l = "CAST(l.price AS DOUBLE)" if "price" in lcols else "CAST(NULL AS DOUBLE)"
        price_p = "CAST(p.price AS DOUBLE)" if "price" in pcols else "CAST(NULL AS DOUBLE)"
        cat = "CAST(p.category AS STRING)" if "category" in pcols else "CAST(NULL AS STRING)"
        if "margin" in pcols:
            margin = (f"{qty} * coalesce({price_l}, {price_p}) * CAST(p.margin AS DOUBLE)"
                      if rate else f"{qty} * CAST(p.margin AS DOUBLE)")  # fmt: skip
        else:
            margin = "CAST(NULL AS DOUBLE)"
        # the lines of one order in the order they were collected (the DuckDB engine's)
        line_row = (
            "CAST(l._source_row AS BIGINT)" if "_source_row" in lcols else "CAST(NULL AS BIGINT)"
        )
        pjoin = (f"LEFT JOIN {products} p ON CAST(p.sku AS STRING) = CAST(l.sku AS STRING)"
                 if products else "LEFT JOIN (SELECT CAST(NULL AS STRING) AS sku) p ON FALSE")  # fmt: skip
        # a return (``is_return``, or the return of a line ``returned``) is a negative row, a
        # sale every other line (``returned`` ones included), as the DuckDB mart has them
        flags = [f"coalesce(CAST(l.{c} AS BOOLEAN), FALSE)" for c in RETURN_FLAGS if c in lcols]
        sign, which = "", ""
        if kind == "return":
            if not flags:
                continue
            sign, which = "-", f" AND ({' OR '.join(flags)})"
        elif "is_return" in lcols:
            which = " AND NOT coalesce(CAST(l.is_return AS BOOLEAN), FALSE)"
        parts.append(f"""
            SELECT m.customer_id, CAST(h.{ts_col} AS TIMESTAMP) AS ts,
                   concat('{header}:', CAST(h.{id_col} AS STRING)) AS order_id,
                   CAST(l.sku AS STRING) AS item_id, {cat} AS category, {sign}{qty} AS quantity,
                   {sign}{qty} * coalesce({price_l}, {price_p}) AS amount,
                   {sign}({margin}) AS margin, '{channel}' AS channel, {line_row} AS _row
            FROM {h} h JOIN {ln} l ON CAST(l.{id_col} AS STRING) = CAST(h.{id_col} AS STRING)
            JOIN {mapping} m
              ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS STRING)
            {pjoin}
            WHERE h.{ts_col} IS NOT NULL AND CAST(h.{ts_col} AS TIMESTAMP) < {_bound(as_of)}
              AND m.customer_id IS NOT NULL{which}""")
    if not parts:
        raise InputError("no sales tables (online_orders + order_lines or pos_receipts + "
                         "receipt_lines) in clean.*", source=str(lake.root))  # fmt: skip
    return spark.sql(" UNION ALL ".join(f"({p})" for p in parts))


def spark_returned_items(tx):
    """:func:`~cemlib.marts.transactions.returned_items` in Spark: ``tx``
    (:func:`spark_transactions`, returns as negative rows) split into the purchases the offers
    learn from (a Spark DataFrame) and the ``(customer_id, item_id)`` pairs returned and never
    kept (returned quantity at least the bought quantity; pandas, in that order). A customer
    who kept some of an item keeps its purchases.

    The pairs (a few rows per return) are collected once, here: the purchases kept are then
    the sales without them, a broadcast anti-join of a small table (none without returns),
    not a plan that reads the history three times each time the history is read."""
    from pyspark.sql import functions as F

    back = (F.coalesce(F.col("quantity") < 0, F.lit(False))
            | F.coalesce(F.col("amount") < 0, F.lit(False)))  # fmt: skip
    pair = ["customer_id", "item_id"]
    sales = tx.where(~back)
    bought = sales.groupBy(*pair).agg(F.sum("quantity").alias("_bought"))
    sent = tx.where(back).groupBy(*pair).agg(F.abs(F.sum("quantity")).alias("_sent"))
    pairs = (
        sent.join(bought, pair, "left")
        .where(F.col("_sent") - F.coalesce(F.col("_bought"), F.lit(0.0)) >= 0)
        .select(*pair)
    )
    never_kept = pairs.toPandas().sort_values(pair, ignore_index=True)
    if not len(never_kept):
        return sales, never_kept
    small = F.broadcast(tx.sparkSession.createDataFrame(never_kept, schema=pairs.schema))
    # (a join on column names puts them first: the history keeps its own column order)
    return sales.join(small, pair, "left_anti").select(*tx.columns), never_kept


def spark_events(spark, lake, as_of, *, key: str = "profile"):
    """Web events of identified customers up to ``as_of`` (the columns of
    :func:`~cemlib.offers.stage.profile_events`) as a Spark DataFrame, None without
    ``clean.web_events``."""
    ev = _view(spark, lake, "clean", "web_events")
    if ev is None:
        return None
    cols = _cols(spark, ev)
    sku, category = (f"CAST(e.{c} AS STRING)" if c in cols else "CAST(NULL AS STRING)"
                     for c in ("sku", "category"))  # fmt: skip
    row = "CAST(e._source_row AS BIGINT)" if "_source_row" in cols else "CAST(NULL AS BIGINT)"
    return spark.sql(f"""
        SELECT m.customer_id, CAST(e.ts AS TIMESTAMP) AS ts, {sku} AS item_id,
               {category} AS category, CAST(e.event_type AS STRING) AS event_type, {row} AS _row
        FROM {ev} e JOIN {_mapping(spark, lake, key)} m
          ON m.source_table = 'web_events' AND m.record_id = CAST(e.event_id AS STRING)
        WHERE m.customer_id IS NOT NULL AND e.ts IS NOT NULL
          AND CAST(e.ts AS TIMESTAMP) < {_bound(as_of)}""")


#: the order of the history lines, as :func:`cemlib.marts.transactions.profile_transactions`
#: gives them on DuckDB (within an order: item, quantity, amount)
_LINE_ORDER = ("customer_id", "ts", "order_id", "item_id", "quantity", "amount")


def _to_pandas(sdf, order: list[str]) -> pd.DataFrame:
    """``sdf`` on the driver (Arrow), rows in ``order``, text as Python objects."""
    out = sdf.toPandas()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].astype("datetime64[us]")
    out = out.sort_values([*order, "_row"], kind="stable", ignore_index=True)
    return out.drop(columns="_row")


def _item_tables(model, k: int) -> tuple[dict, np.ndarray, int]:
    """The scoring snapshot's item-level tables (``it``, ``cooc``, ``after``, ``segpop`` and
    ``itx`` with the category source) as Arrow tables, the popular fill and the number of
    customers with history, computed once on the driver's store."""
    from cemlib.offers.candidates import CandidateConfig, drop_extras, item_extras

    snap, hist, pop = model._scoring_snapshot(None, k)
    try:
        names = ["it", "cooc", "after", "segpop"]
        if (model.candidates or CandidateConfig()).n_categories > 0:
            item_extras(snap)
            names.append("itx")
        tables = {
            n: model.store_.con.sql(f"SELECT * FROM {snap.p}{n}").to_arrow_table() for n in names
        }
    finally:
        snap.drop()
        drop_extras(snap)
    return tables, pop, len(hist)


def _local_codes(model, tx: pd.DataFrame, ev: pd.DataFrame | None):
    """The coded lines and events of one partition's customers: items and categories with the
    model's code books (as :func:`~cemlib.offers.snapshot.encode` codes the whole history),
    customers with the partition's own (its customers in id order: the model knows only the
    customers it was fitted on, the fit sample, and a customer's features are its own); the
    model's ``enc_`` is replaced by the partition's."""
    import dataclasses

    from cemlib.offers.data import prepare_events, prepare_transactions
    from cemlib.offers.snapshot import EPOCH

    tx = prepare_transactions(tx, as_of=model.as_of_, items=model.items_,
                              granularity=model.granularity)  # fmt: skip
    local = pd.Index(np.sort(pd.unique(tx["customer_id"].astype(str))))
    enc = model.enc_
    # items the fit sample never bought: coded after the model's (no item-level figures, as an
    # item new since the fit), so that every line counts in its customer's own tables
    new = pd.Index(pd.unique(tx["item_id"][enc.items.get_indexer(tx["item_id"]) < 0]))
    items, item_category = enc.items, enc.item_category
    if len(new):
        items = enc.items.append(new)
        first = tx.drop_duplicates("item_id").set_index("item_id")["category"]
        cats = first.reindex(new).fillna("\x00").astype(str)
        item_category = np.r_[enc.item_category, enc.categories.get_indexer(cats)]
    model.enc_ = enc = dataclasses.replace(
        enc, customers=local, items=items, item_category=item_category.astype(np.int64)
    )
    ex = getattr(model, "exclusion_", None)
    if len(new) and ex is not None and ex.entries:  # the new items an exclusion names
        from cemlib.offers.exclude import resolve_exclusion

        model.exclusion_ = resolve_exclusion(ex.entries, enc)
    c = enc.customers.get_indexer(tx["customer_id"].astype(str))
    i = enc.items.get_indexer(tx["item_id"])
    keep = (c >= 0) & (i >= 0)
    tx, c, i = tx[keep], c[keep], i[keep]
    codes = pd.DataFrame({
        "c": c.astype(np.int64), "i": i.astype(np.int64),
        "d": ((tx["ts"].dt.normalize() - EPOCH).dt.days).to_numpy(np.int64),
        "b": tx["basket_id"].to_numpy(np.int64), "q": tx["quantity"].to_numpy(np.float64),
        "amt": tx["amount"].to_numpy(np.float64),
    })  # fmt: skip
    codes["cat"] = enc.item_category[codes["i"].to_numpy()]
    ev_codes = None
    if ev is not None and len(ev):
        ev = prepare_events(ev, as_of=model.as_of_, items=model.items_,
                            granularity=model.granularity)  # fmt: skip
        ev_c = enc.customers.get_indexer(ev["customer_id"].astype(str))
        known = ev_c >= 0
        ev = ev[known]
        ev_codes = pd.DataFrame({
            "c": ev_c[known].astype(np.int64),
            "i": enc.items.get_indexer(ev["item_id"].fillna("\x00").astype(str)).astype(np.int64),
            "cat": enc.categories.get_indexer(ev["category"].fillna("\x00").astype(str)).astype(
                np.int64),
            "d": ((ev["ts"].dt.normalize() - EPOCH).dt.days).to_numpy(np.int64),
            "w": ev["weight"].to_numpy(np.float64),
        })  # fmt: skip
        miss = (ev_codes["cat"] < 0) & (ev_codes["i"] >= 0)
        ev_codes.loc[miss, "cat"] = enc.item_category[ev_codes.loc[miss, "i"].to_numpy()]
    return codes, ev_codes


def _local_snapshot(model, store, tables: dict):
    """The scoring snapshot of one partition: its customers' own tables built by the model's
    SQL from their history, the item-level tables the driver computed."""
    from cemlib.offers.snapshot import Snapshot, Windows, day_number

    snap = Snapshot.__new__(Snapshot)
    snap.store, snap.T, snap.W = store, day_number(model.as_of_), int(model.horizon_days)
    snap.win, snap.k_nb, snap.p = model.windows or Windows(), 20, f"s{snap.T}_"
    store.execute(f"CREATE OR REPLACE TEMP VIEW {snap.p}h AS SELECT * FROM bi WHERE d <= {snap.T}")
    snap._customer_tables()  # ci, cu, cc, rs: per customer
    for name, table in tables.items():  # it, cooc, after, segpop (itx): over every customer
        store.con.register("_cem_item_table", table)
        store.execute(
            f"CREATE OR REPLACE TEMP TABLE {snap.p}{name} AS SELECT * FROM _cem_item_table"
        )
        store.con.unregister("_cem_item_table")
    segpop = store.con.sql(f"SELECT * FROM {snap.p}segpop").to_arrow_table()
    snap._segment_tables()  # seg (each customer's own) and a local segpop, replaced below
    store.con.register("_cem_item_table", segpop)
    store.execute(f"CREATE OR REPLACE TEMP TABLE {snap.p}segpop AS SELECT * FROM _cem_item_table")
    store.con.unregister("_cem_item_table")
    if store.has_events:
        snap._browse_tables()  # bri, brc: per customer
    return snap


def _scorer(shared, k: int, explain: bool, found):
    """The ``mapInPandas`` function: every row of one partition (its customers' lines and
    events), their top ``k`` offers out."""

    def score(batches):
        from cemlib.offers import scoring
        from cemlib.offers.snapshot import Store

        frames = [b for b in batches if len(b)]
        if not frames:
            return
        rows = pd.concat(frames, ignore_index=True)
        del frames
        s = shared.value
        model = copy.copy(s["model"])
        model._phases = {}
        tx = rows[rows["kind"] == "tx"].drop(columns=["kind", "event_type"])
        ev = rows[rows["kind"] == "ev"][["customer_id", "ts", "item_id", "category", "event_type"]]
        codes, ev_codes = _local_codes(model, tx, ev if s["events"] else None)
        mine = model.enc_.customers  # this partition's customers, coded by position
        extra = s["extra"]
        if extra is not None:  # the customer features (churn scores) of the partition's own
            extra = extra[extra["customer_id"].isin(mine)]
            extra = extra.assign(c=mine.get_indexer(extra["customer_id"]).astype(np.int64))
            extra = extra[["c", *[c for c in extra.columns if c not in ("c", "customer_id")]]]
        store = Store(codes, ev_codes, extra, threads=1)
        model.store_ = store
        try:
            snap = _local_snapshot(model, store, s["tables"])
            hist = snap.customers_with_history()
            recall = None
            if s["recall"] is not None:  # the truth pairs of the partition's customers
                truth = s["recall"]
                recall = scoring.RecallCounter(model, truth[truth["customer_id"].isin(mine)])
            only = None
            if s["only"] is not None:
                only = mine.get_indexer(s["only"][s["only"].isin(mine)])
                only = np.unique(only[only >= 0])
            pool: dict[str, str] = {}
            for part in model._chunks(hist, "scoring"):
                top = model._top_of_chunk(snap, part, s["pop"], k, 1, recall)
                if explain:
                    model._explain(top, 1, only)
                else:
                    top["reasons"] = ""
                yield scoring.decoded(top, model.enc_, pool)
            if recall is not None:
                found.add(recall.found)
        finally:
            store.close()

    return score


def fit_sample(tx, as_of, *, horizon_days: int, cap: int, seed: int):
    """The customers whose history the driver needs for the fit and its uniform part (two Spark
    DataFrames of ``customer_id``), or None when it reads every customer's.

    ``cap`` is the model's ``max_train_customers``. While there are at most ``cap`` customers
    with a purchase, None: every customer's history, the DuckDB engine's input (the same model
    and offers). Above, the union of

    * the ``cap`` customers with the smallest ``xxhash64(customer_id, seed)``: a uniform,
      seeded sample from which the item-level tables (popularity, co-purchase and bought-after
      neighbours, segment popularity) are estimated for the fit and the scoring alike;
    * the customers the model trains on: in each of its two windows (cut at ``as_of - 2W`` and
      ``as_of - W``, ``W`` = ``horizon_days``) those labelled there (a purchase in the ``W``
      days after the cut, history up to it), every one while the window has at most ``cap``
      (the DuckDB engine's training customers), else the ``cap`` with the smallest hash (one
      order for both windows, so they overlap; the DuckDB engine draws its ``cap`` with numpy's
      generator instead: another sample of the same size).

    So the driver holds at most ``3 x cap`` customers' history, however many customers there
    are. The stage grades the uniform part (:meth:`SparkOffers.graded`)."""
    from pyspark.sql import functions as F

    T = (pd.Timestamp(as_of).normalize() - pd.Timestamp("1970-01-01")).days
    W = int(horizon_days)
    day = F.datediff(F.to_date("ts"), F.lit("1970-01-01").cast("date"))
    lines = tx.where(F.col("quantity") > 0).select("customer_id", day.alias("d"))
    everyone = lines.select("customer_id").distinct()
    if everyone.count() <= cap:
        return None
    h = F.xxhash64(F.col("customer_id"), F.lit(int(seed)))
    parts = [everyone.orderBy(h, "customer_id").limit(int(cap)).cache()]
    for cut in (T - W, T - 2 * W):
        labelled = (
            lines.groupBy("customer_id")
            .agg(F.min("d").alias("first_d"),
                 F.max(((F.col("d") > cut) & (F.col("d") <= cut + W)).cast("int")).alias("y"))
            .where((F.col("first_d") <= cut) & (F.col("y") == 1))
            .select("customer_id")
        )  # fmt: skip
        parts.append(labelled.orderBy(h, "customer_id").limit(int(cap)))
    return parts[0].union(parts[1]).union(parts[2]).distinct().cache(), parts[0]


class SparkOffers:
    """The Spark side of one offers stage run on ``lake`` (see the module): the history the fit
    needs built by Spark SQL and collected (every customer's, or the fit sample's:
    :func:`fit_sample`), and :meth:`recommend`, the scoring of every customer on Spark.

    ``horizon_days``, ``max_train_customers`` and ``seed`` are the model's (the training windows
    and their cap); ``max_train_customers`` None: the model's default."""

    def __init__(
        self, spark, lake, as_of, *, key: str = "profile", horizon_days: int = 60,
        max_train_customers: int | None = None, seed: int = DEFAULT_SEED,
        keep_history: bool = False,
    ):  # fmt: skip
        from pyspark import StorageLevel

        from cemlib.offers.model import NextOfferModel

        self.spark, self.lake, self.key, self.as_of = spark, lake, key, as_of
        # the history is read by a dozen jobs (the never-kept pairs, the fit sample, the
        # lines the fit needs, every customer, the scoring). With ``keep_history`` its joins
        # over the lake run once and Spark's block manager keeps the rows (memory, then local
        # disk), released by close(). Off by default: on this project's 2-core machine
        # building the cache cost more than the joins it saved at 200,000 people (the reads
        # 82.5 -> 107.2 s; 86.2 -> 65.3 s at 20,000: docs/spark.md); on a lake whose reads are
        # dear (an object store far from the executors) it may pay
        history = spark_transactions(spark, lake, as_of, key=key)
        self._persisted = []
        if keep_history:
            self._persisted.append(history.persist(StorageLevel.MEMORY_AND_DISK))
            history = self._persisted[0]
        # a return is no purchase, and an item sent back and never kept is offered to nobody
        # who sent it back: the history is the purchases kept (as the DuckDB engine's)
        t0 = time.perf_counter()
        self.tx, self._never_kept = spark_returned_items(history)
        #: seconds of the driver's reads of the history (the figures' ``read_seconds``)
        self.read_seconds = {"never_kept": round(time.perf_counter() - t0, 2)}
        self.ev = spark_events(spark, lake, as_of, key=key)
        if self.ev is not None and keep_history:  # read twice: the fit's and the scoring's
            self.ev = self.ev.persist(StorageLevel.MEMORY_AND_DISK)
            self._persisted.append(self.ev)
        self.horizon_days, self.seed = int(horizon_days), int(seed)
        self.cap = int(max_train_customers or NextOfferModel().max_train_customers)
        self._sample = self._uniform = self._all = None
        self._sampled: bool | None = None
        #: what :meth:`recommend` did: partitions, customers scored, offers (the figures)
        self.figures: dict = {}

    def close(self) -> None:
        """Release what this run keeps in Spark (the history, the events, the fit sample)."""
        for sdf in (*self._persisted, self._sample, self._uniform):
            if sdf is not None:
                sdf.unpersist()
        self._persisted = []

    def cached_bytes(self) -> int:
        """The bytes Spark's block manager holds for this run's history and events (memory
        and disk): the cost of reading them once."""
        jsc = self.spark.sparkContext._jsc.sc()
        return sum(int(i.memSize()) + int(i.diskSize()) for i in jsc.getRDDStorageInfo())

    @property
    def sample(self):
        """The customers of :func:`fit_sample` of this run (computed once; None: every
        customer)."""
        if self._sampled is None:
            got = fit_sample(self.tx, self.as_of, horizon_days=self.horizon_days,
                             cap=self.cap, seed=self.seed)  # fmt: skip
            self._sample, self._uniform = got if got is not None else (None, None)
            self._sampled = got is not None
        return self._sample

    def _of_sample(self, sdf):
        from pyspark.sql import functions as F

        if self.sample is None:
            return sdf
        return sdf.join(F.broadcast(self.sample), "customer_id", "left_semi")

    def graded(self, fitted) -> pd.Index:
        """The customers the metrics are counted on: ``fitted`` (the fitted model's customers)
        when the fit read everyone, else the uniform part of the fit sample (the training
        windows' customers, the active ones, would flatter every ranking)."""
        if self.sample is None:
            return pd.Index(fitted)
        ids = self._uniform.toPandas()["customer_id"].astype(str)
        return pd.Index(np.sort(ids.to_numpy()))

    def customers(self, fitted) -> pd.Index:
        """Every customer with a purchase up to ``as_of`` (in id order): the customers the
        offers are for. ``fitted`` (the fitted model's customers) when the fit read everyone."""
        from pyspark.sql import functions as F

        if self.sample is None:
            return pd.Index(fitted)
        if self._all is None:
            t0 = time.perf_counter()
            ids = self.tx.where(F.col("quantity") > 0).select("customer_id").distinct()
            self._all = pd.Index(np.sort(ids.toPandas()["customer_id"].astype(str).to_numpy()))
            self.read_seconds["customers"] = round(time.perf_counter() - t0, 2)
        return self._all

    def transactions(self) -> pd.DataFrame:
        """The lines the fit needs on the driver (every customer's, or the fit sample's), as
        :func:`profile_transactions` gives them."""
        t0 = time.perf_counter()
        self.sample  # noqa: B018 (the fit sample, timed apart)
        self.read_seconds["fit_sample"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        out = _to_pandas(self._of_sample(self.tx), [*_LINE_ORDER])
        self.read_seconds["transactions"] = round(time.perf_counter() - t0, 2)
        out.attrs["key"] = self.key
        out.attrs["source"] = f"{self.lake.root} (clean.* x identity.map)"
        return out

    def never_kept(self) -> pd.DataFrame:
        """Every customer's items returned and never kept (``customer_id, item_id``, a few
        rows per return at most), which no offer names (:func:`spark_returned_items`)."""
        return self._never_kept.copy()

    def events(self) -> pd.DataFrame | None:
        """The identified web events the fit needs on the driver (None without
        ``clean.web_events``)."""
        if self.ev is None:
            return None
        t0 = time.perf_counter()
        out = _to_pandas(self._of_sample(self.ev), ["customer_id", "ts"])  # (DuckDB's: no order)
        self.read_seconds["events"] = round(time.perf_counter() - t0, 2)
        out.attrs["source"] = f"{self.lake.root} (clean.web_events)"
        return out

    def _customer_features(self, model) -> pd.DataFrame:
        """The customer features the fit read (``marts.churn_scores``' numeric columns) of
        every customer, keyed by ``customer_id`` (the fit kept its sample's only)."""
        from cemlib.offers.stage import _churn_features

        cf = _churn_features(self.lake)
        cols = list(model.store_.extra_columns)
        cf = cf.assign(customer_id=cf["customer_id"].astype(str))
        return cf[["customer_id", *cols]].drop_duplicates("customer_id").reset_index(drop=True)

    def _rows(self, as_of):
        """Lines and events up to ``as_of`` in one frame (``kind`` tx / ev) for the scorer."""
        from pyspark.sql import functions as F

        end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
        null = {c: F.lit(None) for c in _ROW_COLUMNS}
        tx = self.tx.where(F.col("ts") < F.lit(end.to_pydatetime()))
        parts = [tx.select(*[
            F.lit("tx").alias("kind") if c == "kind" else
            (F.col(c) if c in tx.columns else null[c]).cast(
                "double" if c in ("quantity", "amount") else
                "timestamp" if c == "ts" else "string").alias(c)
            for c in _ROW_COLUMNS])]  # fmt: skip
        if self.ev is not None:
            ev = self.ev.where(F.col("ts") < F.lit(end.to_pydatetime()))
            parts.append(ev.select(*[
                F.lit("ev").alias("kind") if c == "kind" else
                (F.col(c) if c in ev.columns else null[c]).cast(
                    "double" if c in ("quantity", "amount") else
                    "timestamp" if c == "ts" else "string").alias(c)
                for c in _ROW_COLUMNS]))  # fmt: skip
        return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])

    def recommend(
        self, model, *, explain: bool = True, recall_of=None, recall_customers=None,
        explain_customers=None, exclude=None, k: int | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        """:meth:`NextOfferModel.recommend` of the fitted ``model`` at its ``as_of``, scored by
        Spark's executors (``mapInPandas``, the model broadcast): the same offers, reasons,
        ``scored_recall_`` and ``exclusion_``."""
        from cemlib.offers.exclude import read_exclusions, resolve_exclusion

        model._check_fitted()
        t0 = time.perf_counter()
        model.exclusion_ = resolve_exclusion(read_exclusions(exclude), model.enc_)
        k = int(k or model.k)
        tables, pop, n_hist = _item_tables(model, k)
        only = None  # the customers whose offers get reasons (ids: coded in each partition)
        if explain and explain_customers is not None:
            only = pd.Index(pd.unique(pd.Index(explain_customers).astype(str)))
        recall, n_truth = None, None
        if recall_of is not None:  # RecallCounter's pairs: n_truth counted over every customer
            recall = recall_of[["customer_id", "item_id"]].drop_duplicates()
            if recall_customers is not None:
                recall = recall[recall["customer_id"].isin(pd.Index(recall_customers))]
            recall = recall.assign(customer_id=recall["customer_id"].astype(str),
                                   item_id=recall["item_id"].astype(str))  # fmt: skip
            n_truth = len(recall)
        slim = copy.copy(model)
        for heavy in ("store_", "tx_", "explainer_", "shap_sample_", "shap_sample_values_",
                      "_phases", "fit_phases_", "score_phases_"):  # fmt: skip
            slim.__dict__.pop(heavy, None)
        # the customers are coded in each partition: the model's book (the fit sample's) stays
        slim.enc_ = dataclasses.replace(model.enc_, customers=pd.Index([], dtype=object))
        extra = None
        if model.store_.has_extra:  # the features the fit read, of every customer
            extra = self._customer_features(model)
        sc = self.spark.sparkContext
        shared = sc.broadcast({"model": slim, "tables": tables, "pop": pop, "only": only,
                               "recall": recall, "extra": extra,
                               "events": self.ev is not None})  # fmt: skip
        found = sc.accumulator(0)
        # partitions: the model's own bound on customers scored at once, at least one per core
        if self.sample is not None:  # the model's history is the sample's: count everyone
            n_hist = len(self.customers(None))
        n_parts = max(int(sc.defaultParallelism), math.ceil(n_hist / max(1, model.chunk_size)))
        rows = self._rows(model.as_of_).repartition(n_parts, "customer_id")
        try:
            out = rows.mapInPandas(_scorer(shared, k, explain, found), _OUT_SCHEMA).toPandas()
        finally:
            shared.unpersist()
        # in customer id order, as the model's own book orders them (the history's order)
        out = out.sort_values(["customer_id", "rank"], kind="stable", ignore_index=True)
        out["rank"] = out["rank"].astype(np.int64)
        model.scored_recall_ = (found.value / n_truth if n_truth
                                else (float("nan") if recall is not None else None))  # fmt: skip
        model.score_seconds_ = time.perf_counter() - t0
        self.figures = {"partitions": n_parts, "customers": int(out["customer_id"].nunique()),
                        "offers": len(out), "customers_with_history": n_hist,
                        "read_seconds": dict(self.read_seconds),
                        "cached_mib": round(self.cached_bytes() / 2**20, 1)}  # fmt: skip
        return out


def run_on_spark(
    lake, *, run_id: str, as_of, seed: int, k: int = 10, key: str = "profile", spark=None,
    **params,
):  # fmt: skip
    """Stage 04 on Spark: :func:`~cemlib.offers.stage.run_stage` over ``lake`` with the
    history built and the offers scored by Spark (a :class:`~cemlib.contract.StageResult` as
    :func:`cemlib.offers.run` gives; ``params`` are its options)."""
    from cemlib.contract import as_of_date, require_inputs, stage_result
    from cemlib.offers import report
    from cemlib.offers.exclude import read_exclusions
    from cemlib.offers.stage import run_stage

    as_of_date(as_of)
    instead = {"identity.map": "truth.record_person"} if key == "person" else None
    reads = sorted(require_inputs(lake, "offers", instead=instead))
    if params.get("exclude") is not None:  # a missing exclusion file fails before the fit
        params["exclude"] = read_exclusions(params["exclude"])
    engine = SparkOffers(spark or lake.spark(), lake, as_of, key=key, seed=seed,
                         horizon_days=params.get("horizon_days", 60))  # fmt: skip
    try:
        detail = run_stage(lake, as_of, run_id=run_id, k=k, key=key, seed=seed,
                           engine=engine, **params)  # fmt: skip
    finally:
        engine.close()
    return stage_result(lake, "offers", run_id=run_id, as_of=as_of, reads=reads,
                        headlines=report.headlines(detail, k), detail=detail)  # fmt: skip
