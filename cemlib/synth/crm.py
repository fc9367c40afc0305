"""The CRM export, ``crm_contacts``: one record per person in the CRM plus duplicate
registrations (usually with another e-mail), names in Cyrillic or Latin with typos, contacts,
birth dates (some with day and month swapped), cities, cards and consents. Each phase draws
from the builder's generator in turn, in the order :meth:`SourceBuilder.crm` calls them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.synth.noise import TEXT, apply_typos, as_str, cat, ids, vary_emails, where
from cemlib.synth.text import date_text, fmt_ts, pick, s


def registrations(src, in_crm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The person of each CRM record, whether it is a duplicate registration, and its time
    (a duplicate registers later, up to the end of the population period)."""
    rng, nz, p, tl = src.rng, src.cfg.noise, src.people, src.tl
    base = np.flatnonzero(in_crm)
    dup = base[rng.random(len(base)) < nz.crm_duplicate]
    trip = dup[rng.random(len(dup)) < nz.crm_triplicate]
    person = np.concatenate([base, dup, trip])
    is_dup = np.concatenate([np.zeros(len(base), bool), np.ones(len(dup) + len(trip), bool)])
    t0 = p["_t0"].to_numpy()[person]
    later = t0 + rng.uniform(1, 700, len(person))
    ref = src.ref_end
    t = np.where(
        is_dup & (later < ref),
        later,
        np.where(is_dup, t0 + rng.uniform(0, np.maximum(ref - t0, 0.0)), t0),
    )
    t = np.minimum(t, tl.as_of_end - 1e-4)
    return person, is_dup, t


def names(rng, nz, p: pd.DataFrame, person: np.ndarray) -> dict[str, pa.Array]:
    """Full name or first/last/middle names as typed at registration."""
    n = len(person)
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

    return {"full": full, "first": first_c, "last": last_c, "middle": middle_c}


def contacts(src, person, is_dup, account_email) -> tuple[pa.Array, pa.Array]:
    """Phone and e-mail of each record; a duplicate's e-mail is remembered in
    ``src.dup_email``."""
    rng, nz, n = src.rng, src.cfg.noise, len(person)
    ph = src.person_phone(
        person, np.where(is_dup, 0.6, 0.05), 0.03 + 0.1 * is_dup, nz.crm_missing_phone
    )
    phone = src.styled_phone(ph, "crm_contacts")
    # a duplicate registration is usually made with another address: the second one,
    # or a new mailbox with the same name at another provider
    e1, e2, alt = src.email[person], src.email2[person], src.new_mailbox[person]
    u = rng.random(n)
    dup_addr = np.where(pd.notna(e2) & (u < 0.6), e2, np.where(rng.random(n) < 0.6, alt, e1))
    acct = np.where(is_dup, dup_addr, account_email[person])
    src.dup_email = np.full(src.n, None, dtype=object)
    first_dup = is_dup & (acct != account_email[person]) & pd.notna(acct)
    src.dup_email[person[first_dup]] = acct[first_dup]
    em = np.where(rng.random(n) < nz.crm_missing_email, None, acct)
    email = vary_emails(rng, pa.array(em, type=TEXT), nz)

    return phone, email


def fields(rng, nz, p, person, is_dup, phone, email) -> dict:
    """Birth date, city, gender, loyalty card and the two consents of each record."""
    n = len(person)
    bd = p["birth_date"].to_numpy()[person].astype("datetime64[D]")
    bstr = date_text(bd)
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

    return {"birth": birth, "city": city, "gender": gender, "card": card,
            "consent_email": consent_email, "consent_sms": consent_sms}  # fmt: skip


def frame(
    tl, person, t, nm: dict, phone, email, f: dict
) -> tuple[pd.DataFrame, pa.Array, np.ndarray]:
    """The table in time order, its record ids and the order of the records."""
    n = len(person)
    full, last_c, first_c, middle_c = nm["full"], nm["last"], nm["first"], nm["middle"]
    birth, gender, city, card = f["birth"], f["gender"], f["city"], f["card"]
    consent_email, consent_sms = f["consent_email"], f["consent_sms"]
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
            "registered_at": s(fmt_ts(tl, t[order])),
            "consent_email": consent_email[order],
            "consent_sms": consent_sms[order],
        }
    )
    return df, rid, order
