"""M1 (trial 6): the links file of ``cem identity --links`` says which links joined records.

A link the graph accepted whose record the household guard then held back from the profile
(it gets a profile apart) did not join anything: the file says ``accepted=False`` with the
reason, so every accepted link joins two records of one profile."""

from __future__ import annotations

import pandas as pd

from cemlib.cli import main as cem_main
from tests.identity.test_resolve import _family_records


def test_links_of_held_back_records_are_not_accepted_and_say_why(tmp_path, capsys):
    src, roles = tmp_path / "family.csv", tmp_path / "roles.yaml"
    _family_records().to_csv(src, index=False)
    roles.write_text(
        "".join(
            f"{c}: {c}\n"
            for c in ("first_name", "last_name", "birth_date", "phone", "email", "device_id")
        ),  # fmt: skip
        encoding="utf-8",
    )
    out, links = tmp_path / "c.csv", tmp_path / "l.csv"
    code = cem_main(["identity", str(src), "--id-column", "id", "--roles", str(roles),
                     "--rules-only", "--out", str(out), "--links", str(links)])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    pid = pd.read_csv(out, dtype=str).set_index("record_id")["profile_id"]
    lk = pd.read_csv(links, dtype=str, keep_default_na=False)
    pair = lk["left_record_id"] + "-" + lk["right_record_id"]
    same = (
        pid.reindex(lk["left_record_id"]).to_numpy()
        == pid.reindex(lk["right_record_id"]).to_numpy()
    )
    accepted = lk["accepted"] == "True"
    # the file agrees with the clusters: accepted <=> the two records share a profile
    assert (accepted == same).all()
    assert (lk["left_profile_id"] == lk["right_profile_id"]).to_numpy().tolist() == same.tolist()
    # Ivan's nameless order shares his e-mail: the graph joined it, the household guard held it
    # back (the family phone): not accepted, for that reason
    ivan = lk[pair.isin(["c1-o1", "o1-c1"])]
    assert len(ivan) == 1 and ivan["accepted"].iloc[0] == "False"
    assert ivan["refused_by"].iloc[0] == "household_profile"
    assert pid["o1"] != pid["c1"]
    # Oleg's order joined him, and its links say so
    oleg = lk[pair.isin(["c3-o2", "o2-c3"])]
    assert set(oleg["rule"]) == {"phone", "email"}  # two identifiers, one link each
    assert (oleg["accepted"] == "True").all() and (oleg["refused_by"] == "").all()
    assert pid["o2"] == pid["c3"]
    # every link not accepted has a reason
    assert (lk.loc[~accepted, "refused_by"] != "").all()
