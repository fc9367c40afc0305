"""What deduplication buys downstream: churn and next offers keyed three ways (issue #12).

Generates the synthetic world (``cemlib.synth.generate``), runs collect, quality and identity
into a temporary warehouse, then scores the churn and next-offer stages with customers keyed

* ``source id``: no deduplication. Each source record's customer is the identifier the record
  itself carries, as written (online order: e-mail, else phone, else device; till receipt:
  loyalty card, else phone; CRM contact: card, else e-mail, else phone; web event: e-mail,
  else device; ticket: e-mail, else phone), with no normalization and no linking: the key a
  source system would use. (Keying by the record id itself makes every purchase its own
  customer: nobody ever buys twice, nothing to score.) A record with none is anonymous.
* ``profile``: cemlib's profiles (``identity.map`` of the identity stage).
* ``person``: the world's truth (``truth.record_person``).

Churn: :func:`cemlib.churn.stage.holdout_evaluation`, the stage's model refitted at
``as_of - 365`` and scored on each customer's own purchases in the held-out year; purchases of
the window that belong to no customer under the keying are counted apart (unattributable).
Next offers: :func:`cemlib.offers.stage.run_stage`'s NDCG@10 against the synthetic future
(each customer stands for the person most of its records belong to).

    .venv/bin/python benchmarks/identity_downstream.py --people 20000 --seed 42
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import pandas as pd
from tqdm import tqdm

from cemlib.churn.stage import holdout_evaluation
from cemlib.collect.stage import collect
from cemlib.identity.stage import run_stage as identity_stage
from cemlib.marts import profile_transactions, source_schema
from cemlib.offers.stage import run_stage as offers_stage
from cemlib.quality import QualityStage
from cemlib.synth import generate
from cemlib.warehouse import Warehouse

#: per source table: id column, identifier columns in order of preference
SOURCE_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "crm_contacts": ("contact_id", ("loyalty_card", "email", "phone")),
    "online_orders": ("order_id", ("email", "phone", "device_id")),
    "pos_receipts": ("receipt_id", ("loyalty_card", "phone")),
    "web_events": ("event_id", ("email", "device_id")),
    "support_tickets": ("ticket_id", ("email", "phone")),
}
HORIZONS = (90, 180, 365)


def source_id_map(wh: Warehouse) -> pd.DataFrame:
    """``identity.map`` rows in which a record's profile is its own identifier as written."""
    parts = []
    for table, (id_col, keys) in SOURCE_KEYS.items():
        schema = source_schema(wh, table)
        if schema is None:
            continue
        cols = set(wh.sql(f"SELECT * FROM {schema}.{table} LIMIT 0").columns)
        have = [k for k in keys if k in cols]
        raw = [f"'{k}:' || nullif(trim(CAST({k} AS VARCHAR)), '')" for k in have]
        pid = f"coalesce({', '.join(raw)})" if raw else "NULL"
        parts.append(
            wh.sql(
                f"SELECT '{table}' AS source_table, CAST({id_col} AS VARCHAR) AS record_id, "
                f"{pid} AS profile_id FROM {schema}.{table}"
            )
        )
    return pd.concat(parts, ignore_index=True)


def where_purchases_go(wh: Warehouse, start: str, end: str) -> pd.DataFrame:
    """Orders and receipts dated ``start`` <= day < ``end`` by what ``identity.map`` made of
    them: attached to a profile of the buyer (the profile most of whose records are the
    buyer's), to another person's profile, left unattached though they carry an identifier,
    or anonymous (no identifier at all)."""
    sch = "clean" if wh.has_table("clean", "pos_receipts") else "staging"

    def empty(c: str) -> str:
        return f"nullif(trim(CAST({c} AS VARCHAR)), '') IS NULL"

    return wh.sql(
        f"""
        WITH o AS (
          SELECT 'online_orders' AS st, CAST(order_id AS VARCHAR) AS rid,
                 CAST(ordered_at AS TIMESTAMP) AS ts,
                 {empty("email")} AND {empty("phone")} AND {empty("device_id")} AS anon
          FROM {sch}.online_orders
          UNION ALL
          SELECT 'pos_receipts', CAST(receipt_id AS VARCHAR), CAST(purchased_at AS TIMESTAMP),
                 {empty("loyalty_card")} AND {empty("phone")}
          FROM {sch}.pos_receipts),
        main AS (
          SELECT profile_id, person_id FROM (
            SELECT CAST(m.profile_id AS VARCHAR) AS profile_id, t.person_id,
                   row_number() OVER (PARTITION BY m.profile_id
                                      ORDER BY count(*) DESC, t.person_id) AS r
            FROM identity.map m JOIN truth.record_person t
              ON t.source_table = m.source_table
             AND CAST(t.record_id AS VARCHAR) = CAST(m.record_id AS VARCHAR)
            WHERE m.profile_id IS NOT NULL GROUP BY m.profile_id, t.person_id) WHERE r = 1)
        SELECT CASE WHEN m.profile_id IS NOT NULL AND mp.person_id = t.person_id
                    THEN 'attached to a profile of the buyer'
                    WHEN m.profile_id IS NOT NULL THEN 'attached to another person''s profile'
                    WHEN o.anon THEN 'no identifier (anonymous receipt)'
                    ELSE 'carries an identifier, left unattached' END AS outcome,
               count(*) FILTER (WHERE o.st = 'online_orders') AS online_orders,
               count(*) FILTER (WHERE o.st = 'pos_receipts') AS till_receipts,
               count(*) AS total
        FROM o JOIN truth.record_person t
          ON t.source_table = o.st AND CAST(t.record_id AS VARCHAR) = o.rid
        LEFT JOIN identity.map m
          ON m.source_table = o.st AND CAST(m.record_id AS VARCHAR) = o.rid
        LEFT JOIN main mp ON mp.profile_id = CAST(m.profile_id AS VARCHAR)
        WHERE o.ts >= ? AND o.ts < ?
        GROUP BY 1 ORDER BY total DESC
        """,
        [pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()],
    )


def score(wh: Warehouse, key: str, as_of: str, seed: int) -> dict:
    tx = profile_transactions(wh, as_of, key=key)
    churn = holdout_evaluation(wh, tx, as_of, HORIZONS, key=key, seed=seed)
    offers = offers_stage(wh, as_of, run_id="bench", key=key, seed=seed, write=False)
    return {
        "customers": tx["customer_id"].nunique(),
        "AUC": churn["auc"],
        "predicted total": churn["predicted_total"],
        "actual total": churn["actual_total"],
        "total error %": 100 * churn["total_error"],
        "unattributable orders": churn["unattributable_orders"],
        "new-customer purchases": churn["new_customer_purchases"],
        "NDCG@10": float(offers.metrics.loc["model", "ndcg@10"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", default="2025-06-30")
    args = ap.parse_args()
    rows, seconds, flows = {}, {}, {}
    start = (pd.Timestamp(args.as_of) - pd.Timedelta(days=364)).date()
    end = (pd.Timestamp(args.as_of) + pd.Timedelta(days=1)).date()
    steps = tqdm(total=6, desc="identity downstream", unit="step")
    with tempfile.TemporaryDirectory() as tmp:
        path, raw = os.path.join(tmp, "w.duckdb"), os.path.join(tmp, "source_id.duckdb")
        t0 = time.perf_counter()
        steps.set_postfix_str("generate + collect")
        world = generate(args.people, args.seed, args.as_of)
        collect("synthetic", warehouse=path, world=world, as_of=args.as_of, progress=False)
        del world
        steps.update()
        steps.set_postfix_str("quality + identity")
        with Warehouse(path) as wh:
            QualityStage(progress=False).run(wh, run_id="bench", as_of=args.as_of)
            identity_stage(wh, run_id="bench", as_of=args.as_of, seed=args.seed)
        shutil.copy(path, raw)
        with Warehouse(raw) as wh:
            wh.write_table("identity", "map", source_id_map(wh), run_id="bench", as_of=args.as_of)
        seconds["prepare"] = time.perf_counter() - t0
        steps.update()
        for name, file, key in (
            ("source id (no dedup)", raw, "profile"),
            ("profile (cemlib)", path, "profile"),
            ("person (truth)", path, "person"),
        ):
            steps.set_postfix_str(name)
            t0 = time.perf_counter()
            with Warehouse(file) as wh:
                rows[name] = score(wh, key, args.as_of, args.seed)
                if key == "profile":
                    flows[name] = where_purchases_go(wh, str(start), str(end))
            seconds[name] = time.perf_counter() - t0
            steps.update()
        steps.set_postfix_str("done")
        steps.update()
    steps.close()
    table = pd.DataFrame(rows).T
    print(
        f"\npeople {args.people:,}, seed {args.seed}, as_of {args.as_of}; churn: held-out year "
        f"after as_of - 365 (model refitted there); offers: NDCG@10 over the 60 days after "
        f"as_of\n"
    )
    print("| keying | customers | AUC | predicted total | actual total | total error % | "
          "unattributable orders | new-customer purchases | NDCG@10 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in table.iterrows():
        print(
            f"| {name} | {r['customers']:,.0f} | {r['AUC']:.3f} | {r['predicted total']:,.0f} | "
            f"{r['actual total']:,.0f} | {r['total error %']:+.1f} | "
            f"{r['unattributable orders']:,.0f} | {r['new-customer purchases']:,.0f} | "
            f"{r['NDCG@10']:.4f} |"
        )
    for name, flow in flows.items():
        print(f"\nWhere the held-out year's orders and receipts ({start} to {args.as_of}) go, "
              f"keyed by {name}:\n")  # fmt: skip
        print("| outcome | online orders | till receipts | total | share |")
        print("|---|---|---|---|---|")
        for _, r in flow.iterrows():
            print(f"| {r['outcome']} | {r['online_orders']:,} | {r['till_receipts']:,} | "
                  f"{r['total']:,} | {r['total'] / flow['total'].sum():.1%} |")  # fmt: skip
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
