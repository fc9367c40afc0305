"""``cem offers``: the next products to offer each customer, from a file of purchases.

The help text (:data:`DESCRIPTION`) speaks a CRM user's words; the summary lines on stderr say
what each figure means (trial 11 L8). ``--vocabulary`` rewords the offer reasons in the
business's words, as ``vocabulary`` does for ``cem run`` (:mod:`cemlib.reports.vocabulary`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cemlib import DEFAULT_SEED
from cemlib.cli import profiles_map
from cemlib.offers import eligibility, groups
from cemlib.offers.consent import (
    ADDRESS,
    MIN_CONTACT_AGE,
    address_refusals,
    assign_channels,
    minor_profiles,
    profile_addresses,
    shared_refusal_flags,
)
from cemlib.offers.data import read_table
from cemlib.offers.exclude import read_exclusions
from cemlib.offers.model import NextOfferModel

DESCRIPTION = """\
Rank, for each customer, the products they are most likely to buy next: the offers.

  cem offers purchases.csv --as-of 2025-06-30 --out offers.csv [--k 10]
      [--consent contacts.csv] [--items catalogue.csv] [--events browsing.csv]
      [--exclude SKUS|FILE] [--new-items] [--vocabulary basket=visit,shop=operator]

The purchases file has one row per product bought: customer_id, ts (date and time of the
purchase), item_id (the product), quantity and amount; order_id and category are optional.
Only purchases dated on or before --as-of are used; later ones are ignored.

The output file lists for each customer the --k products to offer, best first:
customer_id, rank, item_id, score (how strongly the product is ranked for that customer;
compare it within one customer, it is not a probability) and reasons (why, in words). With
--consent, a channel column says how to send the offer (email or sms: one the customer agreed
to and has an address for); empty means no outbound offer for that customer.

At the end, a line says how good the ranking was when checked on purchases the model had not
seen: NDCG from 0 to 1, where 1 means every customer's next purchases were at the top of
their list. Best sellers for everyone usually score well below the model.

--new-items offers only products the customer has not bought yet (in a shop where people buy
the same things every week, a grocery, the list would otherwise be their usual basket).
A group column in --items (one model sold in several sizes) makes a list offer one size of
each model: the size the customer keeps. Customer ids can be CRM records that cem identity
merged into profiles: --profiles-map.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cem offers`` to the subcommands."""
    p = subparsers.add_parser(
        "offers",
        help="rank the next products to offer each customer, from a file of purchases",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "transactions",
        metavar="PURCHASES",
        help="CSV or Parquet file of purchases: customer_id, ts, item_id, quantity, amount",
    )
    p.add_argument(
        "--as-of", required=True, help="last day of known history (inclusive), YYYY-MM-DD"
    )
    p.add_argument("--k", type=int, default=10, help="products offered per customer (default 10)")
    p.add_argument(
        "--events",
        help="browsing history (views, carts, searches): customer_id, ts, item_id and/or "
        "category, event_type",
    )
    p.add_argument("--items", help="product catalogue: item_id (or sku), name, category, price")
    p.add_argument(
        "--consent",
        help="consent rows: customer_id, consent_email, consent_sms; optional phone, email "
        "(a refusal on a phone or e-mail blocks that channel for every customer holding it; a "
        "channel is chosen only for a customer with its address; without the column, by "
        "consent alone, and stderr says so), "
        "birth_date (YYYY-MM-DD: a customer under --min-contact-age gets no outbound offer) "
        "and gender (items bought by one gender or age band only are not offered outside it)",
    )
    p.add_argument(
        "--min-contact-age",
        type=int,
        default=MIN_CONTACT_AGE,
        help="with a birth_date column in --consent: customers one of whose rows is younger "
        f"than this at --as-of get no outbound offer (default {MIN_CONTACT_AGE}; 0: no rule)",
    )
    p.add_argument(
        "--exclude",
        help="items and/or categories kept out of the offers: comma-separated, or a file (one a "
        "line, or a CSV with item_id/sku and/or category)",
    )
    p.add_argument(
        "--granularity",
        choices=["item", "sku", "group", "category"],
        default="item",
        help="what a list offers: item (a model of the --items group column when there is "
        "one, else a product), sku (always a product), group (a model) or category "
        "(default item)",
    )
    p.add_argument(
        "--horizon-days",
        type=int,
        default=30,
        help="the offers are for the next this many days: the model learns what customers "
        "bought within this many days of a date (default 30)",
    )
    p.add_argument(
        "--new-items",
        action="store_true",
        help="offer only products the customer has not bought on or before --as-of, and check "
        "the ranking on purchases of products new to the customer (a grocery: people buy the "
        "same things every week)",
    )
    p.add_argument(
        "--vocabulary",
        help="the business's words for the reasons' words: word=yours pairs, comma-separated "
        "(basket=visit,shop=operator), or a YAML file {basket: visit} (as vocabulary in "
        "cem run's config)",
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed: the same seed, the same offers"
    )
    p.add_argument("--out", required=True, help="the offers file to write (CSV)")
    profiles_map.add_arguments(p)
    p.add_argument(
        "--consent-record-column",
        help="with --profiles-map: the --consent column holding the record id (a CRM contact "
        "of cem identity's input): each consent row counts for its record's profile, a refusal "
        "winning over a consent; without it the consent file's customer_id must be profile ids",
    )
    p.set_defaults(func=run)


def _keyed_consent(contacts, args: argparse.Namespace):
    """The consent rows keyed by the profiles of ``--profiles-map``: a row whose record is not
    in the map keeps its record id, so that its refusal still reaches the phone or e-mail it
    names."""
    from cemlib.errors import InputError
    from cemlib.identity.files import key_by_profiles, read_profiles_map

    if args.consent_record_column not in contacts.columns:
        raise InputError(
            "record column not found (--consent-record-column names the consent file's column "
            "holding the record id of cem identity's input)",
            source=contacts.attrs["source"],
            column=args.consent_record_column,
        )
    out, counts = key_by_profiles(
        contacts, read_profiles_map(args.profiles_map), args.consent_record_column,
        source=contacts.attrs["source"], map_source=str(args.profiles_map), keep_unmatched=True,
    )  # fmt: skip
    print(
        f"cem offers: {counts.keyed:,} of {counts.rows:,} consent rows keyed by "
        f"{args.profiles_map} ({counts.profiles:,} profiles); the other "
        f"{counts.rows - counts.keyed:,} keep their record id",
        file=sys.stderr,
    )
    return out


def run(args: argparse.Namespace) -> int:
    """``cem offers``: rank the next offers of every customer into ``--out``."""
    from cemlib.cli.checks import as_of_date, positive
    from cemlib.errors import InputError
    from cemlib.io import atomic_file, output_file

    positive(args.k, "--k")
    positive(args.horizon_days, "--horizon-days")
    args.as_of = as_of_date(args.as_of)
    out = output_file(args.out)
    for flag, path in (
        ("TRANSACTIONS", args.transactions),
        ("--events", args.events),
        ("--items", args.items),
        ("--consent", args.consent),
    ):
        if path is not None and not Path(path).is_file():
            what = "is a folder" if Path(path).is_dir() else "file not found"
            raise InputError(f"{flag}: {what}", source=str(path))
    exclude = read_exclusions(args.exclude, source="--exclude")  # a missing file: before any work
    words = vocabulary_arg(args.vocabulary)
    if args.consent_record_column and not (args.profiles_map and args.consent):
        raise InputError("--consent-record-column needs --profiles-map and --consent")
    if args.min_contact_age < 0:
        raise InputError(f"--min-contact-age: must be 0 or more, got {args.min_contact_age}")
    consent, contacts = None, None
    if args.consent:  # read, keyed and checked before any work (a wrong column: no fit first)
        contacts = read_table(args.consent, name="consent")
        if args.consent_record_column:
            contacts = _keyed_consent(contacts, args)
        if "birth_date" in contacts.columns:
            contacts["birth_date"] = _birth_dates(contacts, args.consent)
        refusals = address_refusals(contacts, source=args.consent)
        consent = shared_refusal_flags(contacts, refusals, source=args.consent)
        # where an offer can go: an e-mail (a phone) on one of the customer's rows (trial 11 H1:
        # without it e-mail went to 303 profiles with no e-mail, 117 of them reachable by SMS)
        consent = consent.merge(profile_addresses(contacts), on="customer_id", how="left")
        consent["minor"] = consent["customer_id"].isin(
            _minors(contacts, args) if "birth_date" in contacts.columns else []
        )
    tx = read_table(args.transactions, name="transactions")
    tx = profiles_map.keyed(tx, args, "cem offers", source=tx.attrs["source"])
    events = read_table(args.events, name="events") if args.events else None
    items = read_table(args.items, name="items") if args.items else None
    args.granularity = groups.resolved_granularity(args.granularity, items)
    model = NextOfferModel(
        k=args.k, horizon_days=args.horizon_days, granularity=args.granularity, seed=args.seed
    )
    tx, never_kept, n_sent_back = _kept_purchases(tx, args)
    model.fit(tx, args.as_of, events=events, items=items)
    kept = _kept_items(tx, args) if args.granularity == "group" else None
    sent_back = (
        groups.never_kept_groups(never_kept, kept, items)
        if args.granularity == "group"
        else never_kept
    )
    offers, fit_line = _fitting_offers(model, contacts, args, exclude, items, sent_back)
    if args.granularity == "group":  # the item of each group: the size the customer keeps
        offers = groups.offered_items(offers, kept, items, never_kept)
    rep = model.input_report_
    print(
        f"cem offers: {rep.rows_used} purchase lines used, {rep.after_as_of} after {args.as_of} "
        f"ignored, {rep.non_positive_quantity} with quantity <= 0 left out (returns), "
        f"{n_sent_back} of items returned and never kept left out (and not offered back)",
        file=sys.stderr,
    )
    line = profiles_map.crm_less_line(
        offers["customer_id"], args, "cem offers", "profiles with offers"
    )
    if line:
        print(line, file=sys.stderr)
    ex = model.exclusion_
    if ex.entries:
        unmatched = (
            f" ({len(ex.unmatched)} match nothing, e.g. {ex.unmatched[0]!r})"
            if ex.unmatched
            else ""
        )
        n_e, n_i, n_c = len(ex.entries), ex.items, ex.customers_affected
        print(
            f"cem offers: {n_e} exclusion entr{'ies' if n_e != 1 else 'y'} -> {n_i} "
            f"item{'s' if n_i != 1 else ''} kept out of the offers{unmatched}; "
            f"{'they were candidates' if n_i != 1 else 'it was a candidate'} of {n_c} "
            f"customer{'s' if n_c != 1 else ''}",
            file=sys.stderr,
        )
    print(fit_line, file=sys.stderr)
    if consent is not None:
        offers, summary = assign_channels(offers, consent)
        shared = summary.shared_refusals or {}
        if "birth_date" not in contacts.columns:
            minors = "; no birth_date column: no contact-age rule (leave minors out of the file)"
        elif not args.min_contact_age:
            minors = "; --min-contact-age 0: no contact-age rule"
        else:
            minors = (
                f"; {summary.minors} younger than {args.min_contact_age} (birth_date) get no "
                "outbound offer"
            )
        if summary.unchecked:
            print(_unchecked_line(summary.unchecked), file=sys.stderr)
        # a count through a channel whose addresses were not checked is no count of reached
        loose = [ch for ch in summary.unchecked if summary.by_channel.get(ch)]
        reachable = (
            "customers routed by consent alone, the addresses of "
            f"{' and '.join('e-mail' if ch == 'email' else 'SMS' for ch in loose)} not checked"
            if loose
            else "customers reachable"
        )
        no_address = (
            f"; {summary.no_address} with consent but no address for it get no outbound offer"
            if not summary.unchecked or summary.no_address
            else ""
        )
        print(
            f"cem offers: {summary.reachable} of {summary.profiles} {reachable} "
            f"({', '.join(f'{k}: {v}' for k, v in summary.by_channel.items())}); "
            f"{summary.no_consent} without consent get no outbound offer{no_address}; "
            f"{shared.get('sms', 0)} lose SMS and {shared.get('email', 0)} e-mail to a refusal "
            f"on a shared phone or e-mail{minors}",
            file=sys.stderr,
        )
    figure = f"{validation_label(model)} {model.validation_ndcg_:.3f}, {_checked_on(model, args)}"
    if ex.items or args.new_items:  # the validation lists hold excluded or bought items
        figure = _backtest_without_excluded(tx, events, items, args, model)
    if words and "reasons" in offers.columns:
        offers["reasons"] = _reworded(offers["reasons"], words)
    with atomic_file(out) as tmp:
        offers.to_csv(tmp, index=False)
    print(
        f"cem offers: {offers['customer_id'].nunique()} customers x {args.k} offers -> {out} "
        f"(ranking quality from 0 to 1, 1 when each customer's next purchases top the list: "
        f"{figure})",
        file=sys.stderr,
    )
    return 0


def vocabulary_arg(value: str | None) -> dict[str, str]:
    """``--vocabulary`` as ``{word: replacement}`` (:func:`cemlib.reports.vocabulary.check_vocabulary`):
    ``word=yours`` pairs, comma-separated, or a YAML file of them. InputError naming the option
    or the file, before any work."""
    import yaml

    from cemlib.errors import InputError, one_line
    from cemlib.reports.vocabulary import check_vocabulary

    if not value:
        return {}
    path = Path(value)
    source = "--vocabulary"
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InputError("vocabulary file not found", source=str(path))
        source = str(path)
        try:
            words = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(
                f"not a readable YAML vocabulary: {one_line(exc)}", source=source
            ) from None
    else:
        pairs = [p.strip() for p in value.split(",") if p.strip()]
        bad = [p for p in pairs if p.count("=") != 1]
        if bad:
            raise InputError(
                f"expected word=yours pairs, comma-separated (basket=visit), got {bad[0]!r}",
                source=source,
            )
        words = dict(tuple(x.strip() for x in p.split("=")) for p in pairs)
    try:
        return check_vocabulary(words, "--vocabulary")
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), source=source if source != "--vocabulary" else None) from None


def _reworded(reasons, words: dict[str, str]):
    """The offer reasons in the business's words (each distinct text reworded once)."""
    import pandas as pd

    from cemlib.reports.vocabulary import reword

    codes, texts = pd.factorize(reasons.astype(str))
    return (
        pd.Series([reword(t, words) for t in texts], dtype=object)
        .take(codes)
        .set_axis(reasons.index)
    )


def _unchecked_line(unchecked: tuple[str, ...]) -> str:
    """The stderr line of a consent file without the ``email`` / ``phone`` column of a channel:
    that channel is chosen by consent alone, and its count is no count of customers reached."""
    cols = " or ".join(ADDRESS[ch] for ch in unchecked)
    names = " and ".join("e-mail" if ch == "email" else "SMS" for ch in unchecked)
    return (
        f"cem offers: --consent has no {cols} column: {names} chosen by consent alone, whether "
        "the customer has an address for it is not checked (add the column: a customer without "
        "an e-mail then gets SMS where allowed, and one with no address gets no channel)"
    )


def _birth_dates(contacts, source: str):
    """The ``birth_date`` column as dates (empty: NaT); a value that is no date is an input
    error naming the file and column."""
    import pandas as pd

    from cemlib.errors import InputError

    text = contacts["birth_date"].astype("string").str.strip()
    text = text.mask(text == "")
    born = pd.to_datetime(text, errors="coerce", format="ISO8601")
    bad = text.notna() & born.isna()
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} value(s) are not dates YYYY-MM-DD (e.g. {text[bad].iloc[0]!r})",
            source=source,
            column="birth_date",
        )
    return born


def _minors(contacts, args: argparse.Namespace):
    """The customers of the consent rows younger than ``--min-contact-age`` at ``--as-of``: the
    youngest row of a customer decides, as in the warehouse stage
    (:func:`cemlib.offers.consent.minor_profiles`)."""
    return minor_profiles(
        contacts[["customer_id", "birth_date"]].dropna(), args.as_of, args.min_contact_age
    )


def _kept_purchases(tx, args: argparse.Namespace):
    """``tx`` without the purchase lines of an item its customer returned and never kept (rows
    of negative quantity or amount are returns, as in the warehouse:
    :func:`cemlib.marts.returned_items`), those ``customer_id, item_id`` pairs, and how many
    lines were left out. Returns on or before ``--as-of`` only; nothing at category
    granularity."""
    import pandas as pd

    from cemlib.columns import typed_columns
    from cemlib.marts import returned_items
    from cemlib.offers.data import TRANSACTION_KINDS

    none = pd.DataFrame({"customer_id": [], "item_id": []})
    if args.granularity == "category":
        return tx, none, 0
    typed = pd.DataFrame(typed_columns(tx, TRANSACTION_KINDS, source=tx.attrs.get("source", "")))
    known = (typed["ts"] < pd.Timestamp(args.as_of) + pd.Timedelta(days=1)).to_numpy()
    _, never = returned_items(typed[known])
    if never.empty:
        return tx, never, 0
    pairs = pd.MultiIndex.from_frame(never[["customer_id", "item_id"]])
    sale = (typed["quantity"] > 0).to_numpy() & known
    drop = pd.MultiIndex.from_arrays([typed["customer_id"], typed["item_id"]]).isin(pairs) & sale
    kept = tx[~drop]
    kept.attrs = dict(tx.attrs)
    return kept, never, int(drop.sum())


def _kept_items(tx, args: argparse.Namespace):
    """``customer_id, item_id`` of the purchase lines of ``tx`` (the items kept,
    :func:`_kept_purchases`) dated on or before ``--as-of``: the sizes each customer keeps."""
    import pandas as pd

    from cemlib.columns import typed_columns
    from cemlib.offers.data import TRANSACTION_KINDS

    typed = pd.DataFrame(typed_columns(tx, TRANSACTION_KINDS, source=tx.attrs.get("source", "")))
    known = typed["ts"] < pd.Timestamp(args.as_of) + pd.Timedelta(days=1)
    return typed.loc[known & (typed["quantity"] > 0), ["customer_id", "item_id"]]


def _fitting_offers(
    model: NextOfferModel, contacts, args: argparse.Namespace, exclude, items, never_kept=None
):
    """The model's top ``--k`` without the items that do not fit the customer's gender or age
    (:mod:`cemlib.offers.eligibility`, rules learned from the fitted purchases, or declared by
    the ``audience`` column of ``--items``) and without the items the customer returned and
    never kept (``never_kept``), and the summary line. Without a gender or birth_date column in
    ``--consent`` no gender/age rule is learned."""
    import pandas as pd

    from cemlib.offers.stage import fitting_offers

    have = [c for c in ("gender", "birth_date") if contacts is not None and c in contacts.columns]
    returns = never_kept is not None and len(never_kept) > 0
    new = args.new_items
    if not have and not returns:
        return model.recommend(exclude=exclude, new_items=new), (
            "cem offers: offers not checked against gender/age (no gender or birth_date column "
            "in --consent)"
        )

    def ranked(depth, held=None):  # the held back removed chunk by chunk, before the reasons
        if held is None:
            return model.recommend(k=depth, exclude=exclude, new_items=new)
        out = model.recommend(k=args.k, depth=depth, held=held, exclude=exclude, new_items=new)
        return out, model.held_back_

    if have:
        attributes = eligibility.profile_attributes(contacts, args.as_of)
        attributes = attributes[attributes["customer_id"].isin(model.tx_["customer_id"].unique())]
    else:
        attributes = pd.DataFrame(columns=["customer_id", "gender", "age_min", "age_max"])
    offers, held, rules = fitting_offers(
        ranked, model.tx_, attributes, args.k,
        items=items, granularity=args.granularity, in_ranking=True, never_kept=never_kept,
        new_items=new,
    )  # fmt: skip
    sent_back = " or returned and never kept" if returns else ""
    if not have:
        return offers, (
            f"cem offers: {held} offer{'s' if held != 1 else ''} held back as returned and never "
            "kept by the customer; offers not checked against gender/age (no gender or "
            "birth_date column in --consent)"
        )
    n = len(rules.items)
    declared = (
        f"; the audience of {rules.declared} declared by the audience column of --items"
        if rules.declared
        else ""
    )
    return offers, (
        f"cem offers: {held} offer{'s' if held != 1 else ''} held back as not fitting the "
        f"customer's gender/age{sent_back} ({n} item{'s' if n != 1 else ''} for one gender or "
        f"one age band only, learned from the {', '.join(have)} "
        f"column{'s' if len(have) > 1 else ''} of --consent{declared}); the next fitting items "
        "took their place"
    )


def _checked_on(model, args: argparse.Namespace) -> str:
    """On what the printed validation figure was measured, in words (``model.split_``)."""
    days = args.horizon_days
    if model.split_ == "time":
        return (
            f"checked on the purchases of the last {days} days up to --as-of by a model that "
            f"learned from the {days} days before them"
        )
    return (
        "checked on customers the model did not learn from (too little history to check it "
        f"on the last {days} days)"
    )


def validation_label(model) -> str:
    """The name of the early-stopping figure ``validation_ndcg_``: LightGBM's metric at its
    ``eval_at`` (NDCG@10 by default), whatever ``--k`` the lists have (trial 10 L4: ``--k 100``
    printed "NDCG@100" beside the NDCG@10 figure)."""
    name = next(iter(model.eval_history_["validation"]))  # e.g. "ndcg@10"
    return "validation " + name.replace("ndcg", "NDCG")


def _backtest_without_excluded(tx, events, items, args, model: NextOfferModel) -> str:
    """The figure printed with an exclusion list: the model's validation NDCG ranks and counts
    the excluded items (a monthly top-up bought by everyone makes it near 1), so the model is
    refitted ``--horizon-days`` before ``--as-of`` and its lists, without the excluded items,
    scored on the purchases of the last ``--horizon-days`` days without them (the warehouse
    stage's backtest). With ``--new-items`` the lists hold only items new to the customer and
    are scored on the purchases of items new to them, beside the best sellers each customer
    did not buy (``personal_then_popular`` without the items bought, as the stage grades it)."""
    import pandas as pd

    from cemlib.offers.metrics import evaluate
    from cemlib.offers.stage import baseline_metrics, excluded_items, new_only, without_items

    kept = excluded_items(model.exclusion_.entries, model)
    back = pd.Timestamp(args.as_of) - pd.Timedelta(days=int(args.horizon_days))
    bt = NextOfferModel(
        k=args.k, horizon_days=args.horizon_days, granularity=args.granularity, seed=args.seed
    ).fit(tx, back, events=events, items=items)
    window = without_items(model.tx_[model.tx_["ts"] >= back + pd.Timedelta(days=1)], kept)
    recs = bt.recommend(explain=False, exclude=sorted(kept), new_items=args.new_items)
    customers = bt.tx_["customer_id"].unique()
    if args.new_items:
        window = new_only(window, bt.tx_)
    m = evaluate(recs, window, k=args.k, customers=customers)
    without = (
        f" without the {len(kept)} excluded item{'s' if len(kept) != 1 else ''}" if kept else ""
    )
    if not args.new_items:
        return (
            f"backtest NDCG@{args.k} {m[f'ndcg@{args.k}']:.3f}{without}: refitted at "
            f"{back.date()}, scored on {int(m['customers'])} customers' purchases of the last "
            f"{args.horizon_days} days"
        )
    base = baseline_metrics(window, bt.tx_, customers, args.k, kept, new_items=True)
    pop = base["personal_then_popular"]
    n = f"ndcg@{args.k}"
    return (
        f"backtest on items new to the customer{without}: NDCG@{args.k} {m[n]:.3f}, hit@"
        f"{args.k} {m[f'hitrate@{args.k}']:.3f} against {pop[n]:.3f} and "
        f"{pop[f'hitrate@{args.k}']:.3f} for the best sellers not bought; refitted at "
        f"{back.date()}, scored on {int(m['customers'])} customers' new items of the last "
        f"{args.horizon_days} days"
    )
