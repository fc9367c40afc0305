"""The model's match probability against the silver labels and the truth, per probability band,
on the three worlds: the synthetic world, the independent test world and FEBRL3/FEBRL4.

Per band of predicted probability: the pairs scored, their mean probability, the true share
(precision, from the truth), the pairs whose records both carry an e-mail, phone or national id
and the share of those that carry the same one (the silver share of the 02 report). Then the
threshold the stage chose (lowest with mean probability >= 0.99, never below 0.9) beside the one
a silver correction would choose from 0.5 up (each band's probability lowered to its silver share
over the top band's, where a band has 30+ pairs with evidence): whether the silver labels could
replace the 0.9 floor.

    .venv/bin/python benchmarks/identity_calibration.py --world synth --people 5000
    .venv/bin/python benchmarks/identity_calibration.py --world independent --people 3000
    .venv/bin/python benchmarks/identity_calibration.py --world febrl3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cemlib.identity import evaluate, resolve
from cemlib.identity.model import choose_threshold
from cemlib.identity.resolve import (
    CALIBRATION_BINS,
    CALIBRATION_FLOOR,
    SILVER_MIN_PAIRS,
    IdentityResolver,
)
from cemlib.identity.roles import FEBRL_ROLES, has_identity, normalize_roles

sys.path.insert(0, str(Path(__file__).resolve().parent))


def silver_expected(pairs: pd.DataFrame, calibration: pd.DataFrame) -> np.ndarray:
    """Per pair, its probability lowered to its band's silver share over the top band's, in
    bands with at least SILVER_MIN_PAIRS pairs with evidence; the model's word elsewhere."""
    p = pairs["match_probability"].to_numpy(dtype=float)
    enough = calibration["with_evidence"].to_numpy() >= SILVER_MIN_PAIRS
    if len(calibration) == 0 or not enough[-1]:
        return p
    share = calibration["silver_share"].to_numpy(dtype=float)
    ratio = np.where(enough, np.minimum(share / share[-1], 1.0), 1.0)
    band = np.searchsorted(np.asarray(CALIBRATION_BINS[1:-1]), p, side="right")
    return np.minimum(p, ratio[np.clip(band, 0, len(ratio) - 1)])


def fitted(world: str, people: int, seed: int):
    """(resolver, true person per prepared record) of one world."""
    if world == "synth":
        from cemlib.identity.stage import source_records
        from cemlib.synth import generate

        w = generate(people, seed=seed, defects=False)
        records = source_records(w.sources)
        t = w.truth["record_person"].astype({"record_id": str})
        key = records["source"] + "|" + records["record_id"]
        tkey = t["source_table"].astype(str) + "|" + t["record_id"].astype(str)
        person = pd.Series(t["person_id"].to_numpy(), index=tkey).reindex(key).to_numpy()
        ident = has_identity(records).to_numpy()
        sub = records[ident].reset_index(drop=True)
        return IdentityResolver(seed=seed).fit(sub), person[ident]
    if world == "independent":
        from independent_world import make_world, roles_yaml

        w = make_world(people, seed)
        roles = normalize_roles(yaml.safe_load(roles_yaml()))
        roles["source"] = ["source"]
        df, id_col, person = w.drop(columns="person_id"), "rec_id", w["person_id"].to_numpy()
    else:
        from identity_febrl import load

        df = load(world)
        person = df["person"].to_numpy()
        roles = normalize_roles(dict(FEBRL_ROLES))
        roles["source"] = ["source"]
        df, id_col = df[["uid", "source", *FEBRL_ROLES]], "uid"
    _, res = resolve(df, roles, id_column=id_col, return_resolver=True)
    return res, person


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", choices=["synth", "independent", "febrl3", "febrl4"])
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=None, help="42 (synth) or 2026 (independent)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else (42 if args.world == "synth" else 2026)
    res, person = fitted(args.world, args.people, seed)
    named = res.nodes_["first_lat"].notna() | res.nodes_["last_lat"].notna()
    index = np.flatnonzero(named.to_numpy())
    pairs = res.model_.predict(CALIBRATION_FLOOR)
    node_person = pd.Series(person).groupby(res.node_of_record_).first().to_numpy()
    same = (
        node_person[index[pairs["rid_l"].to_numpy()]]
        == node_person[index[pairs["rid_r"].to_numpy()]]
    )
    band = pd.cut(
        pairs["match_probability"], list(CALIBRATION_BINS), right=False, include_lowest=True
    )
    table = (
        pd.DataFrame({"band": band, "p": pairs["match_probability"], "true": same})
        .groupby("band", observed=False)
        .agg(pairs=("p", "size"), mean_probability=("p", "mean"), precision=("true", "mean"))
    )
    cal = res.calibration_.set_index("match probability")
    table.index = cal.index
    table = table.join(cal[["with_evidence", "same_identifier", "silver_share"]])
    print(f"{args.world}: {len(res.prepared_):,} records")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    silver = choose_threshold(
        pairs["match_probability"].to_numpy(),
        floor=CALIBRATION_FLOOR,
        expected=silver_expected(pairs, res.calibration_),
    )
    model_only = choose_threshold(pairs["match_probability"].to_numpy(), floor=CALIBRATION_FLOOR)
    print(
        f"threshold: chosen {res.threshold_:.4f} (floor 0.9); without the floor "
        f"{model_only:.4f}; silver-corrected from {CALIBRATION_FLOOR} {silver:.4f}"
    )
    lab = res.record_map(unattached=True)["profile_id"].to_numpy()
    rid = np.arange(len(lab))
    m = evaluate(
        pd.DataFrame({"record_id": rid, "profile_id": lab}),
        pd.DataFrame({"record_id": rid, "person_id": person}),
    )
    print(f"stage: P={m['precision']:.4f} R={m['recall']:.4f} F1={m['f1']:.4f}")


if __name__ == "__main__":
    main()
