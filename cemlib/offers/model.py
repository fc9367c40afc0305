"""``NextOfferModel``: candidates from several sources re-ranked by a LightGBM LambdaRank model.

Training is honest about time: with label window ``W = horizon_days`` and ``as_of`` the last day
of known history, the model is trained on a snapshot at ``as_of - 2W`` labelled with the next
``W`` days and early-stopped on a snapshot at ``as_of - W`` labelled with the last ``W`` days
(same construction, the next window: no random split across time). With ``refit=True`` it is
then refitted on both windows with the early-stopped number of trees, and ``recommend`` scores a
snapshot at ``as_of``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
import shap

from cemlib.errors import InputError
from cemlib.offers.candidates import CandidateConfig, build_candidates, source_recall
from cemlib.offers.data import InputReport, prepare_events, prepare_items, prepare_transactions
from cemlib.offers.explain import contributions, global_importance, reason_codes, shap_values
from cemlib.offers.features import build_features, feature_names
from cemlib.offers.forest import compile_forest
from cemlib.offers.snapshot import Snapshot, Store, Windows, day_number, encode
from cemlib.offers.treeshap import build_tables
from cemlib.progress import progress

DEFAULT_PARAMS: dict = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.1,
    # shallow trees: exact TreeSHAP for the reasons costs O(trees x leaves x depth^2) per offer,
    # ~6x less than with 31 leaves and no depth limit; NDCG@10 / best baseline on Ta-Feng
    # 1.193 / 1.128 (subclass / product) against 1.185 / 1.078 with the deep trees
    "num_leaves": 8,
    "max_depth": 3,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 20,
    "verbosity": -1,
    "deterministic": True,
    "force_col_wise": True,
}


@dataclass
class WindowData:
    """Candidates with features and labels of one training/validation snapshot."""

    cutoff: pd.Timestamp
    frame: pd.DataFrame
    groups: np.ndarray
    recall: dict[str, float] = field(default_factory=dict)
    n_customers: int = 0


class NextOfferModel:
    """Next-offer ranker for any transactions table (``customer_id, ts, item_id, quantity, amount``).

    Parameters: ``k`` offers per customer; ``horizon_days`` the label window (how far ahead the
    offers look); ``granularity`` ``"item"`` (SKU) or ``"category"``; ``candidates`` how many
    candidates each source brings; ``max_train_customers`` caps training queries per window;
    ``chunk_size`` customers scored at once (bounds memory); ``seed`` fixes sampling and trees.
    """

    def __init__(
        self,
        *,
        k: int = 10,
        horizon_days: int = 30,
        granularity: str = "item",
        candidates: CandidateConfig | None = None,
        windows: Windows | None = None,
        params: dict | None = None,
        n_estimators: int = 300,
        early_stopping_rounds: int = 30,
        train_negatives: int = 40,
        refit: bool = True,
        max_train_customers: int = 50_000,
        chunk_size: int = 10_000,
        n_reasons: int = 3,
        seed: int = 42,
        progress: bool = False,
    ):
        self.k = k
        self.horizon_days = horizon_days
        self.granularity = granularity
        self.candidates = candidates
        self.windows = windows
        self.params = params
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.train_negatives = train_negatives
        self.refit = refit
        self.max_train_customers = max_train_customers
        self.chunk_size = chunk_size
        self.n_reasons = n_reasons
        self.seed = seed
        self.progress = progress

    # -- data ---------------------------------------------------------------------------------
    @contextmanager
    def _phase(self, name: str):
        """Add the seconds spent in the block to ``fit_phases_`` / ``score_phases_``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            book = self._phases if hasattr(self, "_phases") else {}
            book[name] = book.get(name, 0.0) + time.perf_counter() - t0

    def _load(self, transactions, as_of, events, items, customer_features) -> None:
        self.input_report_ = InputReport()
        self.events_report_ = InputReport()
        self.items_ = prepare_items(items)
        self.tx_ = prepare_transactions(
            transactions,
            as_of=as_of,
            items=self.items_,
            granularity=self.granularity,
            report=self.input_report_,
        )
        if self.tx_.empty:
            raise InputError(
                f"no purchases on or before as_of {as_of}",
                source=transactions.attrs.get("source", "transactions"),
            )
        ev = prepare_events(
            events,
            as_of=as_of,
            items=self.items_,
            granularity=self.granularity,
            report=self.events_report_,
        )
        self.enc_, codes, ev_codes = encode(self.tx_, ev, self.items_)
        extra = None
        if customer_features is not None:
            if "customer_id" not in customer_features.columns:
                raise InputError("missing column", source="customer_features", column="customer_id")
            cf = customer_features.copy()
            cf["c"] = self.enc_.customers.get_indexer(cf["customer_id"].astype(str))
            cf = cf[cf["c"] >= 0].drop(columns=["customer_id"])
            num = [c for c in cf.columns if c != "c" and pd.api.types.is_numeric_dtype(cf[c])]
            extra = cf[["c", *num]].drop_duplicates("c") if num else None
        if hasattr(self, "store_"):
            self.store_.close()
        self.store_ = Store(codes, ev_codes, extra)
        self.as_of_ = pd.Timestamp(as_of).normalize()

    def _chunks(self, customers: np.ndarray, desc: str):
        n = max(1, int(self.chunk_size))
        parts = [customers[i : i + n] for i in range(0, len(customers), n)]
        return progress(parts, desc=desc, disable=not self.progress or len(parts) < 2)

    def _frame(self, snap: Snapshot, customers: np.ndarray, desc: str, each=None) -> pd.DataFrame:
        """Candidates with features of ``customers``, chunk by chunk; ``each(frame, part)``
        transforms every chunk's frame before it is kept (training: labels and sampling)."""
        cfg = self.candidates or CandidateConfig()
        frames = []
        for part in self._chunks(customers, desc):
            q = f"{snap.p}q"
            with self._phase("candidates"):
                self.store_.con.register("_q", pd.DataFrame({"c": part.astype(np.int64)}))
                self.store_.execute(f"CREATE OR REPLACE TEMP TABLE {q} AS SELECT c FROM _q")
                self.store_.con.unregister("_q")
                cand = build_candidates(snap, q, cfg)
            with self._phase("features"):
                frame = build_features(snap, cand)
            frames.append(frame if each is None else each(frame, part))
            del frame
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _window(self, cutoff_day: int, rng: np.random.Generator) -> WindowData:
        with self._phase("snapshots"):
            snap = Snapshot(
                self.store_, cutoff_day, horizon=self.horizon_days, windows=self.windows
            )
            labels = snap.labels()
            hist = snap.customers_with_history()
            labels = labels[labels["c"].isin(hist)]
        customers = np.unique(labels["c"].to_numpy())
        if len(customers) > self.max_train_customers:
            customers = np.sort(rng.choice(customers, self.max_train_customers, replace=False))
        cutoff = pd.Timestamp("1970-01-01") + pd.Timedelta(days=cutoff_day)
        if len(customers) == 0:
            snap.drop()
            return WindowData(cutoff, pd.DataFrame(), np.zeros(0, dtype=np.int64), {}, 0)
        labels = labels[labels["c"].isin(customers)]
        found: dict[str, float] = {}  # labels found by each source, summed over the chunks

        def labelled(frame: pd.DataFrame, part: np.ndarray) -> pd.DataFrame:
            # label and sample each chunk as it comes: only the sampled rows are kept (the
            # random draws follow the chunks in order, as one draw over the window would)
            with self._phase("labels and negative sampling"):
                mine = labels[labels["c"].isin(part)]
                if len(frame) and len(mine):
                    for name, share in source_recall(frame, mine).items():
                        found[name] = found.get(name, 0.0) + share * len(mine)
                return self._labelled(frame, mine, rng)

        frame = self._frame(snap, customers, "training candidates", each=labelled)
        snap.drop()
        recall = {name: n / len(labels) for name, n in found.items()} if len(labels) else {}
        groups = frame.groupby("c", sort=True).size().to_numpy()
        return WindowData(cutoff, frame, groups, recall, len(customers))

    def _labelled(self, frame: pd.DataFrame, labels: pd.DataFrame, rng) -> pd.DataFrame:
        """Rows of customers with a purchase in the label window, all positives and up to
        ``train_negatives`` random negatives each, with a 0/1 ``label``."""
        # labels by integer key, positives-only customers, negatives sampled: one copy at the end
        c = frame["c"].to_numpy(np.int64)
        i = frame["i"].to_numpy(np.int64)
        width = int(max(i.max(initial=0), labels["i"].max() if len(labels) else 0)) + 1
        key = c * width + i
        label = np.isin(
            key, labels["c"].to_numpy(np.int64) * width + labels["i"].to_numpy(np.int64)
        )
        rows = np.flatnonzero(np.isin(c, np.unique(c[label])))
        if self.train_negatives:
            # all positives, a random sample of negatives per customer (fewer rows, same ranking task)
            draw = rng.random(len(rows))
            v = np.where(label[rows], np.inf, draw)
            order = np.lexsort((np.arange(len(rows)), v, c[rows]))
            cs = c[rows][order]
            start = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]]) if len(cs) else np.zeros(0, int)
            rank = np.empty(len(rows), dtype=np.int64)
            rank[order] = np.arange(len(cs)) - np.repeat(start, np.diff(np.r_[start, len(cs)])) + 1
            rows = rows[label[rows] | (rank <= self.train_negatives)]
        if len(rows) > 1 and np.any(np.diff(key[rows]) < 0):
            rows = rows[np.argsort(key[rows], kind="stable")]
        frame = frame.iloc[rows].reset_index(drop=True)
        frame["label"] = label[rows].astype(np.int8)
        return frame

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        transactions: pd.DataFrame,
        as_of,
        *,
        events: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        customer_features: pd.DataFrame | None = None,
    ) -> NextOfferModel:
        """Learn from the history up to ``as_of`` (inclusive); later rows are ignored."""
        t0 = time.perf_counter()
        self.fit_phases_: dict[str, float] = {}
        self._phases = self.fit_phases_
        with self._phase("load and encode"):
            self._load(transactions, as_of, events, items, customer_features)
        # the model keeps its prepared, coded copies only: a caller that hands over its frames
        # (no other reference) gets their memory back here, before the training windows
        del transactions, events, items, customer_features
        rng = np.random.default_rng(self.seed)
        T = day_number(self.as_of_)
        W = int(self.horizon_days)
        valid = self._window(T - W, rng)
        train = self._window(T - 2 * W, rng)
        self.split_ = "time"
        if len(train.groups) < 20:
            # too little history for two windows: split the last window's customers instead
            if len(valid.groups) < 4:
                raise InputError(
                    f"too little history before {as_of} to learn: {len(valid.groups)} customer(s) "
                    f"bought in the last {W} days",
                    source="transactions",
                )
            custs = np.unique(valid.frame["c"])
            held = set(rng.choice(custs, max(1, len(custs) // 4), replace=False).tolist())
            m = valid.frame["c"].isin(held)
            train = WindowData(
                valid.cutoff,
                valid.frame[~m],
                valid.frame[~m].groupby("c").size().to_numpy(),
                valid.recall,
            )
            valid = WindowData(
                valid.cutoff,
                valid.frame[m],
                valid.frame[m].groupby("c").size().to_numpy(),
                valid.recall,
            )
            self.split_ = "customers (history too short for two time windows)"
        self.feature_names_ = self._names()
        # OpenMP threads only pay off on large data; on small data (or a busy machine) two
        # spinning threads are many times slower than one
        n_rows = len(train.frame) + len(valid.frame)
        auto = {"num_threads": 2 if n_rows > 2_000_000 else 1}
        params = {**DEFAULT_PARAMS, **auto, **(self.params or {}), "seed": self.seed}
        self.num_threads_ = int(params["num_threads"])
        eval_at = params.get("eval_at", [10])
        params["eval_at"] = eval_at
        with self._phase("lightgbm training (early stopping)"):
            booster = self._train_early_stopped(train, valid, params)
        if self.refit and self.split_ == "time":
            with self._phase("lightgbm refit on both windows"):
                names = self.feature_names_
                dall = lgb.Dataset(
                    np.concatenate([w.frame[names].to_numpy(np.float32) for w in (train, valid)]),
                    np.concatenate([w.frame["label"].to_numpy() for w in (train, valid)]),
                    group=np.concatenate([train.groups, valid.groups]),
                    feature_name=names,
                )
                booster = lgb.train(params, dall, num_boost_round=self.best_iteration_)
        self.booster_ = booster
        with self._phase("shap tables and summary"):
            # per-tree SHAP tables for the reasons of every offer (None: deep trees, pred_contrib)
            self.shap_tables_ = build_tables(booster)
            # branch-free compiled scoring (None: deep or unusual trees, LightGBM's predict)
            self.forest_ = compile_forest(booster)
            self.explainer_ = shap.TreeExplainer(booster)
            sample = valid.frame.sample(min(len(valid.frame), 5000), random_state=self.seed)
            self.shap_sample_ = sample[self.feature_names_].reset_index(drop=True)
            self.shap_sample_values_ = shap_values(
                self.explainer_, self.shap_sample_.to_numpy(np.float32)
            )
            self.importance_ = global_importance(self.shap_sample_values_, self.feature_names_)
        self.candidate_recall_ = {"train": train.recall, "validation": valid.recall}
        self.windows_ = {
            "train": {
                "cutoff": str(train.cutoff.date()),
                "queries": len(train.groups),
                "rows": len(train.frame),
            },
            "validation": {
                "cutoff": str(valid.cutoff.date()),
                "queries": len(valid.groups),
                "rows": len(valid.frame),
            },
        }
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _train_early_stopped(self, train: WindowData, valid: WindowData, params: dict):
        dtrain = lgb.Dataset(
            train.frame[self.feature_names_].to_numpy(np.float32),
            train.frame["label"],
            group=train.groups,
            feature_name=self.feature_names_,
        )
        dvalid = lgb.Dataset(
            valid.frame[self.feature_names_].to_numpy(np.float32),
            valid.frame["label"],
            group=valid.groups,
            reference=dtrain,
        )
        evals: dict = {}
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=self.n_estimators,
            valid_sets=[dvalid],
            valid_names=["validation"],
            callbacks=[
                lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(evals),
            ],
        )
        self.best_iteration_ = int(booster.best_iteration or self.n_estimators)
        metric = f"ndcg@{params['eval_at'][0]}"
        self.validation_ndcg_ = float(booster.best_score["validation"][metric])
        self.eval_history_ = evals
        return booster

    def _names(self) -> list[str]:
        probe = Snapshot.__new__(Snapshot)
        probe.store = self.store_
        return feature_names(probe)

    # -- scoring ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise RuntimeError("NextOfferModel is not fitted: call fit(...) first")

    def recommend(
        self,
        transactions: pd.DataFrame | None = None,
        as_of=None,
        *,
        events: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        customer_features: pd.DataFrame | None = None,
        customers=None,
        k: int | None = None,
        explain: bool = True,
    ) -> pd.DataFrame:
        """Top-``k`` offers ``customer_id, rank, item_id, score, reasons`` per customer.

        Without ``transactions`` it scores the history given to ``fit`` at its ``as_of``; with
        them (e.g. one more month of history) it scores that history at ``as_of``. Every
        customer with history gets ``k`` offers (popular items fill short candidate lists).
        """
        self._check_fitted()
        t0 = time.perf_counter()
        self.score_phases_: dict[str, float] = {}
        self._phases = self.score_phases_
        k = int(k or self.k)
        if transactions is not None:
            with self._phase("load and encode"):
                self._load(
                    transactions,
                    as_of if as_of is not None else self.as_of_,
                    events,
                    items,
                    customer_features,
                )
        T = day_number(self.as_of_)
        with self._phase("snapshots"):
            snap = Snapshot(self.store_, T, horizon=self.horizon_days, windows=self.windows)
            hist = snap.customers_with_history()
            if customers is not None:
                wanted = self.enc_.customers.get_indexer(
                    pd.Index(pd.unique(pd.Index(customers).astype(str)))
                )
                hist = np.intersect1d(hist, wanted[wanted >= 0])
            pop = self.store_.sql(f"SELECT i FROM {snap.p}it ORDER BY pop_rank LIMIT {k}")[
                "i"
            ].to_numpy()
        out = []
        # scoring is row-parallel (no spinning on tiny data): both cores pay off on large chunks
        threads = max(self.num_threads_, 2 if len(hist) >= 5_000 else 1)
        tables = getattr(self, "shap_tables_", None)
        forest = getattr(self, "forest_", None)
        pool: dict[str, str] = {}  # one string object per distinct reason text
        for part in self._chunks(hist, "scoring"):
            frame = self._frame(snap, part, "scoring candidates")
            with self._phase("predict"):
                X = frame[self.feature_names_].to_numpy(np.float32)
                if forest is not None:
                    frame["score"] = forest.predict(X, num_threads=threads)
                else:
                    frame["score"] = self.booster_.predict(X, num_threads=threads)
                del X
            with self._phase("top k"):
                top = _top_k(frame, k)
                del frame
                top = self._fill(top, part, pop, k)
            if explain:
                with self._phase("treeshap"):
                    vals = contributions(
                        self.booster_,
                        top[self.feature_names_].to_numpy(np.float32),
                        num_threads=threads,
                        tables=tables,
                    )
                with self._phase("reasons"):
                    top["reasons"] = reason_codes(
                        top,
                        vals,
                        self.feature_names_,
                        n_reasons=self.n_reasons,
                        category_name=self._category_name,
                        item_name=self._item_name,
                        segment_name=self._segment_name,
                    ).to_numpy()
            else:
                top["reasons"] = ""
            with self._phase("output"):
                out.append(self._decoded(top, pool))
            del top
        snap.drop()
        with self._phase("output"):
            if not out:
                out.append(self._decoded(pd.DataFrame(columns=["c", "rank", "i", "score"]), pool))
            result = pd.concat(out, ignore_index=True) if len(out) > 1 else out[0]
            del out, pool
        self.score_seconds_ = time.perf_counter() - t0
        return result

    def _decoded(self, top: pd.DataFrame, pool: dict[str, str]) -> pd.DataFrame:
        """Offers of one chunk with the original ids, equal reason texts sharing one string."""
        reasons = top["reasons"].to_numpy() if "reasons" in top else np.array([], dtype=object)
        return pd.DataFrame(
            {
                "customer_id": self.enc_.customers.to_numpy()[top["c"].to_numpy(np.int64)],
                "rank": top["rank"].to_numpy(np.int64),
                "item_id": self.enc_.items.to_numpy()[top["i"].to_numpy(np.int64)],
                "score": top["score"].to_numpy(np.float64).round(6),
                "reasons": np.array([pool.setdefault(r, r) for r in reasons], dtype=object),
            }
        )

    def _fill(
        self, top: pd.DataFrame, customers: np.ndarray, pop: np.ndarray, k: int
    ) -> pd.DataFrame:
        """Pad customers with fewer than k candidates with popular items (score = -inf rank)."""
        counts = top.groupby("c").size().reindex(customers, fill_value=0)
        short = counts[counts < k]
        if short.empty:
            return top
        rows = []
        have = top[top["c"].isin(short.index)].groupby("c")["i"].apply(set)
        for c, n in short.items():
            taken = have.get(c, set())
            extra = [i for i in pop if i not in taken][: k - n]
            for j, i in enumerate(extra):
                rows.append({"c": c, "i": i, "rank": n + j + 1})
        if not rows:
            return top
        pad = pd.DataFrame(rows)
        pad["score"] = top["score"].min() - 1 if len(top) else 0.0
        for col in self.feature_names_:
            pad[col] = np.float32(np.nan)
        for col in ("cat", "cooc_anchor", "after_anchor", "seg"):
            pad[col] = -1
        pad["cat"] = self.enc_.item_category[pad["i"].to_numpy()]
        return (
            pd.concat([top, pad], ignore_index=True)
            .sort_values(["c", "rank"])
            .reset_index(drop=True)
        )

    # -- names for reasons ----------------------------------------------------------------------
    def _item_name(self, codes: pd.Series) -> pd.Series:
        codes = codes.to_numpy(np.int64)
        ids = np.where(codes >= 0, self.enc_.items.to_numpy()[np.maximum(codes, 0)], "")
        names = pd.Series(ids, dtype=object)
        if self.items_ is not None and "name" in self.items_.columns:
            mapped = names.map(self.items_.set_index("item_id")["name"])
            names = mapped.fillna(names).astype(object)
        if self.granularity == "category":
            return names.replace("", "your items")
        return names.where(names != "", "your items").map(
            lambda s: s if s == "your items" else f"{s}"
        )

    def _category_name(self, codes: pd.Series) -> pd.Series:
        codes = codes.to_numpy(np.int64)
        cats = self.enc_.categories.to_numpy()
        vals = np.where(
            codes >= 0, cats[np.maximum(codes, 0)] if len(cats) else "", "this category"
        )
        return pd.Series(vals, dtype=object)

    def _segment_name(self, codes: pd.Series) -> pd.Series:
        codes = codes.to_numpy(np.int64)
        book = self.enc_.segments if self.enc_.segments is not None else self.enc_.categories
        vals = book.to_numpy() if len(book) else np.array([""])
        return pd.Series(
            np.where(codes >= 0, vals[np.maximum(codes, 0)], "the same things"), dtype=object
        )

    def candidate_recall(self, truth: pd.DataFrame, customers=None, as_of=None) -> float:
        """Share of the (customer, item) pairs of ``truth`` bought by ``customers`` that are
        among the candidates at ``as_of`` (as :func:`~cemlib.offers.metrics.candidate_recall`
        of :meth:`candidate_frame`, in bounded memory)."""
        return _candidate_recall_of(self, truth, customers, as_of)

    def candidate_frame(self, as_of=None, customers=None) -> pd.DataFrame:
        """The candidates (with source flags) of the fitted history at ``as_of``, ids decoded."""
        self._check_fitted()
        T = day_number(as_of if as_of is not None else self.as_of_)
        snap = Snapshot(self.store_, T, horizon=self.horizon_days, windows=self.windows)
        hist = snap.customers_with_history()
        frame = self._frame(snap, hist, "candidates")
        snap.drop()
        frame.insert(0, "customer_id", self.enc_.customers.to_numpy()[frame["c"].to_numpy()])
        frame.insert(1, "item_id", self.enc_.items.to_numpy()[frame["i"].to_numpy()])
        return frame


def _candidate_recall_of(model: NextOfferModel, truth: pd.DataFrame, customers=None, as_of=None):
    """:func:`~cemlib.offers.metrics.candidate_recall` of ``model.candidate_frame()`` without
    building it: the candidate pairs come chunk by chunk as integer codes, without features
    (the frame of every customer's candidates with their features was the stage's peak)."""
    model._check_fitted()
    truth = truth[["customer_id", "item_id"]].drop_duplicates()
    if customers is not None:
        truth = truth[truth["customer_id"].isin(pd.Index(customers))]
    if truth.empty:
        return float("nan")
    width = len(model.enc_.items) + 1
    tc = model.enc_.customers.get_indexer(pd.Index(truth["customer_id"]))
    ti = model.enc_.items.get_indexer(pd.Index(truth["item_id"]))
    known = (tc >= 0) & (ti >= 0)
    tc, key = tc[known], tc[known].astype(np.int64) * width + ti[known]
    T = day_number(as_of if as_of is not None else model.as_of_)
    snap = Snapshot(model.store_, T, horizon=model.horizon_days, windows=model.windows)
    cfg = model.candidates or CandidateConfig()
    found = 0
    try:
        for part in model._chunks(snap.customers_with_history(), "candidate recall"):
            mine = np.isin(tc, part)
            if not mine.any():
                continue
            q = f"{snap.p}q"
            model.store_.con.register("_q", pd.DataFrame({"c": part.astype(np.int64)}))
            model.store_.execute(f"CREATE OR REPLACE TEMP TABLE {q} AS SELECT c FROM _q")
            model.store_.con.unregister("_q")
            cand = model.store_.sql(f"SELECT c, i FROM {build_candidates(snap, q, cfg)}")
            pairs = cand["c"].to_numpy(np.int64) * width + cand["i"].to_numpy(np.int64)
            found += int(np.isin(key[mine], pairs).sum())
    finally:
        snap.drop()
    return found / len(truth)


def _top_k(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` best-scored rows of each customer (ties: lower item code), with ``rank``."""
    c = frame["c"].to_numpy()
    order = np.lexsort((frame["i"].to_numpy(), -frame["score"].to_numpy(), c))
    cs = c[order]
    start = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    rank = np.arange(len(cs)) - np.repeat(start, np.diff(np.r_[start, len(cs)])) + 1
    keep = rank <= k
    top = frame.iloc[order[keep]].reset_index(drop=True)
    top["rank"] = rank[keep]
    return top
