"""Trial 10 M3: a covariate aliased with another (or with no variance) is dropped before the
survival fits, and lifelines' warnings reach the 03 report as one plain sentence."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cemlib.churn.features import independent_columns, purchase_occasions
from cemlib.churn.fitwarnings import held_back
from cemlib.churn.gaps import STATE, GapModel, spell_table
from cemlib.churn.survival import CoxExplainer, acceleration_factors

from .conftest import AS_OF, bgnbd_world


@pytest.fixture(scope="module")
def aliased_spells():
    """Spells of 200 customers whose ``member`` flag is 0 exactly where ``region=unknown`` is 1
    (the trial's app-only profiles: no card, no city), and a column equal for everyone."""
    tx, cov, _ = bgnbd_world(n=200, seed=3)
    c = cov.set_index("customer_id")
    covs = pd.DataFrame(
        {
            "cov_loyalty_member": c["vip"].astype(float),
            "cov_region=unknown": 1.0 - c["vip"],
            "cov_everyone": 1.0,
        },
        index=c.index,
    )
    return spell_table(purchase_occasions(tx, AS_OF), AS_OF, covs), list(covs.columns)


def test_independent_columns_drops_no_variance_and_linear_combinations():
    rng = np.random.default_rng(0)
    a, e = rng.normal(size=300), rng.normal(size=300)
    frame = pd.DataFrame(
        {"a": a, "one": 1.0, "b": 3.0 - 2.0 * a, "e": e, "d": 2.0 * a - e + 5.0, "f": a * e}
    )
    assert independent_columns(frame, list(frame.columns)) == ["a", "e", "f"]
    # the order decides which of two aliased columns stays
    assert independent_columns(frame, ["b", "a", "e"]) == ["b", "e"]


def test_the_aliased_covariate_left_lifelines_without_variances(aliased_spells):
    """The control: the design as it was fitted before (both columns) makes lifelines warn, and
    the warnings are counted, not shown, and told in a sentence with no server path."""
    spells, _ = aliased_spells
    design = spells[[*STATE, "cov_loyalty_member", "cov_region=unknown", "duration", "event"]]
    design = design.astype(float)
    g = GapModel()
    with held_back() as fits:
        for family in ("weibull", "loglogistic"):
            fitted = g._new(family).fit(design, "duration", "event", ancillary=g._ancillary(design))
            assert not np.isfinite(fitted.summary["exp(coef) lower 95%"]).all()
    assert fits.kinds == {"StatisticalWarning": 2}
    sentence = fits.sentence()
    assert sentence.startswith("The survival model fits raised 2 warnings")
    assert "/" not in sentence and "lifelines" not in sentence and "\n" not in sentence


def test_gap_model_drops_them_and_nothing_is_left_to_warn(aliased_spells):
    spells, covariates = aliased_spells
    with held_back() as fits:
        gm = GapModel(families=("weibull", "loglogistic"), cv_folds=2).fit(spells, covariates)
    assert fits.count == 0 and fits.sentence() == ""
    assert gm.columns_ == [*STATE, "cov_loyalty_member"]
    table = acceleration_factors(gm)
    assert "cov_region=unknown" not in table.index and "cov_everyone" not in table.index
    row = table.loc["cov_loyalty_member"]
    # the flag's effect is identified: a finite interval around it (vip customers return sooner)
    assert np.isfinite(row[["lower_95", "upper_95"]]).all()
    assert row["lower_95"] < row["acceleration_factor"] < row["upper_95"] < 1.0


def test_cox_explainer_drops_the_aliased_covariate():
    rng = np.random.default_rng(1)
    n = 600
    member = (rng.random(n) < 0.7).astype(float)
    spend = rng.normal(size=n)
    duration = rng.exponential(np.where(member == 1, 300.0, 120.0))
    table = pd.DataFrame(
        {
            "cov_loyalty_member": member,
            "cov_region=unknown": 1.0 - member,
            "cov_everyone": 1.0,
            "log_monetary": spend,
            "duration": np.minimum(duration, 365.0),
            "lapsed": (duration < 365.0).astype(int),
        }
    )
    with held_back() as fits:
        cox = CoxExplainer(seed=0).fit(
            table, ["cov_loyalty_member", "log_monetary", "cov_region=unknown", "cov_everyone"]
        )
    assert fits.count == 0
    assert sorted(cox.hazard_ratios_.index) == ["cov_loyalty_member", "log_monetary"]
    hr = cox.hazard_ratios_.loc["cov_loyalty_member"]
    assert hr["upper_95"] < 1.0 and hr["p"] < 0.001  # members lapse at about 120/300 the rate


def test_held_back_passes_other_warnings_on():
    with pytest.warns(UserWarning, match="not from lifelines"), held_back() as fits:
        warnings.warn("not from lifelines", UserWarning, stacklevel=1)
    assert fits.count == 0
