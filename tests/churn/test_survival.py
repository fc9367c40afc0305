import numpy as np
import pandas as pd

from cemlib.churn.survival import (
    CoxExplainer,
    acceleration_factors,
    drivers_in_words,
    inactivity_threshold,
    km_by,
    lifetime_table,
)

from .conftest import AS_OF


def test_lifetimes_km_and_cox_find_the_complaints_effect(fitted):
    tau = inactivity_threshold(fitted.occasions_)
    assert 60 <= tau <= 400
    life = lifetime_table(fitted.features_, AS_OF, tau)
    assert life["lapsed"].between(0, 1).all() and (life["duration"] > 0).all()
    lapsed = life[life["lapsed"] == 1]
    assert (lapsed["last_day"] + pd.Timedelta(days=tau) <= AS_OF).all()
    kms = km_by(life, life["cov_complaints"] > 1, min_size=20)
    # customers with complaints lapse sooner: lower survival at one year
    assert kms["True"].predict(365) < kms["False"].predict(365) - 0.1
    cox = CoxExplainer().fit(life, ["cov_complaints", "cov_vip", "log_monetary"])
    hr = cox.hazard_ratios_
    assert hr.loc["cov_complaints", "hazard_ratio"] > 1.2
    assert hr.loc["cov_complaints", "lower_95"] > 1.0
    assert set(cox.ph_test_.index) >= {"cov_complaints", "cov_vip"}
    text = drivers_in_words(hr)
    assert "complaints" in text and "raises" in text
    af = acceleration_factors(fitted.prob_model_)
    assert (af["lower_95"] <= af["acceleration_factor"]).all()


def test_ph_violation_is_detected_and_stratified():
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.integers(0, 2, n)
    # group 1: early high hazard that fades (crossing survival curves) -> non-proportional
    t = np.where(x == 1, rng.weibull(0.5, n) * 300, rng.weibull(3.0, n) * 300)
    c = np.minimum(t, 600)
    table = pd.DataFrame(
        {
            "x": x.astype(float),
            "z": rng.normal(size=n),
            "duration": c + 0.5,
            "lapsed": (t < 600).astype(int),
        }
    )
    cox = CoxExplainer(alpha=0.01).fit(table, ["x", "z"])
    assert cox.ph_test_.loc["x", "p"] < 0.01
    assert cox.violations_ == ["x"] and cox.strata_ == ["x"]
    assert "x" not in cox.hazard_ratios_.index and "z" in cox.hazard_ratios_.index
