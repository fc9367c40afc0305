"""Identity resolution end to end: rules, Splink, chain-guarded clustering, profile ids."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.budget import release
from cemlib.errors import InputError
from cemlib.identity.graph import CONSTRAINTS, FAMILY_KINDS, ChainGuardClusterer
from cemlib.identity.masked import attach_masked_links, masked_only
from cemlib.identity.model import SplinkModel, choose_threshold
from cemlib.identity.profile_ids import profile_ids, record_profile_ids
from cemlib.identity.roles import (
    IDENTIFIER_ROLES,
    as_string,
    has_identity,
    prepare_records,
)
from cemlib.identity.rules import (
    CONTACT_RULE,
    CONTACT_SOURCE,
    IDENTIFIER_COLUMNS,
    HubGuard,
    contact_links,
    deterministic_links,
    identifier_table,
)
from cemlib.identity.signatures import record_signatures
from cemlib.identity.silver import SILVER_MIN_PAIRS, silver_calibration, silver_disagreement

#: merge order of identifier links (higher first): the most personal identifiers build the
#: clusters before the ones a family shares, so the chain guard sees who is who
RULE_SCORES: dict[str, float] = {
    "email": 1.0,
    "national_id": 1.0,
    "loyalty_card": 0.9995,
    "device_id": 0.999,
    "phone": 0.9985,
}
#: an event naming its CRM record (``contact_id``) is merged before any identifier link
CONTACT_RULE_SCORE = 1.0
AUTO_FLOOR = 0.9  # the automatic match threshold is never below this
CALIBRATION_FLOOR = 0.5  # pairs scored from this probability up feed the calibration table
SHARED_RULE_SCORE = 0.995  # a shared identifier plus agreeing name and birth date

#: evidence that a profile belongs to a household whose members' nameless records cannot be
#: told apart: ``refused_link`` (the chain guard refused a link touching the profile),
#: ``shared_identifier`` (a named record carries an identifier the hub guard found shared),
#: ``shared_address`` (a delivery address also used by another profile), ``surname_city``
#: (another profile has a named record with the same surname stem in the same city)
HOUSEHOLD_SIGNALS: tuple[str, ...] = (
    "refused_link",
    "shared_identifier",
    "shared_address",
    "surname_city",
)
DEFAULT_HOUSEHOLD_SIGNALS: tuple[str, ...] = ("refused_link", "shared_identifier")
#: the source of every record of :func:`resolve` (and ``cem identity``) when no column has the
#: ``source`` role: a profile id hashes its smallest ``source|record_id``, so the ids of a file
#: do not depend on how its path was spelled, nor on the entry point
INPUT_SOURCE = "input"
#: ``refused_by`` of a link the clusterer accepted whose record was then held back from the
#: profile (:meth:`IdentityResolver.applied_links`)
HELD_BACK_REASONS: tuple[str, ...] = ("household_profile", "shared_identifier_only")
#: identifiers issued to one named holder (a loyalty card, a national id): one of them, seen
#: only on its holder's profile and on the holder's own named record, places a receipt alone
HOLDER_KINDS: tuple[str, ...] = ("loyalty_card", "national_id")


def wilson_lower(rate: float, n: int, z: float = 1.645) -> float:
    """The lower end of the one-sided Wilson score interval of a proportion ``rate`` of ``n``
    (``z`` 1.645: 95%)."""
    if n <= 0:
        return 0.0
    centre = rate + z * z / (2 * n)
    spread = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return float(max(0.0, (centre - spread) / (1 + z * z / n)))


class IdentityResolver:
    """Collapse prepared person records into profiles.

    Parameters: ``guard`` (hub thresholds), ``match_threshold`` (lowest Splink match
    probability that can link; ``"auto"`` (or None), the default, chooses it per run from the scored
    pairs: the lowest at which the expected precision of the accepted model links is
    ``target_precision``, see :func:`~cemlib.identity.model.choose_threshold`),
    ``strong_threshold`` (probability above which a link needs only
    one of name/birth date to agree), ``use_model`` (False = deterministic rules only),
    ``chain_guard``, ``seed``, ``household_guard`` (nameless records of profiles with
    household evidence stay unattached), ``household_signals`` (which evidence counts, from
    :data:`HOUSEHOLD_SIGNALS`), ``household_statuses`` (hub-guard statuses of an identifier
    on a named record that count as the ``shared_identifier`` signal) and ``saved_model``
    (:meth:`SplinkModel.saved` of an earlier fit: the model scores without training). After ``fit``: ``labels_``, ``profile_id_``, ``links_``,
    ``guarded_``, ``model_`` (the :class:`SplinkModel` or None; ``model_rows_``: the node of
    each of its records, as its ``unique_id``), ``threshold_`` (the match
    threshold used; None without the model), ``constraints_`` (the cluster constraints
    enforced: a birth-date or patronymic constraint only where at most ``constraint_tolerance``
    of the silver pairs disagree on that field, a national-id one only where the records hold
    national ids, see :meth:`_active_constraints`),
    ``n_refused_``, ``contact_refs_`` (records whose ``contact_id`` names a CRM record:
    ``with_contact_id``, ``matched``, ``unmatched``; an unmatched one is ignored) and
    ``contact_linked_`` (per record: attached to its contact's profile by ``contact_id``).
    """

    #: hooks for a run that resolves part of the records again (an incremental run sets them
    #: before :meth:`fit`): ``known_identifiers``, the last run's guarded identifiers whose
    #: status is taken as it was (:func:`~cemlib.identity.rules.deterministic_links`'s
    #: ``known``); ``refused_elsewhere``, per record of ``fit``'s input, whether the last run
    #: refused a link of it to a record not resolved again (the ``refused_link`` evidence)
    known_identifiers: pd.DataFrame | None = None
    refused_elsewhere: np.ndarray | None = None
    #: identifiers records held in an earlier run and no longer hold (``source, record_id,
    #: kind, value, until``: :func:`~cemlib.identity.store.record_former_identifiers`), set
    #: by the stage in both modes: still evidence for the records dated up to ``until``
    former_identifiers: pd.DataFrame | None = None

    def __init__(
        self,
        *,
        guard: HubGuard | None = None,
        match_threshold: float | str | None = "auto",
        target_precision: float = 0.99,
        strong_threshold: float = 0.99,
        use_model: bool = True,
        chain_guard: bool = True,
        constraints: tuple[str, ...] = CONSTRAINTS,
        constraint_tolerance: float = 0.03,
        seed: int = DEFAULT_SEED,
        u_max_pairs: float = 2e6,
        ambiguous_contested: tuple[str, ...] = ("phone", "device_id"),
        household_guard: bool = True,
        household_statuses: tuple[str, ...] = ("shared", "hub"),
        household_signals: tuple[str, ...] = DEFAULT_HOUSEHOLD_SIGNALS,
        corroborate: bool = True,
        spark=None,
        saved_model: dict | None = None,
    ):
        self.guard = guard or HubGuard()
        fixed = match_threshold is not None and match_threshold != "auto"
        if fixed and not 0.0 < float(match_threshold) < 1.0:
            raise ValueError(
                f"match_threshold must be 'auto' or a probability in (0, 1), got {match_threshold!r}"
            )
        self.match_threshold = match_threshold
        self.target_precision = target_precision
        self.constraints = constraints
        self.constraint_tolerance = constraint_tolerance
        self.strong_threshold = strong_threshold
        self.use_model = use_model
        self.chain_guard = chain_guard
        self.seed = seed
        self.u_max_pairs = u_max_pairs
        self.ambiguous_contested = ambiguous_contested
        self.household_guard = household_guard
        self.household_statuses = household_statuses
        self.household_signals = household_signals
        self.corroborate = corroborate
        self.spark = spark  # a Spark session: the Splink model on SparkAPI (SplinkModel)
        self.saved_model = saved_model  # SplinkModel.saved() of an earlier fit: not trained

    def fit(self, prepared: pd.DataFrame) -> IdentityResolver:
        """Resolve ``prepared`` records (from :func:`prepare_records`). Records with identical
        identifying values (the many web events of one logged-in device) are resolved once."""
        # a view, not a copy: the per-record frame is the largest object of the stage
        if prepared.index.equals(pd.RangeIndex(len(prepared))):
            self.prepared_ = prepared.copy(deep=False)
        else:
            self.prepared_ = prepared.reset_index(drop=True)
        codes, nodes = record_signatures(self.prepared_)
        self.former_nodes_ = self._former_nodes(codes, nodes)
        contact, target, self.contact_refs_ = contact_links(self.prepared_, codes)
        crm = np.zeros(len(nodes), dtype=bool)
        is_crm = as_string(self.prepared_["source"]).eq(CONTACT_SOURCE).fillna(False)
        crm[codes[is_crm.to_numpy(dtype=bool)]] = True
        node_labels = self._fit_nodes(nodes, contact, crm)
        release()  # the clustering's per-cluster sets are freed: return their pages
        self.labels_ = node_labels[codes]
        self.node_of_record_ = codes
        # an event naming its CRM record is that record's person's, whatever it shares
        linked = target >= 0
        linked &= node_labels[np.maximum(target, 0)] == self.labels_
        self.contact_linked_ = linked
        ambiguous = self._ambiguous_nodes()
        household = self._household_nodes(node_labels) & ~ambiguous
        self.ambiguous_ = ambiguous[codes] & ~linked
        held = household[codes] & ~linked
        self.corroborated_ = np.zeros(len(codes), dtype=bool)
        if self.corroborate and held.any():
            self.corroborated_ = held & self._corroborated(node_labels, codes, held)
        self.household_ = held & ~self.corroborated_
        # every column has_identity reads is part of the signature: decide per node
        has_id = has_identity(nodes).to_numpy()[codes] | linked
        # a record whose only contact is a masked phone, alone in its cluster, gets no profile
        # from the resolution: cemlib.identity.masked attaches it (or not) afterwards
        alone = np.bincount(self.labels_)[self.labels_] == 1
        masked = masked_only(self.prepared_) & alone & ~linked & has_id
        self.attached_ = has_id & ~self.ambiguous_ & ~self.household_ & ~masked
        reason = np.full(len(codes), None, dtype=object)
        reason[masked & ~self.ambiguous_ & ~self.household_] = "masked_phone_only"
        reason[~has_id] = "no_identifier"
        reason[has_id & self.ambiguous_] = "shared_identifier_only"
        reason[has_id & self.household_] = "household_profile"
        self.unattached_reason_ = reason
        self.profile_id_ = record_profile_ids(
            self.prepared_["source"], self.prepared_["record_id"], self.labels_
        )
        self.applied_ = self._applied()  # per link: kept once the per-record arrays are released
        return self

    def _former_nodes(self, codes: np.ndarray, nodes: pd.DataFrame) -> pd.DataFrame | None:
        """The :attr:`former_identifiers` of the records here by node (``rid, kind, value,
        until``), with ``nodes["_earliest"]`` set (the date of each node's earliest record);
        None without any."""
        former = self.former_identifiers
        if former is None or not len(former):
            return None
        # only the rows of the few records that changed become Python keys (a full run passes
        # every record here; the ids compared as Arrow strings)
        record_id = as_string(self.prepared_["record_id"])
        rows = np.flatnonzero(record_id.isin(former["record_id"].astype(str)).to_numpy(bool))
        keys = pd.DataFrame({"source": as_string(self.prepared_["source"]).iloc[rows]
                             .to_numpy(dtype=object),
                             "record_id": record_id.iloc[rows].to_numpy(dtype=object),
                             "row": rows})  # fmt: skip
        f = former.assign(source=former["source"].astype(str).to_numpy(dtype=object),
                          record_id=former["record_id"].astype(str).to_numpy(dtype=object))  # fmt: skip
        f = f.merge(keys, on=["source", "record_id"], how="inner")
        if not len(f):
            return None
        dates = pd.to_datetime(self.prepared_["updated_at"]).to_numpy(dtype="datetime64[ns]")
        nodes["_earliest"] = pd.Series(dates).groupby(codes).min().reindex(
            np.arange(len(nodes))).to_numpy()  # fmt: skip
        out = pd.DataFrame({"rid": codes[f["row"].to_numpy()], "kind": f["kind"].astype(str),
                            "value": f["value"].astype(str), "until": f["until"]})  # fmt: skip
        return out.drop_duplicates(["rid", "kind", "value"], ignore_index=True)

    def _ambiguous_nodes(self) -> np.ndarray:
        """Nameless nodes whose only identifiers are shared, hub or contested ones (a receipt
        with a family's loyalty card, a phone typed at the till that the family also uses on
        each other's orders): they cannot be given to one person and stay unattached."""
        nodes, guarded = self.nodes_, self.guarded_
        status = guarded["status"]
        bad = guarded[
            status.isin(["shared", "hub"])
            | ((status == "contested") & guarded["kind"].isin(self.ambiguous_contested))
        ]
        named = nodes["first_lat"].notna() | nodes["last_lat"].notna()
        usable = np.zeros(len(nodes), dtype=bool)
        any_id = np.zeros(len(nodes), dtype=bool)
        for kind, cols in IDENTIFIER_COLUMNS.items():
            blocked = set(bad.loc[bad["kind"] == kind, "value"])
            for c in cols:
                if c not in nodes:
                    continue
                present = nodes[c].notna().to_numpy()
                any_id |= present
                usable |= present & ~nodes[c].isin(blocked).to_numpy()
        return any_id & ~usable & ~named.to_numpy()

    def _household_nodes(self, labels: np.ndarray) -> np.ndarray:
        """Nameless nodes of profiles that show household evidence: the chain guard refused a
        link touching the profile (one of its identifiers also leads to a person with another
        first name, gender or birth date), or one of its named records carries an identifier
        the hub guard found shared (seen with several first names or birth dates). The
        profile's own named records stay; its receipts, orders, sessions and tickets, which
        cannot say which family member they belong to, stay unattached."""
        nodes = self.nodes_
        flagged = np.zeros(len(nodes), dtype=bool)
        if not self.household_guard:
            return flagged
        unknown = set(self.household_signals) - set(HOUSEHOLD_SIGNALS)
        if unknown:
            raise ValueError(
                f"unknown household signal(s) {sorted(unknown)}; known: {HOUSEHOLD_SIGNALS}"
            )
        signals = set(self.household_signals)
        named = (nodes["first_lat"].notna() | nodes["last_lat"].notna()).to_numpy()
        if "refused_link" in signals:
            # a name-only record refused as a bridge says nothing of a household
            lk = self.links_
            refused = lk[~lk["accepted"].to_numpy(dtype=bool) & (lk["refused_by"] != "bridge")]
            flagged[refused["rid_l"].to_numpy()] = True
            flagged[refused["rid_r"].to_numpy()] = True
            if self.refused_elsewhere is not None:
                flagged[self.node_of_record_[np.asarray(self.refused_elsewhere, dtype=bool)]] = True
        if "shared_identifier" in signals:
            g = self.guarded_
            g = g[g["status"].isin(self.household_statuses)]
            for kind, cols in IDENTIFIER_COLUMNS.items():
                vals = set(g.loc[g["kind"] == kind, "value"])
                if not vals:
                    continue
                for c in cols:
                    if c in nodes:
                        flagged |= named & nodes[c].isin(vals).to_numpy()
        keys = []
        if "shared_address" in signals and "address" in nodes:
            keys.append(nodes["address"].astype("string"))
        if "surname_city" in signals and "city" in nodes:
            stem = nodes["last_lat"].astype("string").str.replace(r"(a|aya|ya)$", "", regex=True)
            keys.append(stem + "|" + nodes["city"].astype("string"))
        for key in keys:
            kl = pd.DataFrame({"key": key.to_numpy(), "label": labels}).dropna()
            n_profiles = kl.groupby("key", sort=False)["label"].transform("nunique")
            flagged[kl.index[n_profiles.to_numpy() > 1]] = True
        households = np.isin(labels, np.unique(labels[flagged]))
        return households & ~named

    def _corroborated(self, labels: np.ndarray, codes: np.ndarray, held: np.ndarray) -> np.ndarray:
        """Which of the ``held`` records (nameless, in a profile with household evidence) the
        data itself places with their profile's person, so that they are attached after all.

        An identifier is *personal* to a profile when every record carrying it is in that
        profile and the hub guard saw it with one first name and one birth date, uncontested
        (not in ``guarded_``). It is *confirmed* for a record when it also appears on a record
        of another source table that says whose it is: a record with a name, or, for a phone,
        card or device, a record with an e-mail login (a session logged in on the device). A
        held-back record is attached when it carries (a) identifiers of two kinds, each personal
        to the profile and confirmed (an order whose e-mail is on the person's CRM record and
        whose device the person logs in on), or (b) a card or national id
        (:data:`HOLDER_KINDS`) personal to the profile and confirmed by a named record (its
        registered holder). One device, phone or e-mail alone does not do: a relative may
        use the family's computer, phone or account without leaving a trace of their own.
        """
        nodes = self.nodes_
        long = identifier_table(nodes, people=False)
        if long.empty:
            return np.zeros(len(codes), dtype=bool)
        node = long["rid"].to_numpy()
        key = long["key"].to_numpy()
        n_keys = int(key.max()) + 1
        # personal: one profile, not guarded
        lab = labels[node]
        pairs = np.unique(key.astype(np.int64) * (int(lab.max()) + 1) + lab)
        one_profile = np.bincount(pairs // (int(lab.max()) + 1), minlength=n_keys) == 1
        # guarded: looked up once per identifier, not per row
        g = self.guarded_
        first_at = np.unique(key, return_index=True)[1]
        # the few keys whose value any guarded row carries, then their (kind, value) pairs: no
        # index over millions of identifier strings
        values = pd.Series(long["value"].array.take(first_at))
        maybe = first_at[values.isin(g["value"].astype(str)).to_numpy()]
        kinds_values = pd.MultiIndex.from_arrays(
            [long["kind"].to_numpy()[maybe].astype(str),
             long["value"].array.take(maybe).astype(str)]
        )  # fmt: skip
        guarded = pd.MultiIndex.from_arrays([g["kind"].astype(str), g["value"].astype(str)])
        key_guarded = np.zeros(n_keys, dtype=bool)
        key_guarded[key[maybe]] = kinds_values.isin(guarded)
        personal_row = one_profile[key] & ~key_guarded[key]
        # the source tables each node's records come from, as bits (one per table)
        src_codes, _ = pd.factorize(self.prepared_["source"].astype(str))
        src_bit = np.left_shift(np.int64(1), src_codes.astype(np.int64))
        node_src = np.zeros(len(nodes), dtype=np.int64)
        np.bitwise_or.at(node_src, codes, src_bit)
        named = (nodes["first_lat"].notna() | nodes["last_lat"].notna()).to_numpy()
        email_cols = [c for c in IDENTIFIER_COLUMNS["email"] if c in nodes]
        login = nodes[email_cols].notna().any(axis=1).to_numpy() if email_cols else named & False
        kind_codes, kind_names = pd.factorize(long["kind"].to_numpy())
        witness = named[node] | (login[node] & (kind_names[kind_codes] != "email"))
        # per identifier, the tables holding a witness of it (any, and named): which node
        # witnessed does not matter, and a join of records to witnesses would multiply rows by
        # the witnesses of a busy device or phone (13 GiB at a million people)
        seen_in = np.zeros(n_keys, dtype=np.int64)
        np.bitwise_or.at(seen_in, key[witness], node_src[node[witness]])
        by_name = witness & named[node]
        named_in = np.zeros(n_keys, dtype=np.int64)
        np.bitwise_or.at(named_in, key[by_name], node_src[node[by_name]])
        # held-back records and their personal identifiers (each record's node's rows)
        rec = np.flatnonzero(held)
        p_node, p_key, p_kind = node[personal_row], key[personal_row], kind_codes[personal_row]
        order = np.argsort(p_node, kind="stable")
        p_node, p_key, p_kind = p_node[order], p_key[order], p_kind[order]
        first = np.searchsorted(p_node, codes[rec], side="left")
        count = np.searchsorted(p_node, codes[rec], side="right") - first
        if not count.any():
            return np.zeros(len(codes), dtype=bool)
        c_rec = np.repeat(rec, count)
        at = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        c_key, c_kind = p_key[at], p_kind[at]
        # confirmed: a witness of the identifier in a source table other than the record's
        other = ~src_bit[c_rec]
        conf = (seen_in[c_key] & other) != 0
        n_kinds = len(kind_names)
        pairs = np.unique(c_rec[conf].astype(np.int64) * n_kinds + c_kind[conf])
        kinds = np.bincount(pairs // n_kinds, minlength=len(codes))
        holder_codes = np.flatnonzero(np.isin(kind_names, list(HOLDER_KINDS)))
        holder = np.isin(c_kind, holder_codes) & ((named_in[c_key] & other) != 0)
        out = kinds >= 2
        out[c_rec[holder]] = True
        return out

    def _fit_nodes(
        self,
        prepared: pd.DataFrame,
        contact: pd.DataFrame | None = None,
        crm: np.ndarray | None = None,
    ) -> np.ndarray:
        """Cluster labels of the nodes ``prepared``: identifier and model links, and
        ``contact`` links (events naming their CRM record, merged first) with ``crm`` (per
        node: holds a CRM record) for the contact pin of :class:`ChainGuardClusterer`."""
        det, guarded = deterministic_links(prepared, self.guard, known=self.known_identifiers,
                                           former=getattr(self, "former_nodes_", None))  # fmt: skip
        if "_earliest" in prepared:  # read by the former identifiers' links only
            prepared.drop(columns="_earliest", inplace=True)
        if not len(det):  # no identifier link at all (an increment of masked orders only)
            det = det.astype({"rule": object})
        det = det.assign(
            score=np.where(
                det["rule"].str.endswith("+name"),
                SHARED_RULE_SCORE,
                det["rule"].map(RULE_SCORES).fillna(1.0),
            ),
            match_weight=np.nan,
            match_probability=np.nan,
            agreeing=det["rule"].str.replace("+name", ",first_name", regex=False),
            disagreeing="",
        )
        parts = [det]
        if contact is not None and len(contact):
            # first among equal scores: every event joins its contact before identifiers chain
            contact = contact.assign(
                score=CONTACT_RULE_SCORE,
                match_weight=np.nan,
                match_probability=np.nan,
                agreeing=CONTACT_RULE,
                disagreeing="",
            )
            parts.insert(0, contact)
        self.model_ = None
        self.model_rows_ = None  # the node of each of the model's records (its unique_id)
        self.threshold_ = None
        self.calibration_ = None
        named = prepared["first_lat"].notna() | prepared["last_lat"].notna()
        # a record whose only contact is a masked phone is matched by its partial key only
        # (cemlib.identity.masked), never by the model: its first name and a pick-up point
        # would only add pairs (and move the threshold) without a link to keep
        named &= ~masked_only(prepared)
        if self.use_model and named.sum() >= 50:
            model_in = prepared[named].copy()
            blocked = guarded[["kind", "value"]]
            for kind, cols in IDENTIFIER_COLUMNS.items():
                bad = set(blocked.loc[blocked["kind"] == kind, "value"])
                if not bad:
                    continue
                for c in cols:
                    if c in model_in:
                        model_in[c] = model_in[c].mask(model_in[c].isin(bad))
            index = np.flatnonzero(named.to_numpy())
            model = SplinkModel(seed=self.seed, u_max_pairs=self.u_max_pairs, spark=self.spark).fit(
                model_in, saved=self.saved_model
            )
            auto = self.match_threshold is None or self.match_threshold == "auto"
            fixed = None if auto else float(self.match_threshold)
            pairs = model.predict(min(CALIBRATION_FLOOR, fixed or 1.0))
            self.calibration_ = silver_calibration(pairs, model_in)
            if fixed is None:
                self.threshold_ = choose_threshold(
                    pairs["match_probability"].to_numpy(),
                    precision=self.target_precision,
                    floor=AUTO_FLOOR,
                )
            else:
                self.threshold_ = fixed
            pairs = pairs[pairs["match_probability"] >= self.threshold_].reset_index(drop=True)
            pairs["rid_l"] = index[pairs["rid_l"].to_numpy()]
            pairs["rid_r"] = index[pairs["rid_r"].to_numpy()]
            pairs = pairs.assign(rule="model", score=pairs["match_probability"])
            parts.append(pairs)
            self.model_ = model
            self.model_rows_ = index
        links = pd.concat(parts, ignore_index=True)
        # the guard checks every identifier link (chains through devices, shared cards) and
        # model links below the strong threshold; a strong model link already priced its pair
        links["guarded"] = (links["rule"] != "model") | (links["score"] < self.strong_threshold)
        links.loc[links["rule"] == CONTACT_RULE, "guarded"] = False
        self.constraints_ = self._active_constraints(prepared)
        clusterer = ChainGuardClusterer(
            strong_threshold=self.strong_threshold,
            guard=self.chain_guard,
            constraints=self.constraints_,
        ).fit(prepared, links, crm=crm if contact is not None and len(contact) else None)
        links["accepted"] = clusterer.accepted_
        links["refused_by"] = clusterer.refused_by_
        self.n_refused_ = clusterer.n_refused_
        self.links_ = links
        self.guarded_ = guarded
        self.nodes_ = prepared
        return clusterer.labels_

    def _active_constraints(self, prepared: pd.DataFrame) -> tuple[str, ...]:
        """The constraints the data support: a field whose values are replaced between records
        of one person (more than ``constraint_tolerance`` of them disagree on it entirely)
        cannot veto a merge. Measured on silver pairs (:func:`silver_disagreement`) where there
        are enough, else taken from the model's ``m`` of the field's last level.

        From silver pairs the rate compared is the lower end of its one-sided 95% Wilson
        interval: a constraint is given up only when the pairs show that one person's values
        vary more than the tolerance, not when a few hundred pairs land a point or two above it
        by chance (10 of 325 clinic pairs, 3.1%, had switched the patronymic off)."""
        rates = self.model_.disagreement_rates() if self.model_ is not None else {}
        self.silver_disagreement_ = silver_disagreement(prepared, seed=self.seed)
        for field, (rate, n) in self.silver_disagreement_.items():
            if n >= SILVER_MIN_PAIRS:
                rates[field] = wilson_lower(rate, n)
        self.disagreement_rates_ = rates
        out = []
        for c in self.constraints:
            if c == "national_id" and not (
                "national_id" in prepared and prepared["national_id"].notna().any()
            ):
                continue  # no national ids: nothing to constrain (nor to list)
            rate = rates.get(c)
            if rate is not None and rate > self.constraint_tolerance:
                continue
            out.append(c)
        return tuple(out)

    def record_map(self, *, unattached: bool = False) -> pd.DataFrame:
        """``source_table, record_id, profile_id``; records with nothing to match on, only a
        shared identifier, or no name in a profile with household evidence get NA (reason in
        ``unattached_reason_``) unless ``unattached`` gives them a profile apart: one per
        record, except that a household's held-back records with equal identifying values that
        carry a personal identifier (one node with an e-mail login, not only a family's phone,
        card or computer: :data:`~cemlib.identity.graph.FAMILY_KINDS`) share one *anonymous*
        profile, kept apart from the named one: it cannot say which family member it is."""
        pid = pd.Series(self.profile_id_, dtype="string")
        if not unattached:
            pid = pid.where(self.attached_)
        else:
            alone = self.ambiguous_ | self.household_
            if alone.any():
                keys = self.prepared_["source"].astype(str) + "|" + self.prepared_["record_id"]
                grouped = self.household_ & self._personal()
                group = np.where(grouped, self.node_of_record_, -1 - np.arange(len(keys)))
                # salted: an id of its own even where the record is its profile's smallest key
                own = pd.Series(profile_ids("alone|" + keys, group), dtype="string")
                pid = pid.where(~alone, own)
        return pd.DataFrame(
            {
                "source_table": as_string(self.prepared_["source"]),
                "record_id": as_string(self.prepared_["record_id"]),
                "profile_id": pid,
            }
        )

    def _personal(self) -> np.ndarray:
        """Records carrying an identifier of a kind a family does not share (an e-mail)."""
        out = np.zeros(len(self.prepared_), dtype=bool)
        for kind, cols in IDENTIFIER_COLUMNS.items():
            if kind not in FAMILY_KINDS:
                for c in cols:
                    if c in self.prepared_:
                        out |= self.prepared_[c].notna().to_numpy()
        return out

    def applied_links(self) -> tuple[np.ndarray, np.ndarray]:
        """``accepted`` and ``refused_by`` of each link of ``links_`` as the profiles have them
        (computed by :meth:`fit`, so they outlive the per-record arrays).

        The clusterer accepts a link when it joins the two nodes' clusters; a record is then
        still held back from its cluster's profile when it is nameless in a household profile or
        carries only shared identifiers (``unattached_reason_``). A link the clusterer accepted
        whose record (the one the node stands for, named in :meth:`link_table`) was held back
        did not join the two records: it is refused by that reason (``household_profile``,
        ``shared_identifier_only``). So every accepted link joins two records of one profile,
        and every refused one names the guard that refused it. ``links_`` itself keeps the
        clusterer's decisions (the household guard reads them)."""
        return self.applied_

    def _applied(self) -> tuple[np.ndarray, np.ndarray]:
        lk = self.links_
        accepted = lk["accepted"].to_numpy(dtype=bool).copy()
        refused_by = lk["refused_by"].to_numpy(dtype=object).copy()
        codes = self.node_of_record_
        # the first record of each node: the node's row in ``nodes_`` (record_signatures)
        first = np.empty(len(self.nodes_), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        attached, reason = self.attached_[first], self.unattached_reason_[first]
        left, right = lk["rid_l"].to_numpy(), lk["rid_r"].to_numpy()
        apart = accepted & ~(attached[left] & attached[right])
        why = np.where(pd.notna(reason[left]), reason[left], reason[right])
        accepted[apart] = False
        refused_by[apart] = why[apart]
        return accepted, refused_by

    def link_table(self) -> pd.DataFrame:
        """Every link with its evidence: rule or match weight/probability, agreeing fields, and
        whether it joined its two records in one profile (``accepted``; if not, ``refused_by``
        names the guard: :meth:`applied_links`). The one table of links that ``cem identity
        --links`` and the warehouse's ``identity.links`` (full and incremental runs) write."""
        p, lk = self.nodes_, self.links_
        left, right = lk["rid_l"].to_numpy(), lk["rid_r"].to_numpy()
        accepted, refused_by = self.applied_links()
        # taken from the string arrays as they are (Arrow-backed), not via Python objects
        src = as_string(p["source"]).array
        rid = as_string(p["record_id"]).array
        return pd.DataFrame(
            {
                "left_source": src.take(left),
                "left_record_id": rid.take(left),
                "right_source": src.take(right),
                "right_record_id": rid.take(right),
                "rule": lk["rule"].to_numpy(),
                "match_weight": lk["match_weight"].to_numpy(),
                "match_probability": lk["match_probability"].to_numpy(),
                "agreeing": lk["agreeing"].to_numpy(),
                "disagreeing": lk["disagreeing"].to_numpy(),
                "accepted": accepted,
                "refused_by": refused_by,
            }
        )


def resolve(
    df: pd.DataFrame,
    roles: Mapping,
    *,
    id_column: str,
    source: str = "input",
    match_threshold: float | str | None = "auto",
    guard: HubGuard | None = None,
    use_model: bool = True,
    seed: int = DEFAULT_SEED,
    household_signals: tuple[str, ...] = DEFAULT_HOUSEHOLD_SIGNALS,
    corroborate: bool = True,
    return_resolver: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, IdentityResolver]:
    """Profiles for a table of person records: ``record_id, profile_id`` (one row per record).

    ``roles`` maps roles to columns (or columns to roles); a role missing from it is not used.
    ``source`` names the input in errors. A profile id is a hash of its smallest
    ``source|record_id``, where a record's source is its value in the column of the ``source``
    role, else :data:`INPUT_SOURCE`: ``cem identity FILE`` (``--source-column`` being the
    ``source`` role) gives the same profiles and ids as this function with the same roles and
    settings. The ``source`` role can change the profiles too: the corroboration of a
    held-back record looks for a witness in another source (see :meth:`IdentityResolver.fit`).
    Records with nothing to match on, and nameless records of a profile with household
    evidence (``household_signals``, empty to turn the guard off), keep a profile of their own,
    unless the data corroborates whose they are (``corroborate``, see
    :meth:`IdentityResolver._corroborated`).
    """
    if df is None or len(df) == 0:
        raise InputError("no records to resolve", source=source)
    prepared = prepare_records(
        df, roles, id_column=id_column, source=source, record_source=INPUT_SOURCE
    )
    if not any(prepared[c].notna().any() for c in [*IDENTIFIER_ROLES, "first_lat", "last_lat"]):
        raise InputError(
            "no usable identifying column (map at least a name, phone, email or id role)",
            source=source,
        )
    resolver = IdentityResolver(
        guard=guard,
        match_threshold=match_threshold,
        use_model=use_model,
        seed=seed,
        household_guard=bool(household_signals),
        household_signals=tuple(household_signals),
        corroborate=corroborate,
    ).fit(prepared)
    out = resolver.record_map(unattached=True)[["record_id", "profile_id"]]
    # records whose only contact is a masked phone: attached to the one profile their partial
    # key names, if any (cemlib.identity.masked), after the resolution: they never join two
    attached, resolver.masked_, resolver.masked_links_ = attach_masked_links(
        resolver.prepared_, out["profile_id"]
    )
    out["profile_id"] = attached.fillna(out["profile_id"]).to_numpy()
    out["record_id"] = df[id_column].astype("string").to_numpy()
    return (out, resolver) if return_resolver else out
