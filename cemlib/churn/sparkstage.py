"""Stage 03 on Spark (``engine: spark``): the lake's ``clean.*`` and ``identity.map`` in,
``marts.churn_scores`` out.

What runs where (docs/spark.md):

* **Spark SQL** (:class:`~cemlib.marts.sparkmarts.SparkMarts`): the purchased lines keyed by
  profile up to ``as_of``, their customer-day purchase occasions and the covariates known on
  ``as_of`` (and on the held-out cut), the SQL of the DuckDB marts.
* **The driver**: a bounded, seeded sample of the customers (at most :data:`FIT_CUSTOMERS`,
  the cap of the stage's largest per-customer fit, the BG/NBD's ``max_rows``: every customer
  when there are fewer) is collected with its lines and covariates, and the DuckDB engine's
  code runs on it unchanged: the held-out refit and its figures
  (:func:`~cemlib.churn.stage.holdout_evaluation`, itself on a sample sized by
  :func:`~cemlib.churn.stage.holdout_size`), the :class:`~cemlib.churn.models.ChurnModel` fit
  at ``as_of`` (its AFT fitters see at most ``max_rows`` = 15,000 spells, as on DuckDB), the
  lifetimes and the Cox drivers of the report.
* **Spark** (``mapInPandas``): every customer scored by the fitted model, broadcast to the
  executors (:class:`BatchScorer`): the occasions of whole customers, a partition at a time,
  turned into the model's state (features, open spells, BG/NBD summaries, spend and margin
  shrunk to the fit's population figures) and scored with ``ChurnModel.predict``'s code; the
  risk segments take the cut-offs chosen on the fit sample.
* **The lake**: ``marts.churn_scores`` with the DuckDB warehouse's columns and the ``_run_id``,
  ``_as_of`` stamps, written beside its folder and renamed into place when complete.

With every customer in the sample (below :data:`FIT_CUSTOMERS`) the fit and the held-out
figures are the DuckDB engine's; the scores differ from DuckDB's only by the simulated counts'
random streams (one per partition batch here, one per 50,000 customers there): the purchase
probabilities are closed form and equal.
"""

from __future__ import annotations

import copy
import datetime as dt
import zlib
from typing import Any

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.churn.beside import Beside
from cemlib.churn.beside import workers as beside_workers
from cemlib.churn.dropout import BGNBD, rfm_summary
from cemlib.churn.features import customer_features
from cemlib.churn.gaps import spell_table
from cemlib.churn.models import ChurnModel
from cemlib.churn.stage import (
    ChurnStageResult,
    fit_at_as_of,
    graded_since_last_run,
    holdout_evaluation,
)
from cemlib.churn.survival import CoxExplainer
from cemlib.contract import StageResult
from cemlib.errors import InputError
from cemlib.marts.sparkmarts import SparkMarts, collect_frame
from cemlib.marts.transactions import TRANSACTION_COLUMNS

#: customers the driver fits on at most: the largest sample any of the stage's fits draws
#: already (the BG/NBD's ``max_rows``); the booster and the blend see as many
FIT_CUSTOMERS: int = BGNBD().max_rows
#: the raw covariates the scoring reads per customer (``web_events`` is not a model input)
_SCORED_COVARIATES = ("n_tickets", "mean_csat", "low_csat_tickets", "web_days",
                      "web_events_90d", "loyalty_member", "online_share", "region")  # fmt: skip


def _spec(name: str, raw: pd.DataFrame) -> tuple:
    """``("number", source)`` or ``("level", source, level)`` of a covariate column name."""
    source, _, level = name.removeprefix("cov_").partition("=")
    if level and source in raw.columns and not pd.api.types.is_numeric_dtype(raw[source]):
        return ("level", source, level)
    return ("number", name.removeprefix("cov_"))


def _values(raw: pd.DataFrame, spec: tuple) -> pd.Series:
    """The unimputed values of a covariate column (NaN where a customer has none)."""
    if spec[0] == "level":
        s = raw[spec[1]]
        return (s.astype("string").fillna("unknown") == spec[2]).astype(float).where(s.notna())
    return raw[spec[1]].astype(float)


def covariate_encoding(
    features: pd.DataFrame, covariates: pd.DataFrame, columns: list[str]
) -> dict[str, tuple]:
    """How :func:`~cemlib.churn.features.join_covariates` turned ``covariates`` into the fitted
    model's ``columns`` for the customers of ``features``, so that other customers are encoded
    alike: ``column -> (spec, fill)`` with ``spec`` ``("number", source)`` or ``("level",
    source, level)`` and ``fill`` the median the fit imputed, or ``column -> ("missing", spec)``
    for a missing-value indicator."""
    raw = covariates.copy()
    raw["customer_id"] = raw["customer_id"].astype(str)
    raw = raw.set_index("customer_id").reindex(features.index)
    enc: dict[str, tuple] = {}
    for name in columns:
        if name.endswith("_missing"):
            enc[name] = ("missing", _spec(name.removesuffix("_missing"), raw))
            continue
        spec = _spec(name, raw)
        values = _values(raw, spec)
        enc[name] = (spec, float(values.median()) if values.notna().any() else 0.0)
    return enc


def encode_covariates(raw: pd.DataFrame, index: pd.Index, enc: dict[str, tuple]) -> pd.DataFrame:
    """The model's covariate columns for the customers ``index`` from their ``raw`` covariates
    (indexed by customer_id; a customer without a row is imputed as in the fit)."""
    raw = raw.reindex(index)
    out = {}
    for name, (first, second) in enc.items():
        if first == "missing":
            out[name] = _values(raw, second).isna().astype(float)
        else:
            out[name] = _values(raw, first).fillna(second)
    return pd.DataFrame(out, index=index)


class BatchScorer:
    """A fitted :class:`~cemlib.churn.models.ChurnModel` made to score other customers than the
    ones it was fitted on: what ``predict`` reads per customer (the open spell, the BG/NBD
    summary, the features, the expected spend and margin rate) is rebuilt from a batch of whole
    customers' occasions, and the fit's population figures (spend shrinkage, margin rate, the
    covariates' encoding and imputation, the risk cut-offs) are kept. Picklable (broadcast to
    Spark's executors); holds no customer of the fit."""

    def __init__(self, model: ChurnModel, covariates: pd.DataFrame):
        self.as_of = model.as_of_
        self.encoding = covariate_encoding(model.features_, covariates, model.covariate_columns_)
        self.spend_k0 = float(model.spend_.attrs["k0"])
        self.spend_mean = float(model.spend_.attrs["population_mean"])
        occ = model.occasions_
        self.has_margin = bool(np.isfinite(model.margin_rate_.to_numpy(dtype=float)).any())
        self.margin_pop = float(occ["margin"].sum() / max(occ["amount"].sum(), 1e-9))
        self.seed = int(model.seed)
        if not hasattr(model, "risk_thresholds_"):
            model.predict()  # chooses the risk cut-offs from the fit's customers
        light = copy.copy(model)
        # what belongs to the fit's customers stays on the driver
        light.occasions_ = light.features_ = None
        light.spell_ = copy.copy(model.spell_)
        light.spell_.state_ = None
        light.dropout_view_ = copy.copy(model.dropout_view_)
        light.dropout_view_.rfm_ = None
        light.risk_thresholds = model.risk_thresholds_
        self.model = light

    def score(
        self, occ: pd.DataFrame, raw: pd.DataFrame | None = None, *, stream: int | None = None
    ) -> pd.DataFrame:
        """``ChurnModel.predict``'s rows for the customers of ``occ`` (their customer-day
        occasions up to the fit's ``as_of``, every one of a customer's); ``raw``: their
        covariates (:data:`_SCORED_COVARIATES`, indexed by customer_id). ``stream``: the seed
        of the simulated counts (default: one per batch, from the model's seed and the batch's
        first customer; the model's own seed gives ``predict``'s counts for its customers)."""
        m = copy.copy(self.model)
        as_of = self.as_of
        occ = occ.sort_values(["customer_id", "day"], ignore_index=True)
        feats = customer_features(occ, as_of)
        cols = list(self.encoding)
        if cols:
            raw = raw if raw is not None else pd.DataFrame(index=feats.index)
            feats = feats.join(encode_covariates(raw, feats.index, self.encoding))
        spells = spell_table(occ, as_of, feats[cols] if cols else None)
        m.spell_ = copy.copy(self.model.spell_)
        m.spell_.state_ = spells.groupby("customer_id", sort=True).tail(1).set_index("customer_id")
        m.spell_.workers = 1
        m.spell_.count_model_ = copy.copy(self.model.spell_.count_model_)
        # one random stream per batch, named by its first customer (the same on every run)
        first = str(m.spell_.state_.index[0]).encode()
        m.spell_.count_model_.seed = (
            self.seed * 2**32 + zlib.crc32(first) if stream is None else int(stream)
        )
        m.dropout_view_ = copy.copy(self.model.dropout_view_)
        m.dropout_view_.rfm_ = rfm_summary(occ, as_of)
        m.features_ = feats
        g = occ.groupby("customer_id", sort=True)
        n, mean = g.size().astype(float), g["amount"].mean()
        k0 = self.spend_k0
        m.spend_ = pd.DataFrame({"expected": (n * mean + k0 * self.spend_mean) / (n + k0)})
        if self.has_margin:
            rev, mar, pop = g["amount"].sum(), g["margin"].sum(min_count=1), self.margin_pop
            rate = (mar.fillna(pop * rev) + 3 * pop * rev / n) / (rev * (1 + 3 / n)).replace(
                0, np.nan
            )
            m.margin_rate_ = rate.fillna(pop)
        else:
            m.margin_rate_ = pd.Series(np.nan, index=n.index)
        return m.predict()


def score_schema(example: pd.DataFrame):
    """The Spark schema of the scores (the columns of ``example``, ``ChurnModel.predict``'s)."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    fields = []
    for c in example.columns:
        kind = example[c].dtype
        if pd.api.types.is_integer_dtype(kind):
            t = LongType()
        elif pd.api.types.is_float_dtype(kind):
            t = DoubleType()
        else:
            t = StringType()
        fields.append(StructField(c, t, True))
    return StructType(fields)


#: the occasion columns each customer's row carries as arrays to the executors' scoring
_OCCASION_ARRAYS = ("amount", "margin", "online", "n_items")
_EPOCH = np.datetime64("1970-01-01", "D")


def _scoring(broadcast, columns: list[str], raw_columns: list[str]):
    """The ``mapInPandas`` function: each row is one customer (every occasion of theirs as
    arrays, day by day, and their covariates), so a batch always holds whole customers; the
    occasions are unrolled and the batch scored by the broadcast :class:`BatchScorer`."""

    def piece(scorer: BatchScorer, rows: pd.DataFrame) -> pd.DataFrame:
        lengths = rows["days"].map(len).to_numpy()
        occ = pd.DataFrame(
            {
                "customer_id": np.repeat(rows["customer_id"].to_numpy(), lengths),
                "day": (_EPOCH + np.concatenate(rows["days"].to_numpy()).astype("int64")).astype(
                    "datetime64[ns]"
                ),
            }
        )
        for c in _OCCASION_ARRAYS:
            values = np.concatenate([np.asarray(v, dtype=object) for v in rows[f"{c}s"]])
            occ[c] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype(float)
        raw = rows.set_index("customer_id")[raw_columns]
        out = scorer.score(occ, raw)
        for c in columns:
            if out[c].dtype == object:
                out[c] = out[c].astype(str)
        return out[columns]

    def score(batches):
        scorer = broadcast.value
        for batch in batches:
            if len(batch):
                yield piece(scorer, batch)

    return score


def _fit_sample(marts: SparkMarts, lines, *, cap: int, seed: int):
    """``(Spark DataFrame of the sampled customer ids, customers in all, in the sample)``: every
    customer when there are at most ``cap``, else the ``cap`` customers of the smallest seeded
    hash (``xxhash64(customer_id, seed)``: the same sample on every run and every cluster)."""
    from pyspark.sql import functions as F

    # the customers with a purchase (a return alone makes no purchase occasion to score)
    sold = "NOT (coalesce(amount < 0, FALSE) OR coalesce(quantity < 0, FALSE))"
    customers = lines.where(sold).select("customer_id").distinct()
    n = customers.count()
    if n <= cap:
        return customers, n, n
    ranked = customers.withColumn("_h", F.xxhash64("customer_id", F.lit(seed)))
    sample = ranked.orderBy("_h", "customer_id").limit(cap).select("customer_id")
    return sample, n, cap


def run_stage_spark(
    lake,
    spark,
    as_of: str | dt.date,
    *,
    run_id: str = "dev",
    horizons: tuple[int, ...] = (90, 180, 365),
    annual_discount: float = 0.1,
    key: str = "profile",
    seed: int = DEFAULT_SEED,
    write: bool = True,
    workers: int | None = None,
    fit_customers: int | None = None,
) -> ChurnStageResult:
    """:func:`~cemlib.churn.stage.run_stage` on Spark and the lake (see the module).

    ``fit_customers``: the driver's sample (default :data:`FIT_CUSTOMERS`). The result's
    ``transactions`` and ``covariates`` are the sample's (``attrs``: ``customers`` in all,
    ``fit_customers`` sampled, ``unmapped_lines`` over all lines); ``scores`` are read back
    from the lake (one row per customer, as the DuckDB engine holds them)."""
    from pyspark import StorageLevel

    cap = int(fit_customers or FIT_CUSTOMERS)
    as_of = pd.Timestamp(as_of).normalize()
    marts = SparkMarts(spark, lake, key=key)
    # the lines are read by several jobs (the counts, the sample, the scoring): computed once
    every_line = marts.sales_lines(as_of).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _run(lake, spark, marts, every_line, as_of, cap=cap, run_id=run_id,
                    horizons=horizons, annual_discount=annual_discount, key=key, seed=seed,
                    write=write, workers=workers)  # fmt: skip
    finally:
        every_line.unpersist()


def _run(lake, spark, marts, every_line, as_of, *, cap, run_id, horizons, annual_discount,
         key, seed, write, workers) -> ChurnStageResult:  # fmt: skip
    from pyspark.sql import functions as F

    unmapped = every_line.where("customer_id IS NULL").count()
    lines = every_line.where("customer_id IS NOT NULL")
    sample, n_customers, n_sample = _fit_sample(marts, lines, cap=cap, seed=seed)
    sample = F.broadcast(sample.cache()) if n_sample < n_customers else None
    fit_lines = lines if sample is None else lines.join(sample, "customer_id")
    tx = collect_frame(fit_lines.select(*TRANSACTION_COLUMNS))
    if tx.empty:
        raise InputError(f"no purchases on or before {as_of.date()}", source=str(lake.root))
    tx = tx.sort_values(["customer_id", "ts", "order_id"], kind="stable", ignore_index=True)
    tx.attrs.update({"unmapped_lines": int(unmapped), "key": key,
                     "customers": int(n_customers), "fit_customers": int(n_sample)})  # fmt: skip

    def covariates_at(day) -> pd.DataFrame:
        # every customer's covariates while they are at most ``cap`` rows (the DuckDB engine
        # encodes the covariates from all of them), else the fit sample's
        cov = marts.covariates(day)
        if sample is not None:
            got = collect_frame(cov.join(sample, "customer_id", "left_semi"))
        else:
            got = collect_frame(cov.limit(cap + 1))
            if len(got) > cap:  # customers known only by their covariates: the fit's ones
                buyers = lines.select("customer_id").distinct()
                got = collect_frame(cov.join(buyers, "customer_id", "left_semi"))
        return got.sort_values("customer_id", key=lambda s: s.astype(str), ignore_index=True)

    if workers is None:
        workers = beside_workers(len(tx))
    holdout, refit = {}, None
    if key != "person":
        holdout, refit = holdout_evaluation(
            lake, tx, as_of, tuple(horizons), key=key, annual_discount=annual_discount,
            seed=seed, return_model=True, workers=workers, covariates_at=covariates_at,
            unattributed=marts.unattributed_orders,
        )  # fmt: skip
    choice = refit.prob_model_.cv_concordance_ if refit is not None else None
    del refit
    cov_all = covariates_at(as_of)
    cov = cov_all.drop(columns=["web_events"])
    model, life, tau, cols = fit_at_as_of(
        tx, as_of, cov, horizons=horizons, annual_discount=annual_discount, seed=seed,
        choice=choice, workers=workers,
    )  # fmt: skip
    with Beside(workers) as beside:
        cox = None
        if life["lapsed"].sum() >= 20 and cols:
            cox = beside.submit(CoxExplainer(seed=seed).fit, life, cols)
        example = model.predict()  # the fit sample's scores: the risk cut-offs, the schema
        scorer = BatchScorer(model, cov)
        if write:
            score_on_spark(lake, spark, marts, lines, scorer, example, run_id=run_id,
                           as_of=as_of)  # fmt: skip
        if cox is not None:
            cox = cox.result()
    scores = lake.read_table("marts", "churn_scores") if write else example
    truth = dict(holdout)
    # the forecast an earlier run's monitor kept in the lake, graded on the purchases since:
    # every customer's below the fit cap, the fit sample's (a uniform one) above it
    graded = graded_since_last_run(lake, tx, as_of)
    return ChurnStageResult(model, scores, tx, cov, life, tau, cox, truth, graded=graded)


def score_on_spark(lake, spark, marts: SparkMarts, lines, scorer: BatchScorer,
                   example: pd.DataFrame, *, run_id: str, as_of) -> str:  # fmt: skip
    """Score every customer of ``lines`` with ``mapInPandas`` and the broadcast ``scorer``, write
    ``marts.churn_scores`` beside its folder and rename it into place. Returns the table's
    path."""
    from pyspark.sql import functions as F

    raw_columns = list(_SCORED_COVARIATES)
    # one row per customer: the occasions as arrays in day order (a batch of mapInPandas then
    # never splits a customer, whatever the partitioning), the covariates beside them
    marts.occasions(lines).createOrReplaceTempView("cem_churn_occasions")
    per_customer = spark.sql(
        "SELECT customer_id, transform(o, x -> datediff(x.day, DATE'1970-01-01')) AS days, "
        + ", ".join(f"transform(o, x -> x.{c}) AS {c}s" for c in _OCCASION_ARRAYS)
        + " FROM (SELECT customer_id, sort_array(collect_list(struct(CAST(day AS DATE) AS day, "
        + ", ".join(_OCCASION_ARRAYS)
        + "))) AS o FROM cem_churn_occasions GROUP BY customer_id)"
    )
    cov = marts.covariates(scorer.as_of).select("customer_id", *raw_columns)
    rows = per_customer.join(cov, "customer_id", "left")
    columns = list(example.columns)
    broadcast = spark.sparkContext.broadcast(scorer)
    scored = rows.mapInPandas(_scoring(broadcast, columns, raw_columns), score_schema(example))
    scored = scored.withColumn("_run_id", F.lit(run_id).cast("string")).withColumn(
        "_as_of", F.lit(pd.Timestamp(as_of).date()).cast("date")
    )
    staged = {("marts", "churn_scores"): lake.staging_path("marts", "churn_scores", run_id)}
    try:
        scored.write.mode("overwrite").parquet(staged[("marts", "churn_scores")])
    except BaseException:
        lake.discard(staged)
        raise
    finally:
        broadcast.unpersist()
    lake.publish(staged)
    return lake.table_path("marts", "churn_scores")


def run_on_spark(
    lake, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    use_truth_profiles: bool = False, spark=None, **params: Any,
) -> StageResult:  # fmt: skip
    """Stage 03 on Spark: score ``lake``'s customers and write ``marts.churn_scores`` to it (a
    :class:`StageResult` as :func:`cemlib.churn.run` gives; ``params`` are
    :func:`run_stage_spark`'s options)."""
    from cemlib.churn import report
    from cemlib.contract import as_of_date, require_inputs, stage_result
    from cemlib.engine import Lake

    as_of_date(as_of)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    key = "person" if use_truth_profiles else "profile"
    instead = {"identity.map": "truth.record_person"} if key == "person" else None
    reads = sorted(require_inputs(lake, "churn", instead=instead))
    spark = spark or lake.spark()
    detail = run_stage_spark(lake, spark, as_of, run_id=run_id, key=key, seed=seed, **params)
    return stage_result(lake, "churn", run_id=run_id, as_of=as_of, reads=reads,
                        headlines=report.headlines(detail), detail=detail)  # fmt: skip
