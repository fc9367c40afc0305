"""Why ``cem identity`` misses the true pairs it misses on the independent world.

For each seed, the world of ``benchmarks/independent_world.py`` is resolved in process as
``cem identity`` resolves it (same roles, source column, defaults), with every pair the
model scored kept aside. A true person split over several profiles gives one
*fragment pair* per two of its profiles; each is classified by the strongest evidence between
the two fragments, first match wins:

* ``held back: <reason>``: the two fragments are one cluster, but a record was held back from
  its profile (household evidence, only shared identifiers);
* ``refused: <guard>``: a candidate link between them (rule or model, above the threshold) was
  refused by a cluster constraint, the bridge rule, the chain guard or the contact pin;
* ``below threshold``: the model scored a pair between them, below the run's threshold;
* ``no candidate``: no rule link and no model pair between them at all (blocking never paired
  them, the record is nameless so not in the model, or its identifier was guarded away).

The missed record pairs of each class (|A| x |B|) are then broken down by what the smaller
fragment's records are, from the truth: source, a first name alone (``sparse``), Latin letters,
a day/month swap or a mistyped birth date, a name not in Фамилия Имя order, a typo, a
relative's (household) phone, the person's second phone or e-mail, and by what the two
fragments share (phone, e-mail, nothing).

    .venv/bin/python benchmarks/identity_misses.py --people 3000 --seeds 2026 7 99 1 3
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_independent import norm_date, norm_email, norm_phone, pairwise  # noqa: E402
from independent_world import make_people, make_world, roles_yaml  # noqa: E402

_LATIN = re.compile(r"[A-Za-z]")


def resolve_world(world: pd.DataFrame):
    """``cem identity``'s resolution of the world's records; the clusters, the resolver and
    every pair the model scored (node indices, probability)."""
    import yaml

    from cemlib.identity import model as model_mod
    from cemlib.identity import resolve

    roles = yaml.safe_load(roles_yaml())
    roles["source"] = ["source"]
    captured: list[pd.DataFrame] = []
    original = model_mod.SplinkModel.predict

    def predict(self, threshold: float = 0.5):
        out = original(self, 0.0)  # every candidate pair, whatever its probability
        captured.append(out)
        return out[out["match_probability"] >= threshold].reset_index(drop=True)

    model_mod.SplinkModel.predict = predict
    try:
        records = world.drop(columns="person_id")
        clusters, resolver = resolve(
            records, roles, id_column="rec_id", source="records.csv", return_resolver=True
        )
    finally:
        model_mod.SplinkModel.predict = original
    pairs = captured[-1] if captured else pd.DataFrame(columns=["rid_l", "rid_r"])
    rows = resolver.model_rows_
    pairs = pairs.assign(
        n_l=rows[pairs["rid_l"].to_numpy()], n_r=rows[pairs["rid_r"].to_numpy()]
    )  # node indices
    return clusters, resolver, pairs


def _same(a, b) -> np.ndarray:
    b = pd.Series(b).astype(object).where(pd.Series(b).notna(), None).to_numpy()
    return np.array([isinstance(x, str) and x == y for x, y in zip(a, b, strict=True)], dtype=bool)


def record_kinds(world: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Per record, what it is beside its true person (booleans and the source)."""
    p = people.set_index("person_id").loc[world["person_id"]].reset_index()
    ph = norm_phone(world["phone"]).to_numpy()
    em = norm_email(world["email"]).to_numpy()
    dob = norm_date(world["birth_date"]).to_numpy()
    true_dob = p["birth_date"].dt.strftime("%Y-%m-%d").to_numpy()
    name = world["full_name"].astype(object).where(world["full_name"].notna(), "").to_numpy()
    toks = [str(n).split() for n in name]
    out = pd.DataFrame(
        {
            "source": world["source"].to_numpy(),
            "sparse": [len(t) == 1 for t in toks],
            "latin": [bool(_LATIN.search(str(n))) for n in name],
            "relative_phone": _same(ph, p["household_phone"]),
            "second_phone": _same(ph, p["phone_2"]),
            "second_email": _same(em, p["email_2"].str.lower()),
        }
    )
    swap, dtypo = [], []
    for d, t in zip(dob, true_dob, strict=True):
        if not isinstance(d, str) or d == t:
            swap.append(False)
            dtypo.append(False)
            continue
        y, m, dd = d.split("-")
        ty, tm, td = t.split("-")
        swap.append(y == ty and m == td and dd == tm)
        dtypo.append(not swap[-1])
    out["dob_swap"], out["dob_typo"] = swap, dtypo
    order, typo = [], []
    for t, last, first, mid in zip(
        toks, p["last_name"], p["first_name"], p["middle_name"], strict=True
    ):
        cyr = [x for x in t if not _LATIN.search(x)]
        order.append(len(cyr) >= 2 and cyr[0] != last and cyr[-1] != first)
        typo.append(any(x not in (last, first, mid) for x in cyr) and len(cyr) >= 2)
    out["name_order"], out["name_typo"] = order, typo
    return out


def classify(world: pd.DataFrame, clusters: pd.DataFrame, resolver, pairs: pd.DataFrame):
    """One row per missed fragment pair: person, class, detail, pairs, kinds of the smaller
    fragment, what the two fragments share."""
    prof = clusters["profile_id"].to_numpy()
    node = resolver.node_of_record_
    label = resolver.labels_
    reason = resolver.unattached_reason_
    lk = resolver.links_
    ph = norm_phone(world["phone"]).to_numpy()
    em = norm_email(world["email"]).to_numpy()
    prep = resolver.prepared_.copy()
    prep["birth_date"] = prep["birth_date"].astype("string")
    prep = prep.astype(object).where(prep.notna(), None)
    # node pair -> best link (refused_by or accepted), and the model pairs below threshold
    link_of: dict[tuple[int, int], str] = {}
    for a, b, acc, ref in zip(
        lk["rid_l"].to_numpy(), lk["rid_r"].to_numpy(), lk["accepted"].to_numpy(),
        lk["refused_by"].to_numpy(), strict=True,
    ):  # fmt: skip
        key = (min(a, b), max(a, b))
        link_of[key] = "accepted" if acc else f"refused: {ref}"
    thr = resolver.threshold_ or 1.0
    below: dict[tuple[int, int], float] = {}
    for a, b, pr in zip(
        pairs["n_l"].to_numpy(), pairs["n_r"].to_numpy(), pairs["match_probability"].to_numpy(),
        strict=True,
    ):  # fmt: skip
        if pr < thr:
            key = (min(a, b), max(a, b))
            below[key] = max(below.get(key, 0.0), float(pr))
    rows = []
    for pid, g in world.groupby("person_id", sort=False):
        idx = g.index.to_numpy()
        frags: dict[str, list[int]] = {}
        for i in idx:
            frags.setdefault(prof[i], []).append(i)
        if len(frags) < 2:
            continue
        fl = list(frags.values())
        for x in range(len(fl)):
            for y in range(x + 1, len(fl)):
                a, b = fl[x], fl[y]
                la, lb = {label[i] for i in a}, {label[i] for i in b}
                cls, detail = "no candidate", ""
                if la & lb:
                    rs = {reason[i] for i in a + b if reason[i] is not None}
                    cls = "held back: " + ",".join(sorted(map(str, rs)))
                else:
                    found = []
                    bl = []
                    for i in a:
                        for j in b:
                            k = (min(node[i], node[j]), max(node[i], node[j]))
                            if k in link_of:
                                found.append(link_of[k])
                            if k in below:
                                bl.append(below[k])
                    refused = [f for f in found if f.startswith("refused")]
                    if refused:
                        cls = sorted(refused)[0]
                    elif bl:
                        cls, detail = "below threshold", f"{max(bl):.3f}"
                    elif found:
                        cls = "linked elsewhere"
                small = a if len(a) <= len(b) else b
                share = (
                    "phone"
                    if {ph[i] for i in a if isinstance(ph[i], str)}
                    & {ph[j] for j in b if isinstance(ph[j], str)}
                    else "e-mail"
                    if {em[i] for i in a if isinstance(em[i], str)}
                    & {em[j] for j in b if isinstance(em[j], str)}
                    else "nothing"
                )
                agree = []
                for c in ("first_lat", "last_lat", "middle_lat", "birth_date", "city"):
                    va = {v for v in prep[c].to_numpy()[a] if isinstance(v, str)}
                    vb = {v for v in prep[c].to_numpy()[b] if isinstance(v, str)}
                    if va & vb:
                        agree.append(c.replace("_lat", ""))
                rows.append(
                    {
                        "person": pid,
                        "agree": "+".join(agree) or "-",
                        "class": cls,
                        "detail": detail,
                        "pairs": len(a) * len(b),
                        "small": small,
                        "share": share,
                    }
                )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[2026, 7, 99, 1, 3])
    ap.add_argument("--show", type=int, default=0, help="print this many examples per class")
    args = ap.parse_args()
    logging.getLogger("splink").setLevel(logging.ERROR)
    total: Counter = Counter()
    kinds_total: dict[str, Counter] = {}
    print(
        "| seed | precision | recall | F1 | TP | FP | FN | threshold |\n|---|---|---|---|---|---|---|---|"
    )
    per_seed = []
    for seed in args.seeds:
        world = make_world(args.people, seed)
        people = make_people(args.people, seed)
        clusters, resolver, pairs = resolve_world(world)
        m = pairwise(pd.Series(clusters["profile_id"].to_numpy()), world["person_id"])
        print(
            f"| {seed} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['tp']:,} "
            f"| {m['fp']:,} | {m['fn']:,} | {resolver.threshold_:.4f} |"
        )
        kinds = record_kinds(world, people)
        miss = classify(world, clusters, resolver, pairs)
        per_seed.append((seed, miss, kinds, world))
        for cls, g in miss.groupby("class"):
            total[cls] += int(g["pairs"].sum())
            kc = kinds_total.setdefault(cls, Counter())
            for r in g.itertuples():
                k = kinds.loc[r.small]
                tags = [f"src={'+'.join(sorted(set(k['source'])))}"]
                for c in ("sparse", "latin", "dob_swap", "dob_typo", "name_order", "name_typo",
                          "relative_phone", "second_phone", "second_email"):  # fmt: skip
                    if k[c].any():
                        tags.append(c)
                tags.append(f"share={r.share}")
                tags.append(f"agree={r.agree}")
                for t in tags:
                    kc[t] += r.pairs
    classes = sorted({c for _, miss, _, _ in per_seed for c in miss["class"]})
    print("\nmissed true pairs by class and seed:\n")
    print("| seed | " + " | ".join(classes) + " |\n|---|" + "---|" * len(classes))
    for seed, miss, _, _ in per_seed:
        by = miss.groupby("class")["pairs"].sum()
        print(f"| {seed} | " + " | ".join(str(int(by.get(c, 0))) for c in classes) + " |")
    below = pd.concat([m for _, m, _, _ in per_seed])
    below = below[below["class"] == "below threshold"]
    if len(below):
        band = pd.cut(below["detail"].astype(float), [0, 0.1, 0.5, 0.8, 1.0], right=False)
        print(
            "\nbelow threshold, missed pairs by the best model probability between the two "
            "fragments: "
            + ", ".join(
                f"[{iv.left:g}, {iv.right:g}) {int(n)}"
                for iv, n in below.groupby(band, observed=False)["pairs"].sum().items()
            )
        )
    print(f"\nmissed true pairs over seeds {args.seeds}, by class:")
    for cls, n in total.most_common():
        print(f"- {cls}: {n}")
        print(
            "    smaller fragment: "
            + ", ".join(f"{t} {c}" for t, c in kinds_total[cls].most_common())
        )
    if args.show:
        for seed, miss, _kinds, world in per_seed:
            for cls, g in miss.groupby("class"):
                for r in g.head(args.show).itertuples():
                    rec = world.loc[world["person_id"] == r.person].drop(columns="person_id")
                    print(
                        f"\nseed {seed} {cls} {r.detail} (smaller fragment {list(world.loc[r.small, 'rec_id'])}):"
                    )
                    print(rec.to_string(index=False))


if __name__ == "__main__":
    main()
