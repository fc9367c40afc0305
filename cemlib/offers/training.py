"""The training phases of :class:`~cemlib.offers.model.NextOfferModel`: labelled windows,
negative sampling, the customer split of short histories, LightGBM with early stopping and the
refit on both windows."""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from cemlib.errors import InputError

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


class Prior:
    """The ranker's starting score: a logistic model of the label on GP-TopFreq's signals (the
    share of the customer's baskets holding the item, ln(1 + those baskets), ln(1 + the item's
    buyers)), fitted on the training window. LightGBM boosts from it (``init_score``), so the
    trees learn corrections to the best simple ranking and early stopping decides how far they
    move from it; equal tree scores are ordered by it instead of by chance. Whether it is used
    at all is decided on both windows (:func:`cemlib.offers.start.train_from_chosen_start`)."""

    names: tuple[str, ...] = ("ci_share", "ci_n_b", "it_n_cust")

    def _x(self, frame: pd.DataFrame) -> np.ndarray:
        X = np.nan_to_num(frame[list(self.names)].to_numpy(np.float64))
        return np.column_stack([X[:, 0], np.log1p(X[:, 1]), np.log1p(X[:, 2])])

    def fit(self, frame: pd.DataFrame, *, use: bool = True) -> Prior:
        """Fit on a labelled window; ``use=False``: the zero prior (plain LambdaRank)."""
        from sklearn.linear_model import LogisticRegression

        X, y = self._x(frame), frame["label"].to_numpy()
        self.coef_ = np.zeros(X.shape[1])
        self.intercept_ = 0.0
        if use and len(np.unique(y)) == 2:
            lr = LogisticRegression(max_iter=500).fit(X, y)
            self.coef_, self.intercept_ = lr.coef_[0], float(lr.intercept_[0])
        self.mean_ = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
        return self

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """The prior's log-odds of each row."""
        return self._x(frame) @ self.coef_ + self.intercept_

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Exact SHAP values of the linear prior (``coef * (x - training mean)``), one column per
        name of :attr:`names`."""
        return (self._x(frame) - self.mean_) * self.coef_


@dataclass
class WindowData:
    """Candidates with features and labels of one training/validation snapshot."""

    cutoff: pd.Timestamp
    frame: pd.DataFrame
    groups: np.ndarray
    recall: dict[str, float] = field(default_factory=dict)
    n_customers: int = 0


def labelled(frame: pd.DataFrame, labels: pd.DataFrame, rng, negatives: int) -> pd.DataFrame:
    """Rows of customers with a purchase in the label window, all positives and up to
    ``negatives`` random negatives each (0: all), with a 0/1 ``label``."""
    # labels by integer key, positives-only customers, negatives sampled: one copy at the end
    c = frame["c"].to_numpy(np.int64)
    i = frame["i"].to_numpy(np.int64)
    width = int(max(i.max(initial=0), labels["i"].max() if len(labels) else 0)) + 1
    key = c * width + i
    label = np.isin(key, labels["c"].to_numpy(np.int64) * width + labels["i"].to_numpy(np.int64))
    rows = np.flatnonzero(np.isin(c, np.unique(c[label])))
    if negatives:
        rows = rows[_sampled(c[rows], label[rows], rng, negatives)]
    if len(rows) > 1 and np.any(np.diff(key[rows]) < 0):
        rows = rows[np.argsort(key[rows], kind="stable")]
    frame = frame.iloc[rows].reset_index(drop=True)
    frame["label"] = label[rows].astype(np.int8)
    return frame


def _sampled(c: np.ndarray, label: np.ndarray, rng, negatives: int) -> np.ndarray:
    """Mask of the rows kept: every positive and a random ``negatives`` of each customer's
    negatives (fewer rows, the same ranking task)."""
    draw = rng.random(len(c))
    v = np.where(label, np.inf, draw)
    order = np.lexsort((np.arange(len(c)), v, c))
    cs = c[order]
    start = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]]) if len(cs) else np.zeros(0, int)
    rank = np.empty(len(c), dtype=np.int64)
    rank[order] = np.arange(len(cs)) - np.repeat(start, np.diff(np.r_[start, len(cs)])) + 1
    return label | (rank <= negatives)


def sampled_window(window: WindowData, rng, negatives: int) -> WindowData:
    """``window`` with every positive and up to ``negatives`` random negatives per customer
    (0: the window itself)."""
    if not negatives or window.frame.empty:
        return window
    f = window.frame
    keep = _sampled(f["c"].to_numpy(np.int64), f["label"].to_numpy() == 1, rng, negatives)
    frame = f[keep].reset_index(drop=True)
    groups = frame.groupby("c", sort=True).size().to_numpy()
    return WindowData(window.cutoff, frame, groups, window.recall, window.n_customers)


def split_customers(valid: WindowData, rng, as_of, days: int) -> tuple[WindowData, WindowData]:
    """Too little history for two time windows: a quarter of the last window's customers
    validate, the others train."""
    if len(valid.groups) < 4:
        raise InputError(
            f"too little history before {as_of} to learn: {len(valid.groups)} customer(s) "
            f"bought in the last {days} days",
            source="transactions",
        )
    custs = np.unique(valid.frame["c"])
    held = set(rng.choice(custs, max(1, len(custs) // 4), replace=False).tolist())
    m = valid.frame["c"].isin(held)
    parts = []
    for rows in (valid.frame[~m], valid.frame[m]):
        parts.append(
            WindowData(valid.cutoff, rows, rows.groupby("c").size().to_numpy(), valid.recall)
        )
    return parts[0], parts[1]


#: rows of both windows from which LightGBM's OpenMP threads pay off (below, a round is too
#: short: the threads' start and join cost more than they save, see docs/scale.md)
THREADS_FROM_ROWS = 1_000_000


def lgb_params(
    train: WindowData, valid: WindowData, params: dict | None, seed: int, workers: int = 1
) -> dict:
    """The LightGBM parameters: defaults, the thread count (on large windows,
    :data:`THREADS_FROM_ROWS`, ``workers`` cores or the idle ones if fewer,
    :func:`cemlib.offers.parallel.openmp_threads`; one on small ones), the user's."""
    from cemlib.offers.parallel import openmp_threads

    n_rows = len(train.frame) + len(valid.frame)
    auto = {"num_threads": openmp_threads(workers) if n_rows >= THREADS_FROM_ROWS else 1}
    out = {**DEFAULT_PARAMS, **auto, **(params or {}), "seed": seed}
    out["eval_at"] = out.get("eval_at", [10])
    return out


#: the work one early-stopped training may do, in training rows times boosting rounds: 300
#: rounds on 400,000 rows (Ta-Feng's windows, 357,341 rows at subclass level, fit inside it).
#: A larger window gets fewer rounds, see :func:`bounded_rounds`.
ROW_ROUNDS = 300 * 400_000


def bounded_rounds(
    rows: int, rounds: int, patience: int, params: dict
) -> tuple[int, int, dict, float]:
    """The round cap, the early-stopping patience and the LightGBM parameters of a training on
    ``rows`` training rows, and the factor the learning rate was multiplied by.

    Within :data:`ROW_ROUNDS` all is as given. Beyond it, the cost of the training is held at
    that bound whatever the window's size and wherever its validation curve peaks: the round cap
    is ``ROW_ROUNDS // rows`` (the early-stopped best, hence the refit and the scoring, can
    only be smaller), the learning rate grows by the factor the cap shrank (each tree takes a
    longer step, so the trees still cover the ground of ``rounds`` trees: on a large window the
    validation curve was still rising at the cap, 291 of 300 trees at 200,000 people), the
    patience shrinks by it too (the same stretch of the curve), and LightGBM bags whole lists
    (``bagging_by_query``: a tree's lambdarank gradients are computed for its bagged customers
    only, the same share of the lists as the rows it bagged before; unless ``params`` say
    otherwise). The factor is at most 3: a learning rate above 0.3 overshoots on shallow trees."""
    if rows * rounds <= ROW_ROUNDS or rounds <= 0:
        return rounds, patience, params, 1.0
    factor = min(3.0, rows * rounds / ROW_ROUNDS)
    cap = max(1, int(round(rounds / factor)))
    factor = rounds / cap
    lr = float(params.get("learning_rate", DEFAULT_PARAMS["learning_rate"])) * factor
    out = {**params, "learning_rate": lr}
    out.setdefault("bagging_by_query", True)  # a user's own choice in ``params`` stays
    return cap, max(5, int(round(patience / factor))), out, factor


def window_datasets(
    train: WindowData, valid: WindowData, names: list[str]
) -> tuple[lgb.Dataset, lgb.Dataset]:
    """LightGBM datasets of the two windows (``valid`` binned like ``train``); only their init
    scores change between trainings, so they are built (and binned) once."""
    dtrain = lgb.Dataset(
        train.frame[names].to_numpy(np.float32),
        train.frame["label"],
        group=train.groups,
        feature_name=names,
    )
    dvalid = lgb.Dataset(
        valid.frame[names].to_numpy(np.float32),
        valid.frame["label"],
        group=valid.groups,
        reference=dtrain,
    )
    return dtrain, dvalid


def train_early_stopped(
    train: WindowData,
    valid: WindowData,
    names: list[str],
    params: dict,
    rounds: int,
    patience: int,
    datasets: tuple[lgb.Dataset, lgb.Dataset] | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[lgb.Booster, int, float, dict]:
    """LambdaRank on ``train`` early-stopped on ``valid``, both boosting from their ``_prior``
    column (:class:`Prior`): the booster, the best iteration, its
    validation NDCG and the evaluation history. ``datasets``: :func:`window_datasets` of the
    windows, reused (default: built here); ``init``: the two windows' starting scores instead
    of their ``_prior`` columns (trainings side by side on the same windows)."""
    dtrain, dvalid = datasets or window_datasets(train, valid, names)
    if init is None:
        init = (train.frame["_prior"].to_numpy(), valid.frame["_prior"].to_numpy())
    for data, scores in zip((dtrain, dvalid), init, strict=True):
        data.set_init_score(scores)
    evals: dict = {}
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(patience, verbose=False), lgb.record_evaluation(evals)],
    )
    best = int(booster.best_iteration or rounds)
    metric = f"ndcg@{params['eval_at'][0]}"
    return booster, best, float(booster.best_score["validation"][metric]), evals


def refit(train: WindowData, valid: WindowData, names: list[str], params: dict, rounds: int):
    """LambdaRank on both windows with ``rounds`` trees (the early-stopped number)."""
    both = (train, valid)
    dall = lgb.Dataset(
        np.concatenate([w.frame[names].to_numpy(np.float32) for w in both]),
        np.concatenate([w.frame["label"].to_numpy() for w in both]),
        group=np.concatenate([train.groups, valid.groups]),
        feature_name=names,
        init_score=np.concatenate([w.frame["_prior"].to_numpy() for w in both]),
    )
    return lgb.train(params, dall, num_boost_round=rounds)


def window_summary(train: WindowData, valid: WindowData) -> dict:
    """Cutoff, queries and rows of each window (``NextOfferModel.windows_``)."""
    return {
        name: {"cutoff": str(w.cutoff.date()), "queries": len(w.groups), "rows": len(w.frame)}
        for name, w in (("train", train), ("validation", valid))
    }
