import numpy as np
import pandas as pd

from cemlib.identity import golden_records
from cemlib.identity.resolve import IdentityResolver
from cemlib.identity.stage import source_records
from cemlib.synth import generate


def _records(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in ("first_name", "city", "phone", "phone_2", "email", "profile_id"):
        df[c] = df[c].astype("string")
    df["updated_at"] = pd.to_datetime(df["updated_at"])
    return df


def test_survivorship_frequency_then_recency_then_source_then_value():
    r = _records(
        [
            # profile A: Иван twice beats Ваня once; city tie (1 each) goes to the newest
            dict(
                profile_id="A",
                source="pos_receipts",
                updated_at="2024-01-01",
                first_name="Иван",
                city="Тверь",
                phone="+79001",
                phone_2=None,
                email=None,
            ),
            dict(
                profile_id="A",
                source="crm_contacts",
                updated_at="2024-03-01",
                first_name="Иван",
                city="Москва",
                phone="+79002",
                phone_2="+79001",
                email="a@x",
            ),
            dict(
                profile_id="A",
                source="online_orders",
                updated_at="2024-02-01",
                first_name="Ваня",
                city=None,
                phone="+79001",
                phone_2=None,
                email="b@x",
            ),
            # profile B: same time, city tie goes to the higher-priority source (CRM)
            dict(
                profile_id="B",
                source="web_events",
                updated_at="2024-05-05",
                first_name=None,
                city="Омск",
                phone=None,
                phone_2=None,
                email="c@x",
            ),
            dict(
                profile_id="B",
                source="crm_contacts",
                updated_at="2024-05-05",
                first_name="Анна",
                city="Томск",
                phone=None,
                phone_2=None,
                email="c@x",
            ),
            # profile C: same time and source: the smaller value wins; no date at all
            dict(
                profile_id="C",
                source="crm_contacts",
                updated_at=None,
                first_name="Олег",
                city="Пермь",
                phone=None,
                phone_2=None,
                email=None,
            ),
            dict(
                profile_id="C",
                source="crm_contacts",
                updated_at=None,
                first_name="Олег",
                city="Азов",
                phone=None,
                phone_2=None,
                email=None,
            ),
            # unattached: skipped
            dict(
                profile_id=None,
                source="pos_receipts",
                updated_at="2024-06-01",
                first_name=None,
                city=None,
                phone="+79009",
                phone_2=None,
                email=None,
            ),
        ]
    )
    g = golden_records(r).set_index("profile_id")
    assert list(g.index) == ["A", "B", "C"]
    assert g.loc["A", "n_records"] == 3 and g["n_records"].sum() == 7
    assert g.loc["A", "first_name"] == "Иван"
    assert g.loc["A", "city"] == "Москва"  # newest of a 1-1 tie
    assert g.loc["B", "city"] == "Томск"  # CRM outranks web at the same time
    assert g.loc["C", "city"] == "Азов"  # full tie: the smaller value
    # every phone and email kept, most frequent first
    assert g.loc["A", "phones"] == ["+79001", "+79002"]
    assert g.loc["A", "emails"] == ["a@x", "b@x"]
    assert g.loc["B", "phones"] == [] and g.loc["B", "emails"] == ["c@x"]
    assert g.loc["A", "sources"] == ["crm_contacts", "online_orders", "pos_receipts"]
    assert g.loc["B", "sources"] == ["crm_contacts", "web_events"]
    assert g.loc["A", "first_seen"] == pd.Timestamp("2024-01-01")
    assert g.loc["A", "last_seen"] == pd.Timestamp("2024-03-01")
    assert pd.isna(g.loc["C", "first_seen"]) and pd.isna(g.loc["C", "last_seen"])


def test_golden_records_conserve_records_and_identifiers_on_a_world():
    world = generate(1500, seed=5)
    rec = source_records(world.sources)
    res = IdentityResolver(seed=1).fit(rec)
    rec["profile_id"] = res.record_map()["profile_id"].to_numpy()
    g = golden_records(rec)
    attached = rec["profile_id"].notna()
    assert g["profile_id"].is_unique
    assert g["n_records"].sum() == int(attached.sum())
    assert len(g) == rec.loc[attached, "profile_id"].nunique()
    # every phone of an attached record is in its own profile's list, and only there
    long = pd.concat(
        [
            rec.loc[attached, ["profile_id", c]].rename(columns={c: "v"}).astype(str)
            for c in ("phone", "phone_2")
        ]
    )
    long = long[long["v"] != "nan"]
    listed = g[["profile_id", "phones"]].explode("phones").dropna()
    want = set(map(tuple, long.drop_duplicates().to_numpy()))
    got = set(map(tuple, listed.to_numpy()))
    assert want == got and len(want) > 1000
    # the surviving first name is one of the profile's own values, the most frequent one
    named = rec.loc[attached & rec["first_name"].notna(), ["profile_id", "first_name"]]
    counts = named.value_counts()
    top = counts.groupby(level=0).max()
    chosen = g.set_index("profile_id")["first_name"].dropna()
    chosen_n = np.array([counts[(p, v)] for p, v in chosen.items()])
    assert (chosen_n == top.reindex(chosen.index).to_numpy()).all()
