"""One reader for every command (issue #17): a ``;``-separated cp1251 export with decimal
commas gives ``cem identity``, ``cem churn`` and ``cem offers`` the same results as the UTF-8
``,`` file of the same rows, and every command refuses UTF-16 with the same one line. The
commands run in this process (``cemlib.cli.main``, as ``cem`` does)."""

from __future__ import annotations

import codecs

import pandas as pd
import pytest

from cemlib.cli import main
from tests.reliability.conftest import CRM

ROLES = "full_name: full_name\nphone: phone\nemail: email\nbirth_date: birth_date\n"


def _transactions() -> pd.DataFrame:
    from tests.offers.conftest import make_transactions

    tx = make_transactions(80, seed=2)
    tx["ts"] = tx["ts"].dt.strftime("%Y-%m-%d")
    tx["customer_id"] = "Клиент " + tx["customer_id"]
    tx["amount"] = tx["amount"] + 0.25
    return tx


def cem(*args) -> int:
    return main([str(a) for a in args])


def _russian(df: pd.DataFrame, path, numbers=()) -> None:
    """``df`` as a Russian Excel export: cp1251, ``;`` and decimal commas."""
    out = df.copy()
    for col in numbers:
        out[col] = out[col].map(lambda v: f"{v:.2f}".replace(".", ","))
    path.write_bytes(out.to_csv(sep=";", index=False).encode("cp1251"))


def test_identity_reads_a_semicolon_cp1251_export_as_the_utf8_one(tmp_path):
    (tmp_path / "roles.yaml").write_text(ROLES, encoding="utf-8")
    (tmp_path / "utf8.csv").write_text(CRM, encoding="utf-8")
    _russian(pd.read_csv(tmp_path / "utf8.csv", dtype=str), tmp_path / "ru.csv")
    for name in ("utf8", "ru"):
        code = cem(
            "identity",
            tmp_path / f"{name}.csv",
            "--id-column",
            "contact_id",
            "--roles",
            tmp_path / "roles.yaml",
            "--out",
            tmp_path / f"{name}_profiles.csv",
            "--rules-only",
        )
        assert code == 0
    groups = []
    for name in ("utf8", "ru"):  # profile ids are pseudonyms of the source: compare the groups
        ids = pd.read_csv(tmp_path / f"{name}_profiles.csv").set_index("record_id")["profile_id"]
        groups.append(sorted(sorted(g) for g in ids.groupby(ids).groups.values()))
    assert groups[0] == groups[1] == [["C1", "C2"], ["C3"], ["C4"]]  # the two Ivanovs are one


@pytest.mark.parametrize("command", ["offers", "churn"])
def test_offers_and_churn_read_a_semicolon_cp1251_export_as_the_utf8_one(tmp_path, command):
    tx = _transactions()
    tx.to_csv(tmp_path / "utf8.csv", index=False)
    _russian(tx, tmp_path / "ru.csv", numbers=("amount",))
    for name in ("utf8", "ru"):
        code = cem(
            command,
            tmp_path / f"{name}.csv",
            "--as-of",
            "2025-06-30",
            "--out",
            tmp_path / f"{name}_out.csv",
        )
        assert code == 0
    ru, utf8 = pd.read_csv(tmp_path / "ru_out.csv"), pd.read_csv(tmp_path / "utf8_out.csv")
    if command == "offers":
        # the ranked items and scores; not the reason texts: offers breaks ties between equal
        # reasons in an order that varies from run to run (1-5 of 800 rows, on main too)
        ru, utf8 = ru.drop(columns="reasons"), utf8.drop(columns="reasons")
    pd.testing.assert_frame_equal(ru, utf8)
    assert set(ru["customer_id"]) == set(tx["customer_id"])  # Cyrillic ids kept


@pytest.mark.parametrize("bom", [True, False])
def test_every_command_refuses_utf16_in_one_line(tmp_path, bom, capsys):
    (tmp_path / "roles.yaml").write_text(ROLES, encoding="utf-8")
    tx = _transactions().to_csv(index=False)
    crm_dir = tmp_path / "src"
    crm_dir.mkdir()
    for path, text in (
        (tmp_path / "tx.csv", tx),
        (tmp_path / "records.csv", CRM),
        (crm_dir / "crm_contacts.csv", CRM),
    ):
        path.write_bytes((codecs.BOM_UTF16_LE if bom else b"") + text.encode("utf-16-le"))
    out = tmp_path / "out.csv"
    runs = {
        "validate": (crm_dir / "crm_contacts.csv", ["validate", crm_dir, "--out", tmp_path / "v"]),
        "identity": (
            tmp_path / "records.csv",
            ["identity", tmp_path / "records.csv", "--id-column", "contact_id"]
            + ["--roles", tmp_path / "roles.yaml", "--out", out],
        ),
        "churn": (tmp_path / "tx.csv", ["churn", tmp_path / "tx.csv", "--as-of", "2025-06-30"]),
        "offers": (tmp_path / "tx.csv", ["offers", tmp_path / "tx.csv", "--as-of", "2025-06-30"]),
    }
    for command, (path, args) in runs.items():
        if command in ("churn", "offers"):
            args = [*args, "--out", out]
        capsys.readouterr()
        assert cem(*args) == 2, command
        err = capsys.readouterr().err.strip()  # one line naming the file, no traceback
        assert (
            err == f"cem {command}: error: {path}: UTF-16 is not supported, save the file as UTF-8"
        )
        assert not out.exists()
