"""The business's own words in the reports (``vocabulary`` of the run configuration)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.offers.stage import _reworded
from cemlib.pipeline import load_config, plan_parameters
from cemlib.pipeline.render import render_html
from cemlib.reports.vocabulary import check_vocabulary, reword, reword_html

ROOT = Path(__file__).resolve().parents[2]
CLINIC = {
    "customer": "patient",
    "purchase": "visit",
    "basket": "visit",
    "shop": "clinic",
    "till receipt": "visit",
    "bought": "had",
}


def test_words_plurals_and_casing_follow_the_vocabulary():
    w = check_vocabulary(CLINIC)
    text = (
        "In a shop nobody cancels a contract. **1,234** customers; Customers who bought; "
        "TILL RECEIPTS and a till receipt; 3 baskets."
    )
    assert reword(text, w) == (
        "In a clinic nobody cancels a contract. **1,234** patients; Patients who had; "
        "VISITS and a visit; 3 visits."
    )


def test_code_identifiers_and_markup_are_left_alone():
    w = check_vocabulary(CLINIC)
    md = "`customer_id` of `marts.next_offers`: customer_id, the customer's shop-floor"
    assert reword(md, w) == (
        "`customer_id` of `marts.next_offers`: customer_id, the patient's shop-floor"
    )
    html = (
        '<p class="customer" title="shop">Customers <b>bought</b> <code>customer</code></p>'
        "<style>.shop{color:red}</style>"
    )
    assert reword_html(html, w) == (
        '<p class="customer" title="shop">Patients <b>had</b> <code>customer</code></p>'
        "<style>.shop{color:red}</style>"
    )
    assert reword("nothing to do", {}) == "nothing to do"


def test_offer_reasons_are_reworded_once_per_distinct_text():
    reasons = pd.Series(
        ["bought 6 times before; bought Гинекология in 80% of your baskets", "", "bought 2 times"]
        * 2,
        index=range(10, 16),
    )
    out = _reworded(reasons, CLINIC)
    assert out.tolist() == [
        "had 6 times before; had Гинекология in 80% of your visits", "", "had 2 times"
    ] * 2  # fmt: skip
    assert out.index.tolist() == list(range(10, 16))
    assert _reworded(reasons, None) is reasons


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("patient", "expects a mapping of words"),
        ({"customer": 3}, "must map text to text"),
        ({"customer_id": "x"}, "is not a word"),
        ({"customer": " "}, "maps to nothing"),
    ],
)
def test_a_bad_vocabulary_is_refused_naming_the_key(value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        check_vocabulary(value)


def test_the_run_config_carries_it_to_the_pages_and_to_stage_04(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("vocabulary: {customer: patient, basket: visit}\n", encoding="utf-8")
    cfg = load_config(cfg_file, notebooks_dir=str(ROOT / "notebooks"))
    assert cfg.vocabulary == {"customer": "patient", "basket": "visit"}
    assert cfg.to_dict()["vocabulary"] == cfg.vocabulary
    plans = plan_parameters(cfg, cfg.selected_stages(), ROOT / "notebooks")
    assert plans["04_next_offer"]["vocabulary"] == cfg.vocabulary
    assert "vocabulary" not in plans["03_churn"]  # only where a notebook declares it
    over = load_config(None, ["vocabulary={shop: clinic}"], notebooks_dir=str(ROOT / "notebooks"))
    assert over.vocabulary == {"shop": "clinic"}
    with pytest.raises(InputError, match="vocabulary"):
        load_config(None, ["vocabulary=patient"], notebooks_dir=str(ROOT / "notebooks"))


def test_a_rendered_page_speaks_the_business_words(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 03 · Which customers stop buying\n\n`customer_id`"),
        nbformat.v4.new_code_cell("display(Markdown(text))"),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/markdown": "**812** customers made no purchase in a shop",
                "text/plain": "<IPython.core.display.Markdown object>",
            },
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": "<table><th>customers</th><td>purchases</td></table>"},
        ),
    ]
    page = render_html(
        nb, tmp_path / "03.html", vocabulary=check_vocabulary(CLINIC),
        header='<a href="index.html">run</a> · stage 03_churn: Churn and customer lifetime value',
    )  # fmt: skip
    html = page.read_text(encoding="utf-8")
    assert "Which patients stop buying" in html and "812</strong> patients made no visit" in html
    assert "in a clinic" in html and "<th>patients</th>" in html and "<td>visits</td>" in html
    assert "stage 03_churn: Churn and patient lifetime value" in html
    assert "customer_id" in html  # the column name, in code
    assert "customers" not in html.replace("customer_id", "")
    plain = render_html(nb, tmp_path / "03b.html").read_text(encoding="utf-8")
    assert "812</strong> customers made no purchase in a shop" in plain


def test_the_run_page_speaks_them_too_its_parameters_as_given(tmp_path):
    from cemlib.pipeline.index import write_run_index
    from cemlib.pipeline.result import RunResult, StageStatus

    stage = StageStatus(
        "03", "03_churn", "Churn", "ok", duration=3.0, html="03_churn.html",
        headlines={"customers scored": 812},
        parameters={"vocabulary": {"customer": "patient"}},
    )  # fmt: skip
    run = RunResult(
        run_id="m1", as_of="2025-03-31", status="ok", started_at="2026-12-06T03:00:00+00:00",
        finished_at="2026-12-06T03:05:00+00:00", duration=300.0, run_dir=str(tmp_path),
        config={"source": "/x", "vocabulary": {"customer": "patient"}},
        config_yaml="vocabulary:\n  customer: patient\n", git={}, versions={}, stages=[stage],
    )  # fmt: skip
    html = write_run_index(run, tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Patient data checks" in html and ">patients scored<" in html
    assert "Customer data checks" not in html and ">customers scored<" not in html
    assert "customer: patient" in html  # the run's YAML, in <pre>, as given
    assert "&quot;customer&quot;: &quot;patient&quot;" in html or '"customer": "patient"' in html


def _docs_clinic_vocabulary() -> dict:
    """The clinic vocabulary of docs/own-data.md's example configuration, as a user copies it."""
    import yaml

    text = (ROOT / "docs" / "own-data.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "vocabulary:" in b)
    return yaml.safe_load(block)["vocabulary"]


def test_the_docs_clinic_vocabulary_covers_the_verbs_of_the_reports():
    """Trial 8 L2: with the docs' vocabulary the 03/04 texts no longer say "buy"."""
    words = check_vocabulary(_docs_clinic_vocabulary())
    assert reword("how likely they are to buy again", words) == (
        "how likely they are to visit again"
    )
    assert reword("the model does not rank who buys again better", words) == (
        "the model does not rank who visits again better"
    )
    assert reword("the products the person is most likely to buy next", words) == (
        "the products the person is most likely to visit next"
    )
    assert reword("Buying, purchased; bought it", words) == "Visiting, visited; had it"
    # every Markdown cell of the 03 and 04 notebooks, reworded: no verb of buying is left
    left = []
    for name in ("03_churn.ipynb", "04_next_offer.ipynb"):
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                out = reword(cell.source, words)
                left += re.findall(r"\b(?:buy|buys|buying|bought|purchased)\b", out, re.I)
    assert left == []


def test_verb_forms_follow_the_replacement_unless_given():
    w = check_vocabulary({"purchase": "use"})
    assert reword("purchases, purchasing, purchased", w) == "uses, using, used"
    # an irregular past of the replacement is a key of its own
    w = check_vocabulary({"buy": "come back", "bought": "came back"})
    assert reword("who buys again; who bought; buying", w) == (
        "who comes back again; who came back; coming back"
    )
