"""The probabilistic model: Splink (Fellegi–Sunter) trained without labels, DuckDB backend.

Comparisons are built from the roles present in the prepared records: first and last name on
the Latin transliteration key (so Cyrillic and Latin spellings meet) with term-frequency
adjustment for common names and patronymics and a level for swapped first/last name, patronymic, birth date
with a day/month-swap level, city, address, postcode and the strong identifiers. ``u`` is
estimated by random sampling, ``m`` by expectation maximisation on two blocking passes, and
both are then bounded (:func:`bound_levels`): EM drives the ``m`` of a level it never sees
among its blocked pairs (a one-digit birth-date typo, a different loyalty card) towards zero,
which reads as evidence of -50 or -70 and makes one disagreement veto any agreement. A data-entry
error rate of a tenth of a percent is the floor of ``m``; one in a million the floor of ``u``.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import shutil
import tempfile
import uuid

import numpy as np
import pandas as pd
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.exceptions import EMTrainingException

from cemlib import DEFAULT_SEED
from cemlib.identity.comparisons import build_blocking, build_comparisons, email_year

MODEL_COLUMNS: tuple[str, ...] = (
    "first_lat",
    "last_lat",
    "middle_lat",
    "birth_date",
    "city",
    "address",
    "street_number",
    "postcode",
    "region",
    "phone",
    "email",
    "loyalty_card",
    "device_id",
    "national_id",
)


M_FLOOR = 1e-3  # a true match disagrees on any one level at least this often (entry errors)
U_FLOOR = 1e-6  # two random records agree on any one level at least this often
MAX_WEIGHT = 25.0  # no one level is stronger evidence than this, either way (log2 of m/u)


def bound_levels(settings, *, m_floor=M_FLOOR, u_floor=U_FLOOR, max_weight=MAX_WEIGHT) -> int:
    """Bound ``m`` and ``u`` of every comparison level of a Splink settings object in place
    (floors, then ``|log2(m/u)| <= max_weight``); the number of levels changed."""
    changed = 0
    for comp in settings.comparisons:
        for lvl in comp.comparison_levels:
            if lvl.is_null_level:
                continue
            m, u = lvl.m_probability, lvl.u_probability
            if m is None or u is None:
                continue
            nm = min(max(float(m), m_floor), 1.0 - m_floor)
            nu = min(max(float(u), u_floor), 1.0 - u_floor)
            w = np.log2(nm / nu)
            if w > max_weight:
                nu = nm / 2.0**max_weight
            elif w < -max_weight:
                nm = nu * 2.0**-max_weight
            if (nm, nu) != (m, u):
                lvl.m_probability, lvl.u_probability = nm, nu
                changed += 1
    return changed


def choose_threshold(
    probabilities: np.ndarray, *, precision: float = 0.99, floor: float = 0.5
) -> float:
    """Lowest match probability ``t >= floor`` whose accepted pairs (``p >= t``) have an
    expected precision (their mean probability) of at least ``precision``.

    With probabilities that mean what they say, this keeps the share of wrong links among the
    accepted ones at ``1 - precision`` whatever the data: a market with few namesakes links
    down to the floor, one with many stops higher. 1.0 when no pair reaches ``precision``.
    """
    p = np.sort(np.asarray(probabilities, dtype=float))[::-1]
    p = p[p >= floor]
    if len(p) == 0:
        return float(floor)
    mean = np.cumsum(p) / np.arange(1, len(p) + 1)
    ok = np.flatnonzero(mean >= precision)
    if len(ok) == 0:
        return 1.0
    return float(p[ok[-1]])


def _level_weights(df: pd.DataFrame):
    """(comparison, match weight per pair) of Splink's scored pairs, TF adjustment included."""
    cols = set(df.columns)
    for c in df.columns:
        if c.startswith("mw_") and not c.startswith("mw_tf_adj_"):
            name = c[3:]
            w = df[c].to_numpy(dtype=float)
            if f"mw_tf_adj_{name}" in cols:
                w = w + np.nan_to_num(df[f"mw_tf_adj_{name}"].to_numpy(dtype=float))
            yield name, np.nan_to_num(w)
        elif c.startswith("bf_") and not c.startswith("bf_tf_adj_"):
            yield c[3:], np.log2(np.clip(df[c].to_numpy(dtype=float), 1e-300, None))


def _spark_pairs(scored) -> pd.DataFrame:
    """Splink's scored pairs on Spark with only what :meth:`SplinkModel.predict` keeps: the
    ids, weight and probability, and the fields each pair agrees and disagrees on, named by
    Spark from each comparison's match weight and its term-frequency part (as
    :func:`_level_weights` names them on the driver), through Arrow. Only those two texts
    come over, not a float per comparison and pair, and each distinct text is one Python
    string on the driver (Arrow's dictionary: a few dozen combinations for millions of
    pairs). The gamma levels, Bayes factors and term frequencies of every pair stay in Spark
    (an older Splink without match weights: its Bayes factors come over, and are read on the
    driver)."""
    from pyspark.sql import functions as F

    sdf = scored.as_spark_dataframe()
    ids = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]
    cols = set(sdf.columns)
    weights = [c for c in sdf.columns if c.startswith("mw_") and not c.startswith("mw_tf_adj_")]
    if not weights:
        keep = [*ids, *[c for c in sdf.columns if c.startswith("bf_")]]
        return sdf.select(*[f"`{c}`" for c in keep]).toArrow().to_pandas()

    def finite(x):  # numpy's nan_to_num of a weight: NaN (null here) is no evidence, 0
        return F.when(x.isNull() | F.isnan(x), F.lit(0.0)).otherwise(x)

    said = {}
    for c in weights:
        name = c[3:]
        w = F.col(f"`{c}`")
        if f"mw_tf_adj_{name}" in cols:
            w = w + finite(F.col(f"`mw_tf_adj_{name}`"))
        said[name] = finite(w)
    agree = F.concat_ws(",", *[F.when(w > 0, F.lit(n)) for n, w in said.items()])
    disagree = F.concat_ws(",", *[F.when(w < 0, F.lit(n)) for n, w in said.items()])
    table = sdf.select(*[f"`{c}`" for c in ids], agree.alias("agreeing"),
                       disagree.alias("disagreeing")).toArrow()  # fmt: skip
    out = table.select(ids).to_pandas()
    for c in ("agreeing", "disagreeing"):  # one Python string per distinct text
        out[c] = table.column(c).dictionary_encode().to_pandas().astype(object).to_numpy()
        table = table.drop_columns([c])
    return out


def _model_frame(frame: pd.DataFrame, prepared: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``frame``'s compared ``cols`` as Splink reads them: a ``unique_id`` (the row), None for
    a missing value."""
    frame.insert(0, "unique_id", np.arange(len(prepared), dtype="int64"))
    for c in cols:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


def _records_to_spark(spark, frame: pd.DataFrame, name: str):
    """``frame`` (:func:`_model_frame`) as a Spark DataFrame. On a ``local[N]`` master the
    driver writes it as one Parquet file into the context's checkpoint folder and Spark reads
    that: no copy of every record in the JVM's heap for the rest of the session and none of
    the pandas copies of Splink's own registration (``createDataFrame``; at 200,000 people
    4.2 M records). Elsewhere (a cluster, whose executors cannot read the driver's disk) the
    frame itself, which Splink registers with ``createDataFrame``."""
    from cemlib.engine.session import local_cores

    folder = spark.sparkContext.getCheckpointDir() or ""
    if not local_cores(spark.sparkContext.master) or not (
        folder.startswith("file:") or folder.startswith("/")
    ):
        return frame
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(folder.removeprefix("file:"), f"{name}.parquet")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return spark.read.parquet(f"file://{path}")


class SplinkModel:
    """Fellegi–Sunter model over prepared records, trained by EM without labels.

    ``fit(prepared)`` trains; ``predict(threshold)`` returns scored pairs ``rid_l, rid_r,
    match_weight, match_probability, agreeing`` (comparisons with a positive weight).
    ``memory_limit`` caps DuckDB's memory (it spills to a temporary directory beyond it;
    ``"auto"``: the stage's share of cem run's memory_limit, at most 6GB; None = DuckDB's
    default of 80% of RAM). ``block_budget``: the most candidate pairs a plain
    name blocking rule may generate before it is replaced by tighter ones (see
    :func:`build_blocking`); the rules used are in ``blocking_rules_`` after ``fit``.
    ``spark``: a Spark session (:func:`cemlib.engine.spark_session`, which puts Splink's
    similarity functions on its class path) to train and score on Splink's ``SparkAPI``
    instead of a private DuckDB: the same comparisons, blocking rules and training passes,
    the candidate pairs generated and scored by Spark's executors.
    """

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        u_max_pairs: float = 2e6,
        em_max_pairs: float | None = 2e6,
        recall: float = 0.7,
        min_coverage: float = 0.005,
        memory_limit: str | None = "auto",
        block_budget: float = 5e6,
        spark=None,
    ):
        self.seed = seed
        self.u_max_pairs = u_max_pairs
        self.em_max_pairs = em_max_pairs
        self.recall = recall
        self.min_coverage = min_coverage
        self.memory_limit = memory_limit
        self.block_budget = block_budget
        self.spark = spark

    def fit(self, prepared: pd.DataFrame, saved: dict | None = None) -> SplinkModel:
        """Train on ``prepared`` (one row per record, the columns of :data:`MODEL_COLUMNS`
        it has): the prior from the deterministic rules, ``u`` by random sampling, ``m`` by
        EM (:meth:`_train_em`), then every level bounded (:func:`bound_levels`).

        ``saved`` (:meth:`saved`, an earlier fit's): no training; the records are compared
        on that fit's columns with its settings (comparisons, ``m``/``u``, prior, blocking
        rules) and its term-frequency tables, so they are scored as that fit scored them."""
        logging.getLogger("splink").setLevel(logging.ERROR)
        if saved is not None:
            return self._load(prepared, saved)
        cols = [
            c
            for c in MODEL_COLUMNS
            if c in prepared and prepared[c].notna().mean() >= self.min_coverage
        ]
        self.columns_ = cols
        frame = prepared[cols].copy()
        if "email" in cols and "birth_date" in cols:
            hint = email_year(prepared["email"])
            if hint.notna().mean() >= self.min_coverage:
                frame["email_year"] = hint
                cols = [*cols, "email_year"]
        self.compared_ = cols
        sdf = self._connect(_model_frame(frame, prepared, cols))
        settings = SettingsCreator(
            link_type="dedupe_only",
            comparisons=build_comparisons(cols),
            blocking_rules_to_generate_predictions=self._blocking(frame, cols),
            retain_intermediate_calculation_columns=True,
            retain_matching_columns=False,
            max_iterations=20,
        )
        # on Spark the records are the registered table: the driver's copy of the compared
        # values is not held through the training (on DuckDB frame_ keeps it, for score_pairs)
        del frame
        linker = Linker(sdf, settings, log_level=None)
        det = []
        if {"first_lat", "last_lat", "birth_date"} <= set(cols):
            det.append(block_on("first_lat", "last_lat", "birth_date"))
        for c in ("national_id", "email", "phone"):
            if c in cols:
                det.append(block_on(c))
        if not det:
            det = [block_on(cols[0])]
        linker.training.estimate_probability_two_random_records_match(det, recall=self.recall)
        linker.training.estimate_u_using_random_sampling(max_pairs=self.u_max_pairs, seed=self.seed)
        self._train_em(linker, cols)
        self.n_bounded_ = bound_levels(linker._settings_obj)
        # the EM passes' comparison vectors stay cached in DuckDB (hundreds of MB): drop them
        linker.table_management.invalidate_cache()
        self.linker_ = linker
        self.loaded_ = False
        return self

    def saved(self) -> dict:
        """What scoring with this model again takes, without training it: Splink's settings
        (comparisons, ``m``/``u``, prior, blocking rules; ``save_model_to_json``), the
        compared columns, the EM passes, and the term-frequency table of each column with a
        term-frequency adjustment (``{column: frame of value, tf}``), taken from the records
        it was fitted on. Plain JSON but the tables (:func:`cemlib.identity.store.write_model`
        keeps it in the warehouse)."""
        linker = self.linker_
        tf = {}
        for col in linker._settings_obj._term_frequency_columns:
            name = col.unquote().name
            table = linker.table_management.compute_tf_table(name).as_pandas_dataframe()
            tf[name] = table.rename(columns={name: "value", f"tf_{name}": "tf"})[["value", "tf"]]
        linker.table_management.invalidate_cache()
        return {
            "settings": linker.misc.save_model_to_json(),
            "columns": list(self.columns_),
            "compared": list(self.compared_),
            "em_sessions": list(getattr(self, "em_sessions_", [])),
            "tf": tf,
        }

    def _load(self, prepared: pd.DataFrame, saved: dict) -> SplinkModel:
        """:meth:`fit` with a ``saved`` model: Splink's linker over ``prepared`` with the saved
        settings and term-frequency tables, nothing trained."""
        self.columns_ = list(saved["columns"])
        cols = list(saved["compared"])
        self.compared_ = cols
        frame = pd.DataFrame(
            {c: prepared[c] if c in prepared else pd.Series(None, index=prepared.index,
                                                              dtype=object)
             for c in self.columns_},
            index=prepared.index,
        )  # fmt: skip
        if "email_year" in cols:
            frame["email_year"] = email_year(prepared["email"])
        sdf = self._connect(_model_frame(frame, prepared, cols))
        settings = copy.deepcopy(saved["settings"])
        self.blocking_rules_ = [
            r["blocking_rule"] if isinstance(r, dict) else str(r)
            for r in settings.get("blocking_rules_to_generate_predictions", [])
        ]
        self.linker_ = Linker(sdf, settings, log_level=None)
        self.em_sessions_ = list(saved.get("em_sessions", []))
        self.n_bounded_ = 0
        self.loaded_ = True
        self._tf = {}
        for name, table in saved.get("tf", {}).items():
            lookup = pd.DataFrame(
                {name: table["value"].astype(object), f"tf_{name}": table["tf"].astype(float)}
            )
            self._tf[name] = self.db_api_.register(lookup, table_name=f"cem_tf_{name}")
        self._register_tf()
        return self

    def _register_tf(self) -> None:
        """The saved term-frequency tables as Splink's lookups (again after its cache is
        emptied: the scores keep the fitted records' name frequencies)."""
        for name, registered in getattr(self, "_tf", {}).items():
            self.linker_.table_management.register_term_frequency_lookup(registered, name)

    def _connect(self, frame: pd.DataFrame):
        """A private DuckDB for Splink (two threads, the memory limit, a temporary directory
        to spill to), or Splink's ``SparkAPI`` on :attr:`spark`, with ``frame`` registered;
        returns Splink's table."""
        self.frame_ = frame  # the compared values of each unique_id (row i), for score_pairs
        if self.spark is not None:
            from splink import SparkAPI

            context = self.spark.sparkContext
            if context.getCheckpointDir() is None:  # Splink writes its steps there (Parquet)
                from cemlib.budget import temp_directory

                root = temp_directory()
                if root:
                    os.makedirs(root, exist_ok=True)
                # the context keeps writing there after this model is gone: the folder lives
                # as long as the process (removed at exit), not as long as this model
                folder = tempfile.mkdtemp(prefix="cemlib_splink_", dir=root)
                atexit.register(shutil.rmtree, folder, ignore_errors=True)
                context.setCheckpointDir(folder)
            parts = max(2, int(self.spark.conf.get("spark.sql.shuffle.partitions", "8")))
            self.db_api_ = SparkAPI(spark_session=self.spark, num_partitions_on_repartition=parts)
            # one Spark session serves every fit of the process: a view name of this fit's own
            name = f"cem_records_{uuid.uuid4().hex[:12]}"
            sdf = self.db_api_.register(_records_to_spark(self.spark, frame, name), table_name=name)
            self.frame_ = None  # score_pairs reads the registered Spark table
            self.records_table_ = sdf.physical_name
            return sdf
        self.db_api_ = DuckDBAPI()
        con = self.db_api_.duckdb_con
        con.execute("SET threads TO 2")
        if self.memory_limit:
            from cemlib.budget import duckdb_memory_limit, temp_directory

            limit = self.memory_limit
            if limit == "auto":
                limit = duckdb_memory_limit(cap="6GB")
            # DuckDB spills to a private temporary directory past this (default: 80% of RAM)
            root = temp_directory()
            if root:
                os.makedirs(root, exist_ok=True)
            self.tmp_dir_ = tempfile.TemporaryDirectory(prefix="cemlib_splink_", dir=root)
            con.execute(f"SET temp_directory = '{self.tmp_dir_.name}'")
            con.execute(f"SET memory_limit = '{limit}'")
        sdf = self.db_api_.register(frame, table_name="cem_records")
        self.records_table_ = sdf.physical_name
        return sdf

    def _train_em(self, linker, cols: list[str]) -> None:
        """Expectation maximisation of ``m`` on at most two blocking passes (birth date, then
        the names; the identifiers only when a pass above fails); ``em_sessions_`` lists the
        passes that ran."""
        sessions = []
        if "birth_date" in cols:
            sessions.append(block_on("birth_date"))
        if {"first_lat", "last_lat"} <= set(cols):
            sessions.append(block_on("first_lat", "last_lat"))
        elif "first_lat" in cols:
            sessions.append(block_on("first_lat"))
        # fallbacks, used only when a pass above fails
        for c in ("phone", "email", "national_id", "postcode"):
            if c in cols:
                sessions.append(block_on(c))
        self.em_sessions_ = []
        for name, rule in (
            (str(r.get_blocking_rule("duckdb").blocking_rule_sql), r) for r in sessions
        ):
            if len(self.em_sessions_) >= 2:
                break
            # EM can drive the m of a level never seen among the blocked pairs below what
            # float64 holds (Splink refuses it): retry on all blocked pairs, then the next rule
            for max_pairs in (self.em_max_pairs, None):
                saved = copy.deepcopy(linker._settings_obj)
                try:
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        rule, estimate_without_term_frequencies=True, max_pairs=max_pairs
                    )
                except EMTrainingException:
                    # no pair of records meets the pass's rule (a small or narrow file)
                    linker._settings_obj = saved
                    break
                except ValueError as exc:
                    if "below the minimum allowed" not in str(exc):
                        raise
                    # a failed pass leaves Splink's settings without the blocked comparisons
                    linker._settings_obj = saved
                    continue
                self.em_sessions_.append(name)
                break

    def _blocking(self, frame: pd.DataFrame, cols: list[str]) -> list:
        rules = build_blocking(cols, frame, self.block_budget)
        self.blocking_rules_ = [
            r if isinstance(r, str) else str(r.get_blocking_rule("duckdb").blocking_rule_sql)
            for r in rules
        ]
        return rules

    def predict(self, threshold: float = 0.5) -> pd.DataFrame:
        """Scored candidate pairs at or above ``threshold`` match probability."""
        scored = self.linker_.inference.predict(threshold_match_probability=threshold)
        df = _spark_pairs(scored) if self.spark is not None else scored.as_pandas_dataframe()
        self.linker_.table_management.invalidate_cache()
        self._register_tf()
        if "agreeing" in df:  # named by Spark (_spark_pairs)
            agree, disagree = df.pop("agreeing").to_numpy(), df.pop("disagreeing").to_numpy()
        else:
            # Splink 5 keeps per-comparison match weights (mw_*, log2 of the Bayes factor; the
            # term-frequency parts apart in mw_tf_adj_*); older releases kept Bayes factors
            agree = np.full(len(df), "", dtype=object)
            disagree = np.full(len(df), "", dtype=object)
            for name, weight in _level_weights(df):
                for acc, hit in ((agree, weight > 0.0), (disagree, weight < 0.0)):
                    acc[:] = np.where(hit, np.where(acc == "", name, acc + "," + name), acc)
        out = pd.DataFrame(
            {
                "rid_l": df["unique_id_l"].astype("int64"),
                "rid_r": df["unique_id_r"].astype("int64"),
                "match_weight": df["match_weight"].astype(float),
                "match_probability": df["match_probability"].astype(float),
                "agreeing": agree,
                "disagreeing": disagree,
            }
        )
        # DuckDB's threads return pairs in any order, with last-digit float noise: sorted and
        # rounded, the same data and seed give the same links and the same merge order
        out[["match_weight", "match_probability"]] = out[
            ["match_weight", "match_probability"]
        ].round(10)
        return out.sort_values(["rid_l", "rid_r"], kind="stable", ignore_index=True)

    def score_pairs(self, pairs) -> list[dict]:
        """Splink's full scoring of the given record pairs, for its waterfall chart.

        Parameters
        ----------
        pairs : iterable of (int, int)
            Record ids as in :meth:`predict`'s ``rid_l``, ``rid_r``.

        Returns
        -------
        list of dict
            One record per pair with Splink's intermediate columns (``gamma_*``, ``mw_*``,
            term-frequency parts): what ``linker.visualisations.waterfall_chart`` draws. The
            records hold the compared values too; draw them with ``remove_sensitive_data``.
        """
        out = []
        for left, right in pairs:
            recs = []
            for side, rid in (("l", left), ("r", right)):
                if self.spark is not None:  # the typed row of the registered Spark table
                    row = self.spark.table(self.records_table_).where(f"unique_id = {int(rid)}")
                    name = f"cem_pair_{side}_{int(left)}_{int(right)}"
                    recs.append(self.db_api_.register(row, table_name=name))
                    continue
                row = self.frame_.iloc[int(rid)]  # unique_id i is row i of the fitted frame
                recs.append({k: None if pd.isna(v) else v for k, v in row.items()})
            scored = self.linker_.inference.score_pair(recs[0], recs[1])
            out.extend(scored.as_record_list())
            scored.drop_table_from_database_and_remove_from_cache()
        return out

    def waterfall_chart(self, records: list[dict]):
        """Splink's own waterfall chart of :meth:`score_pairs` records, every compared value
        removed (match weights only, no personal data)."""
        settings = self.linker_._settings_obj
        kept = settings._retain_matching_columns
        settings._retain_matching_columns = True  # the chart checks it; our records have them
        try:
            return self.linker_.visualisations.waterfall_chart(records, remove_sensitive_data=True)
        finally:
            settings._retain_matching_columns = kept

    def waterfall_steps(self, records: list[dict]) -> pd.DataFrame:
        """The steps of each :meth:`score_pairs` record's match weight, as a tidy table.

        Returns
        -------
        pandas.DataFrame
            ``pair`` (position in ``records``), ``comparison``, ``level`` (Splink's label of the
            level the pair fell in), ``weight`` (its match weight, term-frequency part
            included; the first row of a pair is the prior, the weight before any comparison).
            Values of the records are not included. Null levels (nothing to compare) are left
            out; the weights of a pair add up to its ``match_weight``.
        """
        labels = {
            (comp.output_column_name, lvl.comparison_vector_value): lvl.label_for_charts
            for comp in self.linker_._settings_obj.comparisons
            for lvl in comp.comparison_levels
        }
        rows = []
        for i, rec in enumerate(records):
            steps = []
            for (name, gamma), label in labels.items():
                if rec.get(f"gamma_{name}") != gamma or gamma == -1:
                    continue
                w = float(rec.get(f"mw_{name}") or 0.0) + float(rec.get(f"mw_tf_adj_{name}") or 0.0)
                steps.append({"pair": i, "comparison": name, "level": label, "weight": w})
            prior = float(rec["match_weight"]) - sum(x["weight"] for x in steps)
            rows.append({"pair": i, "comparison": "prior", "level": "prior", "weight": prior})
            rows.extend(steps)
        return pd.DataFrame(rows, columns=["pair", "comparison", "level", "weight"])

    def disagreement_rates(self) -> dict[str, float]:
        """Per comparison: the estimated share of true matches that disagree on it entirely
        (``m`` of its last level). Near zero for a birth date a person always gives the same
        way; several percent where a data set replaces values (FEBRL's duplicates carry
        another birth date in one pair of thirteen)."""
        out = {}
        for comp in self.linker_._settings_obj.comparisons:
            levels = [lvl for lvl in comp.comparison_levels if not lvl.is_null_level]
            if levels and levels[-1].m_probability is not None:
                out[comp.output_column_name] = float(levels[-1].m_probability)
        return out

    def match_weights(self) -> pd.DataFrame:
        """Per comparison level: m, u and match weight (for charts without Altair)."""
        rows = []
        for comp in self.linker_._settings_obj.comparisons:
            for lvl in comp.comparison_levels:
                if lvl.is_null_level:
                    continue
                m, u = lvl.m_probability, lvl.u_probability
                mw = np.log2(m / u) if m and u else np.nan
                rows.append(
                    {
                        "comparison": comp.output_column_name,
                        "level": lvl.label_for_charts,
                        "m_probability": m,
                        "u_probability": u,
                        "match_weight": mw,
                    }
                )
        return pd.DataFrame(rows)
