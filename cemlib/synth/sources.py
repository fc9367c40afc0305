"""The source tables as a retailer's systems export them, built from what people did.

Text columns are pyarrow strings (``string[pyarrow]``), timestamps are text
``YYYY-MM-DD HH:MM:SS`` and dates ``YYYY-MM-DD`` (as a CSV export holds them), quantities are
integers and prices floats with two decimals. Every table also yields its ``record_person``
truth: which person each row belongs to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.synth.behaviour import Timeline
from cemlib.synth.catalog import CATEGORIES
from cemlib.synth.config import SynthConfig
from cemlib.synth.memory import release
from cemlib.synth.noise import (
    PHONE_STYLE_BY_SOURCE,
    TEXT,
    apply_typos,
    as_str,
    by_group,
    cat,
    format_phones,
    hash64,
    hex_ids,
    hex_of,
    ids,
    other_provider,
    random_phone_styles,
    vary_emails,
    where,
    zfill,
)
from cemlib.synth.people import unique_addresses
from cemlib.synth.pools import CITIES

STR = pd.StringDtype("pyarrow")
#: web events are built this many at a time (memory stays flat for a million people)
WEB_CHUNK = 1 << 19
RECORD_TABLES = ["crm_contacts", "online_orders", "pos_receipts", "web_events", "support_tickets"]
CATEGORY_NAMES = np.array([c.name for c in CATEGORIES])
TOPICS = np.array(
    [
        "Доставка",
        "Возврат товара",
        "Качество товара",
        "Оплата",
        "Бонусная программа",
        "Гарантия",
        "Другое",
    ]
)
TICKET_CHANNELS = np.array(["телефон", "email", "чат", "приложение"])
EVENT_TYPES = np.array(["view", "cart", "search", "click"])


def s(arr) -> pd.Series:
    """A pandas ``string[pyarrow]`` series from a pyarrow array or anything array-like."""
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([as_str(c) for c in arr.chunks], type=TEXT)
        return pd.Series(pd.arrays.ArrowStringArray(arr), dtype=STR)
    if isinstance(arr, pa.Array):
        return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([as_str(arr)])), dtype=STR)
    return pd.Series(arr, dtype=STR)


def pick(values, idx) -> pa.Array:
    """``values[idx]`` as a pyarrow string array, without a numpy/object copy of the strings."""
    if isinstance(values, pd.Series):
        values = values.array
    arr = values if isinstance(values, pa.Array) else as_str(pa.array(values))
    return as_str(arr).take(pa.array(np.asarray(idx, dtype=np.int64)))


def coded(categories, codes) -> pd.Categorical:
    """A categorical column (``-1`` = missing): low-cardinality text costs one small int a row."""
    cats = list(categories.astype(str) if isinstance(categories, pd.Series) else categories)
    codes = np.asarray(codes)
    dtype = np.int8 if len(cats) < 127 else np.int16 if len(cats) < 32000 else np.int32
    return pd.Categorical.from_codes(codes.astype(dtype), categories=cats)


def fmt_ts(tl: Timeline, t: np.ndarray) -> pa.Array:
    """Days since start as ``YYYY-MM-DD HH:MM:SS`` text, as exports write them."""
    return pc.strftime(pa.array(tl.to_datetime(t)), format="%Y-%m-%d %H:%M:%S")


def digits(values: np.ndarray) -> pa.Array:
    """10-digit national numbers (``-1`` = none) as strings, null for none."""
    v = np.asarray(values, dtype=np.int64)
    ok = v >= 0
    return pc.if_else(pa.array(ok), zfill(np.where(ok, v, 0), 10), pa.nulls(len(v), TEXT))


def stores_table(rng: np.random.Generator) -> pd.DataFrame:
    """The chain's stores: about one per 400 thousand inhabitants of a city, at least one."""
    rows = []
    k = 0
    for ci, (city, region, w) in enumerate(CITIES):
        for j in range(max(1, int(round(w / 400)))):
            k += 1
            rows.append((f"ST{k:03d}", city, region, ci, f"ТЦ №{j + 1}, {city}"))
    return pd.DataFrame(rows, columns=["store_id", "city", "region", "_city_idx", "name"])


def address_text(people: pd.DataFrame, person: np.ndarray, style: np.ndarray) -> pa.Array:
    """Delivery addresses written the ways customers type them."""
    city = pick(people["city"], person)
    street = pick(people["address_street"], person)
    house = pa.array(people["address_house"].to_numpy()[person].astype(str))
    flat = pa.array(people["address_flat"].to_numpy()[person].astype(str))
    post = pa.array(people["postcode"].to_numpy()[person].astype(str))
    bare_street = pc.replace_substring_regex(street, r"^(ул\.|пр\.|пер\.) ", "")

    def f(k, idx):
        t = pa.array(idx)
        c, st, h, fl, pcode, bs = (
            x.take(t) for x in (city, street, house, flat, post, bare_street)
        )
        return [
            lambda: cat("г. ", c, ", ", st, ", д. ", h, ", кв. ", fl),
            lambda: cat(pcode, ", г. ", c, ", ", st, ", д. ", h, ", кв. ", fl),
            lambda: cat(c, ", ", bs, " ", h, "-", fl),
            lambda: cat(st, ", д.", h, ", кв.", fl),
        ][k]()

    return by_group(style, 4, f)


class SourceBuilder:
    """Builds each source table and its record -> person truth."""

    def __init__(
        self,
        people,
        tl: Timeline,
        rng: np.random.Generator,
        cfg: SynthConfig,
        ref_end: float | None = None,
    ):
        self.people = people
        self.tl = tl
        #: the end (days since start) of the population period: switch dates and late CRM
        #: registrations are drawn up to it, whatever the table's end
        self.ref_end = tl.as_of_end if ref_end is None else float(ref_end)
        #: the true time of every row of each record table, ascending (the tables are in time
        #: order), and each lines table's parent position: a world is cut at ``as_of`` by these
        self.times: dict[str, np.ndarray] = {}
        self.line_parent: dict[str, np.ndarray] = {}
        self.rng = rng
        self.cfg = cfg
        self.n = len(people)
        self.record_person: list[tuple[str, list, np.ndarray]] = []
        nz = cfg.noise
        self.phone = people["phone_digits"].to_numpy()
        self.phone2 = people["phone2_digits"].to_numpy()
        self.email = people["email"].to_numpy()
        self.email2 = people["email2"].to_numpy()
        # a new mailbox for a second account: the same local part at another provider, with a
        # suffix when another person already holds that address or makes the same one
        alt = np.asarray(
            other_provider(pa.array(self.email, type=TEXT)).to_numpy(zero_copy_only=False),
            dtype=object,
        )
        mine = alt == self.email2
        pool = unique_addresses(
            np.concatenate([self.email, self.email2, np.where(mine, None, alt)])
        )
        self.new_mailbox = np.where(mine, alt, pool[2 * self.n :])
        hh = people["_hh"].to_numpy()
        rank = people["household_rank"].to_numpy()
        head = np.zeros(hh.max() + 1, dtype=np.int64)
        head[hh[rank == 0]] = np.flatnonzero(rank == 0)
        spouse = np.full(hh.max() + 1, -1, dtype=np.int64)
        spouse[hh[rank == 1]] = np.flatnonzero(rank == 1)
        # the family phone: the head's phone, used by the others; the head uses the spouse's
        me_head = rank == 0
        other = np.where(me_head, spouse[hh], head[hh])
        self.family_phone = np.where(other >= 0, self.phone[np.maximum(other, 0)], -1)
        self.family_email = np.where(other >= 0, self.email[np.maximum(other, 0)], None)
        self.use_second = nz.use_second
        # people with a second address switch to it at some point of their history
        t0 = people["_t0"].to_numpy()
        switch = t0 + rng.random(self.n) * np.maximum(self.ref_end - t0, 1.0)
        switches = pd.notna(self.email2) & (rng.random(self.n) < nz.email_switch)
        self.email_switch = np.where(switches, switch, np.inf)

    # -- helpers --------------------------------------------------------------------------
    def _truth(
        self, table: str, record_ids: pa.Array | pa.ChunkedArray, person: np.ndarray
    ) -> None:
        chunks = record_ids.chunks if isinstance(record_ids, pa.ChunkedArray) else [record_ids]
        self.record_person.append((table, [as_str(c) for c in chunks], np.asarray(person)))

    def record_person_table(self, keep: dict[str, int] | None = None) -> pd.DataFrame:
        """``truth.record_person``: the id strings are shared with the source tables, not copied.

        ``keep`` gives the rows of each table kept (the first ones, the tables being in time
        order); the others are left out.
        """
        parts = self.record_person
        if keep is not None:
            parts = [
                (t, [pa.chunked_array(chunks, type=TEXT).slice(0, keep[t])], p[: keep[t]])
                for t, chunks, p in parts
            ]
            parts = [(t, [c for c in chunks[0].chunks], p) for t, chunks, p in parts]
        codes = np.concatenate(
            [np.full(len(p), RECORD_TABLES.index(t), dtype=np.int8) for t, _, p in parts]
        )
        record_id = pa.chunked_array([c for _, chunks, _ in parts for c in chunks], type=TEXT)
        person = np.concatenate([p for _, _, p in parts])
        self.record_person = []
        return pd.DataFrame(
            {
                "source_table": pd.Categorical.from_codes(codes, categories=RECORD_TABLES),
                "record_id": s(record_id),
                "person_id": s(pick(self.people["person_id"], person)),
            }
        )

    def person_phone(self, person: np.ndarray, p_second: float, p_family: float, p_missing: float):
        """The phone a record carries: own, second, a family member's, or none."""
        rng = self.rng
        u = rng.random(len(person))
        ph = self.phone[person].copy()
        ph2 = self.phone2[person]
        fam = self.family_phone[person]
        use2 = (ph2 >= 0) & (rng.random(len(person)) < p_second)
        ph = np.where(use2, ph2, ph)
        usef = (fam >= 0) & (u < p_family)
        ph = np.where(usef, fam, ph)
        ph = np.where(rng.random(len(person)) < p_missing, -1, ph)
        return ph

    def styled_phone(self, ph: np.ndarray, source: str) -> pa.Array:
        """Phone digits written in the styles the ``source`` table uses."""
        styles = random_phone_styles(self.rng, len(ph), PHONE_STYLE_BY_SOURCE[source])
        return format_phones(digits(ph), styles)

    def person_email(
        self, person: np.ndarray, base: np.ndarray, p_second: float, p_missing: float, t=None
    ):
        """The e-mail a record carries; after a person's switch date mostly the second one."""
        rng = self.rng
        e = base[person]
        e2 = self.email2[person]
        p2 = np.full(len(person), p_second, dtype=float)
        if t is not None:
            p2 = np.where(t >= self.email_switch[person], 0.85, p2 * 0.5)
        use2 = pd.notna(e2) & (rng.random(len(person)) < p2)
        e = np.where(use2, e2, e)
        # people without an address of their own give a family member's
        fam = self.family_email[person]
        borrow = (
            pd.isna(e) & pd.notna(fam) & (rng.random(len(person)) < self.cfg.noise.family_email)
        )
        e = np.where(borrow, fam, e)
        e = np.where(rng.random(len(person)) < p_missing, None, e)
        return vary_emails(rng, pa.array(e, type=TEXT), self.cfg.noise)

    # -- CRM --------------------------------------------------------------------------------
    def crm(self, in_crm: np.ndarray, account_email: np.ndarray) -> pd.DataFrame:
        """``crm_contacts``: one record per person in the CRM plus duplicate registrations, with
        typos, missing fields and consents."""
        rng, nz, p, tl = self.rng, self.cfg.noise, self.people, self.tl
        base = np.flatnonzero(in_crm)
        dup = base[rng.random(len(base)) < nz.crm_duplicate]
        trip = dup[rng.random(len(dup)) < nz.crm_triplicate]
        person = np.concatenate([base, dup, trip])
        is_dup = np.concatenate([np.zeros(len(base), bool), np.ones(len(dup) + len(trip), bool)])
        t0 = p["_t0"].to_numpy()[person]
        later = t0 + rng.uniform(1, 700, len(person))
        ref = self.ref_end
        t = np.where(
            is_dup & (later < ref),
            later,
            np.where(is_dup, t0 + rng.uniform(0, np.maximum(ref - t0, 0.0)), t0),
        )
        t = np.minimum(t, tl.as_of_end - 1e-4)
        n = len(person)

        # names
        latin = rng.random(n) < nz.latin_name
        first = where(
            latin,
            pick(p["first_name_lat"], person),
            pick(p["first_name"], person),
        )
        last = where(
            latin,
            pick(p["last_name_lat"], person),
            pick(p["last_name"], person),
        )
        middle = where(
            latin,
            pick(p["middle_name_lat"], person),
            pick(p["middle_name"], person),
        )
        first = apply_typos(rng, first, nz.name_typo)
        last = apply_typos(rng, last, nz.name_typo)
        middle = where(rng.random(n) >= nz.missing_patronymic, middle, None)
        full_style = rng.random(n) < nz.crm_full_name_style
        first_last = rng.random(n) < nz.name_order_first_last
        fio = pc.binary_join_element_wise(
            as_str(last), as_str(first), as_str(pc.fill_null(middle, "")), pa.scalar(" ", TEXT)
        )
        fio = pc.utf8_rtrim_whitespace(fio)
        fl = pc.binary_join_element_wise(as_str(first), as_str(last), pa.scalar(" ", TEXT))
        full = where(full_style, where(first_last, fl, fio), None)
        first_c = where(~full_style, first, None)
        last_c = where(~full_style, last, None)
        middle_c = where(~full_style, middle, None)

        # contacts
        ph = self.person_phone(
            person, np.where(is_dup, 0.6, 0.05), 0.03 + 0.1 * is_dup, nz.crm_missing_phone
        )
        phone = self.styled_phone(ph, "crm_contacts")
        # a duplicate registration is usually made with another address: the second one,
        # or a new mailbox with the same name at another provider
        e1, e2, alt = self.email[person], self.email2[person], self.new_mailbox[person]
        u = rng.random(n)
        dup_addr = np.where(pd.notna(e2) & (u < 0.6), e2, np.where(rng.random(n) < 0.6, alt, e1))
        acct = np.where(is_dup, dup_addr, account_email[person])
        self.dup_email = np.full(self.n, None, dtype=object)
        first_dup = is_dup & (acct != account_email[person]) & pd.notna(acct)
        self.dup_email[person[first_dup]] = acct[first_dup]
        em = np.where(rng.random(n) < nz.crm_missing_email, None, acct)
        email = vary_emails(rng, pa.array(em, type=TEXT), nz)

        bd = p["birth_date"].to_numpy()[person].astype("datetime64[D]")
        bstr = pc.strftime(pa.array(bd.astype("datetime64[s]")), format="%Y-%m-%d")
        day = pc.utf8_slice_codeunits(bstr, 8, 10)
        mon = pc.utf8_slice_codeunits(bstr, 5, 7)
        dd = bd.astype("datetime64[D]") - bd.astype("datetime64[M]").astype("datetime64[D]") + 1
        mm = bd.astype("datetime64[M]").astype(np.int64) % 12 + 1
        can_swap = (dd.astype(np.int64) <= 12) & (dd.astype(np.int64) != mm)
        swap = can_swap & (rng.random(n) < nz.birth_date_swapped / 0.38)
        swapped = cat(pc.utf8_slice_codeunits(bstr, 0, 5), day, "-", mon)
        birth = where(swap, swapped, bstr)
        birth = where(rng.random(n) >= nz.crm_missing_birth_date, birth, None)
        city_v = pick(p["city"], person)
        city = where(rng.random(n) < 0.12, cat("г. ", city_v), city_v)
        city = where(rng.random(n) >= nz.crm_missing_city, city, None)
        gender = pa.array(np.where(p["gender"].to_numpy()[person] == "M", "М", "Ж"))
        gender = where(rng.random(n) >= 0.05, gender, None)
        card_no = p["loyalty_card_no"].to_numpy()[person]
        has_card = (card_no >= 0) & (~is_dup | (rng.random(n) < 0.3))
        card = where(has_card, pa.array(np.maximum(card_no, 0)).cast(TEXT), None)
        has_em = pc.is_valid(email).to_numpy(zero_copy_only=False)
        has_ph = pc.is_valid(phone).to_numpy(zero_copy_only=False)
        consent_email = has_em & (rng.random(n) < 0.65)
        consent_sms = has_ph & (rng.random(n) < 0.55)

        order = np.lexsort((person, t))
        rid = ids("C", n, 8)
        df = pd.DataFrame(
            {
                "contact_id": s(rid),
                "full_name": s(full.take(pa.array(order))),
                "last_name": s(last_c.take(pa.array(order))),
                "first_name": s(first_c.take(pa.array(order))),
                "middle_name": s(middle_c.take(pa.array(order))),
                "phone": s(phone.take(pa.array(order))),
                "email": s(email.take(pa.array(order))),
                "birth_date": s(birth.take(pa.array(order))),
                "gender": s(gender.take(pa.array(order))),
                "city": s(city.take(pa.array(order))),
                "loyalty_card": s(card.take(pa.array(order))),
                "registered_at": s(fmt_ts(self.tl, t[order])),
                "consent_email": consent_email[order],
                "consent_sms": consent_sms[order],
            }
        )
        self._truth("crm_contacts", rid, person[order])
        self.times["crm_contacts"] = t[order]
        return df

    # -- online orders -----------------------------------------------------------------------
    def online(self, bk: pd.DataFrame, ln: pd.DataFrame, products, account_email, device_of):
        """``online_orders`` and ``order_lines`` of the online baskets up to as_of, with the
        account's e-mail, phone and device."""
        rng, nz = self.rng, self.cfg.noise
        sel = np.flatnonzero(bk["online"].to_numpy() & (bk["t"].to_numpy() < self.tl.as_of_end))
        person = bk["person"].to_numpy()[sel]
        n = len(sel)
        oid = ids("O", n, 9, start=100001)
        ph = self.person_phone(
            person, nz.use_second * 0.5, nz.order_family_phone, nz.order_missing_phone
        )
        email = self.person_email(
            person, account_email, nz.use_second, nz.order_missing_email, bk["t"].to_numpy()[sel]
        )
        addr_style = rng.choice(4, size=n, p=[0.45, 0.15, 0.25, 0.15])
        addr = address_text(self.people, person, addr_style)
        addr = where(rng.random(n) >= 0.10, addr, None)  # pickup: no delivery address
        orders = pd.DataFrame(
            {
                "order_id": s(oid),
                "ordered_at": s(fmt_ts(self.tl, bk["t"].to_numpy()[sel])),
                "email": s(email),
                "phone": s(self.styled_phone(ph, "online_orders")),
                "device_id": s(device_of(person, bk["t"].to_numpy()[sel])),
                "delivery_address": s(addr),
            }
        )
        self._truth("online_orders", oid, person)
        self.times["online_orders"] = bk["t"].to_numpy()[sel]
        lines = self._lines(ln, bk, sel, oid, products, "order_id", "OL", 10)
        return orders, lines

    def _lines(self, ln, bk, sel, parent_ids, products, id_col, prefix, width):
        pos = np.full(len(bk), -1, dtype=np.int64)
        pos[sel] = np.arange(len(sel))
        lb = ln["basket"].to_numpy()
        lsel = np.flatnonzero(pos[lb] >= 0)
        lsel = lsel[np.lexsort((ln["line_no"].to_numpy()[lsel], pos[lb[lsel]]))]
        lid = ids(prefix, len(lsel), width, start=1)
        self.line_parent[id_col] = pos[lb[lsel]]
        return pd.DataFrame(
            {
                "line_id": s(lid),
                id_col: s(parent_ids.take(pa.array(pos[lb[lsel]]))),
                "sku": coded(products["sku"], ln["sku_idx"].to_numpy()[lsel]),
                "quantity": ln["quantity"].to_numpy()[lsel].astype(np.int64),
                "price": ln["price"].to_numpy()[lsel],
            }
        )

    # -- POS receipts --------------------------------------------------------------------------
    def pos(self, bk, ln, products, stores):
        """``pos_receipts`` and ``receipt_lines`` of the store baskets up to as_of, with a loyalty
        card or phone on some receipts."""
        rng, nz, p = self.rng, self.cfg.noise, self.people
        sel = np.flatnonzero(~bk["online"].to_numpy() & (bk["t"].to_numpy() < self.tl.as_of_end))
        person = bk["person"].to_numpy()[sel]
        n = len(sel)
        rid = ids("R", n, 10, start=1)
        card_no = p["loyalty_card_no"].to_numpy()[person]
        use_card = (card_no >= 0) & (rng.random(n) < nz.receipt_card)
        typed = ~use_card & (rng.random(n) < nz.receipt_phone)
        ph = self.person_phone(person, nz.use_second * 0.3, 0.08, 0.0)
        phone = where(typed, self.styled_phone(ph, "pos_receipts"), None)
        card = where(use_card, pa.array(np.maximum(card_no, 0)).cast(TEXT), None)
        # home store in the person's city, sometimes another store of the city
        city = p["_city_idx"].to_numpy()[person]
        st_city = stores["_city_idx"].to_numpy()
        first = np.searchsorted(st_city, city)
        count = np.searchsorted(st_city, city, side="right") - first
        home = (p["_hh"].to_numpy()[person] * 7 + 3) % count
        other = rng.integers(0, 1 << 30, n) % count
        store = first + np.where(rng.random(n) < 0.8, home, other)
        receipts = pd.DataFrame(
            {
                "receipt_id": s(rid),
                "store_id": coded(stores["store_id"], store),
                "purchased_at": s(fmt_ts(self.tl, bk["t"].to_numpy()[sel])),
                "loyalty_card": s(card),
                "phone": s(phone),
            }
        )
        self._truth("pos_receipts", rid, person)
        self.times["pos_receipts"] = bk["t"].to_numpy()[sel]
        lines = self._lines(ln, bk, sel, rid, products, "receipt_id", "RL", 11)
        return receipts, lines

    # -- web events ---------------------------------------------------------------------------
    def web(
        self,
        ev: pd.DataFrame,
        products,
        account_email,
        devices: Devices,
        chunk: int | None = None,
        until: float | None = None,
        rng: np.random.Generator | None = None,
    ):
        """Web events, built chunk by chunk (in time order) so memory stays flat at scale.

        ``until`` (days since start): the chunks after the one holding that time are not built
        (their draws come after, from ``rng``, so the events built are the same either way).
        """
        rng, nz = rng or self.rng, self.cfg.noise
        chunk = chunk or WEB_CHUNK
        order = np.argsort(ev["t"].to_numpy(), kind="stable")
        if until is not None:
            last = int(np.searchsorted(ev["t"].to_numpy()[order], until))
            order = order[: min(len(order), -(-max(last, 1) // chunk) * chunk)]
        n = len(order)
        ev_person, ev_t, ev_type = (ev[c].to_numpy() for c in ("person", "t", "etype"))
        t0 = self.people["_t0"].to_numpy()
        # the login of an event: 0 = the account's address, 1 = a second account's,
        # 2 = the address the person switched to; an index into one address book
        dup_email = getattr(self, "dup_email", np.full(self.n, None, dtype=object))
        acct_ok, dup_ok, e2_ok = pd.notna(account_email), pd.notna(dup_email), pd.notna(self.email2)
        acct_is_primary = acct_ok & (account_email == self.email)
        book = pa.concat_arrays(
            [pa.array(list(a), type=TEXT) for a in (account_email, dup_email, self.email2)]
        )
        parts: dict[str, list] = {
            k: [] for k in ("event_id", "ts", "device_id", "cookie_id", "email")
        }
        for a in range(0, n, chunk):
            sl = order[a : a + chunk]
            person, t, etype = ev_person[sl], ev_t[sl], ev_type[sl]
            m = len(sl)
            which = np.where(dup_ok[person] & (rng.random(m) < 0.4), 1, 0)
            switched = (which == 0) & acct_is_primary[person] & (t >= self.email_switch[person])
            which = np.where(switched, 2, which).astype(np.int64)
            has = np.where(
                which == 0, acct_ok[person], np.where(which == 1, dup_ok[person], e2_ok[person])
            )
            p_login = np.where(etype == 1, 0.75, nz.web_logged_in)
            logged = has & (rng.random(m) < p_login) & (t >= t0[person])
            dev = devices.device_index(person, t, stream=a)
            parts["event_id"].append(ids("E", m, 11, start=a + 1))
            parts["ts"].append(as_str(fmt_ts(self.tl, t)))
            parts["device_id"].append(pick(devices.device_ids, dev))
            parts["cookie_id"].append(devices.cookie_of(dev, t))
            book_idx = person.astype(np.int64) + which * self.n
            parts["email"].append(where(logged, pick(book, book_idx), None))
            release()
        cols = {k: pa.chunked_array(v, type=TEXT) for k, v in parts.items()}
        del parts, book
        events = pd.DataFrame(
            {
                "event_id": s(cols["event_id"]),
                "ts": s(cols["ts"]),
                "device_id": s(cols["device_id"]),
                "cookie_id": s(cols["cookie_id"]),
                "email": s(cols["email"]),
                "event_type": coded(EVENT_TYPES, ev_type[order]),
                "sku": coded(products["sku"], ev["sku_idx"].to_numpy()[order]),
                "category": coded(CATEGORY_NAMES, ev["category"].to_numpy()[order]),
            }
        )
        self._truth("web_events", cols["event_id"], ev_person[order])
        self.times["web_events"] = ev_t[order]
        return events

    # -- support -------------------------------------------------------------------------------
    def tickets(self, tk: pd.DataFrame):
        """``support_tickets`` up to as_of, with the contact the customer wrote from."""
        rng, nz = self.rng, self.cfg.noise
        b = self.cfg.behaviour
        sel = np.flatnonzero(tk["t"].to_numpy() < self.tl.as_of_end)
        person = tk["person"].to_numpy()[sel]
        n = len(sel)
        tid = ids("T", n, 8, start=1)
        u = rng.random(n)
        phone_only = u < nz.ticket_phone_only
        email_only = (u >= nz.ticket_phone_only) & (u < nz.ticket_phone_only + nz.ticket_email_only)
        ph = self.person_phone(person, nz.use_second, 0.05, 0.0)
        em = self.person_email(person, self.email, nz.use_second, 0.0, tk["t"].to_numpy()[sel])
        phone = where(~email_only, self.styled_phone(ph, "support_tickets"), None)
        email = where(~phone_only, em, None)
        channel = np.where(phone_only, 0, np.where(email_only, rng.choice([1, 2, 3], n), 2))
        bad = tk["bad"].to_numpy()[sel]
        csat = np.where(
            bad, rng.choice([1, 2], n, p=[0.6, 0.4]), rng.choice([3, 4, 5], n, p=[0.2, 0.35, 0.45])
        )
        csat = pd.array(np.where(rng.random(n) < b.csat_missing, pd.NA, csat), dtype="Int64")
        topic = rng.choice(len(TOPICS), n, p=[0.3, 0.18, 0.17, 0.1, 0.1, 0.08, 0.07])
        out = pd.DataFrame(
            {
                "ticket_id": s(tid),
                "created_at": s(fmt_ts(self.tl, tk["t"].to_numpy()[sel])),
                "phone": s(phone),
                "email": s(email),
                "channel": coded(TICKET_CHANNELS, channel),
                "topic": coded(TOPICS, topic),
                "csat": csat,
            }
        )
        self._truth("support_tickets", tid, person)
        self.times["support_tickets"] = tk["t"].to_numpy()[sel]
        return out


#: share of households of 2+ with a shared family computer, and how often the others use it
FAMILY_DEVICE_SHARE = 0.30
FAMILY_DEVICE_USE = 0.25


class Devices:
    """Each person's devices (1-3) and the cookie ids that rotate on each device."""

    def __init__(self, people: pd.DataFrame, rng: np.random.Generator):
        n = len(people)
        online = people["online_share"].to_numpy()
        self.n_dev = 1 + rng.binomial(2, np.clip(online, 0.05, 0.9))
        self.first = np.concatenate([[0], np.cumsum(self.n_dev)[:-1]])
        total = int(self.n_dev.sum())
        self.device_ids = hex_ids(rng, total, 8)
        self.cookie_life = rng.uniform(45, 420, total)
        self.cookie_phase = rng.uniform(0, 1, total)
        self.seed = int(rng.integers(2**31))
        self.n = n
        # some households share a family computer: the first device of the household's head
        hh = people["_hh"].to_numpy()
        rank = people["household_rank"].to_numpy()
        head = np.zeros(hh.max() + 1, dtype=np.int64)
        head[hh[rank == 0]] = np.flatnonzero(rank == 0)
        shares = (people["household_size"].to_numpy() > 1) & (
            rng.random(hh.max() + 1) < FAMILY_DEVICE_SHARE
        )[hh]
        self.family_device = np.where(shares & (rank > 0), self.first[head[hh]], -1)

    def device_index(self, person: np.ndarray, t: np.ndarray, stream: int = 0) -> np.ndarray:
        """Which device each event or order used: mostly the person's first, sometimes another
        of theirs, and in some households the family computer."""
        r = np.random.default_rng([self.seed, len(person), stream])
        main = r.random(len(person)) < 0.7
        other = r.integers(0, 1 << 30, len(person)) % self.n_dev[person]
        own = self.first[person] + np.where(main, 0, other)
        fam = self.family_device[person]
        return np.where((fam >= 0) & (r.random(len(person)) < FAMILY_DEVICE_USE), fam, own)

    def device_of(self, person: np.ndarray, t: np.ndarray) -> pa.Array:
        """The device id ``person`` used at time ``t``."""
        return pick(self.device_ids, self.device_index(person, t))

    def cookie_of(self, dev: np.ndarray, t: np.ndarray) -> pa.Array:
        """The cookie a device carried at time ``t``: renewed every ``cookie_life`` days."""
        epoch = np.floor(t / self.cookie_life[dev] + self.cookie_phase[dev]).astype(np.int64)
        return hex_of(hash64(dev.astype(np.int64) * 4096 + epoch, self.seed), 14)
