"""The ceiling of identity resolution on the synthetic world: what any method could reach from
the evidence in the records, and where today's stage loses its recall (the truth is used only to
score and to play the oracle, never by the stage).

The evidence of a record is its identifying values (names, birth date, city, address, postcode,
phone, e-mail, loyalty card, device, national id): records with equal values are one *node* of
the resolver's graph. Timestamps, baskets and browsing are not counted as evidence. The truth
clustering is cut where the evidence cannot carry it; three ceilings, each an upper bound for
the methods that see only what it says:

I.  **identical evidence.** A node is decided whole: it joins one person's profile or its
    records stay apart (or form a profile of their own, which only a pure node may). Every
    other record is placed by the truth. The oracle sends a node holding two or more people
    (a relative's receipt with the head's phone and nothing else) to its majority person, or
    keeps it apart.
II. **shared keys.** A nameless node whose identifiers are all used by two or more people, and
    whose identifiers' user sets (from the truth: the oracle is told who uses each key) meet in
    two or more people ``C``, cannot be told between the people of ``C``: all nameless nodes of
    one ``C`` are one indistinguishable group, sent whole to the person of ``C`` holding most of
    its records, or kept apart (records alone, or a pure node as a profile of its own). A
    nameless node whose user sets meet in one person is placed with that person.
III. **what the data shows.** A resolver does not know who uses a key. It sees of a nameless
    node its source, the kinds of identifier it carries, whether the hub guard marks one of
    them shared / hub / contested, and whether the profile its keys lead to shows household
    evidence (the stage's household signals). Nodes alike in all four are one *class*; the
    oracle decides per class whether its nodes go to their keys' main user (the person with
    most records carrying the node's keys) or stay apart.

For each ceiling the groups are added in order of their purity (share of records whose person
is the target) and the frontier of pairwise F1 against the false-merge rate among profiles of
two or more records (FMR(2+), :func:`cemlib.identity.evaluate`'s ``false_merge_rate_multi``)
is printed with the best F1 at FMR(2+) <= 2%. Then today's stage map is scored and its missed
true pairs are broken down by record kind: source, identifier kinds carried, named or not,
whether the person lives in a household of two or more, and why the record ended where it did.

    .venv/bin/python benchmarks/identity_ceiling.py --people 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.identity.resolve import IdentityResolver
from cemlib.identity.roles import has_identity
from cemlib.identity.rules import identifier_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_loss import SHORT, identified_world  # noqa: E402  (shared with it)

KIND_SHORT = {
    "phone": "phone",
    "email": "email",
    "loyalty_card": "card",
    "device_id": "device",
    "national_id": "nid",
}
FMR_TARGET = 0.02


# --------------------------------------------------------------------------- scoring
def score(labels: np.ndarray, person: np.ndarray) -> dict:
    """Pairwise precision / recall / F1 and FMR(2+) of integer ``labels`` against ``person``."""
    labels = np.asarray(labels, dtype=np.int64)
    person = np.asarray(person, dtype=np.int64)
    lab = pd.factorize(labels)[0].astype(np.int64)
    cell = lab * (int(person.max()) + 1) + person
    _, cell_n = np.unique(cell, return_counts=True)
    lab_n = np.bincount(lab)
    per_n = np.bincount(person)
    tp = float((cell_n * (cell_n - 1) / 2).sum())
    pp = float((lab_n * (lab_n - 1) / 2).sum())
    tt = float((per_n * (per_n - 1) / 2).sum())
    p = tp / pp if pp else 1.0
    r = tp / tt if tt else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    kinds = np.bincount(np.unique(cell) // (int(person.max()) + 1), minlength=len(lab_n))
    multi = lab_n >= 2
    fmr = float((kinds[multi] > 1).sum() / multi.sum()) if multi.any() else 0.0
    return {"precision": p, "recall": r, "f1": f1, "fmr2": fmr, "mixed": int((kinds[multi] > 1).sum()),
            "multi": int(multi.sum())}  # fmt: skip


def frontier(
    person: np.ndarray,
    base: np.ndarray,
    group: np.ndarray,
    target: np.ndarray,
    node: np.ndarray,
    apart: str,
    steps: int = 40,
) -> pd.DataFrame:
    """F1 / FMR(2+) as the groups (``group`` >= 0 marks a record in play) are attached to their
    ``target`` person in order of purity. ``base`` labels every record not in play (its true
    person); records in play and not attached stay ``apart``: "alone" (one profile each) or
    "node" (a pure node one profile, a mixed node's records alone)."""
    n = len(person)
    play = group >= 0
    g = pd.DataFrame({"group": group[play], "ok": (target[play] == person[play])})
    purity = g.groupby("group")["ok"].mean().sort_values(ascending=False, kind="stable")
    size = g.groupby("group").size().reindex(purity.index)
    rank = pd.Series(np.arange(len(purity)), index=purity.index)
    rec_rank = np.full(n, -1)
    rec_rank[play] = rank.reindex(group[play]).to_numpy()
    top = int(person.max()) + 1
    alone = top + np.arange(n)  # a label of its own per record
    if apart == "node":
        node_mixed = pd.Series(person).groupby(node).transform("nunique").to_numpy() > 1
        held = np.where(node_mixed, alone, top + n + node)
    else:
        held = alone
    # cut points: every group boundary where purity changes, thinned to ``steps`` points
    cuts = np.unique(np.r_[0, np.searchsorted(-purity.to_numpy(), -np.unique(purity.to_numpy()),
                                              side="right"), len(purity)])  # fmt: skip
    if len(cuts) > steps:
        cuts = np.unique(np.r_[cuts[np.linspace(0, len(cuts) - 1, steps).astype(int)]])
    rows = []
    for k in cuts:
        lab = base.copy()
        att = play & (rec_rank < k)
        lab[att] = target[att]
        rest = play & ~att
        lab[rest] = held[rest]
        m = score(lab, person)
        rows.append(
            {
                "groups attached": int(k),
                "records attached": int(size.iloc[:k].sum()),
                "purity >=": float(purity.iloc[k - 1]) if k else 1.0,
                **m,
            }
        )
    return pd.DataFrame(rows)


def best_at(front: pd.DataFrame, limit: float = FMR_TARGET) -> pd.Series:
    ok = front[front["fmr2"] <= limit]
    return ok.loc[ok["f1"].idxmax()] if len(ok) else front.loc[front["fmr2"].idxmin()]


def show_front(title: str, front: pd.DataFrame) -> None:
    b = best_at(front)
    top = front.loc[front["f1"].idxmax()]
    print(f"\n{title}")
    print(
        f"  best F1 at FMR(2+) <= {FMR_TARGET:.0%}: F1={b['f1']:.4f} P={b['precision']:.4f} "
        f"R={b['recall']:.4f} FMR(2+)={b['fmr2']:.3%} ({b['mixed']:,} of {b['multi']:,}); "
        f"groups attached {b['groups attached']:,} (purity >= {b['purity >=']:.3f}), "
        f"records {b['records attached']:,}"
    )
    print(
        f"  best F1 at any FMR: F1={top['f1']:.4f} P={top['precision']:.4f} R={top['recall']:.4f} "
        f"FMR(2+)={top['fmr2']:.3%}"
    )
    pick = front.iloc[np.unique(np.linspace(0, len(front) - 1, 12).astype(int))]
    print(
        pick[
            [
                "groups attached",
                "records attached",
                "purity >=",
                "precision",
                "recall",
                "f1",
                "fmr2",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.4f}")  # fmt: skip
    )


# --------------------------------------------------------------------------- evidence
def node_tables(res: IdentityResolver, person: np.ndarray):
    """Per node: its records' persons (majority, purity), named or not; the long table of
    (node, key, kind) and each key's users (records per person)."""
    node = res.node_of_record_
    nodes = res.nodes_
    named = (nodes["first_lat"].notna() | nodes["last_lat"].notna()).to_numpy()
    np_counts = pd.DataFrame({"node": node, "person": person}).value_counts().rename("n")
    np_counts = np_counts.reset_index().sort_values(["node", "n"], ascending=[True, False])
    major = np_counts.drop_duplicates("node").set_index("node")["person"]
    long = identifier_table(nodes)[["rid", "key", "kind"]].rename(columns={"rid": "node"})
    users = long.merge(np_counts, on="node")  # key, person, n (records)
    users = users.groupby(["key", "person"])["n"].sum().reset_index()
    return named, major, long, users


def candidate_sets(long: pd.DataFrame, users: pd.DataFrame, nameless: np.ndarray) -> pd.Series:
    """Per nameless node carrying an identifier: the people every one of its keys is used by
    (the intersection of its keys' user sets), as a sorted tuple."""
    uset = users.groupby("key")["person"].agg(frozenset)
    lg = long[nameless[long["node"].to_numpy()]]
    out = {}
    for nd, keys in lg.groupby("node")["key"]:
        c = None
        for k in keys.to_numpy():
            c = uset[k] if c is None else c & uset[k]
        out[nd] = tuple(sorted(c))
    return pd.Series(out, dtype=object)


def main_users(long: pd.DataFrame, users: pd.DataFrame, nodes_in: np.ndarray) -> pd.Series:
    """Per node: the person with most records carrying any of the node's keys."""
    lg = long[np.isin(long["node"].to_numpy(), nodes_in)][["node", "key"]]
    m = lg.merge(users, on="key").groupby(["node", "person"])["n"].sum().reset_index()
    m = m.sort_values(["node", "n", "person"], ascending=[True, False, True])
    return m.drop_duplicates("node").set_index("node")["person"]


# --------------------------------------------------------------------------- loss breakdown
def recall_loss(labels: np.ndarray, person: np.ndarray, kind: pd.DataFrame) -> pd.DataFrame:
    """Missed true pairs per record kind: each missed pair counts half to each of its records."""
    lab = pd.factorize(labels)[0].astype(np.int64)
    cell = lab * (int(person.max()) + 1) + person
    cell_n = pd.Series(cell).map(pd.Series(cell).value_counts()).to_numpy()
    per_n = np.bincount(person)[person]
    lost = (per_n - cell_n) / 2.0
    tt = float((np.bincount(person) * (np.bincount(person) - 1) / 2).sum())
    df = kind.assign(lost=lost, true=(per_n - 1) / 2.0, records=1)
    return df, tt


def major_of_label(labels: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Per record: the majority person of its label (cluster)."""
    d = pd.DataFrame({"l": labels, "p": person}).value_counts().reset_index()
    d = d.sort_values(["l", "count"], ascending=[True, False]).drop_duplicates("l")
    return d.set_index("l")["p"].reindex(labels).to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--top", type=int, default=25, help="rows of the loss breakdown")
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    world, sub, person, people = identified_world(args.people, args.seed)
    person = person.astype(np.int64)
    hh = world.truth["people"].set_index("person_id")
    hh_size = hh["household_size"].reindex(people).to_numpy()[person]
    print(
        f"world of {args.people:,} people: {len(sub):,} records carrying an identifier or a name "
        f"({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    res = IdentityResolver(seed=args.seed).fit(sub)
    print(
        f"resolved in {time.perf_counter() - t0:.0f}s wall, {time.process_time() - c0:.0f}s CPU",
        flush=True,
    )
    node = res.node_of_record_
    n = len(sub)
    named_node, major, long, users = node_tables(res, person)
    named = named_node[node]
    n_nodes = len(res.nodes_)
    node_persons = pd.Series(person).groupby(node).nunique().reindex(range(n_nodes)).to_numpy()
    mixed_node = node_persons[node] > 1
    print(
        f"nodes (records with equal identifying values) {n_nodes:,}; holding 2+ people "
        f"{int((node_persons > 1).sum()):,} nodes, {int(mixed_node.sum()):,} records "
        f"({int((mixed_node & ~named).sum()):,} nameless)"
    )
    truth_lab = person.copy()
    major_rec = major.reindex(node).to_numpy().astype(np.int64)
    m_truth = score(truth_lab, person)
    print(f"truth: {m_truth['multi']:,} persons of 2+ records")

    # I. identical evidence: each mixed node a group of its own
    g1 = np.where(mixed_node, node, -1)
    front1 = frontier(person, truth_lab, g1, major_rec, node, apart="node")
    show_front("I. identical evidence (a node holding 2+ people whole to its majority person "
               "or apart):", front1)  # fmt: skip

    # II. shared keys: nameless nodes by the intersection of their keys' user sets
    cand = candidate_sets(long, users, ~named_node)
    amb_nodes = cand[cand.map(len) > 1]
    cid = pd.Series(pd.factorize(amb_nodes)[0], index=amb_nodes.index)
    g2 = cid.reindex(node).fillna(-1).to_numpy().astype(np.int64)
    # the group's majority person
    gp = pd.DataFrame({"g": g2, "p": person})[g2 >= 0].value_counts().reset_index()
    gmaj = gp.sort_values(["g", "count"], ascending=[True, False]).drop_duplicates("g")
    gmaj = gmaj.set_index("g")["p"]
    target2 = np.where(g2 >= 0, gmaj.reindex(g2).fillna(-1).to_numpy().astype(np.int64), person)
    # nodes with one candidate, and named nodes: their majority person (the truth when pure)
    base2 = np.where(mixed_node & (g2 < 0), major_rec, truth_lab)
    print(
        f"\nnameless nodes whose keys' user sets meet in 2+ people: {len(amb_nodes):,} nodes, "
        f"{int((g2 >= 0).sum()):,} records in {int(cid.max()) + 1 if len(cid) else 0:,} "
        f"indistinguishable groups; {float((target2[g2 >= 0] == person[g2 >= 0]).mean()):.1%} "
        "of their records belong to their group's majority person"
    )
    front2 = frontier(person, base2, g2, target2, node, apart="node")
    show_front("II. shared keys (indistinguishable groups whole to their majority person or "
               "apart; everything else exact):", front2)  # fmt: skip

    # III. what the data shows: nameless nodes with an identifier, by visible class
    nameless_id = (~named_node) & has_identity(res.nodes_).to_numpy()
    in_play = np.flatnonzero(nameless_id)
    main = main_users(long, users, in_play)
    kinds = long[nameless_id[long["node"].to_numpy()]].assign(k=lambda d: d["kind"].map(KIND_SHORT))
    kinds = kinds.groupby("node")["k"].agg(lambda s: "+".join(sorted(set(s))))
    g = res.guarded_
    gk = set(zip(g["kind"].astype(str), g["value"].astype(str), strict=True))
    lk = identifier_table(res.nodes_)
    lk = lk[nameless_id[lk["rid"].to_numpy()]]
    flagged = [
        (k, v) in gk for k, v in zip(lk["kind"].astype(str), lk["value"].astype(str), strict=True)
    ]
    marked = pd.Series(flagged, index=lk["rid"].to_numpy()).groupby(level=0).any()
    house = pd.Series(res.household_ | res.corroborated_).groupby(node).any()
    # the source of a node: its records' sources (one, for almost every nameless node)
    src = (
        pd.Series(sub["source"].astype(str).map(SHORT).to_numpy())
        .groupby(node)
        .agg(lambda s: "+".join(sorted(set(s))))
    )
    cls = (
        src.reindex(in_play).astype(str)
        + "|"
        + kinds.reindex(in_play).astype(str)
        + "|"
        + np.where(marked.reindex(in_play, fill_value=False).to_numpy(), "marked", "unmarked")
        + "|"
        + np.where(house.reindex(in_play, fill_value=False).to_numpy(), "household", "single")
    )
    ccode = pd.Series(pd.factorize(cls)[0], index=in_play)
    g3 = ccode.reindex(node).fillna(-1).to_numpy().astype(np.int64)
    target3 = np.where(g3 >= 0, main.reindex(node).fillna(-1).to_numpy().astype(np.int64), person)
    base3 = np.where(mixed_node & (g3 < 0), major_rec, truth_lab)
    front3 = frontier(person, base3, g3, target3, node, apart="alone")
    show_front("III. what the data shows (classes of nameless nodes by source, identifier kinds, "
               "marked shared, household profile; named records exact):", front3)  # fmt: skip
    front3n = frontier(person, base3, g3, target3, node, apart="node")
    show_front("III'. the same, a held-back pure node kept as a profile of its own (an "
               "oracle's choice: a method cannot tell pure from mixed nodes):", front3n)  # fmt: skip
    # IV. sharing the data shows: a nameless node none of whose keys the hub guard marks
    # (shared, hub or contested) looks personal and goes to its keys' main user; the marked
    # ones are decided by the oracle as in II
    marked_node = marked.reindex(range(n_nodes), fill_value=False).to_numpy()
    unmarked_rec = nameless_id[node] & ~marked_node[node]
    main_rec = main.reindex(node).fillna(-1).to_numpy().astype(np.int64)
    base4 = np.where(unmarked_rec, main_rec, base2)
    g4 = np.where(unmarked_rec, -1, g2)
    inv = unmarked_rec & (g2 >= 0)
    print(
        f"\nnameless nodes with an identifier: {int(nameless_id.sum()):,} "
        f"({int(nameless_id[node].sum()):,} records); none of their keys marked by the data: "
        f"{int((nameless_id & ~marked_node).sum()):,} nodes, {int(unmarked_rec.sum()):,} records, "
        f"of which {int(inv.sum()):,} records in II's indistinguishable groups (keys used by 2+ "
        f"people, unseen); {float((main_rec[unmarked_rec] == person[unmarked_rec]).mean()):.2%} "
        "of the unmarked records belong to their keys' main user"
    )
    # II's targets for the marked groups
    front4 = frontier(person, base4, g4, target2, node, apart="node")
    show_front("IV. sharing the data shows (nameless nodes with no marked key to their keys' main "
               "user; marked ones as in II; named records exact):", front4)  # fmt: skip
    # V. III and IV together: unmarked nameless nodes decided per visible class (III), the
    # marked ones by the oracle (II); both kinds of group in one order of purity
    off = int(g2.max()) + 1 if (g2 >= 0).any() else 0
    g5 = np.where(unmarked_rec, g3 + off, np.where(nameless_id[node], g2, -1))
    target5 = np.where(unmarked_rec, target3, target2)
    for apart in ("alone", "node"):
        front5 = frontier(person, base2, g5, target5, node, apart=apart)
        show_front(f"V. unmarked nameless nodes per visible class, marked ones by the oracle "
                   f"(held back: {apart}):", front5)  # fmt: skip
    cl = pd.DataFrame({"class": cls.reindex(node).to_numpy(), "ok": target3 == person})[g3 >= 0]
    cl = cl.groupby("class")["ok"].agg(["size", "mean"]).sort_values("size", ascending=False)
    print("\nclasses of III (records, share belonging to the keys' main user), the largest 25:")
    print(cl.head(25).to_string(float_format=lambda v: f"{v:.3f}"))

    # today's stage map and the breakdown of its recall loss
    stage = res.record_map()["profile_id"]
    att = stage.notna().to_numpy()
    lab = np.where(att, pd.factorize(stage.fillna("-"))[0], -1 - np.arange(n))
    m = score(lab, person)
    print(
        f"\ntoday's stage map: P={m['precision']:.4f} R={m['recall']:.4f} F1={m['f1']:.4f} "
        f"FMR(2+)={m['fmr2']:.3%} ({m['mixed']:,} of {m['multi']:,})"
    )
    cli = res.record_map(unattached=True)["profile_id"]
    mc = score(pd.factorize(cli)[0], person)
    print(
        f"today's cem identity output: P={mc['precision']:.4f} R={mc['recall']:.4f} "
        f"F1={mc['f1']:.4f} FMR(2+)={mc['fmr2']:.3%} ({mc['mixed']:,} of {mc['multi']:,})"
    )
    id_kinds = identifier_table(res.nodes_).assign(k=lambda d: d["kind"].map(KIND_SHORT))
    id_kinds = id_kinds.groupby("rid")["k"].agg(lambda s: "+".join(sorted(set(s))))
    status = np.where(att, "attached", pd.Series(res.unattached_reason_).astype(str).to_numpy())
    kind = pd.DataFrame(
        {
            "source": sub["source"].astype(str).map(SHORT).to_numpy(),
            "identifiers": id_kinds.reindex(node).fillna("none").to_numpy(),
            "named": np.where(named, "named", "nameless"),
            "household": np.where(hh_size >= 2, "household", "alone"),
            "status": status,
        }
    )
    # what-if: today's map plus one class of held-back records attached to the profile the
    # clustering gave their node (the lift a finer household rule could buy, and its cost)
    held = (
        ~att & (res.labels_ >= 0) & np.isin(status, ["household_profile", "shared_identifier_only"])
    )
    marked_rec = marked.reindex(node, fill_value=False).to_numpy()
    hcls = (
        kind["source"]
        + "|"
        + kind["identifiers"]
        + "|"
        + np.where(marked_rec, "marked", "unmarked")
        + "|"
        + status
    )
    rows = []
    for c, idx in pd.Series(np.flatnonzero(held)).groupby(hcls[held].to_numpy()):
        if len(idx) < 50:
            continue
        what = lab.copy()
        what[idx.to_numpy()] = pd.factorize(res.labels_)[0][idx.to_numpy()]
        w = score(what, person)
        rows.append(
            {
                "held-back class": c,
                "records": len(idx),
                "own person": float(
                    (
                        major_of_label(res.labels_, person)[idx.to_numpy()]
                        == person[idx.to_numpy()]
                    ).mean()
                ),  # fmt: skip
                "dF1": w["f1"] - m["f1"],
                "dFMR(2+)": w["fmr2"] - m["fmr2"],
            }
        )
    if rows:
        wt = pd.DataFrame(rows).sort_values("dF1", ascending=False)
        print(
            "\nwhat-if: today's map with one class of held-back records attached to its node's "
            "profile (own person = the profile's majority person is the record's):"
        )
        print(wt.head(args.top).to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    # and the other way: one class of attached nameless records left apart (what each class
    # of today's attachments costs in false merges and buys in pairs)
    majors = major_of_label(lab, person)
    acls = (
        kind["source"]
        + "|"
        + kind["identifiers"]
        + "|"
        + np.where(marked_rec, "marked", "unmarked")
        + "|"
        + np.where(res.corroborated_, "corroborated", "attached")
    )
    on = att & ~named
    rows = []
    for c, idx in pd.Series(np.flatnonzero(on)).groupby(acls[on].to_numpy()):
        if len(idx) < 50:
            continue
        what = lab.copy()
        what[idx.to_numpy()] = -1 - idx.to_numpy()
        w = score(what, person)
        rows.append(
            {
                "attached class": c,
                "records": len(idx),
                "stray": int((majors[idx.to_numpy()] != person[idx.to_numpy()]).sum()),
                "dF1": w["f1"] - m["f1"],
                "dFMR(2+)": w["fmr2"] - m["fmr2"],
            }
        )
    if rows:
        wt = pd.DataFrame(rows).sort_values("dFMR(2+)")
        print(
            "\nwhat-if: today's map with one class of attached nameless records left apart "
            "(stray = not its profile's majority person):"
        )
        print(wt.head(args.top).to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    df, tt = recall_loss(lab, person, kind)
    fn = df["lost"].sum()
    print(f"\nmissed true pairs {fn:,.0f} of {tt:,.0f} (recall loss {fn / tt:.4f})")
    for by in (["status"], ["source", "named", "household"], ["source", "identifiers", "household", "status"]):  # fmt: skip
        t = df.groupby(by)[["records", "lost", "true"]].sum()
        t["share of missed"] = t["lost"] / fn
        t["recall loss"] = t["lost"] / tt
        t = t.sort_values("lost", ascending=False).head(args.top)
        print(f"\nmissed pairs by {', '.join(by)}:")
        print(t.to_string(float_format=lambda v: f"{v:,.4f}" if v < 10 else f"{v:,.0f}"))
    print(
        f"\n{time.perf_counter() - t0:.0f}s wall, {time.process_time() - c0:.0f}s CPU "
        f"(load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
