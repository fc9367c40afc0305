"""Where the synthetic world's pairwise F1 goes: missed and false pairs by source pair, by what
the two records share, and by where the records ended (diagnosis only: uses the truth).

Records with equal identifying values are one node of the resolver's graph; pairs are counted
between (person, node, source, status) groups and weighted by their record counts, so a
million web-event pairs cost no more than the groups behind them.

    .venv/bin/python benchmarks/identity_loss.py --people 5000
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cemlib.identity import evaluate
from cemlib.identity.evaluate import record_persons
from cemlib.identity.resolve import IdentityResolver
from cemlib.identity.roles import has_identity
from cemlib.identity.rules import identifier_table
from cemlib.identity.stage import source_records
from cemlib.synth import generate

SHORT = {
    "crm_contacts": "crm",
    "online_orders": "order",
    "pos_receipts": "receipt",
    "web_events": "web",
    "support_tickets": "ticket",
}


def node_keys(res: IdentityResolver) -> list[frozenset]:
    """Per node, the set of its identifier values as ``kind:value``."""
    long = identifier_table(res.nodes_)
    keys: list[set] = [set() for _ in range(len(res.nodes_))]
    for rid, kind, value in zip(long["rid"], long["kind"], long["value"], strict=True):
        keys[rid].add(f"{kind}:{value}")
    return [frozenset(k) for k in keys]


def groups_of(res: IdentityResolver, person: np.ndarray, output: str = "stage") -> pd.DataFrame:
    """(person, node, source, profile, status) groups with their record counts; ``output``
    "stage" (the stage's map: unattached records alone) or "cli" (`cem identity`'s profiles,
    anonymous household groups included)."""
    status = np.where(res.attached_, "attached", res.unattached_reason_.astype(str))
    pid = res.record_map(unattached=output == "cli")["profile_id"].astype(object).to_numpy()
    if output == "cli":
        return (
            pd.DataFrame(
                {
                    "person": person,
                    "node": res.node_of_record_,
                    "source": res.prepared_["source"].astype(str).map(SHORT).to_numpy(),
                    "profile": pid,
                    "status": status,
                }
            )
            .groupby(["person", "node", "source", "profile", "status"], dropna=False)
            .size()
        )
    df = pd.DataFrame(
        {
            "person": person,
            "node": res.node_of_record_,
            "source": res.prepared_["source"].astype(str).map(SHORT).to_numpy(),
            "profile": np.where(res.attached_, pid, None),
            "status": status,
        }
    )
    return df.groupby(["person", "node", "source", "profile", "status"], dropna=False).size()


def evidence(keys_a: frozenset, keys_b: frozenset, named_a: bool, named_b: bool) -> str:
    shared = {k.split(":", 1)[0] for k in keys_a & keys_b}
    for kind in ("email", "phone", "loyalty_card", "device_id", "national_id"):
        if kind in shared:
            return kind
    return "name only" if named_a and named_b else "nothing"


def person_chains(keys: list[frozenset], nodes: list[int], users: dict | None = None) -> np.ndarray:
    """Components of a person's nodes linked by a shared identifier value (with ``users``,
    only values no other person uses)."""
    idx = {n: i for i, n in enumerate(nodes)}
    owner: dict[str, int] = {}
    left, right = [], []
    for n in nodes:
        for k in keys[n]:
            if users is not None and users[k] > 1:
                continue
            if k in owner:
                left.append(owner[k])
                right.append(idx[n])
            else:
                owner[k] = idx[n]
    g = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(nodes), len(nodes)))
    return connected_components(g, directed=False)[1]


def missed_pairs(
    res: IdentityResolver, person: np.ndarray, users: dict, output: str = "stage"
) -> pd.DataFrame:
    """Every true pair the profiles miss, by category, weighted by records."""
    g = groups_of(res, person, output).reset_index(name="n")
    keys = node_keys(res)
    named = (res.nodes_["first_lat"].notna() | res.nodes_["last_lat"].notna()).to_numpy()
    rows = []
    for _, grp in g.groupby("person", sort=False):
        if grp["n"].sum() < 2:
            continue
        recs = list(grp.itertuples(index=False))
        nodes = sorted(set(grp["node"]))
        comp = dict(zip(nodes, person_chains(keys, nodes), strict=True))
        own_comp = dict(zip(nodes, person_chains(keys, nodes, users), strict=True))
        for a, b in combinations(recs, 2):
            same = a.profile == b.profile and (
                output == "cli" or (a.status == "attached" and b.status == "attached")
            )
            if same:
                continue
            ev = evidence(keys[a.node], keys[b.node], named[a.node], named[b.node])
            own = "-"
            if ev not in ("name only", "nothing"):
                shared = keys[a.node] & keys[b.node]
                own = "own" if any(users[k] == 1 for k in shared) else "household-shared"
            chain = (
                "own identifiers"
                if own_comp[a.node] == own_comp[b.node]
                else "shared identifiers"
                if comp[a.node] == comp[b.node]
                else "none"
            )
            where = _where(a, b)
            src = "-".join(sorted((a.source, b.source)))
            rows.append((src, ev, own, chain, where, a.n * b.n))
        # within a group (one node, one source): in the stage's map an unattached record is
        # alone, so its group's pairs are missed; in cem identity's output the group is one profile
        for a in recs:
            if output == "stage" and a.status != "attached" and a.n > 1:
                own = "own" if all(users[k] == 1 for k in keys[a.node]) else "household-shared"
                where = _where(a, a)
                rows.append(
                    (
                        f"{a.source}-{a.source}",
                        "one node",
                        own,
                        "own identifiers" if own == "own" else "shared identifiers",
                        where,
                        a.n * (a.n - 1) // 2,
                    )
                )
    cols = ["sources", "shares", "identifier", "chain", "where", "pairs"]
    return pd.DataFrame(rows, columns=cols)


def _where(a, b) -> str:
    if a.status == "attached" and b.status == "attached":
        return "both attached, two profiles"
    return " + ".join(sorted((a.status, b.status)))


def false_pairs(
    res: IdentityResolver, person: np.ndarray, household: np.ndarray, output: str = "stage"
) -> pd.DataFrame:
    """Every pair of two people's records in one profile, by category, weighted by records."""
    g = groups_of(res, person, output).reset_index(name="n")
    if output == "stage":
        g = g[g["status"] == "attached"]
    keys = node_keys(res)
    named = (res.nodes_["first_lat"].notna() | res.nodes_["last_lat"].notna()).to_numpy()
    rows = []
    for _, grp in g.groupby("profile", sort=False):
        if grp["person"].nunique() < 2:
            continue
        for a, b in combinations(list(grp.itertuples(index=False)), 2):
            if a.person == b.person:
                continue
            ev = evidence(keys[a.node], keys[b.node], named[a.node], named[b.node])
            hh = "same household" if household[a.person] == household[b.person] else "strangers"
            src = "-".join(sorted((a.source, b.source)))
            rows.append((src, ev, hh, a.n * b.n))
    return pd.DataFrame(rows, columns=["sources", "shares", "household", "pairs"])


def bounds(res: IdentityResolver, sub: pd.DataFrame, codes: np.ndarray) -> None:
    """What any resolver can reach. S: nameless records whose every identifier is used by two
    or more people (truth): no identifier says whose they are. H: nameless records whose every
    identifier the data marks shared (hub guard). Each bound is the true clustering with one
    policy for S; bound C is the best a resolver can do that holds back only what the data
    marks shared (S records without that evidence go to their identifiers' main user)."""
    n = len(sub)
    long = identifier_table(sub)
    long["person"] = codes[long["rid"].to_numpy()]
    multi = long.groupby("key")["person"].transform("nunique").to_numpy() > 1
    guarded = set(zip(res.guarded_["kind"], res.guarded_["value"], strict=True))
    long["multi"] = multi
    long["guarded"] = [(k, v) in guarded for k, v in zip(long["kind"], long["value"], strict=True)]
    named = (sub["first_lat"].notna() | sub["last_lat"].notna()).to_numpy()
    per_rec = long.groupby("rid")[["multi", "guarded"]].all().reindex(range(n), fill_value=False)
    s_rec = per_rec["multi"].to_numpy() & ~named
    h_rec = per_rec["guarded"].to_numpy() & ~named
    main = long.groupby(["key", "person"]).size().rename("c").reset_index()
    main = main.sort_values("c", ascending=False, kind="stable").drop_duplicates("key")
    dom = long[s_rec[long["rid"].to_numpy()]].assign(
        dom=lambda d: main.set_index("key")["person"].reindex(d["key"]).to_numpy()
    )
    dom = dom.groupby("rid")["dom"].first()
    alone = np.array([f"alone{i}" for i in range(n)], dtype=object)
    truth = codes.astype(str).astype(object)
    to_main = truth.copy()
    to_main[dom.index.to_numpy()] = dom.to_numpy().astype(str)
    undetected = s_rec & ~h_rec
    policy_c = np.where(h_rec, alone, np.where(undetected, to_main, truth))
    print(
        f"\nrecords {n:,}; S (nameless, every identifier used by 2+ people) {int(s_rec.sum()):,}, "
        f"of them marked shared by the data {int((s_rec & h_rec).sum()):,}; "
        f"{dom.eq(pd.Series(codes).reindex(dom.index)).mean():.1%} of S belong to the main user"
    )
    # records with equal identifying values are one node: no resolver can part them
    node = res.node_of_record_
    mixed_node = pd.Series(codes).groupby(node).transform("nunique").to_numpy() > 1
    node_guarded = h_rec | named
    print(
        f"nodes holding 2+ people: {len(np.unique(node[mixed_node])):,} "
        f"({int(mixed_node.sum()):,} records); of these records {int((mixed_node & ~node_guarded).sum()):,} "
        "are nameless with an identifier the data does not mark shared"
    )
    frame = pd.DataFrame({"record_id": np.arange(n), "person_id": codes})
    for name, labels in (
        ("D: nodes of 2+ people held back, the rest exact", np.where(mixed_node, alone, truth)),
        ("A: S held back, the rest exact", np.where(s_rec, alone, truth)),
        ("B: S to its identifiers' main user, the rest exact", to_main),
        ("C: data-marked shared held back, unmarked S to the main user", policy_c),
    ):
        m = evaluate(pd.DataFrame({"record_id": np.arange(n), "profile_id": labels}), frame)
        print(
            f"bound {name}: P={m['precision']:.4f} R={m['recall']:.4f} F1={m['f1']:.4f} "
            f"FMR(2+)={m['false_merge_rate_multi']:.3%}"
        )


def show(df: pd.DataFrame, by: list[str], total: float, title: str, top: int = 15) -> None:
    t = df.groupby(by)["pairs"].sum().sort_values(ascending=False)
    out = pd.DataFrame({"pairs": t, "share": t / total}).head(top)
    print(f"\n{title} (of {total:,.0f}):")
    print(out.to_string(float_format=lambda v: f"{v:.3f}"))


def identified_world(n_people: int, seed: int):
    """The synthetic world without defects, its records carrying an identifier or a name
    (``sub``), each one's true person as a code and the people the codes stand for:
    ``(world, sub, codes, people)``."""
    world = generate(n_people, seed=seed, defects=False)
    records = source_records(world.sources)
    person_id = record_persons(records, world.truth["record_person"])
    ident = has_identity(records).to_numpy()
    sub = records[ident].reset_index(drop=True)
    codes, people = pd.factorize(person_id[ident])
    return world, sub, codes, people


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--output",
        choices=("stage", "cli"),
        default="cli",
        help="score the stage's map (unattached alone) or cem identity's profiles",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    world, sub, codes, people = identified_world(args.people, args.seed)
    hh_of = world.truth["people"].set_index("person_id")["household_id"]
    household = pd.factorize(hh_of.reindex(people).to_numpy())[0]
    res = IdentityResolver(seed=args.seed).fit(sub)
    print(f"{len(sub):,} records with identifiers; resolved in {time.perf_counter() - t0:.0f}s")
    long = identifier_table(res.nodes_)
    np_pairs = pd.DataFrame({"rid": res.node_of_record_, "person": codes}).drop_duplicates()
    long = long.merge(np_pairs, on="rid")
    n_users = long.groupby(["kind", "value"])["person"].nunique()
    users = {f"{k}:{v}": int(n) for (k, v), n in n_users.items()}
    sizes = np.bincount(codes).astype(float)
    true_pairs = float((sizes * (sizes - 1) / 2).sum())
    miss = missed_pairs(res, codes, users, args.output)
    fp = false_pairs(res, codes, household, args.output)
    print(
        f"true pairs {true_pairs:,.0f}; missed {miss['pairs'].sum():,.0f}; false {fp['pairs'].sum():,.0f}"
    )
    show(miss, ["where"], true_pairs, "missed pairs by where the records ended")
    show(miss, ["sources", "shares"], true_pairs, "missed pairs by sources and what they share")
    show(miss, ["where", "shares", "identifier"], true_pairs, "missed pairs by status and evidence")
    show(miss, ["chain"], true_pairs, "missed pairs: chain of the person's records sharing")
    show(miss, ["where", "chain"], true_pairs, "missed pairs by status and chain")
    tp = max(fp["pairs"].sum(), 1)
    show(fp, ["sources", "shares", "household"], tp, "false pairs by sources, evidence, household")
    bounds(res, sub, codes)
    print(f"\n{time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
