"""``generate``: the seeded synthetic customer world, its source tables and its ground truth."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cemlib import DEFAULT_AS_OF, DEFAULT_PEOPLE, DEFAULT_SEED, DEFAULT_WORLD_END
from cemlib.errors import InputError
from cemlib.synth import behaviour as bh
from cemlib.synth.catalog import (
    CATEGORIES,
    CATEGORY_CODES,
    build_products,
    seasonality_matrix,
)
from cemlib.synth.config import SynthConfig
from cemlib.synth.defects import inject_defects
from cemlib.synth.memory import peak_gib, release, rss_gib
from cemlib.synth.noise import cat, zfill
from cemlib.synth.people import make_people
from cemlib.synth.reorders import add_reorders
from cemlib.synth.sources import (
    CATEGORY_NAMES,
    EVENT_TYPES,
    Devices,
    SourceBuilder,
    coded,
    pick,
    s,
    stores_table,
)

log = logging.getLogger(__name__)


def _mark(stage: str, t0: float) -> None:
    """Release freed memory, then log the elapsed time and the memory of a generation step."""
    release()
    log.info(
        "synth %-14s %6.1f s  rss %.2f GiB  peak %.2f GiB",
        stage,
        time.perf_counter() - t0,
        rss_gib(),
        peak_gib(),
    )


#: source tables in the order they are written
SOURCE_TABLES: tuple[str, ...] = (
    "crm_contacts",
    "online_orders",
    "order_lines",
    "pos_receipts",
    "receipt_lines",
    "web_events",
    "support_tickets",
    "products",
)
#: the id column of each table that has one in ``truth.record_person``
RECORD_ID: dict[str, str] = {
    "crm_contacts": "contact_id",
    "online_orders": "order_id",
    "pos_receipts": "receipt_id",
    "web_events": "event_id",
    "support_tickets": "ticket_id",
    "order_lines": "line_id",
    "receipt_lines": "line_id",
    "products": "sku",
}


@dataclass
class SyntheticWorld:
    """The generated world: ``sources`` as exported, ``truth`` as only the generator knows it."""

    sources: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    seed: int
    as_of: pd.Timestamp
    start: pd.Timestamp
    horizon_days: int
    config: SynthConfig = field(default_factory=SynthConfig)

    def summary(self) -> pd.DataFrame:
        """Row counts of every source and truth table."""
        rows = [("source", k, len(v)) for k, v in self.sources.items()]
        rows += [("truth", k, len(v)) for k, v in self.truth.items()]
        return pd.DataFrame(rows, columns=["kind", "table", "rows"])

    def write(self, out_dir: str | Path, format: str = "csv") -> dict[str, Path]:
        """Write ``DIR/<table>.<ext>`` per source table and ``DIR/truth/<name>.<ext>``.

        CSV is UTF-8, comma-separated, header row, empty field for a missing value, text quoted
        ("..."); the same seed writes byte-identical files.
        """
        if format not in ("csv", "parquet"):
            raise InputError(
                f"unknown format {format!r}; expected 'csv' or 'parquet'", source="write"
            )
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError("the output path exists and is not a folder", source=str(out))
        (out / "truth").mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for name, df in self.sources.items():
            written[name] = _write_frame(df, out / f"{name}.{format}", format)
        for name, df in self.truth.items():
            written[f"truth/{name}"] = _write_frame(df, out / "truth" / f"{name}.{format}", format)
        return written


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def _write_frame(df: pd.DataFrame, path: Path, format: str) -> Path:
    table = _to_arrow(df)
    if format == "parquet":
        pq.write_table(table, path, compression="zstd")
        return path
    # timestamps and dates as plain text, the way an export holds them
    cols = []
    for name in table.column_names:
        col = table[name]
        if pa.types.is_timestamp(col.type) and name.endswith("_date"):
            col = pa.compute.strftime(col, format="%Y-%m-%d")
        elif pa.types.is_timestamp(col.type):
            col = pa.compute.strftime(col, format="%Y-%m-%d %H:%M:%S")
        elif pa.types.is_date(col.type):
            col = pa.compute.strftime(col, format="%Y-%m-%d")
        elif pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
            col = col.cast(pa.string()) if pa.types.is_large_string(col.type) else col
        elif pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        cols.append(col)
    table = pa.table(cols, names=table.column_names)
    opts = pacsv.WriteOptions(include_header=True, quoting_style="needed")
    pacsv.write_csv(table, path, write_options=opts)
    return path


def _date(value, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"not a date: {value!r} (expected YYYY-MM-DD)", source="generate", column=name
        ) from exc


def _check(n_people, horizon_days, start_ts, as_of_ts, joined_by_ts, end_ts) -> None:
    if n_people < 10:
        raise InputError(
            f"n_people must be at least 10, got {n_people}", source="generate", column="n_people"
        )
    if int(horizon_days) < 0:
        raise InputError(
            f"horizon_days must be 0 or more, got {horizon_days}",
            source="generate",
            column="horizon_days",
        )
    if start_ts >= as_of_ts:
        raise InputError(
            f"start {start_ts.date()} must be before as_of {as_of_ts.date()}",
            source="generate",
            column="start",
        )
    if not start_ts < joined_by_ts <= end_ts:
        raise InputError(
            f"joined_by {joined_by_ts.date()} must be after start and not after world_end",
            source="generate",
            column="joined_by",
        )
    if as_of_ts + pd.Timedelta(days=int(horizon_days)) > end_ts:
        raise InputError(
            f"as_of {as_of_ts.date()} plus {int(horizon_days)} days of future is after the "
            f"world's end {end_ts.date()}; pass a later world_end (another world) or fewer "
            "horizon_days",
            source="generate",
            column="as_of",
        )


def generate(
    n_people: int = DEFAULT_PEOPLE,
    seed: int = DEFAULT_SEED,
    as_of: str | dt.date = DEFAULT_AS_OF,
    start: str | dt.date = "2022-01-01",
    horizon_days: int = 365,
    defects: bool = True,
    config: SynthConfig | None = None,
    joined_by: str | dt.date = DEFAULT_AS_OF,
    world_end: str | dt.date = DEFAULT_WORLD_END,
) -> SyntheticWorld:
    """Generate the synthetic world of ``n_people`` people (seed + dates fully determine it).

    The world is generated from ``start`` to ``world_end`` and then cut at ``as_of``: the
    sources hold the records dated up to ``as_of``, the truth the people with a record by then
    and ``horizon_days`` of their future. ``as_of`` takes no part in the draws, so for one
    seed a later ``as_of`` holds every record of an earlier one unchanged (same ids, values,
    noise and defects) plus the records dated in between, as monthly extracts of one retailer
    would. The ``n_people`` people join between ``start`` and ``joined_by``.
    """
    cfg = config or SynthConfig()
    as_of_ts, start_ts = _date(as_of, "as_of"), _date(start, "start")
    joined_by_ts, end_ts = _date(joined_by, "joined_by"), _date(world_end, "world_end")
    _check(n_people, horizon_days, start_ts, as_of_ts, joined_by_ts, end_ts)
    tl = bh.Timeline(start_ts, as_of_ts, int(horizon_days))
    whole = bh.Timeline(start_ts, end_ts, 0)  # what is generated
    ref_end = bh.Timeline(start_ts, joined_by_ts, 0).as_of_end
    root = np.random.SeedSequence(int(seed))
    # (the tenth stream, the web events' noise, is apart so that they are built only up to
    # as_of: a later world draws the same values for them first)
    r_people, r_latent, r_life, r_bk, r_lines, r_web, r_src, r_def, r_prod, r_web_src = (
        np.random.default_rng(x) for x in root.spawn(10)
    )
    t_start = time.perf_counter()
    products = build_products(r_prod)
    people, pref = make_people(int(n_people), r_people, cfg, start_ts, joined_by_ts)
    _mark("people", t_start)
    joined = people["joined_at"].to_numpy().astype("datetime64[s]")
    t0 = (joined - start_ts.to_datetime64().astype("datetime64[s]")).astype(np.int64) / bh.DAY
    people["_t0"] = t0

    lat = bh.latent(people, r_latent, cfg)
    drop, first_bad, tickets = bh.lifetimes_and_tickets(people, lat, r_life, cfg, whole)
    bk = bh.baskets(people, pref, lat, drop, r_bk, cfg, whole)
    _mark("baskets", t_start)
    ln = bh.lines(bk, pref, products, r_lines, cfg)
    if cfg.behaviour.reorder_share > 0:  # the repeat-heavy setting, its own random stream
        r_reorder = np.random.default_rng(root.spawn(1)[0])
        bk, ln = add_reorders(people, pref, bk, ln, drop, products, r_reorder, cfg, whole)
    _mark("lines", t_start)
    ev = bh.web_events(people, pref, bk, ln, drop, products, r_web, cfg, whole)
    _mark("events", t_start)

    # who has a CRM record and which e-mail their account uses (decided by the population
    # period, not by as_of: the same in every cut)
    src = SourceBuilder(people, whole, r_src, cfg, ref_end=ref_end)
    n = len(people)
    hist = bk["t"].to_numpy() < ref_end
    online_buyer = np.zeros(n, bool)
    online_buyer[bk["person"].to_numpy()[hist & bk["online"].to_numpy()]] = True
    in_crm = (
        people["loyalty_member"].to_numpy()
        | online_buyer
        | (r_src.random(n) < cfg.behaviour.crm_other)
    )
    email, email2 = people["email"].to_numpy(), people["email2"].to_numpy()
    use2 = pd.notna(email2) & (r_src.random(n) < 0.15)
    account_email = np.where(in_crm, np.where(use2, email2, email), None)
    devices = Devices(people, r_src)
    stores = stores_table(r_src)

    truth = _truth(
        people,
        pref,
        lat,
        drop,
        first_bad,
        tickets,
        bk,
        ln,
        ev,
        products,
        stores,
        tl,
        in_crm,
        account_email,
    )
    truth = {k: _compact(v) for k, v in truth.items()}
    _mark("future truth", t_start)

    sources: dict[str, pd.DataFrame] = {}
    sources["crm_contacts"] = src.crm(in_crm, account_email)
    _mark("crm", t_start)
    sources["online_orders"], sources["order_lines"] = src.online(
        bk, ln, products, account_email, devices.device_of
    )
    sources["pos_receipts"], sources["receipt_lines"] = src.pos(bk, ln, products, stores)
    del bk, ln  # free the intermediates as soon as their tables exist
    _mark("orders+pos", t_start)
    sources["web_events"] = src.web(
        ev, products, account_email, devices, until=tl.as_of_end, rng=r_web_src
    )
    del ev
    _mark("web", t_start)
    sources["support_tickets"] = src.tickets(tickets)
    sources["products"] = pd.DataFrame(
        {
            "sku": s(products["sku"]),
            "name": s(products["name"]),
            "category": s(products["category_name"]),
            "price": products["price"].to_numpy(),
            "margin": products["margin"].to_numpy(),
        }
    )
    keep = _rows_by(src, tl.as_of_end)
    record_person = src.record_person_table(keep)
    del tickets, src, devices

    truth["record_person"] = record_person
    _present_only(truth, people)
    _mark("record truth", t_start)
    if defects:
        sources, truth["defects"] = inject_defects(sources, r_def, cfg.defects, whole, keep)
    else:
        for name, k in keep.items():
            sources[name] = sources[name].iloc[:k].reset_index(drop=True)
        truth["defects"] = pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in (
                    ("table", "string"),
                    ("source_row", "int64"),
                    ("record_id", "string"),
                    ("column", "string"),
                    ("defect", "string"),
                    ("value", "string"),
                )
            }
        )
    _mark("defects", t_start)
    return SyntheticWorld(sources, truth, int(seed), as_of_ts, start_ts, int(horizon_days), cfg)


def _rows_by(src: SourceBuilder, end: float) -> dict[str, int]:
    """Rows of each table dated before ``end`` (days since start): the first ones of each."""
    keep = {t: int(np.searchsorted(times, end)) for t, times in src.times.items()}
    for lines, parent, col in (
        ("order_lines", "online_orders", "order_id"),
        ("receipt_lines", "pos_receipts", "receipt_id"),
    ):
        keep[lines] = int(np.searchsorted(src.line_parent[col], keep[parent]))
    return keep


def _present_only(truth: dict[str, pd.DataFrame], people: pd.DataFrame) -> None:
    """Keep, in the per-person truth tables, the people with a record in the cut (the others
    join later); their future too."""
    present = set(truth["record_person"]["person_id"].unique())
    for name in ("people", "preferences", "future_orders", "future_lines", "future_events"):
        t = truth[name]
        mask = t["person_id"].isin(present).to_numpy()
        if not mask.all():
            truth[name] = t[mask].reset_index(drop=True)


_LOW_CARDINALITY = {"channel", "category", "category_code", "event_type", "sku", "source_table"}


def _compact(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as pyarrow strings, low-cardinality ones as categoricals (memory at scale)."""
    out = {}
    for col in df.columns:
        v = df[col]
        if v.dtype == object or v.dtype.kind == "U" or isinstance(v.dtype, pd.StringDtype):
            if col in _LOW_CARDINALITY:
                v = v.astype("category")
            elif not isinstance(v.dtype, pd.StringDtype):
                v = v.astype(pd.StringDtype("pyarrow"))
        out[col] = v
    return pd.DataFrame(out)


def _truth(
    people,
    pref,
    lat,
    drop,
    first_bad,
    tickets,
    bk,
    ln,
    ev,
    products,
    stores,
    tl,
    in_crm,
    account_email,
):
    """The truth tables known before the sources are built: people, preferences, the future."""
    n = len(people)
    drop_dt = np.where(
        drop <= tl.end, tl.to_datetime(np.minimum(drop, tl.end)), np.datetime64("NaT")
    )
    hist_t = tickets[tickets["t"] < tl.as_of_end]
    n_tickets = np.bincount(hist_t["person"], minlength=n)
    n_bad = np.bincount(hist_t["person"], weights=hist_t["bad"].astype(float), minlength=n).astype(
        int
    )
    top = np.argsort(-pref, axis=1)[:, :3]
    codes = np.array(CATEGORY_CODES)
    p = people
    people_t = pd.DataFrame(
        {
            "person_id": p["person_id"],
            "first_name": p["first_name"],
            "last_name": p["last_name"],
            "middle_name": p["middle_name"],
            "gender": p["gender"],
            "birth_date": p["birth_date"],
            # age at as_of (people are drawn with their age at the end of the joining period)
            "age": np.round(
                (tl.as_of.to_datetime64() - p["birth_date"].to_numpy().astype("datetime64[D]"))
                .astype("timedelta64[D]")
                .astype(np.int64)
                / 365.25,
                1,
            ),
            "city": p["city"],
            "region": p["region"],
            "metro": p["metro"],
            "household_id": p["household_id"],
            "household_size": p["household_size"],
            "address": p["address_street"]
            + ", д. "
            + p["address_house"].astype(str)
            + ", кв. "
            + p["address_flat"].astype(str),
            "phone": "+7" + pd.Series(p["phone_digits"]).astype(str),
            "phone2": np.where(
                p["phone2_digits"] >= 0, "+7" + p["phone2_digits"].astype(str), None
            ),
            "email": p["email"],
            "email2": p["email2"],
            "account_email": account_email,
            "in_crm": in_crm,
            "loyalty_member": p["loyalty_member"],
            "loyalty_card": np.where(
                p["loyalty_card_no"] >= 0, p["loyalty_card_no"].astype(str), None
            ),
            "segment": p["segment"],
            "online_share": p["online_share"],
            "joined_at": p["joined_at"],
            "purchase_rate": np.round(lat["purchase_rate"].to_numpy(), 4),
            "dropout_rate": np.round(lat["dropout_rate"].to_numpy(), 5),
            "n_tickets": n_tickets,
            "n_bad_tickets": n_bad,
            "first_bad_ticket_at": np.where(
                np.isfinite(first_bad) & (first_bad < tl.as_of_end),
                tl.to_datetime(np.where(np.isfinite(first_bad), first_bad, 0)),
                np.datetime64("NaT"),
            ),
            "true_dropout_date": pd.to_datetime(drop_dt).normalize(),
            "alive_at_as_of": drop >= tl.as_of_end,
            "alive_at_horizon_end": drop > tl.end,
            "top_categories": pd.Series(codes[top[:, 0]])
            + "|"
            + codes[top[:, 1]]
            + "|"
            + codes[top[:, 2]],
        }
    )
    people_t["true_dropout_date"] = people_t["true_dropout_date"].astype("datetime64[s]")

    prefs = pd.DataFrame(np.round(pref, 4), columns=list(CATEGORY_CODES))
    prefs.insert(0, "person_id", p["person_id"].to_numpy())

    bt = bk["t"].to_numpy()
    fut = np.flatnonzero((bt >= tl.as_of_end) & (bt < tl.end))
    person_ids = p["person_id"]
    f_person = bk["person"].to_numpy()[fut]
    f_orders = pd.DataFrame(
        {
            "future_order_id": s(cat("F", zfill(np.arange(1, len(fut) + 1), 9))),
            "person_id": s(pick(person_ids, f_person)),
            "ts": tl.to_datetime(bk["t"].to_numpy()[fut]),
            "channel": coded(["store", "online"], bk["online"].to_numpy()[fut].astype(np.int8)),
        }
    )
    pos = np.full(len(bk), -1)
    pos[fut] = np.arange(len(fut))
    lsel = np.flatnonzero(pos[ln["basket"].to_numpy()] >= 0)
    lb = pos[ln["basket"].to_numpy()[lsel]]
    sku = ln["sku_idx"].to_numpy()[lsel]
    qty = ln["quantity"].to_numpy()[lsel]
    price = ln["price"].to_numpy()[lsel]
    ci = products["_ci"].to_numpy()[sku]
    f_lines = pd.DataFrame(
        {
            "future_order_id": s(pick(f_orders["future_order_id"], lb)),
            "person_id": s(pick(person_ids, f_person[lb])),
            "ts": f_orders["ts"].to_numpy()[lb],
            "channel": f_orders["channel"].take(lb).reset_index(drop=True),
            "sku": coded(products["sku"], sku),
            "category": coded(CATEGORY_NAMES, ci),
            "category_code": coded(CATEGORY_CODES, ci),
            "quantity": qty,
            "price": price,
            "amount": np.round(qty * price, 2),
        }
    )
    amount = np.bincount(lb, weights=qty * price, minlength=len(fut))
    f_orders["n_lines"] = np.bincount(lb, minlength=len(fut))
    f_orders["amount"] = np.round(amount, 2)

    et = ev["t"].to_numpy()
    fsel = np.flatnonzero((et >= tl.as_of_end) & (et < tl.end))
    fsel = fsel[np.lexsort((ev["person"].to_numpy()[fsel], ev["t"].to_numpy()[fsel]))]
    f_events = pd.DataFrame(
        {
            "person_id": s(pick(person_ids, ev["person"].to_numpy()[fsel])),
            "ts": tl.to_datetime(ev["t"].to_numpy()[fsel]),
            "event_type": coded(EVENT_TYPES, ev["etype"].to_numpy()[fsel]),
            "sku": coded(products["sku"], ev["sku_idx"].to_numpy()[fsel]),
            "category": coded(CATEGORY_NAMES, ev["category"].to_numpy()[fsel]),
        }
    )

    season = seasonality_matrix()
    categories = pd.DataFrame(
        {
            "category_code": list(CATEGORY_CODES),
            "category": [c.name for c in CATEGORIES],
            "repeat_days": [c.repeat_days for c in CATEGORIES],
            "cross_sell": ["|".join(c.cross_sell) for c in CATEGORIES],
            **{f"season_{m + 1:02d}": np.round(season[m], 3) for m in range(12)},
        }
    )
    return {
        "people": people_t,
        "preferences": prefs,
        "future_orders": f_orders,
        "future_lines": f_lines,
        "future_events": f_events,
        "categories": categories,
        "stores": stores.drop(columns=["_city_idx"]),
    }
