"""CPU seconds of the offers' reasons (TreeSHAP and texts) with every offer explained and with
the written offers only (profiles with a usable channel), on one fitted model in one process so
the machine's load does not enter the comparison. Fits the stage's model on a copy of a
warehouse (``OUT``), then scores three times: every offer, the written ones only, every offer.

    .venv/bin/python benchmarks/offers_reasons_cpu.py WAREHOUSE OUT.duckdb
"""

import shutil
import sys
import time

import pandas as pd

from cemlib.offers import stage as st
from cemlib.offers.consent import assign_channels
from cemlib.offers.model import NextOfferModel
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"
shutil.copy(sys.argv[1], sys.argv[2])
clock = [0.0]
original = NextOfferModel._explain


def timed(self, *a, **k):
    c0 = time.process_time()
    try:
        return original(self, *a, **k)
    finally:
        clock[0] += time.process_time() - c0


NextOfferModel._explain = timed
with Warehouse(sys.argv[2]) as wh:
    tx = st.profile_transactions(wh, AS_OF)
    events = st.profile_events(wh, AS_OF)
    model = NextOfferModel(horizon_days=60, seed=42).fit(
        tx, AS_OF, events=events, items=st._items(wh), customer_features=st._churn_features(wh)
    )
    consent = st.profile_consent_table(wh)
customers = model.tx_["customer_id"].unique()
reach = assign_channels(pd.DataFrame({"customer_id": customers}), consent)[0]["customer_id"]
for label, kw in (
    ("every offer", {}),
    ("written only", {"explain_customers": reach}),
    ("every offer again", {}),
):
    clock[0] = 0.0
    c0 = time.process_time()
    recs = model.recommend(**kw)
    print(
        f"{label}: recommend {time.process_time() - c0:.2f} CPU s, reasons part {clock[0]:.2f} "
        f"CPU s, offers with reasons {(recs['reasons'] != '').sum():,} of {len(recs):,}",
        flush=True,
    )
