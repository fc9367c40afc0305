"""Offers that fit the profile: items bought by one gender or one age band only are not offered
to a profile of the other gender or outside the band (trial 8 M2: "Прием гинеколога" offered to
men, "Прием педиатра" and the children's vaccination calendar to adults).

No list of such items: the rules are learned from the purchases. For a group ``G`` of buyers
(one gender; the ages ``>= a``; the ages ``< a``) an item is *kept away from* ``G`` when

- at least ``min_support`` distinct buyers of the item have a known gender (age), and
- the Wilson upper bound (``z``) of the share of the item's buyers in ``G`` is at most
  ``ratio`` times the share of ``G`` among all buyers with a known gender (age).

So an item is restricted only when its buyers avoid a group that the other items' buyers do not
avoid, with a margin for sampling: 100 buyers, none of them men, where men are half of all
buyers, is a rule (upper bound 0.037 <= 0.1 x 0.5); 40 such buyers is not yet (0.088). A buyer's
age is their age at their last purchase of the item (and, for the share of all buyers, at their
last purchase of anything). An age rule is the band ``[min_age, max_age)``: from the cut that
passes the test, each edge moves out over the next ages where the item's buyers are still at
least ``ratio`` of the population's density (the small tail the test tolerates stays inside the
band) or where nobody bought anything (a gap in the ages is no evidence).

The catalogue may say it instead: an ``audience`` column of the products (``products.audience``
in the warehouse, ``--items`` of ``cem offers``) declares an item for women (``F``, ``Ж``,
``женский``, ``women`` ...), for men (``M``, ``М``, ``мужской``, ``men`` ...) or for everyone
(``unisex``, ``all``, ``для всех`` ...). A declaration replaces what was learned for that item's
gender (trial 9 M4: husbands buying on their wife's card teach no rule for men's coats, and gifts
blur the rest); an empty or other value leaves the learned rule. Genders are compared through
:func:`gender_key`, so a CRM holding ``Ж``/``М`` and a catalogue saying ``women``/``men`` agree.

A profile whose gender or birth date is unknown is not filtered by the rule of that attribute.
A profile of several records is judged conservatively: its gender is known only when all its
records that have one agree, and an item is held back for its age only when the whole range of
its records' ages (its youngest and its oldest record, as the consent's contact age reads them)
lies outside the band: a profile merging a parent and a child is offered either's items.

Held back *before* the top-k cut: the caller ranks :func:`extra_depth` deeper and
:func:`eligible_top_k` keeps the ``k`` best fitting items of each profile. The functions take
plain frames (pandas), so that any ranking path (the warehouse stage, ``cem offers``, the Spark
path) can call them on its ranked lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

#: fewest distinct buyers with a known attribute for a rule on an item
MIN_SUPPORT = 30
#: the item's share of a group may be at most this fraction of the group's share of all buyers
RATIO = 0.1
#: the Wilson bound's z (one-sided 97.5%)
Z = 1.96
_DAYS_PER_YEAR = 365.2425


@dataclass
class EligibilityRules:
    """Learned rules: ``gender`` rows ``item_id, gender, buyers, share_upper, population_share``
    (the item is not offered to profiles of ``gender``); ``age`` rows ``item_id, min_age,
    max_age, buyers`` (offered only to ages in ``[min_age, max_age)``; NaN: no bound)."""

    gender: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["item_id", "gender", "buyers", "share_upper", "population_share"]
        )
    )
    age: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["item_id", "min_age", "max_age", "buyers"])
    )
    #: the items whose gender the catalogue declares (``audience``), for one gender or for all
    declared: int = 0
    #: ``(customer_id, item_id)`` pairs held back from that customer: items returned and never
    #: kept (:func:`with_returned`)
    returned: pd.MultiIndex | None = None

    @property
    def items(self) -> set[str]:
        """The item ids with at least one rule."""
        return set(self.gender["item_id"].astype(str)) | set(self.age["item_id"].astype(str))

    def __bool__(self) -> bool:
        return bool(len(self.gender) or len(self.age) or self.returned is not None)

    @property
    def most_returned(self) -> int:
        """The most returned-and-never-kept items of any one customer."""
        if self.returned is None:
            return 0
        return int(pd.Series(self.returned.get_level_values(0)).value_counts().max())


def wilson_upper(successes, n, z: float = Z) -> np.ndarray:
    """The Wilson score interval's upper bound of ``successes / n`` (arrays; n = 0 gives 1)."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, s / np.maximum(n, 1), 0.0)
        z2 = z * z
        centre = p + z2 / (2 * n)
        margin = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        out = (centre + margin) / (1 + z2 / n)
    return np.where(n > 0, np.minimum(out, 1.0), 1.0)


#: gender words of CRMs and catalogues, upper case, and the key each is compared by
_FEMALE = ("F", "FEMALE", "W", "WOMAN", "WOMEN", "WOMENS", "WOMEN'S", "Ж", "ЖЕН", "ЖЕН.",
           "ЖЕНСКИЙ", "ЖЕНСКАЯ", "ЖЕНСКОЕ", "ЖЕНСКИЕ", "ЖЕНЩИНА", "ЖЕНЩИНЫ", "ДЛЯ ЖЕНЩИН")  # fmt: skip
_MALE = ("M", "MALE", "MAN", "MEN", "MENS", "MEN'S", "М", "МУЖ", "МУЖ.", "МУЖСКОЙ", "МУЖСКАЯ",
         "МУЖСКОЕ", "МУЖСКИЕ", "МУЖЧИНА", "МУЖЧИНЫ", "ДЛЯ МУЖЧИН")  # fmt: skip
_EVERYONE = ("ALL", "ANY", "BOTH", "U", "UNISEX", "УНИСЕКС", "ВСЕ", "ДЛЯ ВСЕХ", "ОБА")
_SYNONYMS = {**{w: "F" for w in _FEMALE}, **{w: "M" for w in _MALE}}


def gender_key(values: pd.Series) -> pd.Series:
    """The key a gender value is compared by: ``F`` or ``M`` for the words of either (Latin or
    Cyrillic, e.g. ``Ж``, ``female``, ``мужской``), else the value stripped in upper case; NA
    when empty."""
    text = values.astype("string").str.strip().str.upper()
    return text.mask(text == "").replace(_SYNONYMS)


def profile_attributes(records: pd.DataFrame, as_of) -> pd.DataFrame:
    """``customer_id, gender, born_min, born_max, age_min, age_max`` per customer from
    per-record rows ``customer_id`` with optional ``gender``, ``birth_date``.

    ``gender``: the value all the customer's records with one agree on (stripped, upper case),
    else NA. ``born_min``/``born_max``: the oldest and youngest birth date; ``age_min`` /
    ``age_max``: the ages in whole years at ``as_of`` of the youngest and the oldest record."""
    cid = records["customer_id"].astype(str)
    out = pd.DataFrame(index=pd.Index(pd.unique(cid), name="customer_id"))
    if "gender" in records.columns:
        g = pd.DataFrame({"customer_id": cid, "gender": gender_key(records["gender"])}).dropna()
        n = g.groupby("customer_id")["gender"].nunique()
        first = g.groupby("customer_id")["gender"].first()
        out["gender"] = first.where(n == 1).reindex(out.index).astype("string")
    else:
        out["gender"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if "birth_date" in records.columns:
        born = pd.to_datetime(records["birth_date"], errors="coerce", format="mixed")
        b = pd.DataFrame({"customer_id": cid, "born": born}).dropna()
        grp = b.groupby("customer_id")["born"]
        out["born_min"] = grp.min().reindex(out.index)
        out["born_max"] = grp.max().reindex(out.index)
    else:
        out["born_min"] = out["born_max"] = pd.NaT
    at = pd.Timestamp(as_of).normalize()
    out["age_min"] = _age_years(at, out["born_max"])
    out["age_max"] = _age_years(at, out["born_min"])
    return out.reset_index()


def _age_years(at: pd.Timestamp, born: pd.Series) -> pd.Series:
    """Whole years of age at ``at`` (the birthday counts from its day); NaN without a date."""
    born = pd.to_datetime(born)
    before = (born.dt.month > at.month) | ((born.dt.month == at.month) & (born.dt.day > at.day))
    return (at.year - born.dt.year - before.astype(float)).astype(float)


def learn_rules(
    purchases: pd.DataFrame,
    attributes: pd.DataFrame,
    *,
    min_support: int = MIN_SUPPORT,
    ratio: float = RATIO,
    z: float = Z,
) -> EligibilityRules:
    """The gender and age rules of the items of ``purchases`` (``customer_id, item_id, ts``, cut
    at ``as_of`` by the caller) from the customers' ``attributes``
    (:func:`profile_attributes`). Only customers with one gender (a birth date range of at most
    a year) teach a gender (age) rule."""
    if purchases.empty or attributes.empty:
        return EligibilityRules()
    att = attributes.assign(customer_id=attributes["customer_id"].astype(str)).set_index(
        "customer_id"
    )
    last = (
        pd.DataFrame(
            {
                "customer_id": purchases["customer_id"].astype(str).to_numpy(),
                "item_id": purchases["item_id"].astype(str).to_numpy(),
                "ts": pd.to_datetime(purchases["ts"]).to_numpy(),
            }
        )
        .groupby(["customer_id", "item_id"], sort=False)["ts"]
        .max()
        .reset_index()
    )
    return EligibilityRules(
        gender=_gender_rules(last, att, min_support, ratio, z),
        age=_age_rules(last, att, min_support, ratio, z),
    )


def _gender_rules(last, att, min_support, ratio, z) -> pd.DataFrame:
    empty = EligibilityRules().gender
    if "gender" not in att.columns:
        return empty
    g = last.assign(gender=att["gender"].reindex(last["customer_id"]).to_numpy()).dropna(
        subset=["gender"]
    )
    if g.empty:
        return empty
    people = att["gender"].dropna()
    people = people[people.index.isin(g["customer_id"])]
    population = people.value_counts(normalize=True)
    counts = g.groupby(["item_id", "gender"]).size().unstack(fill_value=0)
    n = counts.sum(axis=1)
    counts = counts[n >= min_support]
    n = n[n >= min_support]
    rows = []
    for gender in counts.columns:
        share = float(population.get(gender, 0.0))
        if share <= 0:
            continue
        upper = wilson_upper(counts[gender].to_numpy(), n.to_numpy(), z)
        hit = upper <= ratio * share
        for item, nb, up in zip(counts.index[hit], n.to_numpy()[hit], upper[hit], strict=True):
            rows.append((str(item), str(gender), int(nb), float(up), share))
    return pd.DataFrame(rows, columns=empty.columns) if rows else empty


def _age_rules(last, att, min_support, ratio, z) -> pd.DataFrame:
    empty = EligibilityRules().age
    if "born_min" not in att.columns:
        return empty
    tight = att[(att["born_max"] - att["born_min"]).dt.days <= 366].dropna(subset=["born_min"])
    if tight.empty:
        return empty
    mid = tight["born_min"] + (tight["born_max"] - tight["born_min"]) / 2
    born = mid.reindex(last["customer_id"]).to_numpy()
    age = np.floor((last["ts"].to_numpy() - born) / np.timedelta64(1, "D") / _DAYS_PER_YEAR)
    a = last.assign(age=age).dropna(subset=["age"])
    a = a[a["age"] >= 0]
    if a.empty:
        return empty
    top = int(min(a["age"].max(), 120)) + 2
    ages = np.clip(a["age"].to_numpy(int), 0, top - 1)
    # every buyer at their last purchase of anything: the population's age histogram
    per = a.groupby("customer_id")["ts"].idxmax()
    pop = np.bincount(ages[a.index.get_indexer(per.to_numpy())], minlength=top).astype(float)
    items, codes = np.unique(a["item_id"].to_numpy(), return_inverse=True)
    hist = np.zeros((len(items), top))
    np.add.at(hist, (codes, ages), 1.0)
    n = hist.sum(axis=1)
    keep = n >= min_support
    items, hist, n = items[keep], hist[keep], n[keep]
    if not len(items):
        return empty
    # below[:, a] = buyers younger than a (a = 0 .. top-1); cuts a = 1 .. top-1
    below = np.cumsum(hist, axis=1) - hist
    pop_below = (np.cumsum(pop) - pop) / pop.sum()
    cuts = np.arange(1, top)
    nn = n[:, None]
    # upper bound of the band: buyers aged >= a avoided
    up_ok = wilson_upper(nn - below[:, cuts], nn, z) <= ratio * (1 - pop_below[cuts])[None, :]
    up_ok &= (1 - pop_below[cuts])[None, :] > 0
    # lower bound of the band: buyers younger than a avoided
    lo_ok = wilson_upper(below[:, cuts], nn, z) <= ratio * pop_below[cuts][None, :]
    lo_ok &= pop_below[cuts][None, :] > 0
    # the test says *that* an item avoids an age group; the band's edge then moves out over
    # every next age where the item's buyers are still at least ``ratio`` of the population's
    # density there (the tail the test tolerates is inside the band), or where nobody bought
    # anything (no evidence either way: a gap between the children and the adults)
    density = hist / nn
    pop_density = pop / pop.sum()
    inside = (density >= ratio * pop_density[None, :]) & (hist > 0) | (pop[None, :] == 0)
    max_age = np.full(len(items), np.nan)
    min_age = np.full(len(items), np.nan)
    for r in np.flatnonzero(up_ok.any(axis=1)):
        edge = int(cuts[np.argmax(up_ok[r])])  # buyers aged >= edge avoided
        while edge < top and inside[r, edge]:
            edge += 1
        max_age[r] = edge if edge < top else np.nan
    for r in np.flatnonzero(lo_ok.any(axis=1)):
        edge = int(cuts[len(cuts) - 1 - np.argmax(lo_ok[r, ::-1])])  # younger than edge avoided
        while edge > 0 and inside[r, edge - 1]:
            edge -= 1
        min_age[r] = edge if edge > 0 else np.nan
    ruled = ~np.isnan(max_age) | ~np.isnan(min_age)
    if not ruled.any():
        return empty
    return pd.DataFrame(
        {
            "item_id": items[ruled].astype(str),
            "min_age": min_age[ruled],
            "max_age": max_age[ruled],
            "buyers": n[ruled].astype(int),
        }
    )


def with_returned(rules: EligibilityRules, never_kept: pd.DataFrame | None) -> EligibilityRules:
    """``rules`` that also hold back from each customer the items of ``never_kept``
    (``customer_id, item_id``: returned and never kept, :func:`cemlib.marts.returned_items`)."""
    if never_kept is None or never_kept.empty:
        return rules
    pairs = pd.MultiIndex.from_arrays(
        [never_kept["customer_id"].astype(str), never_kept["item_id"].astype(str)]
    ).unique()
    return replace(rules, returned=pairs)


def held_back(
    offers: pd.DataFrame, rules: EligibilityRules, attributes: pd.DataFrame
) -> np.ndarray:
    """Boolean per row of ``offers`` (``customer_id, item_id``): True where the item does not
    fit the customer's gender or age (:func:`profile_attributes`), or the customer returned it
    and never kept it (``rules.returned``)."""
    mask = np.zeros(len(offers), dtype=bool)
    if not rules or offers.empty:
        return mask
    if rules.returned is not None:
        mask |= pd.MultiIndex.from_arrays(
            [offers["customer_id"].astype(str), offers["item_id"].astype(str)]
        ).isin(rules.returned)
    if attributes.empty:
        return mask
    att = attributes.assign(customer_id=attributes["customer_id"].astype(str)).set_index(
        "customer_id"
    )
    cid = offers["customer_id"].astype(str).to_numpy()
    item = offers["item_id"].astype(str).to_numpy()
    if len(rules.gender):
        gender = att["gender"].reindex(cid).astype("string").fillna("").to_numpy(object)
        pairs = pd.MultiIndex.from_arrays(
            [rules.gender["item_id"].astype(str), rules.gender["gender"].astype(str)]
        )
        mask |= pd.MultiIndex.from_arrays([item, gender]).isin(pairs)
    if len(rules.age):
        band = rules.age.drop_duplicates("item_id").set_index("item_id")
        lo = band["min_age"].reindex(item).to_numpy(float)
        hi = band["max_age"].reindex(item).to_numpy(float)
        amin = att["age_min"].reindex(cid).to_numpy(float)
        amax = att["age_max"].reindex(cid).to_numpy(float)
        with np.errstate(invalid="ignore"):
            mask |= (amax < lo) | (amin >= hi)  # NaN (no bound, no age) compares False
    return mask


#: (customer, rule item) pairs :func:`extra_depth` tests at once (its working memory: ~100 MB)
PAIRS_AT_ONCE = 1_000_000


def extra_depth(rules: EligibilityRules, attributes: pd.DataFrame) -> int:
    """How much deeper to rank so that ``k`` fitting items remain for every customer: the most
    rule items any one customer of ``attributes`` is held back from (plus the most items one
    customer returned and never kept). Counted once per distinct
    ``gender, age_min, age_max`` (what :func:`held_back` judges by), so a catalogue declaring
    thousands of items costs their number times the distinct profiles' kinds, not times the
    customers."""
    if not rules:
        return 0
    if attributes.empty or not rules.items:
        return rules.most_returned
    items = np.asarray(sorted(rules.items), dtype=object)
    by_profile = replace(rules, returned=None)  # no customer's returns
    kinds = attributes[["gender", "age_min", "age_max"]].drop_duplicates()
    kinds = kinds.assign(customer_id=np.arange(len(kinds)).astype(str))
    most, step = 0, max(1, PAIRS_AT_ONCE // max(len(items), 1))
    for start in range(0, len(kinds), step):
        part = kinds.iloc[start : start + step]
        pairs = pd.DataFrame(
            {
                "customer_id": np.repeat(part["customer_id"].to_numpy(), len(items)),
                "item_id": np.tile(items, len(part)),
            }
        )
        held = held_back(pairs, by_profile, part).reshape(len(part), len(items))
        most = max(most, int(held.sum(axis=1).max()))
    return most + rules.most_returned


def fill_fitting(
    offers: pd.DataFrame,
    purchases: pd.DataFrame,
    rules: EligibilityRules,
    attributes: pd.DataFrame,
    k: int,
    customers=None,
    bought: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``offers`` (``customer_id, rank, item_id, score, ...``, fitting items only) with each
    customer (of ``customers``, default those of ``offers``) that has fewer than ``k`` padded
    with the most popular items of ``purchases`` (distinct buyers; ties by item id) that fit
    them and are not in their list yet (nor in ``bought``: ``customer_id, item_id`` pairs the
    offers leave out, the items bought before with ``new_items``), ranked after their own
    (score below the customer's lowest, no reasons)."""
    counts = offers.groupby("customer_id", sort=False).size()
    if customers is not None:
        counts = counts.reindex(pd.unique(np.asarray(customers)), fill_value=0)
    short = counts[counts < k]
    if short.empty or purchases.empty:
        return offers
    pop = (
        purchases.assign(item_id=purchases["item_id"].astype(str))
        .groupby("item_id")["customer_id"]
        .nunique()
        .reset_index()
        .sort_values(["customer_id", "item_id"], ascending=[False, True])["item_id"]
        .to_numpy(object)
    )
    have = offers[offers["customer_id"].isin(short.index)]
    floor = have.groupby("customer_id")["score"].min() if "score" in have else None
    need_of = k - short  # the items each short list lacks
    taken = have[["customer_id", "item_id"]].astype(str)
    if bought is not None and len(bought):
        mine = bought[bought["customer_id"].isin(short.index)][["customer_id", "item_id"]]
        taken = pd.concat([taken, mine.astype(str)], ignore_index=True)
    taken = pd.MultiIndex.from_frame(taken)
    pads, todo, depth = [], short.index.to_numpy(), 3 * k
    while len(todo):
        top = pop[: min(depth, len(pop))]
        pairs = pd.DataFrame(
            {"customer_id": np.repeat(todo, len(top)), "item_id": np.tile(top, len(todo))}
        )
        pairs["pop"] = np.tile(np.arange(len(top)), len(todo))
        ok = ~held_back(pairs, rules, attributes) & ~pd.MultiIndex.from_frame(
            pairs[["customer_id", "item_id"]].astype(str)
        ).isin(taken)
        pairs = pairs[ok]
        pairs["n"] = pairs.groupby("customer_id", sort=False).cumcount()
        need = need_of.reindex(pairs["customer_id"]).to_numpy()
        got = pairs[pairs["n"].to_numpy() < need]
        done = got.groupby("customer_id").size().reindex(todo, fill_value=0)
        finished = (done.to_numpy() >= need_of.reindex(todo).to_numpy()) | (depth >= len(pop))
        pads.append(got[got["customer_id"].isin(todo[finished])])
        todo, depth = todo[~finished], depth * 4
    pad = pd.concat(pads, ignore_index=True)
    if pad.empty:
        return offers
    pad["rank"] = short.reindex(pad["customer_id"]).to_numpy() + pad["n"].to_numpy() + 1
    if floor is not None:
        low = float(offers["score"].min()) if len(offers) else 0.0
        pad["score"] = floor.reindex(pad["customer_id"]).fillna(low).to_numpy() - 1.0
    if "reasons" in offers.columns:
        pad["reasons"] = ""
    pad = pad[[c for c in offers.columns if c in pad.columns]]
    out = pd.concat([offers, pad], ignore_index=True)
    return out.sort_values(["customer_id", "rank"], kind="stable").reset_index(drop=True)


def declared_rules(
    rules: EligibilityRules,
    items: pd.DataFrame | None,
    attributes: pd.DataFrame,
    *,
    granularity: str = "item",
) -> EligibilityRules:
    """``rules`` with the catalogue's declared audiences (``items``: ``sku`` or ``item_id``,
    ``audience``, optional ``category``) in place of the learned gender rules of those items:
    an item declared for one gender is kept away from every other gender the profiles of
    ``attributes`` have; one declared for everyone has no gender rule. At ``granularity``
    ``category`` (``group``) a category (a product group) is declared when all its items with
    an audience say the same.
    Without an ``audience`` column ``rules`` is returned as it is."""
    if items is None or "audience" not in items.columns:
        return rules
    key = "item_id" if "item_id" in items.columns else "sku"
    cat = items.assign(
        item_id=items[key].astype(str),
        word=items["audience"].astype("string").str.strip().str.upper(),
    )
    cat["aud"] = gender_key(cat["audience"])
    cat.loc[cat["word"].isin(_EVERYONE), "aud"] = "*"
    cat = cat.dropna(subset=["aud"])
    cat = cat[cat["aud"].isin(["F", "M", "*"])]
    if granularity == "group" and "group" in cat.columns:  # an item without one: its own group
        text = cat["group"].astype("string").str.strip()
        cat["group"] = text.mask(text == "").fillna(cat["item_id"])
    if granularity in ("category", "group"):
        if granularity not in cat.columns:
            return rules
        by = granularity
        one = cat.dropna(subset=[by]).groupby(by)["aud"].agg(["nunique", "first"])
        one = one[one["nunique"] == 1]
        cat = pd.DataFrame({"item_id": one.index.astype(str), "aud": one["first"].to_numpy()})
    cat = cat.drop_duplicates("item_id", keep="last")
    if cat.empty:
        return rules
    genders = pd.unique(attributes["gender"].dropna().astype(str)) if "gender" in attributes else []
    rows = [
        (item, g, 0, float("nan"), float("nan"))
        for item, aud in zip(cat["item_id"], cat["aud"], strict=True)
        if aud != "*"
        for g in genders
        if g != aud
    ]
    learned = rules.gender[~rules.gender["item_id"].astype(str).isin(cat["item_id"])]
    gender = pd.concat(
        [learned, pd.DataFrame(rows, columns=learned.columns)], ignore_index=True
    ) if rows else learned.reset_index(drop=True)  # fmt: skip
    return replace(rules, gender=gender, declared=len(cat))


def eligible_top_k(
    ranked: pd.DataFrame, rules: EligibilityRules, attributes: pd.DataFrame, k: int
) -> tuple[pd.DataFrame, int]:
    """``ranked`` (``customer_id, rank, item_id, ...``, ranked :func:`extra_depth` deeper than
    ``k``) without the offers that do not fit the customer, re-ranked, the first ``k`` each;
    and the number of offers held back from the first ``k`` (the offers a customer would have
    got without the rules)."""
    if ranked.empty:
        return ranked, 0
    out = ranked.sort_values(["customer_id", "rank"], kind="stable")
    bad = held_back(out, rules, attributes)
    n_held = int((bad & (out["rank"].to_numpy() <= k)).sum())
    out = out[~bad]
    rank = out.groupby("customer_id", sort=False).cumcount().to_numpy() + 1
    out = out.assign(rank=rank)[rank <= k].reset_index(drop=True)
    return out, n_held
