"""``cem offers`` in a CRM user's words (trial 11 L8): the help names the purchases file, the
offers file's columns and what the figure at the end means, without the developer's words;
``--vocabulary`` rewords the offer reasons as ``vocabulary`` does in ``cem run``."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.cli import main
from tests.offers.conftest import make_transactions

#: words of the help before trial 11 L8 that a CRM user does not use (or markup)
JARGON = ["label window", ":mod:", "``", "transactions file", "(groups)", "graded on"]


def test_the_help_speaks_a_crm_users_words(capsys):
    with pytest.raises(SystemExit) as done:
        main(["offers", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for word in JARGON:
        assert word not in text, word
    for said in ("PURCHASES", "--vocabulary", "it is not a probability", "NDCG from 0 to 1",
                 "the offers are for the next this many days"):  # fmt: skip
        assert said in " ".join(text.split()), said


@pytest.fixture(scope="module")
def purchases(tmp_path_factory):
    path = tmp_path_factory.mktemp("offers") / "purchases.csv"
    tx = make_transactions(n_customers=150)
    tx.assign(order_id=range(len(tx))).to_csv(path, index=False)
    return path


def _offers(path, out, capsys, *extra) -> tuple[pd.DataFrame, str]:
    argv = ["offers", str(path), "--as-of", "2025-06-30", "--k", "3", "--out", str(out), *extra]
    assert main(argv) == 0
    err = capsys.readouterr().err
    return pd.read_csv(out, dtype={"customer_id": str, "item_id": str}), err


def test_vocabulary_rewords_the_reasons_and_nothing_else(purchases, tmp_path, capsys):
    plain, err = _offers(purchases, tmp_path / "plain.csv", capsys)
    # the last line says what its figure means before the figure
    assert "(ranking quality from 0 to 1, 1 when each customer's next purchases top the list: " \
        "validation NDCG@10 " in err  # fmt: skip
    assert "checked on the purchases of the last 30 days up to --as-of" in err
    words = tmp_path / "words.yaml"
    words.write_text("basket: visit\nbought: had\n", encoding="utf-8")
    for vocabulary in ("basket=visit, bought=had", str(words)):
        shown, _ = _offers(purchases, tmp_path / "shown.csv", capsys, "--vocabulary", vocabulary)
        cols = ["customer_id", "rank", "item_id", "score"]
        pd.testing.assert_frame_equal(shown[cols], plain[cols])
        n_basket = int(plain["reasons"].str.contains("basket").sum())
        assert n_basket > 0
        assert not shown["reasons"].str.contains("basket|bought").any()
        assert int(shown["reasons"].str.contains("visit").sum()) == n_basket
        expected = plain["reasons"].str.replace("baskets", "visits").str.replace("basket", "visit")
        assert shown["reasons"].tolist() == expected.str.replace("bought", "had").tolist()


@pytest.mark.parametrize(
    "value, line",
    [("basket", "--vocabulary: expected word=yours pairs, comma-separated (basket=visit), got "
                "'basket'"),
     ("basket=", "'--vocabulary': 'basket' maps to nothing"),
     ("{tmp}/nope.yaml", "{tmp}/nope.yaml: vocabulary file not found")],
)  # fmt: skip
def test_a_bad_vocabulary_is_one_line_before_any_work(purchases, tmp_path, capsys, value, line):
    out = tmp_path / "o.csv"
    argv = ["offers", str(purchases), "--as-of", "2025-06-30", "--out", str(out),
            "--vocabulary", value.format(tmp=tmp_path)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "cem offers: error: " + line.format(tmp=tmp_path)
    assert not out.exists()
