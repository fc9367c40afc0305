"""The independent evaluation world (benchmarks/independent_world.py) and cemlib on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import independent_world as iw  # noqa: E402

from cemlib.identity import load_roles, resolve  # noqa: E402


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return iw.make_world(3000, seed=2026)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return iw.make_people(3000, seed=2026)


def test_deterministic_by_seed(world):
    pd.testing.assert_frame_equal(world, iw.make_world(3000, seed=2026))
    other = iw.make_world(3000, seed=7)
    assert not world["full_name"].equals(other["full_name"])


def test_columns_ids_and_sources(world):
    assert list(world.columns) == list(iw.COLUMNS)
    assert world["rec_id"].is_unique and world["rec_id"].notna().all()
    assert set(world["source"]) == {"crm", "web", "till", "support"}


def test_records_per_person(world):
    per = world.groupby("person_id").size()
    assert per.index.nunique() == 3000  # every person has a record
    assert per.min() >= 1 and per.max() <= 5
    assert 1.6 <= per.mean() <= 2.0
    assert 5000 <= len(world) <= 6000


def test_commonest_full_names_are_shared_by_many_people(people):
    full = people["last_name"] + " " + people["first_name"] + " " + people["middle_name"]
    top = full.value_counts()
    assert top.iloc[0] >= 10, top.head()
    assert top.iloc[0] <= 40, top.head()
    assert (top.head(10) >= 5).all(), top.head(10)
    # gendered surname and patronymic forms
    women = people[people["gender"] == "f"]
    assert women["middle_name"].str.endswith(("вна", "ична")).all()
    assert {"Попова", "Иванова"} <= set(women["last_name"])
    assert iw.female_surname("Попов") == "Попова" and iw.female_surname("Шевченко") == "Шевченко"


def test_namesakes_differ_in_birth_date_phone_and_email(people):
    full = people["last_name"] + " " + people["first_name"] + " " + people["middle_name"]
    name = full.value_counts().index[0]
    same = people[full == name]
    assert len(same) >= 10
    assert same["birth_date"].nunique() >= 0.9 * len(same)
    assert same["phone"].is_unique and same["email"].is_unique


def test_till_rows_have_no_surname_and_sources_have_their_shape(world, people):
    surnames = set(people["last_name"])
    till = world[world["source"] == "till"]
    assert till["full_name"].str.split().str.len().eq(1).all()
    assert not till["full_name"].isin(surnames).any()
    assert till["phone"].notna().all() and till["email"].isna().all()
    assert till["birth_date"].isna().all()
    web = world[world["source"] == "web"]
    assert web["email"].notna().all() and web["birth_date"].isna().all()
    assert web["full_name"].str.contains(r"[A-Za-z]", na=False).any()  # some in Latin letters
    crm = world[world["source"] == "crm"]
    assert crm["birth_date"].notna().mean() > 0.8
    assert crm["birth_date"].str.match(r"\d{2}\.\d{2}\.\d{4}$", na=False).any()
    assert crm["birth_date"].str.match(r"\d{4}-\d{2}-\d{2}$", na=False).any()
    assert world["city"].str.startswith("г. ", na=False).any()


def test_households_share_a_phone(people):
    kin = people[people["household_with"].notna()]
    assert 0.03 <= len(kin) / len(people) <= 0.06  # one of each pair: ~8% of people in pairs
    heads = people.set_index("person_id").loc[kin["household_with"]]
    assert (heads["city"].to_numpy() == kin["city"].to_numpy()).all()
    assert (heads["phone"].to_numpy() == kin["household_phone"].to_numpy()).all()


def test_transliteration_styles():
    assert iw.translit("Юлия", "passport") == "Iuliia"
    assert iw.translit("Юлия", "common") == "Yuliya"
    assert iw.translit("Иванов", "common") == "Ivanov"


def test_written_world_and_roles(tmp_path):
    world = iw.write_world(tmp_path, 200, seed=3)
    records = pd.read_csv(tmp_path / "records.csv", dtype=str)
    truth = pd.read_csv(tmp_path / "truth.csv", dtype=str)
    assert "person_id" not in records.columns and len(records) == len(world)
    assert list(truth.columns) == ["rec_id", "person_id"]
    assert set(truth["rec_id"]) == set(records["rec_id"])  # truth covers every record
    assert truth["person_id"].notna().all()
    roles = load_roles(tmp_path / "roles.yaml")
    assert roles == {
        "full_name": ["full_name"],
        "phone": ["phone"],
        "email": ["email"],
        "birth_date": ["birth_date"],
        "city": ["city"],
    }


def test_resolve_runs_and_keeps_every_record():
    world = iw.make_world(400, seed=11)
    records = world.drop(columns="person_id")
    roles = {**iw.ROLES, "source": "source"}
    clusters = resolve(records, roles, id_column="rec_id")
    assert len(clusters) == len(records)
    assert list(clusters["record_id"]) == list(records["rec_id"])
    assert clusters["profile_id"].notna().all()
    assert clusters["profile_id"].nunique() < len(records)  # something was linked


def test_generation_is_fast():
    import time

    t0 = time.perf_counter()
    iw.make_world(3000, seed=5)
    assert time.perf_counter() - t0 < 10.0


def test_identity_holds_on_the_independent_world():
    """The stage on records it was not tuned on (issue #12): precision at least 0.99, well
    above the naive phone/e-mail union, no profile twice the largest true person, and the
    namesakes (tens of people per full name) kept apart by the birth-date constraint."""
    from cemlib.identity import evaluate

    world = iw.make_world(1500, seed=21)
    records = world.drop(columns="person_id")
    roles = {**iw.ROLES, "source": "source"}
    clusters, res = resolve(records, roles, id_column="rec_id", return_resolver=True)
    truth = world[["rec_id", "person_id"]].set_axis(["record_id", "person_id"], axis=1)
    m = evaluate(clusters, truth)
    assert m["precision"] >= 0.99 and m["f1"] >= 0.88, m
    assert "birth_date" in res.constraints_ and "patronymic" in res.constraints_
    assert res.silver_disagreement_["birth_date"][0] <= 0.03
    largest_true = world["person_id"].value_counts().iloc[0]
    assert clusters["profile_id"].value_counts().iloc[0] <= 2 * largest_true
    # the commonest full name: its people stay in as many profiles as there are people
    named = world[world["source"] == "crm"]
    top = named.groupby("full_name")["person_id"].nunique().idxmax()
    rows = named[named["full_name"] == top]
    by_profile = clusters.set_index("record_id").loc[rows["rec_id"], "profile_id"]
    mixed = pd.DataFrame({"p": by_profile.to_numpy(), "t": rows["person_id"].to_numpy()})
    assert (mixed.groupby("p")["t"].nunique() == 1).all()


def test_one_mans_cards_with_two_slips_of_his_birth_date_are_one_profile(world):
    """Issue 12, session 19 (seed 2026's world, real Splink): three CRM cards of one man, one
    phone and full name, born 2002-12-18, two of them with a slip (2000-12-18, 2002-12-12),
    were refused by the birth-date constraint (the slips are two digits apart); now they are
    one profile, and the world's figures move only by the pairs they bring."""
    from cemlib.identity import evaluate

    records = world.drop(columns="person_id")
    roles = {**iw.ROLES, "source": "source"}
    clusters = resolve(records, roles, id_column="rec_id")
    prof = clusters.set_index("record_id")["profile_id"]
    cards = world[world["person_id"] == world.set_index("rec_id").at["C0004034", "person_id"]]
    crm = cards.loc[cards["source"] == "crm", "rec_id"]
    assert sorted(crm) == ["C0001915", "C0002705", "C0004034"]
    assert sorted(cards["birth_date"].dropna()) == ["18.12.2002", "2000-12-18", "2002-12-12"]
    assert prof.loc[crm].nunique() == 1
    truth = world[["rec_id", "person_id"]].set_axis(["record_id", "person_id"], axis=1)
    m = evaluate(clusters, truth)
    # 3,214 true and 12 false pairs of 3,715 before; 2 true pairs more, no false one. Since
    # bare words are first names (session 19b): 3,214 true and 10 false (the chain guard now
    # sees «Алена» on Михаил's phone, and a till «Сережа» on a card misread «Ким Сергей»)
    tp = round(m["precision"] * m["predicted_pairs"])
    assert m["true_pairs"] == 3715 and tp >= 3214 and m["predicted_pairs"] - tp <= 10, m


def test_seed_7_meets_f1_092_once_bare_first_names_are_first_names():
    """Issue 12, session 19b (seed 7's world, real Splink): till and support rows signed with
    a bare first name missing from the name list («Лилия», «Алена», «Олеся») were read as
    surnames, so the chain guard could not tell them from the profile's person on a family's
    phone: 2,977 true and 13 false pairs, F1 0.9195. As first names: 2,978 and 8, F1 0.9204."""
    from cemlib.identity import evaluate

    world = iw.make_world(3000, seed=7)
    roles = {**iw.ROLES, "source": "source"}
    clusters = resolve(world.drop(columns="person_id"), roles, id_column="rec_id")
    truth = world[["rec_id", "person_id"]].set_axis(["record_id", "person_id"], axis=1)
    m = evaluate(clusters, truth)
    tp = round(m["precision"] * m["predicted_pairs"])
    assert m["true_pairs"] == 3485 and tp >= 2978 and m["predicted_pairs"] - tp <= 8, m
    assert m["f1"] >= 0.92 and m["precision"] >= 0.99, m
