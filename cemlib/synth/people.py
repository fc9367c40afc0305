"""The people of the world: names, households, contacts, addresses, covariates.

Faker's ``ru_RU`` provider is used once to build pools (first names, patronymics, gendered
surnames, street names); people are then drawn from the pools with numpy, so a million people
cost seconds. Pools are weighted (Zipf over Faker's frequency-ordered surnames, popular modern
first names boosted), so different people with the same common name in the same city occur
naturally.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.synth.catalog import N_CAT, SEGMENT_NAMES, SEGMENTS, category_index
from cemlib.synth.config import SynthConfig
from cemlib.synth.noise import by_group, cat, unique_ints, zfill
from cemlib.synth.pools import (
    CITIES,
    CITY_NAMES,
    CITY_REGIONS,
    EMAIL_DOMAINS,
    METRO,
    MOBILE_CODES,
    Pools,
    build_pools,
    latin,
)


def make_people(
    n: int,
    rng: np.random.Generator,
    cfg: SynthConfig,
    start: pd.Timestamp,
    joined_by: pd.Timestamp,
) -> pd.DataFrame:
    """One row per true person with names, household, contacts and behaviour covariates.

    People join between ``start`` and ``joined_by``; ages are drawn as at ``joined_by``. Neither
    depends on the ``as_of`` a world is cut at, so a later ``as_of`` has the same people.
    Every phase draws from ``rng`` in turn, in this order.
    """
    pools = build_pools()
    nz, bh = cfg.noise, cfg.behaviour
    hh, rank, sizes, n_hh = _households(rng, n, cfg.household_sizes)
    male, age, birth = _gender_age(rng, n, n_hh, hh, rank, sizes, joined_by)
    names = _names(rng, pools, n, n_hh, hh, rank, male)
    home = _homes(rng, pools, n_hh, hh)
    contacts = _contacts(rng, n, nz, names, birth)
    loyal, card = _loyalty(rng, n, n_hh, hh, sizes[hh], age, nz, bh)
    online_share, seg, pref = _covariates(rng, n, age, male)
    city, hh_size = home["city"], sizes[hh]
    metro = np.isin(np.array(CITY_NAMES)[city], list(METRO))
    join = _join_dates(rng, n, start, joined_by, bh.early_joiners)
    people = pd.DataFrame(
        {
            "person_id": np.asarray(cat("P", zfill(np.arange(1, n + 1), 8))),
            "first_name": names["first"],
            "last_name": names["last"],
            "middle_name": names["middle"],
            "first_name_lat": names["first_lat"],
            "last_name_lat": names["last_lat"],
            "middle_name_lat": names["middle_lat"],
            "gender": np.where(male, "M", "F"),
            "birth_date": birth,
            "age": np.round(age, 1),
            "city": np.array(CITY_NAMES)[city],
            "region": np.array(CITY_REGIONS)[city],
            "metro": metro,
            "household_id": np.asarray(cat("H", zfill(hh + 1, 8))),
            "household_size": hh_size,
            "household_rank": rank,
            "address_street": pools.streets[home["street_hh"][hh]],
            "address_house": home["house_hh"][hh],
            "address_flat": home["flat_hh"][hh],
            "postcode": home["postcode_hh"][hh],
            "phone_digits": contacts["phone"],
            "phone2_digits": contacts["phone2"],
            "email": contacts["email"],
            "email2": contacts["email2"],
            "loyalty_member": loyal,
            "loyalty_card_no": card,
            "segment": np.array(SEGMENT_NAMES)[seg],
            "online_share": np.round(online_share, 4),
            "joined_at": join,
        }
    )
    for col in _TEXT_COLUMNS:
        people[col] = people[col].astype(pd.StringDtype("pyarrow"))
    people["_city_idx"] = city
    people["_hh"] = hh
    return people, pref


#: the people table's text columns, stored as pyarrow strings
_TEXT_COLUMNS = ("person_id", "first_name", "last_name", "middle_name", "first_name_lat",
                 "last_name_lat", "middle_name_lat", "gender", "city", "region", "household_id",
                 "address_street", "segment")  # fmt: skip


def _households(rng, n: int, household_sizes) -> tuple:
    """Household of each person (``hh``), their rank in it (0 = head), the sizes and count."""
    sizes_p = np.asarray(household_sizes) / np.sum(household_sizes)
    mean_size = float(np.dot(sizes_p, np.arange(1, len(sizes_p) + 1)))
    sizes = rng.choice(
        np.arange(1, len(sizes_p) + 1), size=int(n / mean_size * 1.2) + 50, p=sizes_p
    )
    cum = np.cumsum(sizes)
    n_hh = int(np.searchsorted(cum, n) + 1)
    sizes = sizes[:n_hh]
    sizes[-1] -= cum[n_hh - 1] - n
    hh = np.repeat(np.arange(n_hh), sizes)
    first_of_hh = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(n) - first_of_hh[hh]
    return hh, rank, sizes, n_hh


def _gender_age(rng, n, n_hh, hh, rank, sizes, joined_by) -> tuple:
    """Gender (a couple at the head of a household), age and birth date as at ``joined_by``."""
    head_male = rng.random(n_hh) < 0.5
    male = np.where(rank == 0, head_male[hh], rng.random(n) < 0.5)
    male = np.where(rank == 1, ~head_male[hh], male)  # spouse
    head_age = np.clip(rng.normal(44, 13, n_hh), 20, 82)
    head_age = np.where(sizes >= 3, np.maximum(head_age, 42), head_age)
    age = np.where(
        rank == 0,
        head_age[hh],
        np.where(
            rank == 1, head_age[hh] + rng.normal(-1, 4, n), head_age[hh] - rng.normal(26, 3, n)
        ),
    )
    age = np.clip(age, 18, 88)
    birth = (joined_by - pd.to_timedelta((age * 365.25).astype(np.int64), unit="D")).normalize()
    birth = birth.to_numpy().astype("datetime64[D]")

    return male, age, birth


def _names(rng, pools: Pools, n, n_hh, hh, rank, male) -> dict[str, np.ndarray]:
    """First, last and middle names (most keep the household's surname), and their Latin."""
    last_idx_hh = rng.choice(len(pools.last_male), size=n_hh, p=pools.w_last)
    own_last = rng.choice(len(pools.last_male), size=n, p=pools.w_last)
    keep_family_name = (rank == 0) | (rng.random(n) < 0.88)
    last_idx = np.where(keep_family_name, last_idx_hh[hh], own_last)
    first_idx_m = rng.choice(len(pools.first_male), size=n, p=pools.w_first_male)
    first_idx_f = rng.choice(len(pools.first_female), size=n, p=pools.w_first_female)
    patr_idx = rng.choice(len(pools.patronymic_male), size=n, p=pools.w_patronymic)
    first = np.where(male, pools.first_male[first_idx_m], pools.first_female[first_idx_f])
    first_lat = np.where(
        male, latin(pools.first_male)[first_idx_m], latin(pools.first_female)[first_idx_f]
    )
    last = np.where(male, pools.last_male[last_idx], pools.last_female[last_idx])
    last_lat = np.where(male, latin(pools.last_male)[last_idx], latin(pools.last_female)[last_idx])
    middle = np.where(male, pools.patronymic_male[patr_idx], pools.patronymic_female[patr_idx])
    middle_lat = np.where(
        male, latin(pools.patronymic_male)[patr_idx], latin(pools.patronymic_female)[patr_idx]
    )

    return {"first": first, "last": last, "middle": middle, "first_lat": first_lat,
            "last_lat": last_lat, "middle_lat": middle_lat}  # fmt: skip


def _homes(rng, pools: Pools, n_hh, hh) -> dict[str, np.ndarray]:
    """Where each household lives: city (by population), street, house, flat, postcode."""
    cw = np.array([c[2] for c in CITIES])
    city_hh = rng.choice(len(CITIES), size=n_hh, p=cw / cw.sum())
    city = city_hh[hh]
    street_hh = rng.integers(len(pools.streets), size=n_hh)
    house_hh = rng.integers(1, 160, size=n_hh)
    flat_hh = rng.integers(1, 400, size=n_hh)
    postcode_hh = 100000 + (city_hh * 7919 + rng.integers(0, 900, n_hh)) % 900000

    return {"city": city, "street_hh": street_hh, "house_hh": house_hh, "flat_hh": flat_hh,
            "postcode_hh": postcode_hh}  # fmt: skip


def _contacts(rng, n, nz, names, birth) -> dict[str, np.ndarray]:
    """Unique mobile numbers (some have two) and e-mails built from the names."""
    first_lat, last_lat = names["first_lat"], names["last_lat"]
    phones = unique_ints(rng, 2 * n, 0, 10_000_000)
    codes = rng.choice(MOBILE_CODES, size=2 * n)
    phone_digits = codes * 10_000_000 + phones
    phone = phone_digits[:n]
    has_phone2 = rng.random(n) < nz.second_phone
    phone2 = np.where(has_phone2, phone_digits[n:], -1)

    domains = np.array([d for d, _ in EMAIL_DOMAINS])
    dw = np.array([w for _, w in EMAIL_DOMAINS])
    birth_year = birth.astype("datetime64[Y]").astype(int) + 1970
    email = _emails(rng, first_lat, last_lat, birth_year, domains, dw / dw.sum())
    email2 = _emails(rng, first_lat, last_lat, birth_year, domains, dw / dw.sum(), alt=True)
    no_email = rng.random(n) < nz.no_email
    has_email2 = (~no_email) & (rng.random(n) < nz.second_email)
    email = np.where(no_email, None, email)
    email2 = np.where(has_email2, email2, None)
    email, email2 = _dedupe_emails(email, email2)

    return {"phone": phone, "phone2": phone2, "email": email, "email2": email2}


def _loyalty(rng, n, n_hh, hh, hh_size, age, nz, bh) -> tuple[np.ndarray, np.ndarray]:
    """Loyalty membership and card numbers (a household may share its first member's card)."""
    loyal = rng.random(n) < bh.loyalty_member * np.where(age > 35, 1.15, 0.8)
    cards = 2_700_000_000_000 + unique_ints(rng, n, 0, 10**9) * 10 + rng.integers(0, 10, n)
    shared_card_hh = rng.random(n_hh) < nz.household_shared_card
    hh_has_loyal = np.zeros(n_hh, dtype=bool)
    np.logical_or.at(hh_has_loyal, hh, loyal)
    head_card = np.full(n_hh, -1, dtype=np.int64)
    first_loyal = np.where(loyal)[0]
    # the household card: the card of the household's first loyal member
    order = first_loyal[::-1]
    head_card[hh[order]] = cards[order]
    use_shared = shared_card_hh[hh] & (hh_size > 1) & (hh_has_loyal[hh])
    loyal = loyal | (use_shared & (rng.random(n) < 0.5))
    card = np.where(loyal, np.where(use_shared, head_card[hh], cards), -1)

    return loyal, card


def _covariates(rng, n, age, male) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Online share, segment and category preferences, drawn from age and gender."""
    young = age < 35
    online_share = np.clip(
        rng.beta(2.0, 3.0, n) + np.where(young, 0.18, 0.0) - np.where(age > 60, 0.2, 0.0), 0.0, 1.0
    )
    seg_w = np.tile(np.array([1.0, 1.0, 1.0, 0.8, 1.0, 0.8, 0.8]), (n, 1))
    seg_w[:, 0] *= np.where(young, 2.2, 0.7) * np.where(male, 1.6, 0.7)
    seg_w[:, 1] *= np.where((age > 25) & (age < 45), 2.0, 0.4)
    seg_w[:, 3] *= np.where(age > 50, 3.0, 0.5)
    seg_w[:, 4] *= np.where(male, 0.3, 2.4)
    seg_w[:, 6] *= np.where(young, 1.6, 0.8)
    seg_w /= seg_w.sum(axis=1, keepdims=True)
    seg = (seg_w.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    alpha = np.full((len(SEGMENT_NAMES), N_CAT), 0.25)
    for s, name in enumerate(SEGMENT_NAMES):
        for j, code in enumerate(SEGMENTS[name]):
            alpha[s, category_index(code)] += 3.0 / (1 + 0.3 * j)
    pref = rng.gamma(alpha[seg]).astype(np.float32)
    pref /= pref.sum(axis=1, keepdims=True)

    return online_share, seg, pref


def _join_dates(rng, n, start, joined_by, early_share) -> np.ndarray:
    """Registration times: an early cohort in the first 60 days, then growth over time."""
    span = (joined_by + pd.Timedelta(days=1) - start).total_seconds()
    early = rng.random(n) < early_share
    u = rng.random(n)
    late = np.sqrt(u) * 0.92 + 0.06 * rng.random(n)  # density rising over time
    frac = np.where(early, rng.random(n) * min(1.0, 60 * 86400 / span), np.clip(late, 0, 0.999))
    day = np.floor(frac * span / 86400.0)
    secs = (day * 86400 + rng.uniform(8 * 3600, 23 * 3600, n)).astype(np.int64)
    return start.to_datetime64().astype("datetime64[s]") + secs.astype("timedelta64[s]")


_WORDS = np.array(
    [
        "sunny",
        "kotik",
        "tigr",
        "star",
        "moon",
        "zaya",
        "lisa",
        "volk",
        "mishka",
        "angel",
        "dream",
        "lucky",
        "happy",
        "best",
        "super",
        "nika",
        "sasha",
        "dima",
        "max",
        "alex",
        "kate",
        "lena",
        "misha",
        "vlad",
        "pro",
        "cool",
        "smart",
        "fox",
        "bear",
    ]
)


def _emails(rng, first_lat, last_lat, year, domains, dw, alt=False) -> np.ndarray:
    n = len(first_lat)
    f = pa.array(np.char.lower(first_lat.astype(str)))
    la = pa.array(np.char.lower(last_lat.astype(str)))
    f1 = pc.utf8_slice_codeunits(f, 0, 1)
    yy = pa.array(np.char.zfill((year % 100).astype(str), 2))
    yyyy = pa.array(year.astype(str))
    num = pa.array(rng.integers(1, 999, n).astype(str))
    word = pa.array(rng.choice(_WORDS, n))
    k = rng.choice(
        8,
        size=n,
        p=[0.08, 0.12, 0.05, 0.10, 0.15, 0.05, 0.25, 0.20]
        if alt
        else [0.25, 0.15, 0.10, 0.15, 0.10, 0.10, 0.10, 0.05],
    )
    variants = [
        lambda: cat(f, ".", la),
        lambda: cat(f1, la, yy),
        lambda: cat(la, ".", f),
        lambda: cat(f, la, yyyy),
        lambda: cat(la, num),
        lambda: cat(f, "_", la),
        lambda: cat(word, "_", la, num),
        lambda: cat(word, num, yy),
    ]
    local = by_group(k, len(variants), lambda i, idx: variants[i]().take(pa.array(idx)))
    dom = rng.choice(domains, size=n, p=dw)
    return np.asarray(cat(local, "@", pa.array(dom)).to_numpy(zero_copy_only=False), dtype=object)


def _dedupe_emails(email: np.ndarray, email2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make every address belong to one person: later holders get a numeric suffix."""
    arr = unique_addresses(np.concatenate([email, email2]))
    return arr[: len(email)], arr[len(email) :]


def unique_addresses(addresses: np.ndarray) -> np.ndarray:
    """Each mailbox once: a later copy gets a numeric suffix on its local part (``a.b@x.ru``
    -> ``a.b17@x.ru``), so earlier holders keep theirs. Spellings of one mailbox count as one
    (``a.b@ya.ru`` is ``a-b@yandex.ru``, Gmail ignores dots: the collection stage's email key)."""
    from cemlib.normalize.emails import email_key

    def keys(values: pd.Series) -> pd.Series:
        text = values.astype("string")
        return email_key(text).fillna(text).astype(object)

    both = pd.Series(addresses, dtype=object)
    key = keys(both)
    for attempt in range(5):
        dup = key.duplicated().to_numpy() & both.notna().to_numpy()
        if not dup.any():
            break
        idx = np.flatnonzero(dup)
        vals = both.iloc[idx].str.split("@", n=1, expand=True)
        suffix = pd.Series((idx % 97 + 1 + attempt * 7).astype(str), index=vals.index)
        both.iloc[idx] = (vals[0] + suffix + "@" + vals[1]).to_numpy()
        key.iloc[idx] = keys(both.iloc[idx]).to_numpy()
    return both.to_numpy()
