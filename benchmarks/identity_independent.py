"""Identity resolution on an independent world: cem identity vs exact-identifier union vs Splink.

The world comes from ``benchmarks/independent_world.py`` (written apart from ``cemlib.synth``:
steep Russian name frequencies with tens of namesakes per full name, four record shapes,
transliteration / date / phone / e-mail noise, household phones). Measured on it:

a. ``cem identity`` as a user runs it (a subprocess of the ``cem`` next to this Python), defaults;
b. the same with ``--rules-only``;
c. a naive peer: union-find over records sharing a phone (10 national digits) or an e-mail
   (lower case);
d. a plain Splink 5 model: name parts, birth date, city, phone, e-mail; u by random sampling,
   EM, match threshold 0.95, connected components.

Prints pairwise precision / recall / F1 over record pairs, the number of predicted profiles, the
largest predicted profile (beside the largest true person) and the seconds of each method; then
the five largest profiles of (a) with the true persons they mix, and what its false merges share.

    .venv/bin/python benchmarks/identity_independent.py --people 3000 --seed 2026 --out-dir tmp
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from independent_world import write_world  # noqa: E402


# --------------------------------------------------------------------------- metrics
def _c2(n) -> int:
    n = np.asarray(n, dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def pairwise(pred: pd.Series, true: pd.Series) -> dict:
    """Pairwise precision / recall / F1 from the contingency table (no pair enumeration)."""
    cells = pd.DataFrame({"p": pred.to_numpy(), "t": true.to_numpy()}).value_counts()
    tp = _c2(cells.to_numpy())
    pp, tt = _c2(pred.value_counts().to_numpy()), _c2(true.value_counts().to_numpy())
    prec = tp / pp if pp else 1.0
    rec = tp / tt if tt else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "tp": tp, "fp": pp - tp, "fn": tt - tp}


def from_pairs(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    g = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(g, directed=False)[1]


# --------------------------------------------------------------------------- normalization
def norm_phone(s: pd.Series) -> pd.Series:
    d = s.astype("string").str.replace(r"\D", "", regex=True)
    d = d.where(~((d.str.len() == 11) & d.str[0].isin(["7", "8"])), d.str[1:])
    return d.where(d.str.len() == 10)


def norm_email(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().str.lower()


def norm_date(s: pd.Series) -> pd.Series:
    s = s.astype("string")
    iso = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    dot = pd.to_datetime(s, format="%d.%m.%Y", errors="coerce")
    sl = pd.to_datetime(s, format="%d/%m/%Y", errors="coerce")
    d = iso.fillna(dot).fillna(sl)
    return d.dt.strftime("%Y-%m-%d").astype("string")


def norm_city(s: pd.Series) -> pd.Series:
    c = s.astype("string").str.replace(r"^г\.\s*", "", regex=True).str.strip().str.lower()
    return c.replace({"спб": "санкт-петербург"})


_PATRONYMIC = re.compile(r"(vich|vna|ichna|ich|вич|вна|ична|ич)$", re.I)
_SURNAME = re.compile(
    r"(ов|ова|ев|ева|ёв|ин|ина|ын|ына|ский|ская|цкий|цкая|ой|ая|ко|ук|ых|их|"
    r"ov|ova|ev|eva|in|ina|yn|yna|sky|skiy|skii|skaya|skaia|ko|uk|ykh|ikh)$",
    re.I,
)


def split_name(full: str | None) -> tuple[str | None, str | None, str | None]:
    """(first, last, middle) from a free full name, by patronymic and surname endings."""
    if not isinstance(full, str) or not full.strip():
        return None, None, None
    toks = full.split()
    middle = None
    for k, t in enumerate(toks):
        if len(toks) >= 3 and _PATRONYMIC.search(t):
            middle = toks.pop(k)
            break
    if len(toks) == 1:
        return toks[0], None, middle
    if middle is not None and len(toks) == 2:
        # Ф И О when the patronymic came last, И О Ф when it sat in the middle
        return (
            (toks[1], toks[0], middle) if full.split()[-1] == middle else (toks[0], toks[1], middle)
        )
    a, b = toks[0], toks[-1]
    if _SURNAME.search(a) and not _SURNAME.search(b):
        return b, a, middle
    return a, b, middle


# --------------------------------------------------------------------------- methods
def run_cem(tmp: Path, *, rules_only: bool) -> pd.Series:
    cem = Path(sys.executable).parent / "cem"
    out = tmp / ("clusters_rules.csv" if rules_only else "clusters.csv")
    cmd = [
        str(cem), "identity", str(tmp / "records.csv"), "--id-column", "rec_id",
        "--roles", str(tmp / "roles.yaml"), "--source-column", "source", "--out", str(out),
    ]  # fmt: skip
    if rules_only:
        cmd.append("--rules-only")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"cem identity failed ({proc.returncode}): {proc.stderr[-2000:]}")
    tqdm.write(proc.stdout.strip())
    got = pd.read_csv(out, dtype=str)
    return got.set_index("record_id")["profile_id"]


def run_exact(records: pd.DataFrame) -> pd.Series:
    n = len(records)
    keys = pd.concat(
        [
            pd.DataFrame({"i": np.arange(n), "k": "p:" + norm_phone(records["phone"])}),
            pd.DataFrame({"i": np.arange(n), "k": "e:" + norm_email(records["email"])}),
        ]
    ).dropna()
    first = keys.groupby("k")["i"].transform("min").to_numpy()
    labels = from_pairs(n, keys["i"].to_numpy(), first)
    return pd.Series(labels, index=records["rec_id"].to_numpy())


def run_splink(records: pd.DataFrame, seed: int, threshold: float = 0.95) -> pd.Series:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from unidecode import unidecode

    logging.getLogger("splink").setLevel(logging.ERROR)
    parts = [
        split_name(x)
        for x in records["full_name"].astype(object).where(records["full_name"].notna(), None)
    ]

    def lat(x):
        return unidecode(x).lower().replace("'", "") if isinstance(x, str) else None

    data = pd.DataFrame(
        {
            "unique_id": records["rec_id"].to_numpy(),
            "first_name": [lat(p[0]) for p in parts],
            "last_name": [lat(p[1]) for p in parts],
            "middle_name": [lat(p[2]) for p in parts],
            "birth_date": norm_date(records["birth_date"]).to_numpy(),
            "city": norm_city(records["city"]).to_numpy(),
            "phone": norm_phone(records["phone"]).to_numpy(),
            "email": norm_email(records["email"]).to_numpy(),
        }
    )
    data = data.astype(object).where(data.notna(), None)
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("email"),
            block_on("last_name", "first_name"),
            block_on("birth_date"),
        ],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.ExactMatch("middle_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "birth_date", input_is_string=True, datetime_format="%Y-%m-%d"
            ),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("phone"),
            cl.EmailComparison("email"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db = DuckDBAPI()
    linker = Linker(db.register(data), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("phone"), block_on("email")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("last_name", "first_name")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    pred = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
    pos = pd.Series(np.arange(len(data)), index=data["unique_id"])
    i = pos[pred["unique_id_l"].astype(str)].to_numpy()
    j = pos[pred["unique_id_r"].astype(str)].to_numpy()
    return pd.Series(from_pairs(len(data), i, j), index=data["unique_id"].to_numpy())


# --------------------------------------------------------------------------- report
def _false_merge_breakdown(world: pd.DataFrame, pred: pd.Series, max_size: int = 400) -> pd.Series:
    """What the falsely merged record pairs of a clustering share (enumerated per profile)."""
    w = world.assign(
        profile=pred.reindex(world["rec_id"]).to_numpy(),
        ph=norm_phone(world["phone"]),
        em=norm_email(world["email"]),
        nm=world["full_name"].astype("string").str.lower(),
    )
    counts: dict[str, int] = {}
    for _, g in w.groupby("profile"):
        if len(g) < 2 or g["person_id"].nunique() < 2 or len(g) > max_size:
            continue
        r = g.reset_index(drop=True)
        a, b = np.triu_indices(len(r), 1)
        diff = r["person_id"].to_numpy()[a] != r["person_id"].to_numpy()[b]
        a, b = a[diff], b[diff]

        def same(col, a=a, b=b, r=r):
            v = r[col].astype(object).where(r[col].notna(), None).to_numpy()
            x, y = v[a], v[b]
            return np.array([isinstance(u, str) and u == v for u, v in zip(x, y, strict=True)])

        ph, em, nm = same("ph"), same("em"), same("nm")
        kind = np.where(
            ph,
            "same phone",
            np.where(em, "same e-mail", np.where(nm, "same name text", "only chained")),
        )
        for k, c in zip(*np.unique(kind, return_counts=True), strict=True):
            counts[str(k)] = counts.get(str(k), 0) + int(c)
    return pd.Series(counts, dtype="int64").sort_values(ascending=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out-dir", default="tmp", help="parent folder of the temporary world")
    args = ap.parse_args()
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out_dir) as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        world = write_world(tmp, args.people, args.seed)
        gen_s = time.perf_counter() - t0
        records = world.drop(columns="person_id")
        truth = world.set_index("rec_id")["person_id"]
        sizes = truth.value_counts()
        print(
            f"world: {args.people:,} people, {len(world):,} records "
            f"({len(world) / args.people:.2f} per person), seed {args.seed}, generated in {gen_s:.2f}s"
        )
        methods = {
            "cem identity (defaults)": lambda: run_cem(tmp, rules_only=False),
            "cem identity --rules-only": lambda: run_cem(tmp, rules_only=True),
            "exact phone/e-mail union": lambda: run_exact(records),
            "Splink 5 (plain, t=0.95)": lambda: run_splink(records, args.seed),
        }
        rows, preds = [], {}
        for name, fn in tqdm(methods.items(), desc="methods", total=len(methods)):
            t = time.perf_counter()
            pred = fn().reindex(truth.index)
            secs = time.perf_counter() - t
            if pred.isna().any():
                raise RuntimeError(f"{name}: {int(pred.isna().sum())} records without a profile")
            preds[name] = pred
            m = pairwise(pred, truth)
            rows.append(
                {
                    "method": name,
                    **m,
                    "profiles": pred.nunique(),
                    "largest": int(pred.value_counts().max()),
                    "seconds": secs,
                }
            )
        print()
        print(
            "| method | precision | recall | F1 | profiles | largest profile | largest true person "
            "| seconds |\n|---|---|---|---|---|---|---|---|"
        )
        for r in rows:
            print(
                f"| {r['method']} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} "
                f"| {r['profiles']:,} | {r['largest']} | {int(sizes.max())} | {r['seconds']:.1f} |"
            )
        print(f"\ntrue persons: {truth.nunique():,}; true pairs: {_c2(sizes.to_numpy()):,}")
        print(
            "pairs (TP / FP / FN): "
            + "; ".join(f"{r['method']}: {r['tp']:,} / {r['fp']:,} / {r['fn']:,}" for r in rows)
        )

        a = preds["cem identity (defaults)"]
        print("\n5 largest profiles of cem identity (defaults):")
        w = world.set_index("rec_id")
        for pid, n in a.value_counts().head(5).items():
            g = w.loc[a.index[a == pid]]
            print(
                f"- {pid}: {n} records, {g['person_id'].nunique()} true persons; "
                f"sources {g['source'].value_counts().astype(int).to_dict()}; names {g['full_name'].value_counts().head(3).to_dict()}; "
                f"distinct phones {norm_phone(g['phone']).nunique()}, e-mails {norm_email(g['email']).nunique()}"
            )
        mixed = a.groupby(a).filter(lambda s: w.loc[s.index, "person_id"].nunique() > 1)
        print(
            f"\nprofiles of cem identity (defaults) mixing 2+ true persons: {mixed.nunique()} "
            f"(of {a.nunique():,}); the first {min(6, mixed.nunique())}:"
        )
        for pid in mixed.drop_duplicates().head(6):
            g = w.loc[a.index[a == pid], ["source", "full_name", "phone", "email", "birth_date"]]
            g = g.assign(
                phone=norm_phone(g["phone"]), person=w.loc[g.index, "person_id"]
            ).sort_values("person")
            print(f"- {pid}:")
            for rid, r in g.iterrows():
                print(
                    f"    {rid} " + " | ".join("" if pd.isna(v) else str(v) for v in r.to_numpy())
                )
        for name in ("cem identity (defaults)", "cem identity --rules-only"):
            br = _false_merge_breakdown(world, preds[name])
            print(f"\nfalse-merge pairs of {name} by what the two records share: {br.to_dict()}")
        # missed pairs of (a) by the sources of the two records
        miss: dict[str, int] = {}
        for _, g in world.assign(p=a.reindex(world["rec_id"]).to_numpy()).groupby("person_id"):
            if len(g) < 2:
                continue
            r = g.reset_index(drop=True)
            i, j = np.triu_indices(len(r), 1)
            split = r["p"].to_numpy()[i] != r["p"].to_numpy()[j]
            for x, y in zip(
                r["source"].to_numpy()[i][split], r["source"].to_numpy()[j][split], strict=True
            ):
                k = "-".join(sorted((x, y)))
                miss[k] = miss.get(k, 0) + 1
        print(
            f"missed pairs of cem identity (defaults) by sources: {dict(sorted(miss.items(), key=lambda kv: -kv[1]))}"
        )


if __name__ == "__main__":
    main()
