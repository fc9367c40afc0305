"""Rules choosing the ranker's start (plain LambdaRank or the prior), judged on saved runs.

``offers_variants.py --prior all`` trains both starts for each seed on the same samples, saves
their per-customer January NDCG@10 (and, with ``--backward``, December's from both starts
trained on January) and the February lift of each start and of blends of the two; this module
prints, for each rule, the start or blend it picks at every seed and the February lift that
follows. Nothing here looks at February to decide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.offers import start


def _pick(r: dict, rule: str, blend: np.ndarray) -> tuple[str, float]:
    """What ``rule`` picks from one seed's saved run: its label and the February lift."""
    a, b = r["plain"]["q"], r["prior"]["q"]
    feb = {"plain": r["blend_feb"][0], "prior": r["blend_feb"][-1]}
    if rule == "January mean (the rule before)":
        pick = "prior" if b.mean() > a.mean() else "plain"
    elif rule == "always prior":
        pick = "prior"
    elif rule == "always plain":
        pick = "plain"
    elif rule.startswith("paired, prior unless plain z >"):
        pick = "prior" if start.paired_z(b, a) <= float(rule.split(">")[1]) else "plain"
    elif rule.startswith("paired, plain unless prior z >"):
        pick = "plain" if start.paired_z(a, b) <= float(rule.split(">")[1]) else "prior"
    elif rule == "two windows, mean (the model's rule)":
        evidence = [(a, b), (r["back_plain"]["q"], r["back_prior"]["q"])]
        pick = "prior" if start.prior_wins(evidence) else "plain"
    elif rule.startswith("two windows, prior unless plain z >"):
        d = np.r_[a - b, r["back_plain"]["q"] - r["back_prior"]["q"]]
        pick = (
            "prior" if start.paired_z(np.zeros_like(d), d) <= float(rule.split(">")[1]) else "plain"
        )
    elif rule == "blend, equal weights":
        j = int(np.argmin(np.abs(blend - 0.5)))
        return "w=0.5", r["blend_feb"][j]
    elif rule == "blend, weight fitted on January":
        j = int(np.argmax(r["blend_valid"]))
        return f"w={blend[j]:.1f}", r["blend_feb"][j]
    else:
        raise ValueError(rule)
    return pick, feb[pick]


RULES = [
    "January mean (the rule before)",
    "always prior",
    "always plain",
    "paired, prior unless plain z > 1.645",
    "paired, prior unless plain z > 1.96",
    "paired, plain unless prior z > 1.645",
    "blend, weight fitted on January",
    "blend, equal weights",
    "two windows, mean (the model's rule)",
    "two windows, prior unless plain z > 1.645",
]


def report(folder: Path, seeds: list[int], blend: np.ndarray) -> None:
    """Per seed: trees and the January evidence; then each rule's picks and February lifts."""
    runs = {s: pd.read_pickle(folder / f"runs_{s}.pkl") for s in seeds}
    for s, r in runs.items():
        a, b = r["plain"]["q"], r["prior"]["q"]
        line = (
            f"seed {s}: trees plain {r['plain']['trees']} / prior {r['prior']['trees']}; January "
            f"NDCG@10 plain {a.mean():.4f} prior {b.mean():.4f} (z of plain - prior "
            f"{start.paired_z(b, a):+.2f}, {len(a)} customers); February lift plain "
            f"{r['blend_feb'][0]:.3f} prior {r['blend_feb'][-1]:.3f}; blends "
            + " ".join(f"{w:.1f}:{f:.3f}" for w, f in zip(blend, r["blend_feb"], strict=True))
        )
        if "back_plain" in r:
            ba, bb = r["back_plain"]["q"], r["back_prior"]["q"]
            line += (
                f"; December (trained on January) plain {ba.mean():.4f} prior {bb.mean():.4f} "
                f"(z {start.paired_z(bb, ba):+.2f}; trees {r['back_plain']['trees']} / "
                f"{r['back_prior']['trees']})"
            )
        print(line)
    have_back = all("back_plain" in r for r in runs.values())
    for rule in RULES:
        if rule.startswith("two windows") and not have_back:
            continue
        picks = [_pick(runs[s], rule, blend) for s in seeds]
        lifts = np.array([p[1] for p in picks])
        print(
            f"{rule:45s} mean {lifts.mean():.3f} (min {lifts.min():.3f}): "
            + " / ".join(f"{f:.3f} {p}" for p, f in picks)
        )
