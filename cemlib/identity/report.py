"""Tables, plots and words for the 02_profiles notebook: figures only, personal data masked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.examples import (  # noqa: F401 (the notebook reads them as report.*)
    merge_examples,
    merge_waterfalls,
    plot_merge_waterfalls,
    save_splink_waterfall,
)
from cemlib.identity.stage import IdentityResult
from cemlib.reports import fmt_probability, mask_email, mask_phone

_MASK_BY_KIND = {
    "phone": mask_phone,
    "email": mask_email,
    "loyalty_card": lambda v: f"****{str(v)[-4:]}",
    "device_id": lambda v: f"{str(v)[:3]}***",
    "national_id": lambda v: f"***{str(v)[-2:]}",
}


REASON_WORDS: dict[str, str] = {
    "no_identifier": "anonymous (no phone, card, email, device or name)",
    "shared_identifier_only": "only a shared, hub or contested identifier",
    "household_profile": "no name, in a profile with household evidence (which family member "
    "made it cannot be told)",
    "after_as_of": "dated after as_of",
    "masked_phone_only": "only a masked phone whose shown digits, first name "
    "and place or birth date name no single profile",
    "unchanged_since_last_run": "unattached in the last run and not touched since",
}


def _reasons(f: dict) -> str:
    by = f.get("unattached_by_reason") or {}
    if not by:
        return ""
    parts = [
        f"{n:,} {REASON_WORDS.get(k, k)}" for k, n in sorted(by.items(), key=lambda kv: -kv[1])
    ]
    return ": " + "; ".join(parts)


def _corroborated(f: dict) -> str:
    n = f.get("corroborated_records") or 0
    if not n:
        return ""
    return (
        f" {n:,} nameless records of profiles with household evidence were attached all the "
        "same: two identifiers only that profile uses, each also seen in another source with "
        "a name or an e-mail login, or the holder's own loyalty card, say whose they are."
    )


def _contact_refs(result: IdentityResult) -> str:
    refs = getattr(result.resolver, "contact_refs_", None) or {}
    if not refs.get("with_contact_id"):
        return ""
    text = (
        f" {refs['matched']:,} events name their CRM record (`contact_id`) and were attached "
        "to it directly"
    )
    if refs["unmatched"]:
        text += (
            f"; {refs['unmatched']:,} name an id no CRM record up to as_of has (ignored: their "
            "other identifiers decided)"
        )
    return text + "."


def _refused_by_contact(result: IdentityResult) -> int:
    """Links the contact pin refused (``refused_by = contact``): a merge of two CRM records
    through an event that names one of them (0 when no event carries a ``contact_id``)."""
    links = result.links
    if links is None or "refused_by" not in getattr(links, "columns", ()):
        return 0
    return int((links["refused_by"] == "contact").sum())


def _pin(result: IdentityResult) -> str:
    n = _refused_by_contact(result)
    if not n:
        return ""
    return (
        f", the contact pin {n:,} that would have joined two CRM records through an event "
        "naming one of them (`contact_id`)"
    )


def _held_back(f: dict) -> str:
    n = f.get("links_refused_by_household_guard", 0)
    if not n:
        return ""
    return (
        f"; {n:,} links were not applied because the household guard held their nameless "
        "record back from the profile (it stays unattached)"
    )


def _masked(f: dict) -> str:
    mk = f.get("masked_phone") or {}
    if not mk.get("masked_only"):
        return ""
    share = mk["attached"] / mk["masked_only"]
    return (
        f" **{mk['masked_only']:,}** records carry only a masked phone (digits hidden, as a "
        f"marketplace shows its buyers); **{mk['attached']:,}** of them (**{share:.1%}**) were "
        "attached to the one profile whose phone ends in the digits shown, with the same first "
        "name and the same place, birth date or last name "
        f"({mk.get('ambiguous', 0):,} named several profiles, "
        f"{mk.get('no_candidate', 0):,} none, {mk.get('key_too_weak', 0):,} showed too few "
        "digits to tell). Each attach is a link of rule `masked_phone_tail` in "
        "`identity.links` (the fields that agreed), and the profile's golden record counts the "
        "attached record like a merged one; a masked phone never links records by itself and "
        "is never a profile's phone."
    )


def summary_markdown(result: IdentityResult) -> str:
    """A paragraph of the headline figures in words."""
    f = result.figures
    per = f["attached_records"] / max(f["profiles"], 1)
    text = (
        f"**{f['records']:,}** source records went in; **{f['attached_records']:,}** carry a "
        f"phone, card, email, device or name and were collapsed into **{f['profiles']:,}** "
        f"profiles ({per:.1f} records per profile). **{f['unattached_records']:,}** records stay "
        f"unattached{_reasons(f)}.{_corroborated(f)}{_masked(f)}{_contact_refs(result)} "
        f"{f['links_accepted']:,} of {f['links']:,} links were "
        f"accepted; the cluster constraints ({', '.join(f.get('constraints') or []) or 'none'})"
        f" refused {f.get('links_refused_by_constraint', 0):,} merges and the chain guard "
        f"{f['links_refused_by_chain_guard']:,} that would have joined clearly different people"
        f"{_pin(result)}{_held_back(f)}, and {f['guarded_identifiers']:,} identifiers ({f['hub_identifiers']:,} hubs) were not "
        f"used as merge keys on their own."
    )
    mode = f.get("identity_mode") or {}
    if mode.get("used") == "incremental":
        text += (
            f"\n\nThis run was **incremental** ({mode['why']}): the "
            f"{mode['new_records']:,} records new since the last run were resolved together "
            f"with the {mode['earlier_records_resolved_again']:,} earlier records of the profiles "
            f"they touch; {mode['profiles_kept_as_they_were']:,} profiles were kept as they were. "
            f"The match threshold and the cluster constraints are the last full run's."
        )
    elif mode:
        text += f"\n\nThis run resolved every record ({mode['why']})."
    if f.get("match_threshold") is not None and mode.get("used") != "incremental":
        text += (
            f" The model's match threshold was chosen from this run's pairs: "
            f"**{f['match_threshold']:.3f}**, the lowest at which the model links kept are, "
            f"by the model's own probabilities, right 99 times in 100 on average (the silver "
            f"labels below check those probabilities without any truth)."
        )
    if result.evaluation:
        e = result.evaluation
        text += (
            f"\n\nAgainst the synthetic truth: pairwise precision **{e['precision']:.3f}**, recall "
            f"**{e['recall']:.3f}**, F1 **{e['f1']:.3f}**; B-cubed precision "
            f"{e['bcubed_precision']:.3f}, recall {e['bcubed_recall']:.3f}; "
            f"**{e['false_merge_rate']:.2%}** of profiles mix two or more people "
            f"({e['false_merge_rate_multi']:.2%} of the profiles of two or more records)."
        )
    return text


def headlines(result: IdentityResult) -> dict:
    """The stage's headline figures: records, profiles, what stayed unattached, the guards' work,
    the threshold, the mode and seconds, and the truth's F1 when the world has one."""
    f = result.figures
    out = {
        "records": f["records"],
        "profiles": f["profiles"],
        "unattached records": f["unattached_records"],
        "guarded identifiers": f["guarded_identifiers"],
        "merges refused by chain guard": f["links_refused_by_chain_guard"],
        "merges refused by constraints": f.get("links_refused_by_constraint", 0),
        "links not applied (household guard)": f.get("links_refused_by_household_guard", 0),
    }
    if _refused_by_contact(result):
        out["merges refused by contact pin"] = _refused_by_contact(result)
    mk = f.get("masked_phone") or {}
    if mk.get("masked_only"):
        out["records with only a masked phone"] = mk["masked_only"]
        out["of them attached by the masked key"] = mk.get("attached", 0)
    if f.get("match_threshold") is not None:
        out["match threshold (from the data)"] = float(fmt_probability(f["match_threshold"]))
    if result.evaluation:
        out["pairwise F1"] = round(result.evaluation["f1"], 4)
        out["false-merge rate"] = round(result.evaluation["false_merge_rate"], 4)
    mode = f.get("identity_mode")
    if mode:
        out["identity mode"] = mode["used"]
        out["identity seconds"] = mode.get("stage_seconds")
        out["identity CPU seconds"] = mode.get("stage_cpu_seconds")
        if mode["used"] == "incremental":
            out["records resolved (incremental)"] = mode.get("records_resolved")
    ids = f.get("id_changes")
    if ids and ids.get("kept"):
        out["profile ids kept from the last run"] = ids["kept"]
        out["profiles merged since the last run"] = ids["merged"]
        out["profiles split since the last run"] = ids["split"]
    return out


def id_changes_markdown(result: IdentityResult) -> str:
    """What happened to the previous run's profile ids, in words."""
    ids = result.figures.get("id_changes")
    if not ids:
        return "Lasting ids were not assigned (the stage was run without a warehouse)."
    if not ids["kept"] and not ids["merged"] and not ids["split"] and not ids["retired"]:
        return (
            f"No earlier run of the profiles stage in this warehouse: the **{ids['profiles']:,}** "
            "profiles got their first ids, recorded in `identity.registry`. From the next run "
            "on, a profile keeps its id, and merges and splits are traced here."
        )
    return (
        f"Of this run's **{ids['profiles']:,}** profiles, **{ids['kept']:,}** kept the id the "
        f"last run gave them and **{ids['new']:,}** are new people. **{ids['merged']:,}** earlier "
        f"profiles were merged into another (their ids now point to the surviving one), "
        f"**{ids['split']:,}** split ({ids['split_parts']:,} parts got new ids, the larger part "
        f"kept the old one) and **{ids['retired']:,}** lost all their records. Every id ever "
        "issued stays resolvable: `cem identity resolve ID` or "
        "`cemlib.identity.resolve_id(wh, ID)`."
    )


def id_change_examples(result: IdentityResult, n: int = 8) -> pd.DataFrame | None:
    """Up to ``n`` merges and splits of this run with the link behind each. Profile ids are
    pseudonymous hashes; the record ids in the evidence are the sources' own keys."""
    ch = result.changes
    if ch is None or not len(ch):
        return None
    order = {"merge": 0, "split": 1, "retired": 2}
    shown = ch.sort_values("change", key=lambda s: s.map(order), kind="stable")
    shown = shown.groupby("change", sort=False).head(max(n // 2, 1)).head(n)
    return shown.rename(
        columns={"profile_id": "earlier id", "other_profile_id": "now / new part",
                 "records": "records moved"}
    ).reset_index(drop=True)  # fmt: skip


def plot_profile_sizes(result: IdentityResult):
    """Histogram of records per profile and identifiers per profile."""
    import matplotlib.pyplot as plt

    sizes = result.profiles["n_records"].clip(upper=50)
    phones = result.profiles["phones"].map(len)
    emails = result.profiles["emails"].map(len)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    a.hist(sizes, bins=np.arange(1, 52) - 0.5, color="#4c72b0")
    a.set(title="Records per profile (capped at 50)", xlabel="records", ylabel="profiles")
    a.set_yscale("log")
    width = 0.4
    k = np.arange(0, max(int(phones.max()), int(emails.max()), 1) + 1)
    b.bar(k - width / 2, phones.value_counts().reindex(k, fill_value=0), width, label="phones")
    b.bar(k + width / 2, emails.value_counts().reindex(k, fill_value=0), width, label="emails")
    b.set(title="Distinct phones and emails per profile", xlabel="identifiers", ylabel="profiles")
    b.legend()
    return fig


def rule_table(result: IdentityResult) -> pd.DataFrame:
    """Links per rule: how many were proposed and accepted (what did the work)."""
    lk = result.links
    t = lk.groupby("rule").agg(links=("accepted", "size"), accepted=("accepted", "sum"))
    t["refused"] = t["links"] - t["accepted"]
    return t.sort_values("links", ascending=False).reset_index()


def plot_match_weights(result: IdentityResult):
    """Splink's match-weight chart, redrawn with matplotlib from the trained parameters."""
    import matplotlib.pyplot as plt

    model = result.resolver.model_
    if model is None:
        return None
    mw = model.match_weights().dropna(subset=["match_weight"])
    labels = (mw["comparison"] + ": " + mw["level"].astype(str)).tolist()
    fig, ax = plt.subplots(figsize=(11, 0.28 * len(mw) + 1.2))
    colors = np.where(mw["match_weight"] >= 0, "#55a868", "#c44e52")
    ax.barh(np.arange(len(mw)), mw["match_weight"], color=colors)
    ax.set_yticks(np.arange(len(mw)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.set(
        title="Splink match weights per comparison level (log2 Bayes factor)",
        xlabel="match weight",
        ylabel="comparison level",
    )
    return fig


def save_splink_match_weights(result: IdentityResult, headlines_path) -> str | None:
    """Splink's own interactive match-weights chart as a self-contained HTML file beside the
    report (its JavaScript inlined, so it opens offline; parameters only, no personal data).
    Returns the file name to link, or None without a model or a report folder."""
    from pathlib import Path

    model = result.resolver.model_
    linker = getattr(model, "linker_", None) if model is not None else None
    if linker is None or not headlines_path:
        return None
    name = Path(headlines_path).name.replace(".headlines.json", "") + "_match_weights.html"
    path = Path(headlines_path).parent / name
    linker.visualisations.match_weights_chart().save_offline_chart(
        str(path), overwrite=True, print_msg=False
    )
    return name


def agreeing_table(result: IdentityResult) -> pd.DataFrame:
    """Model links: how often each comparison agreed (contributed a positive weight)."""
    lk = result.links[(result.links["rule"] == "model") & result.links["accepted"]]
    if lk.empty:
        return pd.DataFrame(columns=["comparison", "links"])
    s = lk["agreeing"].fillna("").str.split(",").explode()
    s = s[s != ""]
    return s.value_counts().rename_axis("comparison").reset_index(name="links")


def guarded_table(result: IdentityResult, n: int = 10) -> pd.DataFrame:
    """The guarded identifiers with the most records, values masked."""
    g = result.guarded.sort_values(["status", "n_records"], ascending=[True, False])
    g = g.groupby("status", sort=False).head(n).copy()
    g["value"] = [
        _MASK_BY_KIND.get(k, lambda v: "***")(v) for k, v in zip(g["kind"], g["value"], strict=True)
    ]
    return g.reset_index(drop=True)


def verdict_of(result: IdentityResult) -> dict:
    """The stage's verdict (``cemlib.reports.verdict`` arguments)."""
    f = result.figures
    attached = f["attached_records"] / max(f["records"], 1)
    figures = {
        "profiles": f"{f['profiles']:,}",
        "records attached": f"{f['attached_records']:,} of {f['records']:,} ({attached:.0%})",
    }
    caveats, comparison, status = [], "", "ok"
    if f.get("match_threshold") is not None:
        figures["match threshold (from the data)"] = fmt_probability(f["match_threshold"])
    e = result.evaluation
    if e:
        figures["pairwise F1 (truth)"] = f"{e['f1']:.3f}"
        figures["profiles mixing people"] = f"{e['false_merge_rate']:.2%}"
        comparison = (
            f"Against the synthetic truth: precision {e['precision']:.3f}, recall "
            f"{e['recall']:.3f}; {e['profiles']:,} profiles for {e['persons']:,} people."
        )
        if e["false_merge_rate"] > 0.02:
            status = "warning"
            caveats.append(f"{e['false_merge_rate']:.1%} of the profiles mix two or more people")
    ids = f.get("id_changes")
    if ids and ids.get("kept"):
        comparison += (
            f" Since the last run: {ids['kept']:,} profile ids kept, {ids['merged']:,} merged, "
            f"{ids['split']:,} split."
        )
    if f["unattached_records"]:
        caveats.append(
            f"{f['unattached_records']:,} records stay unattached (anonymous receipts and sessions, "
            "or only a shared identifier): they count in no profile"
        )
    return {
        "status": status,
        "title": f"{f['attached_records']:,} records collapsed into {f['profiles']:,} profiles",
        "figures": figures,
        "comparison": comparison.strip(),
        "caveats": caveats,
    }


def evaluation_table(result: IdentityResult) -> pd.DataFrame | None:
    """Pairwise and B-cubed figures against the synthetic truth, one row each; None without it."""
    if not result.evaluation:
        return None
    keys = [
        "precision",
        "recall",
        "f1",
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "false_merge_rate",
        "profiles",
        "persons",
        "records",
    ]
    words = {"precision": "pairwise precision", "recall": "pairwise recall", "f1": "pairwise F1",
             "bcubed_precision": "B-cubed precision", "bcubed_recall": "B-cubed recall",
             "bcubed_f1": "B-cubed F1", "false_merge_rate": "profiles mixing people (share)",
             "profiles": "profiles", "persons": "people (truth)", "records": "records attached"}  # fmt: skip
    return pd.DataFrame(
        {"metric": [words[k] for k in keys], "value": [result.evaluation[k] for k in keys]}
    )


def calibration_table(result: IdentityResult) -> pd.DataFrame | None:
    """The model's match probability against the silver-label share, per probability band
    (see :func:`cemlib.identity.silver.silver_calibration`); None without the model."""
    cal = getattr(result.resolver, "calibration_", None)
    if cal is None:
        return None
    out = cal.copy()
    out["mean_probability"] = out["mean_probability"].round(4)
    out["silver_share"] = out["silver_share"].round(4)
    threshold = result.resolver.threshold_
    kept = []
    for band in out["match probability"]:
        lo, hi = (float(x) for x in band.split("–"))
        kept.append(
            "yes" if lo >= threshold else "no" if hi <= threshold else f"from {threshold:.3f}"
        )
    out["kept"] = kept
    return out


#: kept bands whose pairs with evidence share it less often than this get a note
SILVER_DOUBT = 0.5
#: ... when at least this many of their pairs carry evidence
SILVER_MIN_EVIDENCE = 20


def calibration_note(cal: pd.DataFrame | None) -> str | None:
    """A sentence for the reader when the kept bands' silver share sits far below their
    probabilities: what it can mean and what to do; None when the check agrees (or cannot
    tell: too few pairs carry an e-mail or a phone on both records)."""
    if cal is None or not len(cal):
        return None
    kept = cal[cal["kept"] != "no"]
    evidence = int(kept["with_evidence"].sum())
    if evidence < SILVER_MIN_EVIDENCE:
        return None
    same = float((kept["silver_share"] * kept["with_evidence"]).sum()) / evidence
    if same >= SILVER_DOUBT:
        return None
    return (
        f"**Read the silver share with care here.** In the bands the threshold keeps, "
        f"{evidence:,} linked pairs carry an e-mail, phone or national id on both records, and "
        f"only {same:.0%} carry the same one. The silver share is a floor of precision, not "
        f"precision: it counts a person with two phones or two e-mails (a second SIM, an old "
        f"address) as a false link. Where that is common, a low share says little about the "
        f"model; where it is not, the model links strangers who share a name and a birth date. "
        f"Check a sample of these links against your own knowledge before trusting either "
        f"reading, or fix the threshold (`match_threshold`)."
    )
