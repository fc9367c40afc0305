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

from cemlib.synth import crm
from cemlib.synth.behaviour import Timeline
from cemlib.synth.catalog import CATEGORIES
from cemlib.synth.config import SynthConfig
from cemlib.synth.devices import Devices
from cemlib.synth.memory import release
from cemlib.synth.noise import (
    PHONE_STYLE_BY_SOURCE,
    TEXT,
    as_str,
    format_phones,
    ids,
    other_provider,
    random_phone_styles,
    vary_emails,
    where,
)
from cemlib.synth.people import unique_addresses
from cemlib.synth.text import address_text, coded, digits, fmt_ts, pick, s

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
        typos, missing fields and consents (:mod:`cemlib.synth.crm`)."""
        rng, nz, p = self.rng, self.cfg.noise, self.people
        person, is_dup, t = crm.registrations(self, in_crm)
        nm = crm.names(rng, nz, p, person)
        phone, email = crm.contacts(self, person, is_dup, account_email)
        f = crm.fields(rng, nz, p, person, is_dup, phone, email)
        df, rid, order = crm.frame(self.tl, person, t, nm, phone, email, f)
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
