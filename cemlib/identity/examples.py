"""The 02 report's sample merges: a masked table of their evidence, and how the Splink model
weighed two of them (a waterfall drawn without values, and Splink's own waterfall chart)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.stage import IdentityResult
from cemlib.reports import label, mask_name, mask_phone


def _sample_merges(
    result: IdentityResult, n: int, seed: int, links: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Accepted links to show: merges across sources first (joining a contact to its orders or
    receipts is what identity resolution is for), model merges before rule merges within
    each; random otherwise (``seed``)."""
    res = result.resolver
    nodes = res.nodes_
    # the links that joined records (not those whose record was then held back)
    lk = res.links_[res.applied_links()[0]] if links is None else links
    if len(lk):
        src = nodes["source"].to_numpy()
        across = src[lk["rid_l"].astype(int).to_numpy()] != src[lk["rid_r"].astype(int).to_numpy()]
        rank = np.where(across, 0, 2) + np.where(lk["rule"].to_numpy() == "model", 0, 1)
        shuffled = lk.assign(_rank=rank).sample(frac=1.0, random_state=seed)
        lk = shuffled.sort_values("_rank", kind="stable").head(n)
    return lk


def merge_examples(result: IdentityResult, n: int = 8, seed: int = 0) -> pd.DataFrame:
    """A sample of accepted merges (model and rules, :func:`_sample_merges`) with their evidence;
    names and identifiers masked."""
    nodes = result.resolver.nodes_
    lk = _sample_merges(result, n, seed)
    rows = []
    for _, e in lk.iterrows():
        a, b = nodes.iloc[int(e["rid_l"])], nodes.iloc[int(e["rid_r"])]

        def name(r):
            return mask_name(
                " ".join(str(x) for x in (r["last_name"], r["first_name"]) if pd.notna(x))
            )

        rows.append(
            {
                "example": len(rows) + 1,
                "left source": a["source"],
                "right source": b["source"],
                "left name": name(a),
                "right name": name(b),
                "left phone": mask_phone(a["phone"]),
                "right phone": mask_phone(b["phone"]),
                "same birth date": (a["birth_date"] == b["birth_date"])
                if pd.notna(a["birth_date"]) and pd.notna(b["birth_date"])
                else None,
                "rule": e["rule"],
                "match weight": None if pd.isna(e["match_weight"]) else round(e["match_weight"], 1),
                "agreeing": e["agreeing"],
            }
        )
    return pd.DataFrame(rows)


def merge_waterfalls(result: IdentityResult, seed: int = 0, n: int = 2) -> tuple[list, list]:
    """Splink's scoring of ``n`` sample model merges, across sources first.

    Returns the scored records (see :meth:`SplinkModel.score_pairs`; they hold compared
    values: draw them with :func:`plot_merge_waterfalls` or :func:`save_splink_waterfall`,
    which drop them) and a title per record naming the two sources. Empty without a model
    or without model merges.
    """
    model = result.resolver.model_
    if model is None or getattr(model, "linker_", None) is None:
        return [], []
    res = result.resolver
    model_links = res.applied_links()[0] & (res.links_["rule"] == "model").to_numpy()
    if not model_links.any():
        return [], []
    lk = _sample_merges(result, n, seed, links=res.links_[model_links])
    src = res.nodes_["source"].to_numpy()
    titles = [
        f"{label(src[int(a)])} \N{LEFT RIGHT ARROW} {label(src[int(b)])}"
        for a, b in zip(lk["rid_l"], lk["rid_r"], strict=True)
    ]
    # the model saw the named records only: its ids are positions among them
    rows = res.model_rows_
    left, right = (np.searchsorted(rows, lk[c].astype(int).to_numpy()) for c in ("rid_l", "rid_r"))
    pairs = list(zip(left.tolist(), right.tolist(), strict=True))
    return model.score_pairs(pairs), titles


#: the model's Latin-spelling columns, named as a reader knows them
_MODEL_COLUMN_WORDS = {
    "first_lat": "first name (Latin)",
    "last_lat": "last name (Latin)",
    "middle_lat": "patronymic (Latin)",
    "birth_date": "birth date",
}


def _plain_level(level: str) -> str:
    for col, words in _MODEL_COLUMN_WORDS.items():
        level = level.replace(col, words)
    return level


def plot_merge_waterfalls(result: IdentityResult, records: list[dict], titles: list[str]):
    """One waterfall per scored merge: the prior, then each comparison's match weight, adding
    up to the pair's match weight (Splink's waterfall, redrawn without the values)."""
    import matplotlib.pyplot as plt

    steps = result.resolver.model_.waterfall_steps(records)
    fig, axes = plt.subplots(
        len(records), 1, figsize=(11, 3.4 * len(records)), squeeze=False, layout="constrained"
    )
    for ax, (pair, s), title in zip(axes[:, 0], steps.groupby("pair"), titles, strict=True):
        w = s["weight"].to_numpy()
        start = np.concatenate([[0.0], np.cumsum(w)[:-1]])
        labels = [
            "prior (any two records)" if c == "prior" else f"{label(c)}: {_plain_level(lvl)}"
            for c, lvl in zip(s["comparison"], s["level"], strict=True)
        ]
        y = np.arange(len(w))
        ax.barh(y, w, left=start, color=np.where(w >= 0, "#55a868", "#c44e52"))
        total = float(w.sum())
        ax.barh([len(w)], [total], color="#4c72b0")
        ax.set_yticks(list(y) + [len(w)], labels + ["final match weight"], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.margins(x=0.04)
        prob = float(records[pair]["match_probability"])
        shown = "> 0.9999" if prob > 0.9999 else f"{prob:.4f}"
        ax.set(
            title=f"{title}: weight {total:.1f}, match probability {shown}",
            xlabel="match weight (log2 Bayes factor), cumulative",
            ylabel="comparison and level",
        )
    return fig


def save_splink_waterfall(result: IdentityResult, records: list[dict], headlines_path):
    """Splink's own interactive waterfall chart of ``records`` beside the report, as a
    self-contained HTML file (JavaScript inlined; compared values removed). Returns the file
    name to link, or None without records or a report folder."""
    from pathlib import Path

    if not records or not headlines_path:
        return None
    name = Path(headlines_path).name.replace(".headlines.json", "") + "_merge_waterfall.html"
    chart = result.resolver.model_.waterfall_chart(records)
    chart.save_offline_chart(
        str(Path(headlines_path).parent / name), overwrite=True, print_msg=False
    )
    return name
