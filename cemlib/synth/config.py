"""Every rate of the synthetic world in one documented dataclass.

The defaults are the "embedded default" world of DESIGN.md. Each rate is measured back on a
generated world by ``tests/synth/test_rates.py``; ``the README ("The synthetic customer world")`` tabulates them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class NoiseRates:
    """Identity noise: valid but different values a real CRM holds (never invalid values)."""

    #: share of people with a second mobile phone (used in some of their records)
    second_phone: float = 0.18
    #: share of people with a second e-mail address
    second_email: float = 0.25
    #: share of people with a second address who switch to it at some point (later records use it)
    email_switch: float = 0.6
    #: share of people with no e-mail at all
    no_email: float = 0.10
    #: share of a person's records that use the second phone/e-mail when they have one
    use_second: float = 0.35
    #: share of CRM-registered people with a duplicate registration (a second CRM row)
    crm_duplicate: float = 0.15
    #: share of those duplicates that get a third registration
    crm_triplicate: float = 0.15
    #: share of CRM rows written with ``full_name`` only (parts empty); the rest have parts only
    crm_full_name_style: float = 0.45
    #: among ``full_name`` rows: "Имя Фамилия" order instead of "Фамилия Имя Отчество"
    name_order_first_last: float = 0.25
    #: share of name values without the patronymic
    missing_patronymic: float = 0.20
    #: share of name values spelled in Latin transliteration (Ivanov for Иванов)
    latin_name: float = 0.06
    #: share of name values with a typo (swap, drop or doubled letter, ё/е)
    name_typo: float = 0.04
    #: share of e-mail values with a typo in the local part (still a well-formed address)
    email_typo: float = 0.03
    #: share of e-mail values with changed case (``Ivan.Petrov@Gmail.com``)
    email_case: float = 0.15
    #: share of Gmail values written without dots or with a ``+tag``
    gmail_variant: float = 0.40
    #: share of CRM rows with phone missing
    crm_missing_phone: float = 0.06
    #: share of CRM rows with e-mail missing (besides people without e-mail)
    crm_missing_email: float = 0.05
    #: share of CRM rows with birth date missing
    crm_missing_birth_date: float = 0.12
    #: share of CRM rows with city missing
    crm_missing_city: float = 0.08
    #: share of CRM birth dates with day and month swapped (only where the result is a date)
    birth_date_swapped: float = 0.03
    #: share of online orders with the phone missing
    order_missing_phone: float = 0.10
    #: share of online orders placed with the phone only (no e-mail typed)
    order_missing_email: float = 0.25
    #: share of online orders (of people in a household of 2+) with a family member's phone
    order_family_phone: float = 0.12
    #: share of orders/tickets of people without an e-mail (in a family) with a relative's address
    family_email: float = 0.5
    #: share of POS receipts of loyalty members scanned with the loyalty card
    receipt_card: float = 0.70
    #: share of non-card receipts where the cashier typed the phone
    receipt_phone: float = 0.15
    #: share of households (2+ people) sharing one loyalty card
    household_shared_card: float = 0.45
    #: share of web events, of people with an account, made while logged in (e-mail filled)
    web_logged_in: float = 0.30
    #: share of support tickets carrying a phone only / e-mail only (rest carry both)
    ticket_phone_only: float = 0.45
    ticket_email_only: float = 0.35


@dataclass(frozen=True)
class DefectRates:
    """Quality defects (issue #4): invalid values, only when ``defects=True``; each recorded."""

    malformed_phone: float = 0.005
    malformed_email: float = 0.005
    ts_after_as_of: float = 0.003
    ts_before_start: float = 0.003
    unparseable_date: float = 0.003
    nonpositive_quantity: float = 0.004
    nonpositive_price: float = 0.004
    duplicate_receipt_id: float = 0.003
    orphan_line: float = 0.003
    unknown_sku: float = 0.003


@dataclass(frozen=True)
class BehaviourParams:
    """The BG/NBD-like purchase process and its covariate effects (hazard/rate ratios)."""

    #: mean purchase rate (baskets per year) of a reference person (gamma heterogeneity)
    purchase_rate_mean: float = 2.0
    purchase_rate_shape: float = 2.0
    #: mean lifetime in years of a reference person (exponential lifetime, gamma heterogeneity)
    lifetime_mean_years: float = 3.0
    dropout_shape: float = 3.0
    #: hazard ratios of dropout
    hr_loyalty: float = 0.55
    hr_online_share: float = 1.6  # per unit of online share (0..1), log-linear
    hr_moscow_spb: float = 1.35
    hr_bad_ticket: float = 2.5  # after the first badly rated support ticket
    #: purchase rate ratios
    rr_loyalty: float = 1.35
    rr_online_share: float = 1.15
    #: support tickets per active year, and share badly rated (csat 1-2)
    ticket_rate: float = 0.35
    bad_ticket_share: float = 0.25
    csat_missing: float = 0.30
    #: share of people already customers when the history starts (joined in its first 60 days)
    early_joiners: float = 0.35
    #: share of people registered in the CRM although never loyal nor buying online
    crm_other: float = 0.25
    #: share of people in the loyalty programme
    loyalty_member: float = 0.38
    #: mean number of extra lines per basket (lines = 1 + Poisson)
    extra_lines_mean: float = 1.3
    #: probability that a basket in a category with cross-sell partners triggers a follow-up
    cross_sell_prob: float = 0.30
    #: probability that a consumable is bought again after its usual interval
    repeat_prob: float = 0.55
    #: background web sessions per active year (scaled by online share)
    web_sessions_per_year: float = 3.0
    #: share of store purchases researched online first (views before buying)
    pos_researched: float = 0.30
    #: repeat-heavy setting (``cemlib.synth.reorders``): share of people who also re-order their
    #: staples on cycles like a wholesale customer; 0 (the default) leaves the world unchanged
    reorder_share: float = 0.0
    #: their staples (SKUs re-ordered) and mean days between two re-orders
    reorder_staples: int = 8
    reorder_cycle_days: float = 21.0


@dataclass(frozen=True)
class SynthConfig:
    """Configuration of :func:`cemlib.synth.generate` (all rates documented in the README ("The synthetic customer world"))."""

    noise: NoiseRates = field(default_factory=NoiseRates)
    defects: DefectRates = field(default_factory=DefectRates)
    behaviour: BehaviourParams = field(default_factory=BehaviourParams)
    #: household sizes 1..4 and their shares (of households)
    household_sizes: tuple[float, ...] = (0.58, 0.27, 0.10, 0.05)

    def to_dict(self) -> dict:
        """The settings as a nested plain dict."""
        return asdict(self)

    def with_rates(self, **changes) -> SynthConfig:
        """A copy with some rates changed, e.g. ``cfg.with_rates(crm_duplicate=0.2)``."""
        groups = {"noise": {}, "defects": {}, "behaviour": {}}
        top = {}
        for key, value in changes.items():
            for name in groups:
                if key in {f.name for f in fields(getattr(self, name))}:
                    groups[name][key] = value
                    break
            else:
                top[key] = value
        return replace(
            self,
            noise=replace(self.noise, **groups["noise"]),
            defects=replace(self.defects, **groups["defects"]),
            behaviour=replace(self.behaviour, **groups["behaviour"]),
            **top,
        )
