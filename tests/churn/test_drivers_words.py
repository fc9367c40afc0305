"""The 03 page's sentence about the drivers of lapsing names each covariate as its chart does
(trial 11 L5: "one unit more of online share tx" beside "share of purchases online")."""

import pandas as pd

from cemlib.churn.stage import COX_COVARIATES
from cemlib.churn.survival import drivers_in_words
from cemlib.reports.glossary import GLOSSARY, label


def test_every_cox_covariate_has_a_plain_label():
    for name in COX_COVARIATES:
        assert name.removeprefix("cov_") in GLOSSARY, name
        assert "_" not in label(name), name


def test_the_drivers_sentence_uses_the_chart_labels():
    hr = pd.DataFrame(
        {
            "hazard_ratio": [0.02, 1.5, 0.8, 1.3],
            "lower_95": [0.01, 1.2, 0.7, 1.1],
            "upper_95": [0.05, 1.8, 0.9, 1.6],
            "p": [0.001, 0.001, 0.01, 0.02],
        },
        index=["online_share_tx", "cov_n_tickets", "log_monetary", "cov_region=Москва"],
    )
    text = drivers_in_words(hr)
    assert "**share of purchases online** lowers the hazard of lapsing by 98%" in text
    assert "**support tickets** raises the hazard of lapsing by 50%" in text
    assert "**spent so far (log)** lowers" in text and "**region: Москва** raises" in text
    assert "online share tx" not in text and "n tickets" not in text
    for name in hr.index:  # the forest plot's tick labels
        assert f"**{label(name)}**" in text
