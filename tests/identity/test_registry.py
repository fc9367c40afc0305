"""Lasting profile ids: merges keep the larger profile's id, splits the larger part's, every id
ever issued stays resolvable (issue #14)."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.identity.registry import (
    ACTIVE,
    DORMANT,
    MERGED,
    RETIRED,
    SPLIT,
    assign_ids,
    resolve_id,
    resolve_ids,
)


def _map(rows: dict[str, list[str]]) -> pd.DataFrame:
    out = [("crm", r, pid) for pid, recs in rows.items() for r in recs]
    return pd.DataFrame(out, columns=["source_table", "record_id", "profile_id"])


PREVIOUS = _map({
    "Pa": ["A1", "A2"],
    "Pb": ["B1", "B2", "B3"],
    "Pc": ["C1", "C2", "C3", "C4"],
    "Pd": ["D1"],
    "Pu": ["U1", "U2"],
    "Pt1": ["T1"],
    "Pt2": ["T2"],
    "Pw": ["W1", "W2", "W3"],
})  # fmt: skip
CURRENT = _map({
    "xM": ["A1", "A2", "B1", "B2", "B3"],  # Pa and Pb merge: Pb (3 records) keeps its id
    "xS1": ["C1", "C2", "C3"],  # Pc splits: the larger part keeps Pc
    "Pa": ["C4"],  # the smaller part's own hash id is Pa, an id already issued
    "xN": ["E1"],  # a new person
    "xU": ["U1", "U2"],  # unchanged
    "xT": ["T1", "T2"],  # a tie: the older profile (Pt1) keeps its id
    "xW1": ["W1"],  # Pw falls apart into three new singletons...
    "xW2": ["W2"],
    "xW3": ["W3", "A9"],
})  # fmt: skip
LINKS = pd.DataFrame(
    [
        ("crm", "A2", "crm", "B1", "phone", None, True, None),
        ("crm", "C3", "crm", "C4", "splink", 0.41, False, "constraint"),
    ],
    columns=["left_source", "left_record_id", "right_source", "right_record_id", "rule",
             "match_probability", "accepted", "refused_by"],
)  # fmt: skip


@pytest.fixture
def second():
    first = assign_ids(PREVIOUS, None, None, run_id="r1", as_of="2025-05-31")
    registry = first.registry
    registry.loc[registry["profile_id"] == "Pt2", "first_seen"] = pd.Timestamp("2025-05-31").date()
    registry.loc[registry["profile_id"] == "Pt1", "first_seen"] = pd.Timestamp("2025-01-31").date()
    return assign_ids(CURRENT, PREVIOUS, registry, run_id="r2", as_of="2025-06-30", links=LINKS)


def test_first_run_registers_every_cluster_under_its_own_id():
    first = assign_ids(PREVIOUS, None, None, run_id="r1", as_of="2025-05-31")
    assert first.ids == {p: p for p in PREVIOUS["profile_id"].unique()}
    assert len(first.registry) == 8 and set(first.registry["status"]) == {ACTIVE}
    assert first.changes.empty and first.counts["new"] == 8


def test_merge_split_new_tie_and_retirement(second):
    ids = second.ids
    assert ids["xM"] == "Pb" and ids["xS1"] == "Pc" and ids["xU"] == "Pu" and ids["xT"] == "Pt1"
    assert ids["xW1"] == "Pw"  # the largest overlap, ties by the smaller cluster name
    fresh = {ids["Pa"], ids["xN"], ids["xW2"], ids["xW3"]}
    assert len(fresh) == 4 and "Pa" not in fresh  # an id once issued is never issued again
    reg = second.registry.set_index("profile_id")
    assert len(reg) == 8 + 4 and reg.index.is_unique
    assert reg.loc["Pa", ["status", "merged_into"]].tolist() == [MERGED, "Pb"]
    assert reg.loc["Pt2", ["status", "merged_into"]].tolist() == [MERGED, "Pt1"]
    assert reg.loc["Pd", "status"] == RETIRED
    assert reg.loc[ids["Pa"], "split_from"] == "Pc"
    assert reg.loc[ids["xW2"], "split_from"] == "Pw" and pd.isna(reg.loc[ids["xN"], "split_from"])
    assert reg.loc["Pb", ["status", "first_run_id", "last_run_id"]].tolist() == [ACTIVE, "r1", "r2"]
    assert reg.loc["Pa", "last_run_id"] == "r1"  # last seen as its own profile in r1
    assert second.counts == {"profiles": 9, "kept": 5, "new": 1, "split_parts": 3, "merged": 2,
                             "split": 2, "records_moved": 0, "dormant": 0,
                             "retired": 1}  # fmt: skip


def test_changes_name_the_link_behind_each(second):
    ch = second.changes.set_index(["change", "profile_id", "other_profile_id"])
    merge = ch.loc[("merge", "Pa", "Pb")]
    assert merge["records"] == 2
    assert merge["evidence"] == "link phone (deterministic) crm:A2 ~ crm:B1"
    split = ch.loc[("split", "Pc", second.ids["Pa"])]
    assert split["records"] == 1
    assert split["evidence"] == "link splink (p=0.410, refused by constraint) crm:C3 ~ crm:C4"
    assert ch.loc[("merge", "Pt2", "Pt1")]["evidence"] == "joined through other records in this run"
    assert second.changes["change"].value_counts().to_dict() == {
        "split": 3,
        "merge": 2,
        "retired": 1,
    }


def test_every_id_ever_issued_resolves_to_todays(second):
    third_map = _map({"z": ["A1", "A2", "B1", "B2", "B3", "U1", "U2"]})  # Pb absorbs Pu...
    third = assign_ids(third_map, CURRENT.assign(profile_id=CURRENT["profile_id"].map(second.ids)),
                       second.registry, run_id="r3", as_of="2025-07-31")  # fmt: skip
    assert third.ids == {"z": "Pb"}
    now = resolve_ids(third.registry, ["Pa", "Pb", "Pu", "Pd", "nobody"])
    assert now.tolist()[:4] == ["Pb", "Pb", "Pb", "Pd"]  # Pa -> Pb, merged in r2, still Pb
    assert pd.isna(now["nobody"])
    reg = third.registry.set_index("profile_id")
    assert reg.loc["Pc", "status"] == RETIRED and reg.loc["Pu", "status"] == MERGED
    assert set(reg["status"]) <= {ACTIVE, MERGED, SPLIT, RETIRED}


def test_records_that_drop_out_and_come_back_keep_their_id_and_moves_are_traced():
    """A backfill (an earlier as_of) leaves records attached to no profile: their id is
    dormant, not retired, and comes back with them; a record moving between two lasting
    profiles is listed as moved. The CRM contact decides which id a merge keeps."""
    r1 = _map({"Pcrm": ["C1"], "Pweb": ["E1", "E2", "E3"], "Pk": ["K1", "K2"]})
    r1.loc[r1["record_id"] == "C1", "source_table"] = "crm_contacts"
    first = assign_ids(r1, None, None, run_id="r1", as_of="2025-06-30")
    # backfill: E1-E3 dated after the earlier as_of, attached to no profile
    r2 = r1.assign(profile_id=r1["profile_id"].where(~r1["record_id"].str.startswith("E")))
    memory = r1  # identity.record_ids after r1
    second = assign_ids(r2, memory, first.registry, run_id="r2", as_of="2025-03-31")
    reg = second.registry.set_index("profile_id")
    assert reg.loc["Pweb", "status"] == DORMANT
    assert second.changes.set_index("profile_id").loc["Pweb", "change"] == "dormant"
    # back to the normal as_of; the memory still holds Pweb for E1-E3; K2 joins the CRM
    # contact (moved), and C1 and E1-E3 merge: the CRM's id wins over three web events
    r3 = _map({"x1": ["C1", "E1", "E2", "E3"], "x2": ["K1"], "x3": ["K2", "Z1"]})
    r3.loc[r3["record_id"] == "C1", "source_table"] = "crm_contacts"
    third = assign_ids(r3, memory, second.registry, run_id="r3", as_of="2025-06-30")
    assert third.ids["x1"] == "Pcrm" and third.ids["x2"] == "Pk"
    reg = third.registry.set_index("profile_id")
    assert reg.loc["Pweb", ["status", "merged_into"]].tolist() == [MERGED, "Pcrm"]
    assert third.counts["dormant"] == 0 and third.counts["retired"] == 0
    moved = third.changes[third.changes["change"] == "split"]
    assert moved[["profile_id", "records"]].values.tolist() == [["Pk", 1]]
    # or, the same records as before the backfill: every id as it was, Pweb active again
    back = assign_ids(r1, memory, second.registry, run_id="r4", as_of="2025-06-30")
    assert back.ids == {"Pcrm": "Pcrm", "Pweb": "Pweb", "Pk": "Pk"}
    assert back.registry.set_index("profile_id").loc["Pweb", "status"] == ACTIVE


def test_a_record_moving_between_two_lasting_profiles_is_traced():
    r1 = _map({"Pa": ["A1", "A2", "A3"], "Pb": ["B1", "B2"]})
    first = assign_ids(r1, None, None, run_id="r1", as_of="2025-06-30")
    r2 = _map({"x": ["A1", "A2"], "y": ["B1", "B2", "A3"]})
    links = pd.DataFrame(
        [("crm", "A3", "crm", "B1", "phone", None, True, None)],
        columns=LINKS.columns,
    )
    second = assign_ids(r2, r1, first.registry, run_id="r2", as_of="2025-06-30", links=links)
    assert second.ids == {"x": "Pa", "y": "Pb"}
    ch = second.changes
    assert ch.values.tolist() == [
        ["moved", "Pa", "Pb", 1, "link phone (deterministic) crm:A3 ~ crm:B1"]
    ]
    assert second.counts["records_moved"] == 1


def test_stage_rerun_keeps_every_id_and_removing_records_is_traced(tmp_path):
    from cemlib.collect import collect
    from cemlib.identity.stage import run_stage
    from cemlib.warehouse import Warehouse

    wh_path = tmp_path / "cem.duckdb"
    collect("synthetic", warehouse=wh_path, run_id="c1", n_people=150, seed=3, progress=False)
    with Warehouse(wh_path) as wh:
        first = run_stage(wh, run_id="r1", as_of="2025-06-30")
        again = run_stage(wh, run_id="r2", as_of="2025-06-30")
        assert again.figures["id_changes"]["kept"] == first.figures["profiles"]
        assert again.changes.empty
        pd.testing.assert_frame_equal(first.map, again.map)
        # one profile loses every record at the source: its id is retired, never reissued
        gone = first.map.dropna(subset=["profile_id"]).groupby("profile_id").size().idxmin()
        recs = first.map.loc[first.map["profile_id"] == gone]
        for table, ids in recs.groupby("source_table")["record_id"]:
            col = {"crm_contacts": "contact_id", "online_orders": "order_id",
                   "pos_receipts": "receipt_id", "web_events": "event_id",
                   "support_tickets": "ticket_id"}[table]  # fmt: skip
            wh.con.execute(
                f"DELETE FROM staging.{table} WHERE CAST({col} AS VARCHAR) IN "
                f"(SELECT unnest(?::VARCHAR[]))",
                [list(ids)],
            )
        third = run_stage(wh, run_id="r3", as_of="2025-06-30")
        registry = wh.read_table("identity", "registry")
        changes = wh.read_table("identity", "changes")
        assert resolve_id(wh, gone) == gone
        assert resolve_id(wh, "Pnever") is None
    assert registry.set_index("profile_id").loc[gone, "status"] == RETIRED
    assert ("retired", gone) in set(zip(changes["change"], changes["profile_id"], strict=True))
    assert gone not in set(third.map["profile_id"].dropna())
    assert set(first.map["profile_id"].dropna()) <= set(registry["profile_id"])


def test_cem_identity_resolve(second, tmp_path, capsys):
    from cemlib.cli import main
    from cemlib.warehouse import Warehouse

    wh_path = tmp_path / "cem.duckdb"
    with Warehouse(wh_path) as wh:
        wh.write_table("identity", "registry", second.registry, run_id="r2", as_of="2025-06-30")
    code = main(["identity", "resolve", "Pa", "Pb", "Pd", "Pnope", "--warehouse", str(wh_path)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1  # one id was never issued
    assert out == [
        "Pa -> Pb (Pa merged; Pb active)",
        "Pb -> Pb (active)",
        "Pd -> Pd (retired)",
        "Pnope: never issued by this warehouse",
    ]
    assert main(["identity", "resolve", "Pa", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
    assert "no warehouse here" in capsys.readouterr().err


def test_resolve_names_the_parts_split_off_an_id(second, tmp_path, capsys):
    """Trial 12: a card's phone changed, its old ticket went to a new id; ``cem identity
    resolve`` of the old id said only "(active)". It names the split-off parts, followed to
    today's ids (a part merged since is named by its survivor)."""
    from cemlib.cli import main
    from cemlib.identity.registry import split_parts
    from cemlib.warehouse import Warehouse

    ids = second.ids
    parts = split_parts(second.registry, ["Pc", "Pw", "Pb", "Pa"])
    assert parts["Pc"] == [ids["Pa"]]  # C4 left Pc for a new id
    assert parts["Pw"] == sorted([ids["xW2"], ids["xW3"]])
    assert parts["Pb"] == [] and parts["Pa"] == []  # a merge is no split
    # a third run: one of Pw's parts merges into Pb; Pw's resolve names Pb for it
    cur = CURRENT.assign(profile_id=CURRENT["profile_id"].map(ids))
    third_map = cur.assign(profile_id=cur["profile_id"].replace({ids["xW2"]: "Pb"}))
    third = assign_ids(third_map, cur, second.registry, run_id="r3", as_of="2025-07-31")
    assert split_parts(third.registry, ["Pw"])["Pw"] == sorted(["Pb", ids["xW3"]])

    wh_path = tmp_path / "cem.duckdb"
    with Warehouse(wh_path) as wh:
        wh.write_table("identity", "registry", second.registry, run_id="r2", as_of="2025-06-30")
    assert main(["identity", "resolve", "Pc", "Pa", "--warehouse", str(wh_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Pc -> Pc (active); split off: {ids['Pa']}",
        "Pa -> Pb (Pa merged; Pb active)",
    ]
