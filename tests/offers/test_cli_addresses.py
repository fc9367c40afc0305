"""``cem offers --consent`` routes an offer only where the profile has an address (trial 11 H1:
303 of 911 e-mail-routed profiles had no e-mail, 117 of them reachable by SMS, and the 186
reaching nobody were counted reachable)."""

import pandas as pd
import pytest

from cemlib.cli import main


@pytest.fixture
def keyed(tmp_path, transactions):
    """Transactions keyed by records ``rec`` and a map of records to profiles ``P<id>``, with
    two CRM records of C0000's profile (``K0a``, ``K0b``) and one each of C0001..C0003."""
    src = tmp_path / "tx.csv"
    transactions.rename(columns={"customer_id": "rec"}).to_csv(src, index=False)
    ids = pd.Series(transactions["customer_id"].unique())
    crm = pd.DataFrame(
        {"record_id": ["K0a", "K0b", "K1", "K2", "K3"],
         "profile_id": ["PC0000", "PC0000", "PC0001", "PC0002", "PC0003"]}
    )  # fmt: skip
    cmap = tmp_path / "clusters.csv"
    pd.concat([pd.DataFrame({"record_id": ids, "profile_id": "P" + ids}), crm]).to_csv(
        cmap, index=False
    )
    return ["offers", str(src), "--as-of", "2025-06-30", "--k", "3", "--horizon-days", "30",
            "--profiles-map", str(cmap), "--record-column", "rec"]  # fmt: skip


CONSENT = pd.DataFrame(
    {
        "rec_id": ["K0a", "K0b", "K1", "K2", "K3"],
        # K0a consents to e-mail without an e-mail; K0b, the same profile's, gives the phone
        "email": ["", "", "", "anna@example.ru", ""],
        "phone": ["", "+7 912 345-67-89", "", "", "123"],
        "consent_email": ["да", "", "да", "да", "да"],
        "consent_sms": ["", "да", "да", "нет", "да"],
    }
)


def _run(tmp_path, args, consent, capsys):
    path = tmp_path / "consent.csv"
    consent.to_csv(path, index=False)
    out = tmp_path / "offers.csv"
    code = main([*args, "--consent", str(path), "--consent-record-column", "rec_id",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    offers = pd.read_csv(out, dtype=str)
    return offers.groupby("customer_id")["channel"].agg(set).to_dict(), capsys.readouterr().err


def test_a_profile_without_an_email_gets_sms_and_one_without_an_address_is_not_counted(
    tmp_path, keyed, capsys
):
    channels, err = _run(tmp_path, keyed, CONSENT, capsys)
    # PC0000: e-mail consented on K0a but no e-mail anywhere, SMS on K0b's phone: SMS;
    # PC0001 (no address) and PC0003 (a phone of three digits) reach nobody
    assert channels == {"PC0000": {"sms"}, "PC0002": {"email"}}
    assert (
        "2 of 300 customers reachable (email: 1, sms: 1); 296 without consent get no outbound "
        "offer; 2 with consent but no address for it get no outbound offer" in err
    )
    assert "--consent has no" not in err and "Traceback" not in err


def test_a_consent_file_without_contact_columns_says_so_and_counts_no_one_reachable(
    tmp_path, keyed, capsys
):
    channels, err = _run(tmp_path, keyed, CONSENT.drop(columns=["email", "phone"]), capsys)
    lines = [line for line in err.splitlines() if "--consent has no" in line]
    assert lines == [
        "cem offers: --consent has no email or phone column: e-mail and SMS chosen by consent "
        "alone, whether the customer has an address for it is not checked (add the column: a "
        "customer without an e-mail then gets SMS where allowed, and one with no address gets "
        "no channel)"
    ]
    # consent alone: e-mail first wherever it is consented
    assert channels == {"PC0000": {"email"}, "PC0001": {"email"}, "PC0002": {"email"},
                        "PC0003": {"email"}}  # fmt: skip
    assert (
        "4 of 300 customers routed by consent alone, the addresses of e-mail and SMS not checked "
        "(email: 4, sms: 3)" in err
    )
    assert "customers reachable" not in err
