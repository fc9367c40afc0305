"""Supervised purchase counts: LightGBM (Poisson) on a label window carved from the history.

Features are each customer's RFM / gap / covariate summary as of ``as_of - L``; the label is
the number of purchase occasions in ``(as_of - L, as_of]``. Out-of-fold predictions (K-fold
over customers) give the backtest calibration of :class:`~cemlib.churn.models.ChurnModel` an
honest view of how good the booster is; the model refitted on all customers then scores the
features as of ``as_of``. Nothing after ``as_of`` is ever seen.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from cemlib import DEFAULT_SEED


def numeric_columns(features: pd.DataFrame) -> list[str]:
    """Numeric feature columns (dates and text left out)."""
    return [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]


class CountBooster:
    """Poisson gradient boosting of the number of purchases in a window.

    Parameters: ``n_estimators``, ``learning_rate``, ``num_leaves``, ``min_child_samples``,
    ``folds`` (out-of-fold predictions), ``max_rows`` (rows the boosters learn from at most: a
    seeded sample above it; every row still gets its out-of-fold prediction), ``seed``.
    Fitted: ``columns_``, ``model_`` (a ``lightgbm.Booster``), ``oof_`` (out-of-fold predictions, aligned with
    the training rows).
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        folds: int = 5,
        max_rows: int | None = 50_000,
        seed: int = DEFAULT_SEED,
    ):
        self.max_rows = max_rows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.folds = folds
        self.seed = seed

    def _params(self) -> dict:
        """LightGBM's parameters (the names of its native API; what ``LGBMRegressor`` with
        ``subsample``, ``colsample_bytree``, ``random_state`` and ``n_jobs=1`` passes)."""
        return {
            "objective": "poisson",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "seed": self.seed,
            "num_threads": 1,
            "verbose": -1,
        }

    def fit(self, features: pd.DataFrame, counts: np.ndarray) -> CountBooster:
        """Learn ``counts`` from ``features`` (numeric columns); keeps out-of-fold
        predictions of every row in ``oof_`` and the model refitted on the rows it learns from
        (all, or ``max_rows`` of them: ``n_learned_``); returns ``self``.

        The features are binned once, into one LightGBM ``Dataset`` of all rows, and each fold
        trains on ``Dataset.subset`` of it (as ``lightgbm.cv`` does): the bins come from every
        row's features (never a label), so the folds see the same bins as the refit and the
        binning is not repeated six times.
        """
        self.columns_ = numeric_columns(features)
        X = features[self.columns_].to_numpy(dtype=float)
        y = np.asarray(counts, dtype=float)
        params = self._params()
        full = lgb.Dataset(X, y, params=params, free_raw_data=False).construct()
        # the rows the boosters learn from: all of them, or a seeded sample of ``max_rows``
        # (the cost grows with the rows, a 15-leaf booster of some twenty features gains
        # little beyond tens of thousands: the stage's figures in docs/scale.md); the folds
        # still split every row, so each row has its out-of-fold prediction from a booster
        # that did not see it
        learn = np.ones(len(X), dtype=bool)
        if self.max_rows is not None and len(X) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            learn[:] = False
            learn[rng.choice(len(X), self.max_rows, replace=False)] = True
        self.n_learned_ = int(learn.sum())
        self.oof_ = np.zeros(len(X))
        splitter = KFold(self.folds, shuffle=True, random_state=self.seed)
        for tr, te in splitter.split(X):
            tr = np.sort(tr[learn[tr]])
            fold = lgb.train(params, full.subset(tr.tolist()), self.n_estimators)
            self.oof_[te] = fold.predict(X[te])
        train = full if learn.all() else full.subset(np.flatnonzero(learn).tolist())
        self.model_ = lgb.train(params, train, self.n_estimators)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Expected purchases in a window as long as the training one."""
        return self.model_.predict(features[self.columns_].to_numpy(dtype=float))
