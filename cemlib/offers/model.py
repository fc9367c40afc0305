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
from functools import partial

import numpy as np
import pandas as pd
import shap

from cemlib import DEFAULT_SEED
from cemlib.errors import InputError
from cemlib.offers import parallel, scoring, size, start, training
from cemlib.offers.candidates import CandidateConfig, build_candidates, drop_extras, source_recall
from cemlib.offers.data import (
    InputReport,
    group_catalogue,
    prepare_events,
    prepare_items,
    prepare_transactions,
)
from cemlib.offers.exclude import drop_candidates, read_exclusions, resolve_exclusion
from cemlib.offers.explain import contributions, global_importance, reason_codes, shap_values
from cemlib.offers.features import build_features, feature_names
from cemlib.offers.forest import compile_forest
from cemlib.offers.owned import owned_rule
from cemlib.offers.snapshot import Snapshot, Store, Windows, day_number, encode
from cemlib.offers.training import DEFAULT_PARAMS, WindowData
from cemlib.offers.treeshap import build_tables
from cemlib.progress import progress

__all__ = ["DEFAULT_PARAMS", "NextOfferModel", "WindowData"]


class NextOfferModel:
    """Next-offer ranker for any transactions table (``customer_id, ts, item_id, quantity, amount``).

    Parameters: ``k`` offers per customer; ``horizon_days`` the label window (how far ahead the
    offers look); ``granularity`` ``"item"`` (SKU), ``"group"`` (the catalogue's product
    groups: the sizes of one model are one item, :mod:`cemlib.offers.groups`) or
    ``"category"``; ``candidates`` how many candidates each source brings;
    ``max_train_customers`` caps training queries per window;
    ``chunk_size`` customers scored at once (bounds memory); ``seed`` fixes sampling and trees;
    ``forest_size`` the trees of the refit: ``"best"`` the early-stopped number, ``"smallest"``
    (opt-in) the fewest within one standard error of the best on the validation customers
    (:func:`~cemlib.offers.size.smallest_forest`; it cut no data set measured, see its module);
    ``owned`` ``"learned"`` (default): a candidate the customer already owns is not offered when
    the history shows its owners buy it again within the horizon less often than a customer
    buys the ``k``-th best seller (:mod:`cemlib.offers.owned`: durables go, consumables stay);
    ``"keep"``: owned items are ranked like any other.
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
        validation_negatives: int | None = None,
        refit: bool = True,
        forest_size: str = "best",
        owned: str = "learned",
        max_train_customers: int = 50_000,
        chunk_size: int = 10_000,
        n_reasons: int = 3,
        seed: int = DEFAULT_SEED,
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
        self.validation_negatives = validation_negatives
        self.refit = refit
        self.forest_size = forest_size
        if owned not in ("learned", "keep"):
            raise ValueError(f"owned must be 'learned' or 'keep', not {owned!r}")
        self.owned = owned
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
        if self.granularity == "group":  # the model ranks the product groups
            self.items_ = group_catalogue(self.items_)
        # the cores the model works on, from the machine and the stage's memory budget
        self.workers_ = parallel.workers(len(self.tx_) + (len(ev) if ev is not None else 0))
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
        self.store_ = Store(codes, ev_codes, extra, threads=self.workers_)
        self.as_of_ = pd.Timestamp(as_of).normalize()

    def _chunks(self, customers: np.ndarray, desc: str):
        n = max(1, int(self.chunk_size))
        parts = [customers[i : i + n] for i in range(0, len(customers), n)]
        return progress(parts, desc=desc, disable=not self.progress or len(parts) < 2)

    def _query_table(self, snap: Snapshot, part: np.ndarray) -> str:
        """The temporary table (column ``c``) of one chunk of customers; its name."""
        q = f"{snap.p}q"
        self.store_.con.register("_q", pd.DataFrame({"c": part.astype(np.int64)}))
        self.store_.execute(f"CREATE OR REPLACE TEMP TABLE {q} AS SELECT c FROM _q")
        self.store_.con.unregister("_q")
        return q

    def _frame(
        self, snap: Snapshot, customers: np.ndarray, desc: str, each=None, ordered: bool = True
    ) -> pd.DataFrame:
        """Candidates with features of ``customers``, chunk by chunk; ``each(frame, part)``
        transforms every chunk's frame before it is kept (training: labels and sampling);
        ``ordered=False``: rows in no fixed order (:func:`build_features`)."""
        cfg = self.candidates or CandidateConfig()
        frames = []
        for part in self._chunks(customers, desc):
            with self._phase("candidates"):
                cand = build_candidates(snap, self._query_table(snap, part), cfg)
            with self._phase("features"):
                frame = build_features(snap, cand, category=cfg.n_categories > 0, ordered=ordered)
            frames.append(frame if each is None else each(frame, part))
            del frame
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _window(self, cutoff_day: int, rng: np.random.Generator, negatives: int) -> WindowData:
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
            drop_extras(snap)
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
                return training.labelled(frame, mine, rng, negatives)

        frame = self._frame(snap, customers, "training candidates", each=labelled)
        snap.drop()
        drop_extras(snap)
        recall = {name: n / len(labels) for name, n in found.items()} if len(labels) else {}
        groups = frame.groupby("c", sort=True).size().to_numpy()
        return WindowData(cutoff, frame, groups, recall, len(customers))

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
        # validation_negatives=0: early stopping judges the trees on every candidate of the
        # validation customers (the task they face when scoring), not a sample of them
        v_neg = (
            self.train_negatives if self.validation_negatives is None else self.validation_negatives
        )
        valid = self._window(T - W, rng, v_neg)
        train = self._window(T - 2 * W, rng, self.train_negatives)
        self.split_ = "time"
        if len(train.groups) < 20:
            # too little history for two windows: split the last window's customers instead
            train, valid = training.split_customers(valid, rng, as_of, W)
            if v_neg != self.train_negatives:
                train = training.sampled_window(train, rng, self.train_negatives)
            self.split_ = "customers (history too short for two time windows)"
        self.feature_names_ = names = self._names()
        params = training.lgb_params(train, valid, self.params, self.seed, self.workers_)
        self.num_threads_ = int(params["num_threads"])
        # large windows: fewer rounds at a larger learning rate, a bounded cost of training
        rounds, patience, params, self.rate_factor_ = training.bounded_rounds(
            len(train.frame), self.n_estimators, self.early_stopping_rounds, params
        )
        self.rounds_cap_, self.learning_rate_ = rounds, float(params["learning_rate"])
        with self._phase("lightgbm training (early stopping, with and without the prior)"):
            self.prior_, result, self.validation_by_start_ = start.train_from_chosen_start(
                train, valid, names, params, rounds, patience, self.workers_
            )
            booster, self.best_iteration_, self.validation_ndcg_, self.eval_history_ = result
        self.refit_rounds_, self.size_evidence_ = self.best_iteration_, {}
        if self.refit and self.split_ == "time":
            if self.forest_size == "smallest":
                with self._phase("forest size"):
                    self.refit_rounds_, self.size_evidence_ = size.smallest_forest(
                        booster, valid, names, valid.frame["_prior"], self.best_iteration_
                    )
            with self._phase("lightgbm refit on both windows"):
                fit_valid = valid
                if v_neg != self.train_negatives:  # the refit learns from sampled lists
                    fit_valid = training.sampled_window(valid, rng, self.train_negatives)
                booster = training.refit(train, fit_valid, names, params, self.refit_rounds_)
        self.booster_ = booster
        with self._phase("shap tables and summary"):
            self._explainers(booster, valid.frame)
        self.candidate_recall_ = {"train": train.recall, "validation": valid.recall}
        self.windows_ = training.window_summary(train, valid)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _explainers(self, booster, valid_frame: pd.DataFrame) -> None:
        """SHAP tables and compiled trees for scoring, and the global importance summary."""
        # per-tree SHAP tables for the reasons of every offer (None: deep trees, pred_contrib)
        self.shap_tables_ = build_tables(booster)
        # branch-free compiled scoring (None: deep or unusual trees, LightGBM's predict)
        self.forest_ = compile_forest(booster)
        self.explainer_ = shap.TreeExplainer(booster)
        sample = valid_frame.sample(min(len(valid_frame), 5000), random_state=self.seed)
        self.shap_sample_ = sample[self.feature_names_].reset_index(drop=True)
        self.shap_sample_values_ = self._with_prior(
            shap_values(self.explainer_, self.shap_sample_.to_numpy(np.float32)),
            self.shap_sample_,
        )
        self.importance_ = global_importance(self.shap_sample_values_, self.feature_names_)

    def _names(self) -> list[str]:
        probe = Snapshot.__new__(Snapshot)
        probe.store = self.store_
        cfg = self.candidates or CandidateConfig()
        return feature_names(probe, category=cfg.n_categories > 0)

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
        recall_of: pd.DataFrame | None = None,
        recall_customers=None,
        explain_customers=None,
        exclude=None,
        depth: int | None = None,
        held=None,
        new_items: bool = False,
    ) -> pd.DataFrame:
        """Top-``k`` offers ``customer_id, rank, item_id, score, reasons`` per customer.

        Without ``transactions`` it scores the history given to ``fit`` at its ``as_of``; with
        them (e.g. one more month of history) it scores that history at ``as_of``. Every
        customer with history gets ``k`` offers (popular items fill short candidate lists).
        ``recall_of`` (bought ``customer_id, item_id`` pairs): ``scored_recall_`` is then
        :meth:`candidate_recall` ``(recall_of, recall_customers)`` counted on the candidates
        scored here (the same figure when every customer is scored, without a second pass).
        ``explain_customers``: only their offers get reasons (the others ``""``), e.g. the
        customers an offer can be sent to; their reasons are the same as with everyone's.
        ``exclude``: items and/or categories kept out of the offers, removed from the candidates
        before ranking (:mod:`cemlib.offers.exclude`); ``exclusion_`` counts what they took.
        ``held`` (a test of offers ``customer_id, item_id`` -> True where the item does not fit
        the customer, :func:`cemlib.offers.eligibility.held_back`): each chunk is ranked
        ``depth`` deep (popular items filling to ``depth``), the offers held back are removed
        and the next ones move up to the first ``k``, before the reasons: the offers of
        ranking ``depth`` deep and then :func:`~cemlib.offers.eligibility.eligible_top_k`, but
        only the ``k`` kept per customer are explained and kept in memory (trial 9: 151 rule
        items ranked 161 deep, and every one of them explained); ``held_back_`` counts the
        offers held back from the first ``k``.
        ``new_items``: only items (groups, categories: what the model ranks) the customer did
        not buy on or before ``as_of``, ranked by the same model; a list short of ``k`` such
        candidates is filled with the most popular items the customer did not buy.
        """
        self._check_fitted()
        self.exclusion_ = resolve_exclusion(read_exclusions(exclude), self.enc_)
        t0 = time.perf_counter()
        self.score_phases_: dict[str, float] = {}
        self._phases = self.score_phases_
        k = int(k or self.k)
        deep = max(k, int(depth or k)) if held is not None else k
        self.held_back_ = 0
        if transactions is not None:
            with self._phase("load and encode"):
                at = as_of if as_of is not None else self.as_of_
                self._load(transactions, at, events, items, customer_features)
        snap, hist, pop = self._scoring_snapshot(customers, deep, new_items, owned_k=k)
        recall = None
        if recall_of is not None:
            recall = scoring.RecallCounter(self, recall_of, recall_customers)
        out = []
        # scoring is row-parallel (no spinning on tiny data): the stage's idle cores pay off on
        # large chunks (numba's threads are OpenMP's, like LightGBM's: none beyond the idle)
        many = parallel.openmp_threads(getattr(self, "workers_", 2)) if len(hist) >= 5_000 else 1
        threads = max(int((self.params or {}).get("num_threads", 1)), many)
        pool: dict[str, str] = {}  # one string object per distinct reason text
        only = None
        if explain and explain_customers is not None:
            only = self.enc_.customers.get_indexer(pd.Index(explain_customers).astype(str))
            only = np.unique(only[only >= 0])
        for part in self._chunks(hist, "scoring"):
            top = self._top_of_chunk(snap, part, pop, deep, threads, recall, new_items)
            if held is not None:
                with self._phase("eligibility"):
                    top = self._fitting(top, held, k)
            if explain:
                self._explain(top, threads, only)
            else:
                top["reasons"] = ""
            with self._phase("output"):
                out.append(scoring.decoded(top, self.enc_, pool))
            del top
        snap.drop()
        drop_extras(snap)
        with self._phase("output"):
            if not out:
                empty = pd.DataFrame(columns=["c", "rank", "i", "score"])
                out.append(scoring.decoded(empty, self.enc_, pool))
            result = pd.concat(out, ignore_index=True) if len(out) > 1 else out[0]
            del out, pool
            if held is not None:  # in eligible_top_k's order
                result = result.sort_values(["customer_id", "rank"], kind="stable")
                result = result.reset_index(drop=True)
        self.scored_recall_ = recall.value if recall is not None else None
        self.score_seconds_ = time.perf_counter() - t0
        return result

    def _scoring_snapshot(
        self, customers, k: int, new_items: bool = False, owned_k: int | None = None
    ) -> tuple[Snapshot, np.ndarray, np.ndarray]:
        """The snapshot at ``as_of``, the customers to score and the ``k`` most popular items
        (``new_items``: as many more as the most items one customer bought, so that ``k`` of
        them are new to every customer where the catalogue has them). With ``owned="learned"``
        (and not ``new_items``) ``owned_rule_`` is the snapshot's rule for lists of ``owned_k``
        (default ``k``) offers, which :meth:`_top_of_chunk` applies; ``owned_held_`` counts."""
        T = day_number(self.as_of_)
        with self._phase("snapshots"):
            snap = Snapshot(self.store_, T, horizon=self.horizon_days, windows=self.windows)
            hist = snap.customers_with_history()
            self.owned_rule_, self.owned_held_ = None, 0
            if getattr(self, "owned", "learned") == "learned" and not new_items:
                self.owned_rule_ = owned_rule(snap, len(self.enc_.items), owned_k or k)
            if customers is not None:
                wanted = self.enc_.customers.get_indexer(
                    pd.Index(pd.unique(pd.Index(customers).astype(str)))
                )
                hist = np.intersect1d(hist, wanted[wanted >= 0])
            ex = getattr(self, "exclusion_", None)
            n = k + (ex.items if ex is not None else 0)  # the k best allowed sellers
            if new_items:
                most = self.store_.sql(f"SELECT max(n_items) AS m FROM {snap.p}cu")["m"].iloc[0]
                n += int(most) if pd.notna(most) else 0
            pop = self.store_.sql(f"SELECT i FROM {snap.p}it ORDER BY pop_rank LIMIT {n}")
            pop = pop["i"].to_numpy()
            if ex is not None and ex.items:
                pop = pop[~np.isin(pop, ex.codes)][: n - ex.items]
        return snap, hist, pop

    def _top_of_chunk(
        self,
        snap,
        part: np.ndarray,
        pop: np.ndarray,
        k: int,
        threads: int,
        recall,
        new_items: bool = False,
    ):
        """Scored candidates of one chunk of customers, the top ``k`` each (popular filled);
        ``recall`` (a :class:`~cemlib.offers.scoring.RecallCounter` or None) counts them.
        ``new_items``: the candidates the customer bought before (``ci_n_b > 0``) are dropped
        before the ranking, and the popular items filling a short list are new to them too.
        The owned candidates ``owned_rule_`` (set by :meth:`_scoring_snapshot`) holds back are
        dropped before the ranking and not used to fill the list either."""
        # unordered: each row is scored alone and top_k sorts fully (ties down to the item)
        frame = self._frame(snap, part, "scoring candidates", ordered=False)
        if recall is not None:
            recall.add(part, frame["c"].to_numpy(), frame["i"].to_numpy())
        frame = drop_candidates(frame, getattr(self, "exclusion_", None))
        bought = None
        if new_items:
            frame = frame[frame["ci_n_b"].to_numpy() == 0].reset_index(drop=True)
            q = self._query_table(snap, part)
            bought = self.store_.sql(f"SELECT ci.c, ci.i FROM {snap.p}ci ci JOIN {q} USING (c)")
        owned = getattr(self, "owned_rule_", None)
        if owned is not None:  # owned items their owners do not buy again within the horizon
            out = owned.held_back(frame["i"].to_numpy(), frame["ci_n_b"].to_numpy() > 0)
            if out.any():
                self.owned_held_ += int(out.sum())
                bought = frame.loc[out, ["c", "i"]].reset_index(drop=True)
                frame = frame[~out].reset_index(drop=True)
        with self._phase("predict"):
            X = frame[self.feature_names_].to_numpy(np.float32)
            forest = getattr(self, "forest_", None)
            if forest is not None:
                frame["score"] = forest.predict(X, num_threads=threads)
            else:
                frame["score"] = self.booster_.predict(X, num_threads=threads)
            del X
            frame["score"] = frame["score"].to_numpy() + self.prior_(frame)
        with self._phase("top k"):
            top = scoring.top_k(frame, k)
            del frame
            names, cats = self.feature_names_, self.enc_.item_category
            return scoring.fill(top, part, pop, k, names, cats, taken=bought)

    def _fitting(self, top: pd.DataFrame, held, k: int) -> pd.DataFrame:
        """The ``k`` best offers of each customer in ``top`` (sorted by ``c, rank``) that
        ``held`` does not hold back, re-ranked; the held back ones of the first ``k`` counted
        in ``held_back_``."""
        c, i = top["c"].to_numpy(np.int64), top["i"].to_numpy(np.int64)
        ids = pd.DataFrame(
            {
                "customer_id": self.enc_.customers.to_numpy()[c],
                "item_id": self.enc_.items.to_numpy()[i],
            }
        )
        bad = np.asarray(held(ids), dtype=bool)
        self.held_back_ += int((bad & (top["rank"].to_numpy() <= k)).sum())
        top = top[~bad]
        rank = top.groupby("c", sort=False).cumcount().to_numpy() + 1
        return top.assign(rank=rank)[rank <= k].reset_index(drop=True)

    def _explain(self, top: pd.DataFrame, threads: int, only: np.ndarray | None = None) -> None:
        """The SHAP reasons of the offers in ``top`` (a ``reasons`` column added in place);
        ``only`` (customer codes): the other customers' offers get ``""``."""
        rows = None
        if only is not None:
            rows = np.isin(top["c"].to_numpy(), only)
            if rows.all():
                rows = None
        frame = top if rows is None else top[rows]
        with self._phase("treeshap"):
            vals = contributions(
                self.booster_,
                frame[self.feature_names_].to_numpy(np.float32),
                num_threads=threads,
                tables=getattr(self, "shap_tables_", None),
            )
            vals = self._with_prior(vals, frame)
        with self._phase("reasons"):
            texts = reason_codes(
                frame,
                vals,
                self.feature_names_,
                n_reasons=self.n_reasons,
                category_name=partial(scoring.category_names, self),
                item_name=partial(scoring.item_names, self),
                segment_name=partial(scoring.segment_names, self),
                unnamed=getattr(getattr(self, "exclusion_", None), "codes", None),
                unnamed_segments=self._unnamed_segments(),
            ).to_numpy()
            if rows is not None:
                texts, given = np.full(len(top), "", dtype=object), texts
                texts[rows] = given
            top["reasons"] = texts

    def _unnamed_segments(self) -> np.ndarray | None:
        """The segment codes no reason names: the categories kept out of the offers when the
        segments are the customers' dominant categories (given segments are named)."""
        ex = getattr(self, "exclusion_", None)
        if ex is None or self.enc_.segments is not None:
            return None
        return ex.categories

    def _with_prior(self, values: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        """Tree SHAP values plus the prior's exact linear ones on its own features."""
        cols = [self.feature_names_.index(n) for n in self.prior_.names]
        values = np.array(values, dtype=np.float64, copy=True)
        values[:, cols] += self.prior_.contributions(frame)
        return values

    def candidate_recall(self, truth: pd.DataFrame, customers=None, as_of=None) -> float:
        """Share of the (customer, item) pairs of ``truth`` bought by ``customers`` that are
        among the candidates at ``as_of`` (as :func:`~cemlib.offers.metrics.candidate_recall`
        of :meth:`candidate_frame`, in bounded memory)."""
        return scoring.candidate_recall_of(self, truth, customers, as_of)

    def candidate_frame(self, as_of=None, customers=None) -> pd.DataFrame:
        """The candidates (with source flags) of the fitted history at ``as_of``, ids decoded."""
        self._check_fitted()
        T = day_number(as_of if as_of is not None else self.as_of_)
        snap = Snapshot(self.store_, T, horizon=self.horizon_days, windows=self.windows)
        hist = snap.customers_with_history()
        frame = self._frame(snap, hist, "candidates")
        snap.drop()
        drop_extras(snap)
        frame.insert(0, "customer_id", self.enc_.customers.to_numpy()[frame["c"].to_numpy()])
        frame.insert(1, "item_id", self.enc_.items.to_numpy()[frame["i"].to_numpy()])
        return frame
