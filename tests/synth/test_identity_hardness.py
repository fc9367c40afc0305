"""The identity job is real: naive exact matching on phone or e-mail fails both ways."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ID_COLS = {
    "crm_contacts": ("contact_id", ["phone"], ["email"]),
    "online_orders": ("order_id", ["phone"], ["email"]),
    "pos_receipts": ("receipt_id", ["phone"], []),
    "web_events": ("event_id", [], ["email"]),
    "support_tickets": ("ticket_id", ["phone"], ["email"]),
}

#: the tables whose records carry contact identifiers typed by people or staff; the clickstream
#: (one login e-mail repeated on every logged-in event) is scored separately
CONTACT_TABLES = ("crm_contacts", "online_orders", "pos_receipts", "support_tickets")


def _records(world, tables=CONTACT_TABLES) -> pd.DataFrame:
    frames = []
    for table in tables:
        key, phones, emails = ID_COLS[table]
        src = world.sources[table].drop_duplicates(key)
        for col in phones:
            frames.append(
                pd.DataFrame(
                    {
                        "source_table": table,
                        "record_id": src[key],
                        "ident": "p:" + src[col].str.replace(r"\D", "", regex=True),
                    }
                )
            )
        for col in emails:
            frames.append(
                pd.DataFrame(
                    {
                        "source_table": table,
                        "record_id": src[key],
                        "ident": "e:" + src[col].str.strip().str.lower(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True).dropna(subset=["ident"])


def _pairs(sizes: pd.Series) -> int:
    n = sizes.to_numpy(dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def naive_union_scores(world, tables=CONTACT_TABLES) -> tuple[float, float, int]:
    """Pairwise recall and precision of a union of records sharing a digits-only phone or a
    lower-cased e-mail, and the number of clusters mixing different people."""
    ids = _records(world, tables)
    rec = ids[["source_table", "record_id"]].drop_duplicates().reset_index(drop=True)
    rec["node"] = np.arange(len(rec))
    ids = ids.merge(rec, on=["source_table", "record_id"])
    codes, _ = pd.factorize(ids["ident"])
    n_rec = len(rec)
    rows = ids["node"].to_numpy()
    cols = n_rec + codes
    size = n_rec + codes.max() + 1
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
    _, label = connected_components(graph, directed=False)
    rec["cluster"] = label[:n_rec]
    rp = world.truth["record_person"]
    rec = rec.merge(rp, on=["source_table", "record_id"], how="left")
    assert rec["person_id"].notna().all()
    true_pairs = _pairs(rec.groupby("person_id").size())
    pred_pairs = _pairs(rec.groupby("cluster").size())
    tp = _pairs(rec.groupby(["cluster", "person_id"]).size())
    mixed = int((rec.groupby("cluster")["person_id"].nunique() > 1).sum())
    return tp / true_pairs, tp / pred_pairs, mixed


def test_naive_exact_match_misses_duplicates_and_merges_strangers(clean_world):
    recall, precision, mixed_clusters = naive_union_scores(clean_world)
    assert recall < 0.85, recall  # many true duplicates stay apart
    assert precision < 0.995, precision  # ... and some different people get merged
    assert mixed_clusters >= 20  # family phones join spouses, parents and children
    # with the clickstream, whose logged-in events repeat one login, recall is still short of 1
    recall_all, precision_all, _ = naive_union_scores(clean_world, tuple(ID_COLS))
    assert recall_all < 0.95 and precision_all < 0.99


def test_shared_cards_join_different_people(clean_world):
    r = clean_world.sources["pos_receipts"]
    rp = clean_world.truth["record_person"]
    rp = rp[rp["source_table"] == "pos_receipts"]
    m = r.dropna(subset=["loyalty_card"]).merge(rp, left_on="receipt_id", right_on="record_id")
    people_per_card = m.groupby("loyalty_card")["person_id"].nunique()
    assert (people_per_card > 1).sum() >= 10


def test_crm_duplicates_differ_in_identifiers(clean_world):
    c = clean_world.sources["crm_contacts"]
    rp = clean_world.truth["record_person"]
    c = c.merge(
        rp[rp["source_table"] == "crm_contacts"], left_on="contact_id", right_on="record_id"
    )
    dup = c[c["person_id"].duplicated(keep=False)].copy()
    dup["email_n"] = dup["email"].str.lower()
    dup["phone_n"] = dup["phone"].str.replace(r"\D", "", regex=True).str[-10:]
    g = dup.groupby("person_id")
    differ = (g["email_n"].nunique(dropna=False) > 1) | (g["phone_n"].nunique(dropna=False) > 1)
    assert len(differ) > 100
    assert differ.mean() > 0.6


def test_family_computers_share_cookies(clean_world):
    w = clean_world.sources["web_events"]
    rp = clean_world.truth["record_person"]
    m = w.merge(rp[rp["source_table"] == "web_events"], left_on="event_id", right_on="record_id")
    people_per_device = m.groupby("device_id")["person_id"].nunique()
    people_per_cookie = m.groupby("cookie_id")["person_id"].nunique()
    assert (people_per_device > 1).sum() >= 50
    assert (people_per_cookie > 1).sum() >= 50
    assert (people_per_device > 1).mean() < 0.2  # most devices stay personal


def test_no_mailbox_is_shared_across_households():
    """A mailbox belongs to one person; only relatives type each other's. Duplicate accounts'
    new mailboxes (same name, another provider) and ``ya.ru``/``yandex.ru`` spellings included:
    at 20,000 people namesakes made ~70 such collisions before the generator checked them."""
    from cemlib.normalize import email_key
    from cemlib.synth import generate

    world = generate(n_people=20_000, seed=42, as_of="2025-06-30")
    people = world.truth["people"].set_index("person_id")
    ids = _records(world, (*CONTACT_TABLES, "web_events"))
    recs = ids[ids["ident"].str.startswith("e:")].merge(
        world.truth["record_person"], on=["source_table", "record_id"]
    )
    recs["key"] = email_key(recs["ident"].str[2:])
    recs["household"] = recs["person_id"].map(people["household_id"])
    per_key = recs.dropna(subset=["key"]).groupby("key")
    assert per_key.ngroups > 15_000
    assert per_key["person_id"].nunique().gt(1).sum() > 100  # relatives' addresses do travel
    assert per_key["household"].nunique().max() == 1
