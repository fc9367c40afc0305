"""A world that moves forward: one seed cut at a later ``as_of`` extends the earlier cut."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.synth import generate
from cemlib.synth.world import RECORD_ID

EARLY, LATE = "2025-03-31", "2025-06-30"


@pytest.fixture(scope="module")
def worlds():
    return generate(1500, seed=11, as_of=EARLY), generate(1500, seed=11, as_of=LATE)


def test_every_record_of_the_earlier_world_is_in_the_later_one_unchanged(worlds):
    early, late = worlds
    grew = 0
    for name, a in early.sources.items():
        b = late.sources[name]
        assert len(b) >= len(a), name
        # the same rows, values, noise and defects, first in the later table (time order)
        pd.testing.assert_frame_equal(
            a.reset_index(drop=True).astype(str),
            b.iloc[: len(a)].reset_index(drop=True).astype(str),
            obj=name,
        )
        grew += len(b) - len(a)
    assert grew > 3000  # three months of records were added


def test_the_added_records_are_dated_between_the_two_as_of(worlds):
    early, late = worlds
    for name, col in (
        ("online_orders", "ordered_at"),
        ("pos_receipts", "purchased_at"),
        ("web_events", "ts"),
        ("support_tickets", "created_at"),
    ):
        a, b = early.sources[name], late.sources[name]
        ids_a = set(a[RECORD_ID[name]])
        new = b[~b[RECORD_ID[name]].isin(ids_a)]
        defective = set(late.truth["defects"].query("table == @name")["record_id"])
        new = new[~new[RECORD_ID[name]].isin(defective)]
        ts = pd.to_datetime(new[col])
        assert len(new) > 0, name
        assert (ts > pd.Timestamp(EARLY) + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)).all()
        assert (ts < pd.Timestamp(LATE) + pd.Timedelta(days=1)).all(), name


def test_truth_stays_consistent(worlds):
    early, late = worlds
    ra, rb = early.truth["record_person"], late.truth["record_person"]
    both = ra.merge(rb, on=["source_table", "record_id"], how="left", suffixes=("_a", "_b"))
    assert both["person_id_b"].notna().all()
    assert (both["person_id_a"] == both["person_id_b"]).all()
    # every record of each cut has its person in that cut's people table, and back
    for w in worlds:
        people = set(w.truth["people"]["person_id"])
        assert set(w.truth["record_person"]["person_id"]) == people
        assert set(w.truth["future_orders"]["person_id"]) <= people
    pa_, pb = early.truth["people"].set_index("person_id"), late.truth["people"]
    pb = pb.set_index("person_id").loc[pa_.index]
    for col in ("first_name", "last_name", "birth_date", "phone", "email", "joined_at"):
        assert pa_[col].astype(str).equals(pb[col].astype(str)), col
    # people join over the period: some of the later world's had not joined yet
    assert len(pa_) < len(late.truth["people"]) == 1500
    # defects of the earlier cut are the later one's on the same rows
    da, db = early.truth["defects"], late.truth["defects"]
    assert len(da.merge(db, how="inner")) == len(da) > 0
    # the later world's future starts where its history ends
    assert (pd.to_datetime(late.truth["future_orders"]["ts"]) >= pd.Timestamp("2025-07-01")).all()


def test_as_of_past_the_world_end_is_refused():
    with pytest.raises(InputError, match="world_end"):
        generate(100, as_of="2026-06-30", horizon_days=365)
    w = generate(100, as_of="2026-06-30", horizon_days=365, world_end="2027-06-30")
    assert len(w.truth["people"]) == 100


def test_web_events_built_in_chunks_only_up_to_as_of_are_the_same(monkeypatch):
    import cemlib.synth.sources as sources

    monkeypatch.setattr(sources, "WEB_CHUNK", 500)  # many chunks; the later world builds more
    a = generate(600, seed=4, as_of="2024-06-30", defects=False).sources["web_events"]
    b = generate(600, seed=4, as_of="2025-06-30", defects=False).sources["web_events"]
    assert len(b) > len(a) + 4 * 500
    pd.testing.assert_frame_equal(a.astype(str), b.iloc[: len(a)].astype(str))
