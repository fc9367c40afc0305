import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cemlib.offers.consent import assign_channels, profile_consent


def _offers(ids):
    return pd.DataFrame(
        {
            "customer_id": [i for i in ids for _ in range(2)],
            "rank": [1, 2] * len(ids),
            "item_id": "x",
        }
    )


def test_refusal_on_any_record_wins_and_missing_profiles_get_nothing():
    rows = pd.DataFrame(
        {
            "customer_id": ["p1", "p1", "p2", "p3", "p4"],
            "consent_email": [True, False, True, "no", None],
            "consent_sms": [True, None, "yes", "1", None],
        }
    )
    c = profile_consent(rows).set_index("customer_id")
    assert not c.loc["p1", "consent_email"] and c.loc["p1", "consent_sms"]
    assert c.loc["p2", "consent_email"] and c.loc["p3", "consent_sms"]
    assert not c.loc["p4"].any()
    offers, summary = assign_channels(_offers(["p1", "p2", "p3", "p4", "p5"]), c.reset_index())
    assert dict(zip(offers["customer_id"], offers["channel"], strict=False)) == {
        "p1": "sms",
        "p2": "email",
        "p3": "sms",
    }
    assert summary.no_consent == 2 and summary.reachable == 3 and summary.profiles == 5
    assert summary.by_channel == {"email": 1, "sms": 3}


def test_a_consented_channel_without_an_address_is_not_used():
    # consent to e-mail given on a record without an e-mail: the offer goes by SMS when that
    # is consented and there is a phone, else nowhere, and is counted apart
    consent = pd.DataFrame({
        "customer_id": ["p1", "p2", "p3", "p4"],
        "consent_email": [True, True, True, False],
        "consent_sms": [True, False, True, True],
        "address_email": [False, False, True, True],
        "address_sms": [True, True, False, False],
    })  # fmt: skip
    offers, summary = assign_channels(_offers(["p1", "p2", "p3", "p4"]), consent)
    assert dict(zip(offers["customer_id"], offers["channel"], strict=False)) == {
        "p1": "sms",
        "p3": "email",
    }
    assert (summary.reachable, summary.no_consent, summary.no_address) == (2, 0, 2)
    assert summary.by_channel == {"email": 1, "sms": 1}
    assert "consent but no address (no outbound offer)" in set(summary.as_frame()["channel"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from([True, False, None]),
            st.sampled_from([True, False, None]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_no_offer_ever_goes_to_a_channel_without_consent(rows):
    consent_rows = pd.DataFrame(rows, columns=["customer_id", "consent_email", "consent_sms"])
    consent = profile_consent(consent_rows)
    offers, summary = assign_channels(_offers(["a", "b", "c", "d", "e"]), consent)
    for _, o in offers.iterrows():
        recs = consent_rows[consent_rows["customer_id"] == o["customer_id"]][
            f"consent_{o['channel']}"
        ]
        assert (recs == True).any() and not (recs == False).any()  # noqa: E712
    assert summary.reachable + summary.no_consent == 5
    assert offers["customer_id"].nunique() == summary.reachable
