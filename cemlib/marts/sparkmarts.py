"""The churn stage's marts on Spark (``engine: spark``): Spark SQL over the lake's ``clean.*`` and
``identity.map``, the same rows and columns as :mod:`cemlib.marts.transactions` and
:mod:`cemlib.marts.covariates` build in DuckDB.

Everything here returns Spark DataFrames (nothing is collected): the purchased lines keyed by
customer (:func:`sales_lines`), their customer-day purchase occasions (:func:`occasions`, as
:func:`cemlib.churn.features.purchase_occasions` makes them), the covariates known on ``as_of``
(:func:`covariates`) and the count of orders no customer holds (:func:`unattributed_orders`).
Only rows dated on or before ``as_of`` (whole day) are read. The SQL follows the DuckDB marts
line by line; where DuckDB's and Spark's SQL differ (``count(*) FILTER``, ``first(... ORDER BY)``)
the Spark form gives the same value.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cemlib.errors import InputError
from cemlib.marts.transactions import _SALES, RETURN_FLAGS, TRANSACTION_COLUMNS, _as_of_bound

#: the columns of :func:`covariates` (those of :func:`cemlib.marts.profile_covariates`)
COVARIATE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "n_tickets",
    "mean_csat",
    "low_csat_tickets",
    "web_events",
    "web_days",
    "web_events_90d",
    "loyalty_member",
    "online_share",
    "region",
)


class SparkMarts:
    """The lake's source tables as Spark temporary views, and the marts' SQL over them.

    ``lake`` a :class:`~cemlib.engine.Lake`; ``key``: ``"profile"`` (``identity.map``) or
    ``"person"`` (``truth.record_person`` of a synthetic world). The views are named
    ``cem_<schema>_<table>`` (one Spark session may serve several lakes one after another).
    """

    def __init__(self, spark, lake, *, key: str = "profile"):
        self.spark, self.lake, self.key = spark, lake, key
        if not lake.tables("clean"):
            raise InputError(
                "no clean.* tables: run the quality stage (01_quality) first", source=str(lake.root)
            )
        self._columns: dict[str, list[str]] = {}
        for name in lake.tables("clean"):
            self._view("clean", name)
        if key == "profile":
            if not lake.has_table("identity", "map"):
                raise InputError(
                    "no identity.map: run the identity stage (02_profiles) first",
                    source=str(lake.root),
                )
            self._view("identity", "map")
            self.mapping = (
                "(SELECT source_table, CAST(record_id AS STRING) AS record_id, "
                "CAST(profile_id AS STRING) AS customer_id FROM cem_identity_map)"
            )
        elif key == "person":
            if not lake.has_table("truth", "record_person"):
                raise InputError(
                    "no truth.record_person (not a synthetic world)", source=str(lake.root)
                )
            self._view("truth", "record_person")
            self.mapping = (
                "(SELECT source_table, CAST(record_id AS STRING) AS record_id, "
                "CAST(person_id AS STRING) AS customer_id FROM cem_truth_record_person)"
            )
        else:
            raise ValueError(f"key must be 'profile' or 'person', not {key!r}")

    def _view(self, schema: str, name: str) -> None:
        sdf = self.lake.spark_table(self.spark, schema, name)
        sdf.createOrReplaceTempView(f"cem_{schema}_{name}")
        self._columns[name] = list(sdf.columns)

    def has(self, table: str) -> bool:
        """Whether ``clean.<table>`` is in the lake."""
        return self.lake.has_table("clean", table)

    def columns(self, table: str) -> list[str]:
        return self._columns.get(table, [])

    # -- transactions -----------------------------------------------------------------------
    def _margin_is_rate(self) -> bool:
        if "margin" not in self.columns("products"):
            return True
        row = self.spark.sql(
            "SELECT max(CAST(margin AS DOUBLE)) AS hi, min(CAST(margin AS DOUBLE)) AS lo "
            "FROM cem_clean_products"
        ).first()
        return row["hi"] is None or (row["hi"] <= 1.0 and row["lo"] >= 0.0)

    def sales_lines(self, as_of: str | dt.date | None = None, *, returns: bool = True):
        """Every purchased line of the online orders and till receipts on or before ``as_of``,
        :data:`~cemlib.marts.transactions.TRANSACTION_COLUMNS` (``customer_id`` NULL for a line
        whose order no customer holds): :func:`cemlib.marts.profile_transactions`' SQL.

        With ``returns`` (as there) each return (a line with ``is_return``, or the return of a
        line ``returned``) is a row too, with a negative quantity, amount and margin;
        :meth:`occasions` takes it off the purchase occasion of its sale."""
        bound = _as_of_bound(as_of)
        pcols = self.columns("products") if self.has("products") else []
        rate = self._margin_is_rate() if pcols else True
        parts = []
        kinds = ("sale", "return") if returns else ("sale",)
        for (header, id_col, ts_col, lines, channel), kind in (
            (source, kind) for source in _SALES for kind in kinds
        ):
            if not (self.has(header) and self.has(lines)):
                continue
            hcols, lcols = self.columns(header), self.columns(lines)
            for need, cols, tab in ((id_col, hcols, header), (ts_col, hcols, header),
                                    (id_col, lcols, lines), ("sku", lcols, lines)):  # fmt: skip
                if need not in cols:
                    raise InputError("missing column", source=f"clean.{tab}", column=need)
            qty = "CAST(l.quantity AS DOUBLE)" if "quantity" in lcols else "1.0D"
            qty = f"coalesce({qty}, 1.0D)"
            price_l = "CAST(l.price AS DOUBLE)" if "price" in lcols else "CAST(NULL AS DOUBLE)"
            price_p = "CAST(p.price AS DOUBLE)" if "price" in pcols else "CAST(NULL AS DOUBLE)"
            cat = "CAST(p.category AS STRING)" if "category" in pcols else "CAST(NULL AS STRING)"
            if "margin" in pcols:
                margin = (
                    f"{qty} * coalesce({price_l}, {price_p}) * CAST(p.margin AS DOUBLE)"
                    if rate
                    else f"{qty} * CAST(p.margin AS DOUBLE)"
                )
            else:
                margin = "CAST(NULL AS DOUBLE)"
            if pcols:
                pjoin = (
                    "LEFT JOIN cem_clean_products p "
                    "ON CAST(p.sku AS STRING) = CAST(l.sku AS STRING)"
                )
            else:
                pjoin = "LEFT JOIN (SELECT CAST(NULL AS STRING) AS sku) p ON FALSE"
            where = f"WHERE h.{ts_col} IS NOT NULL"
            flags = [f"coalesce(CAST(l.{c} AS BOOLEAN), FALSE)" for c in RETURN_FLAGS if c in lcols]
            sign = ""
            if kind == "return":  # goods brought back: a negative row (the DuckDB mart's)
                if not flags:
                    continue
                where += f" AND ({' OR '.join(flags)})"
                sign = "-"
            elif "is_return" in lcols:  # a sale is every other line, ``returned`` ones included
                where += " AND NOT coalesce(CAST(l.is_return AS BOOLEAN), FALSE)"
            if bound is not None:
                where += f" AND CAST(h.{ts_col} AS TIMESTAMP) < TIMESTAMP '{bound}'"
            parts.append(f"""
                SELECT m.customer_id,
                       CAST(h.{ts_col} AS TIMESTAMP) AS ts,
                       concat('{header}:', CAST(h.{id_col} AS STRING)) AS order_id,
                       CAST(l.sku AS STRING) AS item_id,
                       {cat} AS category,
                       {sign}{qty} AS quantity,
                       {sign}{qty} * coalesce({price_l}, {price_p}) AS amount,
                       {sign}({margin}) AS margin,
                       '{channel}' AS channel
                FROM cem_clean_{header} h
                JOIN cem_clean_{lines} l
                  ON CAST(l.{id_col} AS STRING) = CAST(h.{id_col} AS STRING)
                LEFT JOIN {self.mapping} m
                  ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS STRING)
                {pjoin}
                {where}""")
        if not parts:
            raise InputError(
                "no sales tables (online_orders + order_lines or pos_receipts + receipt_lines) "
                "in clean.*",
                source=str(self.lake.root),
            )
        return self.spark.sql(" UNION ALL ".join(f"({p})" for p in parts)).select(
            *TRANSACTION_COLUMNS
        )

    def transactions(self, as_of: str | dt.date | None = None):
        """The lines of customers (:func:`sales_lines` without the anonymous ones)."""
        return self.sales_lines(as_of).where("customer_id IS NOT NULL")

    def occasions(self, lines):
        """Customer-day purchase occasions of ``lines`` (customer_id, day, amount, margin,
        online, n_items), as :func:`cemlib.churn.features.purchase_occasions` makes them: the
        day's amount (an empty amount is 0), its margin (NULL only when every line's is), the
        share of online lines and the items bought.

        A return (a row with a negative amount or quantity, :meth:`sales_lines`) is no
        occasion: its amount, margin and items are taken off the occasion of its sale, as
        :func:`cemlib.churn.features._net_returns` takes them (the same customer's latest
        purchase of the item on or before the return's day, else the customer's latest
        occasion on or before it; amount and items not below zero; a return with no occasion
        before it is dropped)."""
        lines.createOrReplaceTempView("cem_churn_lines")
        back = "(coalesce(amount < 0, FALSE) OR coalesce(quantity < 0, FALSE))"  # return_rows
        self.spark.sql(f"""
            SELECT customer_id, CAST(date_trunc('DAY', ts) AS TIMESTAMP) AS day,
                   sum(coalesce(amount, 0.0D)) AS amount,
                   sum(margin) AS margin,
                   avg(CASE WHEN lower(channel) = 'online' THEN 1.0D ELSE 0.0D END) AS online,
                   sum(coalesce(quantity, 1.0D)) AS n_items
            FROM cem_churn_lines WHERE NOT {back}
            GROUP BY customer_id, CAST(date_trunc('DAY', ts) AS TIMESTAMP)""").createOrReplaceTempView(
            "cem_churn_sale_days"
        )
        # the returns of one customer, item and day go to one sale day: summed first (a sum of
        # margins that are all NULL takes nothing off, as pandas' fillna(0) of min_count=1)
        return self.spark.sql(f"""
            WITH r AS (
              SELECT customer_id, CAST(item_id AS STRING) AS item_id,
                     CAST(date_trunc('DAY', ts) AS TIMESTAMP) AS day,
                     sum(abs(amount)) AS amount, sum(abs(margin)) AS margin,
                     sum(coalesce(abs(quantity), 1.0D)) AS n_items
              FROM cem_churn_lines WHERE {back}
              GROUP BY customer_id, CAST(item_id AS STRING), CAST(date_trunc('DAY', ts) AS TIMESTAMP)
            ),
            bought AS (
              SELECT DISTINCT customer_id, CAST(item_id AS STRING) AS item_id,
                     CAST(date_trunc('DAY', ts) AS TIMESTAMP) AS day
              FROM cem_churn_lines WHERE NOT {back}
            ),
            by_item AS (
              SELECT r.customer_id, r.item_id, r.day, max(b.day) AS sale_day
              FROM r JOIN bought b
                ON b.customer_id = r.customer_id AND b.item_id = r.item_id AND b.day <= r.day
              GROUP BY r.customer_id, r.item_id, r.day
            ),
            by_day AS (
              SELECT r.customer_id, r.day, max(o.day) AS sale_day
              FROM (SELECT DISTINCT customer_id, day FROM r) r JOIN cem_churn_sale_days o
                ON o.customer_id = r.customer_id AND o.day <= r.day
              GROUP BY r.customer_id, r.day
            ),
            take AS (
              SELECT r.customer_id, coalesce(i.sale_day, d.sale_day) AS sale_day,
                     coalesce(sum(r.amount), 0.0D) AS amount,
                     coalesce(sum(r.margin), 0.0D) AS margin,
                     coalesce(sum(r.n_items), 0.0D) AS n_items
              FROM r
              LEFT JOIN by_item i
                ON i.customer_id = r.customer_id AND i.item_id <=> r.item_id AND i.day = r.day
              LEFT JOIN by_day d ON d.customer_id = r.customer_id AND d.day = r.day
              WHERE coalesce(i.sale_day, d.sale_day) IS NOT NULL
              GROUP BY r.customer_id, coalesce(i.sale_day, d.sale_day)
            )
            SELECT o.customer_id, o.day,
                   CASE WHEN t.sale_day IS NULL THEN o.amount
                        ELSE greatest(o.amount - t.amount, 0.0D) END AS amount,
                   CASE WHEN t.sale_day IS NULL THEN o.margin
                        ELSE o.margin - t.margin END AS margin,
                   o.online,
                   CASE WHEN t.sale_day IS NULL THEN o.n_items
                        ELSE greatest(o.n_items - t.n_items, 0.0D) END AS n_items
            FROM cem_churn_sale_days o
            LEFT JOIN take t ON t.customer_id = o.customer_id AND t.sale_day = o.day""")

    def unattributed_orders(self, start: str | dt.date, end: str | dt.date) -> int:
        """Orders and receipts dated from ``start`` to ``end`` (inclusive) that no customer
        holds (:func:`cemlib.marts.unattributed_orders`)."""
        lo = pd.Timestamp(start).normalize()
        hi = _as_of_bound(end)
        total = 0
        for header, id_col, ts_col, _lines, _channel in _SALES:
            if not self.has(header):
                continue
            no_return = (  # a return receipt or order is no purchase (the DuckDB mart's)
                " AND NOT coalesce(CAST(h.is_return AS BOOLEAN), FALSE)"
                if "is_return" in self.columns(header)
                else ""
            )
            total += self.spark.sql(f"""
                SELECT count(*) AS n FROM cem_clean_{header} h
                LEFT JOIN {self.mapping} m
                  ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS STRING)
                WHERE m.customer_id IS NULL AND h.{ts_col} IS NOT NULL{no_return}
                  AND CAST(h.{ts_col} AS TIMESTAMP) >= TIMESTAMP '{lo}'
                  AND CAST(h.{ts_col} AS TIMESTAMP) < TIMESTAMP '{hi}'""").first()["n"]
        return int(total)

    # -- covariates -------------------------------------------------------------------------
    def _mapped(self, table: str, id_col: str, select: str, where: str) -> str:
        return f"""
            SELECT m.customer_id, {select}
            FROM cem_clean_{table} t
            JOIN {self.mapping} m
              ON m.source_table = '{table}' AND m.record_id = CAST(t.{id_col} AS STRING)
            {where}"""

    def covariates(self, as_of: str | dt.date):
        """Customer covariates known on ``as_of`` (inclusive), one row per customer:
        :data:`COVARIATE_COLUMNS`, the values of :func:`cemlib.marts.profile_covariates`
        (tickets and their satisfaction, web activity, loyalty, the online share of orders,
        the most frequent region; zeros, NULL or ``"unknown"`` where a source has nothing)."""
        bound = _as_of_bound(as_of)
        before = f"< TIMESTAMP '{bound}'"
        parts: dict[str, str] = {}
        if self.has("support_tickets"):
            cols = self.columns("support_tickets")
            csat = "CAST(t.csat AS DOUBLE)" if "csat" in cols else "CAST(NULL AS DOUBLE)"
            where = (
                f"WHERE CAST(t.created_at AS TIMESTAMP) {before}" if "created_at" in cols else ""
            )
            inner = self._mapped("support_tickets", "ticket_id", f"{csat} AS csat", where)
            parts["tickets"] = (
                "SELECT customer_id, count(*) AS n_tickets, avg(csat) AS mean_csat, "
                f"count_if(csat <= 2) AS low_csat_tickets FROM ({inner}) GROUP BY customer_id"
            )
        if self.has("web_events"):
            inner = self._mapped(
                "web_events", "event_id", "CAST(t.ts AS TIMESTAMP) AS ts",
                f"WHERE CAST(t.ts AS TIMESTAMP) {before}",
            )  # fmt: skip
            since = bound - pd.Timedelta(days=90)
            parts["web"] = (
                "SELECT customer_id, count(*) AS web_events, "
                "count(DISTINCT CAST(ts AS DATE)) AS web_days, "
                f"count_if(ts >= TIMESTAMP '{since}') AS web_events_90d FROM ({inner}) "
                "GROUP BY customer_id"
            )
        loyal = (
            "CASE WHEN nullif(trim(CAST(t.loyalty_card AS STRING)), '') IS NOT NULL "
            "THEN 1 ELSE 0 END AS loyal"
        )
        loyalty = []
        if self.has("crm_contacts"):
            cols = self.columns("crm_contacts")
            reg_col = "city" if "city" in cols else ("region" if "region" in cols else None)
            where = (
                f"WHERE CAST(t.registered_at AS TIMESTAMP) {before}"
                if "registered_at" in cols
                else ""
            )
            sel = [loyal if "loyalty_card" in cols else "0 AS loyal"]
            sel.append(
                f"CAST(t.{reg_col} AS STRING) AS region"
                if reg_col
                else "CAST(NULL AS STRING) AS region"
            )
            inner = self._mapped("crm_contacts", "contact_id", ", ".join(sel), where)
            self._region_names(reg_col)
            loyalty.append(f"SELECT customer_id, loyal FROM ({inner})")
            # the most frequent region, a tie to the first name (as the DuckDB mart)
            parts["region"] = f"""
                SELECT customer_id, region FROM (
                  SELECT customer_id, name AS region,
                         row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, name) AS r
                  FROM (SELECT c.customer_id, n.name, count(*) AS n
                        FROM ({inner}) c JOIN cem_region_names n ON n.raw = c.region
                        WHERE n.name IS NOT NULL GROUP BY c.customer_id, n.name))
                WHERE r = 1"""
        if self.has("pos_receipts") and "loyalty_card" in self.columns("pos_receipts"):
            inner = self._mapped(
                "pos_receipts", "receipt_id", loyal,
                f"WHERE CAST(t.purchased_at AS TIMESTAMP) {before}",
            )  # fmt: skip
            loyalty.append(f"SELECT customer_id, loyal FROM ({inner})")
        if loyalty:
            parts["loyalty"] = (
                "SELECT customer_id, max(loyal) AS loyalty_member FROM ("
                + " UNION ALL ".join(loyalty)
                + ") WHERE customer_id IS NOT NULL GROUP BY customer_id"
            )
        chan = []
        for header, id_col, ts_col, _lines, channel in _SALES:
            if self.has(header):
                chan.append(
                    self._mapped(
                        header,
                        id_col,
                        f"'{channel}' AS channel",
                        f"WHERE CAST(t.{ts_col} AS TIMESTAMP) {before}",
                    )  # fmt: skip
                )
        if chan:
            parts["channels"] = (
                "SELECT customer_id, count_if(channel = 'online') / count(*) AS online_share "
                "FROM (" + " UNION ALL ".join(chan) + ") WHERE customer_id IS NOT NULL "
                "GROUP BY customer_id"
            )
        if not parts:
            return self.spark.sql(
                "SELECT CAST(NULL AS STRING) AS customer_id, 0L AS n_tickets, "
                "CAST(NULL AS DOUBLE) AS mean_csat, 0L AS low_csat_tickets, 0L AS web_events, "
                "0L AS web_days, 0L AS web_events_90d, 0L AS loyalty_member, "
                "CAST(NULL AS DOUBLE) AS online_share, 'unknown' AS region"
            ).where("FALSE")
        # one pass per part, joined by full outer joins (every customer any part knows).
        # Null-safe: the records the identity stage left unattached (profile_id NULL) are one
        # customer of their own here, with their tickets and web events but neither loyalty nor
        # an online share, as in the DuckDB mart (no purchase line has it)
        names = list(parts)
        key = f"{names[0]}.customer_id"
        joined = f"({parts[names[0]]}) {names[0]}"
        for name in names[1:]:
            joined += f" FULL OUTER JOIN ({parts[name]}) {name} ON {key} <=> {name}.customer_id"
            key = f"coalesce({key}, {name}.customer_id)"

        def col(part: str, expr: str, default: str) -> str:
            return expr if part in parts else default

        select = ", ".join([
            f"{key} AS customer_id",
            col("tickets", "CAST(coalesce(n_tickets, 0) AS BIGINT)", "0L") + " AS n_tickets",
            col("tickets", "mean_csat", "CAST(NULL AS DOUBLE)") + " AS mean_csat",
            col("tickets", "CAST(coalesce(low_csat_tickets, 0) AS BIGINT)", "0L")
            + " AS low_csat_tickets",
            col("web", "CAST(coalesce(web_events, 0) AS BIGINT)", "0L") + " AS web_events",
            col("web", "CAST(coalesce(web_days, 0) AS BIGINT)", "0L") + " AS web_days",
            col("web", "CAST(coalesce(web_events_90d, 0) AS BIGINT)", "0L") + " AS web_events_90d",
            col("loyalty", "CAST(coalesce(loyalty_member, 0) AS BIGINT)", "0L")
            + " AS loyalty_member",
            col("channels", "CAST(online_share AS DOUBLE)", "CAST(NULL AS DOUBLE)")
            + " AS online_share",
            col("region", "coalesce(region, 'unknown')", "'unknown'") + " AS region",
        ])  # fmt: skip
        return self.spark.sql(f"SELECT {select} FROM {joined}").select(*COVARIATE_COLUMNS)

    def _region_names(self, reg_col: str | None) -> None:
        """``cem_region_names`` (raw spelling -> region name, :func:`~cemlib.normalize.places.
        city_name`): the distinct spellings are few, named on the driver once each."""
        from pyspark.sql.types import StringType, StructField, StructType

        from cemlib.normalize.places import city_name

        raw = []
        if reg_col:
            raw = [
                r["raw"]
                for r in self.spark.sql(
                    f"SELECT DISTINCT CAST({reg_col} AS STRING) AS raw FROM cem_clean_crm_contacts "
                    f"WHERE {reg_col} IS NOT NULL"
                ).collect()
            ]
        names = pd.DataFrame({"raw": pd.Series(raw, dtype=object)})
        names["name"] = city_name(names["raw"]).astype(object)
        names["name"] = names["name"].where(names["name"].notna(), None)
        schema = StructType([StructField("raw", StringType()), StructField("name", StringType())])
        rows = list(names.itertuples(index=False, name=None))
        self.spark.createDataFrame(rows, schema).createOrReplaceTempView("cem_region_names")


def collect_frame(sdf) -> pd.DataFrame:
    """A (bounded) Spark DataFrame on the driver, timestamps as ``datetime64[ns]``."""
    out = sdf.toPandas()
    for c in out.columns:
        if str(out[c].dtype).startswith("datetime64"):
            out[c] = out[c].astype("datetime64[ns]")
    return out
