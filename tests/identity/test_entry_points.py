"""L3 (trial 6): ``cem identity FILE`` and :func:`cemlib.identity.resolve` give the same
profiles and the same profile ids for the same records, roles and settings.

A profile id hashes its smallest ``source|record_id``. Without a source column the CLI used the
file's path as every record's source, so the ids changed with the path's spelling
(``night1/records.csv`` or ``/tmp/.../night1/records.csv``) and never matched the API's."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from cemlib.cli import main as cem_main
from cemlib.identity import resolve

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import independent_world as iw  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("entry")
    world = iw.make_world(300, seed=31)
    world.drop(columns="person_id").to_csv(d / "records.csv", index=False)
    (d / "roles.yaml").write_text(iw.roles_yaml(), encoding="utf-8")
    return d


def _cli(args: list[str], out: Path, capsys) -> pd.DataFrame:
    code = cem_main(["identity", *args, "--id-column", "rec_id", "--out", str(out)])
    capsys.readouterr()
    assert code == 0
    return pd.read_csv(out, dtype=str)


def test_cli_and_api_give_the_same_ids_whatever_the_path(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    roles = ["--roles", "roles.yaml"]
    rel = _cli(["records.csv", *roles], files / "rel.csv", capsys)
    absolute = _cli([str(files / "records.csv"), *roles], files / "abs.csv", capsys)
    # the model ran (not only rules) and linked records
    assert rel["profile_id"].nunique() < 0.8 * len(rel)
    pd.testing.assert_frame_equal(rel, absolute)
    df = pd.read_csv(files / "records.csv", dtype=str)
    api = resolve(df, iw.ROLES, id_column="rec_id")
    assert list(api["record_id"]) == list(rel["record_id"])
    assert (api["profile_id"].to_numpy() == rel["profile_id"].to_numpy()).all()
    # the input's label names it in errors only: the ids do not move with it
    named = resolve(df, iw.ROLES, id_column="rec_id", source="whatever.csv")
    assert (named["profile_id"].to_numpy() == api["profile_id"].to_numpy()).all()


def test_the_source_column_is_the_source_role_by_either_path(files, capsys):
    records = files / "records.csv"
    cli = _cli([str(records), "--roles", str(files / "roles.yaml"), "--source-column", "source"],
               files / "src.csv", capsys)  # fmt: skip
    df = pd.read_csv(records, dtype=str)
    api = resolve(df, {**iw.ROLES, "source": "source"}, id_column="rec_id")
    assert (api["profile_id"].to_numpy() == cli["profile_id"].to_numpy()).all()
    # the source is part of the id: with and without it the ids differ
    plain = resolve(df, iw.ROLES, id_column="rec_id")
    assert (plain["profile_id"].to_numpy() != api["profile_id"].to_numpy()).mean() > 0.9


def test_an_error_still_names_the_file(files, capsys):
    bad = files / "bad.csv"
    pd.read_csv(files / "records.csv", dtype=str).drop(columns="phone").to_csv(bad, index=False)
    code = cem_main(["identity", str(bad), "--id-column", "rec_id", "--roles",
                     str(files / "roles.yaml"), "--out", str(files / "x.csv")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert str(bad) in err[0] and "phone" in err[0]
