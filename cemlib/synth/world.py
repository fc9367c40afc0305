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
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cemlib import DEFAULT_AS_OF, DEFAULT_PEOPLE, DEFAULT_SEED, DEFAULT_WORLD_END
from cemlib.errors import InputError
from cemlib.synth import behaviour as bh
from cemlib.synth.catalog import (
    build_products,
)
from cemlib.synth.config import SynthConfig
from cemlib.synth.defects import inject_defects
from cemlib.synth.devices import Devices
from cemlib.synth.memory import peak_gib, release, rss_gib
from cemlib.synth.people import make_people
from cemlib.synth.pools import stores_table
from cemlib.synth.reorders import add_reorders
from cemlib.synth.sources import SourceBuilder
from cemlib.synth.text import s
from cemlib.synth.truth import truth_tables

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
    rng = _streams(seed)
    t_start = time.perf_counter()
    w = _behaviour(int(n_people), rng, cfg, start_ts, joined_by_ts, whole, t_start)
    src = _accounts(w, rng["src"], cfg, whole, ref_end)
    truth = truth_tables(
        w["people"], w["pref"], w["lat"], w["drop"], w["first_bad"], w["tickets"], w["bk"],
        w["ln"], w["ev"], w["products"], w["stores"], tl,
        in_crm=w["in_crm"], account_email=w["account_email"],
    )  # fmt: skip
    truth = {k: _compact(v) for k, v in truth.items()}
    _mark("future truth", t_start)
    sources = _sources(w, src, tl, rng["web_src"], t_start)
    keep = _rows_by(src, tl.as_of_end)
    truth["record_person"] = src.record_person_table(keep)
    del src
    _present_only(truth, w["people"])
    _mark("record truth", t_start)
    sources, truth["defects"] = _cut(sources, keep, defects, rng["def"], cfg, whole)
    _mark("defects", t_start)
    return SyntheticWorld(sources, truth, int(seed), as_of_ts, start_ts, int(horizon_days), cfg)


#: the random streams of a world, one per part, spawned from the seed in this order
_STREAMS = ("people", "latent", "life", "bk", "lines", "web", "src", "def", "prod", "web_src",
            "reorder")  # fmt: skip


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One generator per part of the world (the tenth, the web events' noise, is apart so
    that they are built only up to as_of: a later world draws the same values for them
    first; the eleventh, the repeat-heavy re-orders, is drawn only with ``reorder_share``)."""
    root = np.random.SeedSequence(int(seed))
    children = root.spawn(len(_STREAMS))
    return {name: np.random.default_rng(x) for name, x in zip(_STREAMS, children, strict=True)}


def _behaviour(n_people, rng, cfg, start_ts, joined_by_ts, whole, t_start) -> dict:
    """The people and everything they do over the whole generated period: the products,
    latent rates, lifetimes and tickets, baskets, lines and web events."""
    products = build_products(rng["prod"])
    people, pref = make_people(n_people, rng["people"], cfg, start_ts, joined_by_ts)
    _mark("people", t_start)
    joined = people["joined_at"].to_numpy().astype("datetime64[s]")
    t0 = (joined - start_ts.to_datetime64().astype("datetime64[s]")).astype(np.int64) / bh.DAY
    people["_t0"] = t0
    lat = bh.latent(people, rng["latent"], cfg)
    drop, first_bad, tickets = bh.lifetimes_and_tickets(people, lat, rng["life"], cfg, whole)
    bk = bh.baskets(people, pref, lat, drop, rng["bk"], cfg, whole)
    _mark("baskets", t_start)
    ln = bh.lines(bk, pref, products, rng["lines"], cfg)
    if cfg.behaviour.reorder_share > 0:  # the repeat-heavy setting, its own random stream
        bk, ln = add_reorders(people, pref, bk, ln, drop, products, rng["reorder"], cfg, whole)
    _mark("lines", t_start)
    ev = bh.web_events(people, pref, bk, ln, drop, products, rng["web"], cfg, whole)
    _mark("events", t_start)
    return {"products": products, "people": people, "pref": pref, "lat": lat, "drop": drop,
            "first_bad": first_bad, "tickets": tickets, "bk": bk, "ln": ln, "ev": ev}  # fmt: skip


def _accounts(w: dict, r_src, cfg, whole, ref_end) -> SourceBuilder:
    """Who has a CRM record and which e-mail their account uses (decided by the population
    period, not by as_of: the same in every cut), the devices and the stores; adds them to
    ``w`` and returns the builder of the source tables."""
    people, bk = w["people"], w["bk"]
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
    w["in_crm"] = in_crm
    w["account_email"] = np.where(in_crm, np.where(use2, email2, email), None)
    w["devices"] = Devices(people, r_src)
    w["stores"] = stores_table(r_src)
    return src


def _sources(w: dict, src: SourceBuilder, tl, r_web_src, t_start) -> dict[str, pd.DataFrame]:
    """The source tables before the cut at as_of (web events are built up to it); frees the
    baskets, lines and events of ``w`` as soon as their tables exist."""
    products, account_email, devices = w["products"], w["account_email"], w.pop("devices")
    sources: dict[str, pd.DataFrame] = {}
    sources["crm_contacts"] = src.crm(w["in_crm"], account_email)
    _mark("crm", t_start)
    bk, ln = w.pop("bk"), w.pop("ln")
    sources["online_orders"], sources["order_lines"] = src.online(
        bk, ln, products, account_email, devices.device_of
    )
    sources["pos_receipts"], sources["receipt_lines"] = src.pos(bk, ln, products, w["stores"])
    del bk, ln
    _mark("orders+pos", t_start)
    sources["web_events"] = src.web(
        w.pop("ev"), products, account_email, devices, until=tl.as_of_end, rng=r_web_src
    )
    _mark("web", t_start)
    sources["support_tickets"] = src.tickets(w.pop("tickets"))
    sources["products"] = pd.DataFrame(
        {
            "sku": s(products["sku"]),
            "name": s(products["name"]),
            "category": s(products["category_name"]),
            "price": products["price"].to_numpy(),
            "margin": products["margin"].to_numpy(),
        }
    )
    return sources


_DEFECT_COLUMNS = (("table", "string"), ("source_row", "int64"), ("record_id", "string"),
                   ("column", "string"), ("defect", "string"), ("value", "string"))  # fmt: skip


def _cut(sources, keep, defects: bool, r_def, cfg, whole) -> tuple[dict, pd.DataFrame]:
    """The sources cut to the rows dated up to as_of (``keep``), with their defects injected
    when ``defects``; and ``truth.defects``."""
    if defects:
        return inject_defects(sources, r_def, cfg.defects, whole, keep)
    for name, k in keep.items():
        sources[name] = sources[name].iloc[:k].reset_index(drop=True)
    return sources, pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DEFECT_COLUMNS})


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
    present = pc.unique(_arrow(truth["record_person"]["person_id"]))
    for name in ("people", "preferences", "future_orders", "future_lines", "future_events"):
        t = truth[name]
        # Arrow's hash lookup: pandas' isin on Arrow strings boxes every value of the set
        mask = pc.is_in(_arrow(t["person_id"]), value_set=present).to_numpy(zero_copy_only=False)
        if not mask.all():
            truth[name] = t[mask].reset_index(drop=True)


def _arrow(col: pd.Series) -> pa.ChunkedArray:
    """The Arrow strings of a text column (no copy for a ``string[pyarrow]`` one)."""
    arr = col.array
    if hasattr(arr, "_pa_array"):
        return arr._pa_array
    return pa.chunked_array([pa.array(col.to_numpy(dtype=object), type=pa.string())])


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
