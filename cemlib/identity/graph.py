"""Clustering of links into profiles, with constraints and a guard against chains.

Links are merged strongest first (union–find). Two kinds of checks run before two clusters
merge, over every record of one against every record of the other:

* constraints, on every link however strong: two different full birth dates (beyond one
  digit, an adjacent-digit transposition, a day/month swap or a day a few days off), two
  different patronymics or two different first names (beyond a typo, a transliteration, a
  known diminutive or a first/last name swap: twins share everything else) or two national
  ids more than two typos apart are two people, whatever connects them; and a record that carries a name and nothing else
  (no identifier, no birth date, no address) may join one profile but never bridge two;
* the chain guard, on the links it is asked to check: first names that differ beyond a typo
  under different birth dates (and, for identifiers a family shares, different first names or
  genders) refuse the merge.

The link's own pair was already weighed by the model; the checks stop the chains, where one
link would join two people who never met through a third record.

Events that name their CRM record (``contact_id``, rule ``contact_id``) join it first and
*pin* its profile: a later link from a record other than a CRM record (an event's phone or
card) may not join two profiles that both hold a CRM record when either is pinned. An event
that names its contact belongs to that contact, not to whoever else shares its phone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.dates import dates_close, fold_dob
from cemlib.identity.rules import CONTACT_RULE, IDENTIFIER_FIELDS, names_similar
from cemlib.identity.silver import first_names_clash, one_edit

#: identifiers a family shares: their links are also refused on different first names/genders
FAMILY_KINDS: tuple[str, ...] = ("phone", "device_id", "loyalty_card")


def clearly_different(a: tuple, b: tuple) -> bool:
    """Two (first, last, birth date, …) records are different people: first names differ
    beyond a typo (and are not a first/last swap) and birth dates differ beyond one digit or a
    swap."""
    fa, la, da = a[:3]
    fb, lb, db = b[:3]
    if not (fa and fb and da and db) or dates_close(da, db):
        return False
    swapped = bool(la and fa == lb) or bool(lb and fb == la)
    return not (swapped or names_similar(fa, fb))


def names_clash(a: tuple, b: tuple) -> bool:
    """First names (or email name hints) that differ beyond a typo, or different genders."""
    fa, la, _, ga = a[:4]
    fb, lb, _, gb = b[:4]
    if ga and gb and ga != gb:
        return True
    if not (fa and fb) or names_similar(fa, fb):
        return False
    return not (bool(la and fa == lb) or bool(lb and fb == la))


_EMPTY: frozenset = frozenset()


def facts_conflict(
    dobs_a: set,
    dobs_b: set,
    mids_a: set,
    mids_b: set,
    names_a: set = _EMPTY,
    names_b: set = _EMPTY,
    ids_a: set = _EMPTY,
    ids_b: set = _EMPTY,
) -> bool:
    """Two clusters hold a birth date (folded), a patronymic, a first name (``(first,
    last, typed)`` of :func:`~cemlib.identity.silver.first_names_clash`) or a national id
    (:func:`ids_differ`) that cannot be one person's."""
    if ids_a and ids_b and any(ids_differ(x, y) for x in ids_a for y in ids_b):
        return True
    if any(not dates_close(x, y) for x in dobs_a for y in dobs_b) and not _one_date_between(
        dobs_a | dobs_b
    ):
        return True
    if any(not names_similar(x, y) for x in mids_a for y in mids_b):
        return True
    clashes = [(x, y) for x in names_a for y in names_b if first_names_clash(x, y)]
    if not clashes:
        return False
    both = names_a | names_b
    return not all(_one_typo_apart(x, y, both) for x, y in clashes)


#: two national ids more edits apart than this are two people's. On FEBRL3/4 one person's ids
#: are 0 (10,162 pairs), 1 (735), 2 (28) or 3 (3) edits apart when typed with typos, while two
#: people's of one first and last name are 3 (3 of 651 pairs) to 7 apart. FEBRL also
#: *replaces* an id (4-7 apart, 610 of its 11,538 true pairs): that is no typo, and the
#: resolver gives the constraint up on such data (the model's share of matches whose ids are
#: beyond this, the last level of its ``national_id`` comparison at [1, 2] edits: 8.7 % and
#: 5.2 %, above ``constraint_tolerance``)
NATIONAL_ID_TYPOS = 2


def ids_differ(a: str, b: str, k: int = NATIONAL_ID_TYPOS) -> bool:
    """Two national ids more than ``k`` letters replaced, added, dropped or adjacent-swapped
    apart (optimal string alignment distance)."""
    if a == b:
        return False
    if abs(len(a) - len(b)) > k:
        return True
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)] > k


def _one_date_between(dates: frozenset) -> bool:
    """The clusters' birth dates are typos of one date they hold: some held date is within a
    typo (:func:`~cemlib.identity.dates.dates_close`) of every other. One person's true date
    beside two different slips of it (2002-12-18, 2000-12-18, 2002-12-12) are two digits apart
    pairwise but one from the date between them; two people's dates two digits apart are one
    person only when a record between them says so."""
    if len(dates) < 3:
        return False
    return any(all(dates_close(z, d) for d in dates) for z in dates)


def _one_typo_apart(x: tuple, y: tuple, names: frozenset) -> bool:
    """Two first names (``(key, last key, typed)``) of two typos of one name the clusters
    hold: a third typed name one letter from each (Радим beside Родим and Рааим, two letters
    apart; trial 11 M5). Twins' names (Алина, Алена) are a letter apart already, so the rule
    adds no pair of names two people carry unless a third carries the name between them."""
    tx, ty = (x[2] if len(x) > 2 else None), (y[2] if len(y) > 2 else None)
    if not (tx and ty):
        return False
    return any(
        len(z) > 2 and z[2] not in (tx, ty) and one_edit(z[2], tx) and one_edit(z[2], ty)
        for z in names
    )


def _first_states(states: set, k: int = 50) -> list:
    """The ``k`` smallest states of a cluster (text order): a set of strings iterates in an
    order that changes with Python's string hashing, from one process to the next."""
    return sorted(states, key=lambda t: tuple("" if v is None else str(v) for v in t))[:k]


def _conflict(a: set, b: set, strict: bool, cap: int = 2500) -> bool:
    if len(a) * len(b) > cap:
        a, b = _first_states(a), _first_states(b)
    if strict:
        return any(names_clash(x, y) or clearly_different(x, y) for x in a for y in b)
    return any(clearly_different(x, y) for x in a for y in b)


def _column(prepared: pd.DataFrame, col: str) -> list:
    if col not in prepared:
        return [None] * len(prepared)
    s = prepared[col]
    return s.astype(object).where(s.notna(), None).tolist()


#: columns whose presence makes a record more than a name: it can bridge two profiles
_ANCHOR_COLUMNS: tuple[str, ...] = (
    *IDENTIFIER_FIELDS,
    "birth_date",
    "address",
)


def name_only(prepared: pd.DataFrame) -> np.ndarray:
    """Records that carry a name and nothing else to tell their person from a namesake."""
    named = prepared["first_lat"].notna() | prepared["last_lat"].notna()
    anchored = np.zeros(len(prepared), dtype=bool)
    for c in _ANCHOR_COLUMNS:
        if c in prepared:
            anchored |= prepared[c].notna().to_numpy()
    return named.to_numpy() & ~anchored


#: the cluster constraints: conflicting birth dates, conflicting patronymics, conflicting first
#: names, name-only bridges, conflicting national ids
CONSTRAINTS: tuple[str, ...] = ("birth_date", "patronymic", "first_name", "bridge", "national_id")


class ChainGuardClusterer:
    """Union–find over scored links with cluster constraints and a chain guard.

    ``fit(prepared, links)`` where ``links`` has ``rid_l, rid_r, score`` and optionally
    ``guarded`` (links the chain guard checks; default: score below ``strong_threshold``)
    sets ``labels_`` (cluster label per record: the smallest record index of the cluster),
    ``accepted_`` (boolean per link), ``refused_by_`` (per link: ``"constraint"``,
    ``"bridge"``, ``"contact"``, ``"guard"`` or None), ``n_refused_``. ``constraints``: which of
    :data:`CONSTRAINTS` are checked on every link (``birth_date``, ``patronymic``,
    ``first_name``, ``national_id``: two conflicting values; ``bridge``: a name-only record
    joining two profiles); ``guard``: the chain guard.
    """

    def __init__(
        self,
        *,
        strong_threshold: float = 0.99,
        guard: bool = True,
        constraints: tuple[str, ...] = CONSTRAINTS,
    ):
        self.strong_threshold = strong_threshold
        self.guard = guard
        self.constraints = constraints

    def _record_facts(self, prepared: pd.DataFrame) -> tuple[list, ...]:
        """Per record: first-name key, last name, birth date, gender (the chain guard's
        state), the birth date, patronymic and (first, last, typed first) name each
        constraint checks (None where it is not checked) and whether the record holds a name
        and nothing else."""
        n = len(prepared)
        first_key = prepared["first_lat"].astype("string")
        if "first_hint" in prepared:
            first_key = first_key.fillna(prepared["first_hint"].astype("string"))
        first = first_key.astype(object).where(first_key.notna(), None).tolist()
        last = _column(prepared, "last_lat")
        dob_s = fold_dob(prepared["birth_date"]) if "birth_date" in prepared else None
        dob = (
            dob_s.astype(object).where(dob_s.notna(), None).tolist()
            if dob_s is not None
            else [None] * n
        )
        gender = _column(prepared, "gender")
        # the facts each constraint holds per cluster (None: not checked)
        dob_fact = dob if "birth_date" in self.constraints else [None] * n
        middle = _column(prepared, "middle_lat") if "patronymic" in self.constraints else None
        middle = middle or [None] * n
        weak = name_only(prepared).tolist()
        # the first-name constraint reads the typed first name only, not an e-mail's hint
        names = [None] * n
        if "first_name" in self.constraints:
            key, raw = _column(prepared, "first_lat"), _column(prepared, "first_name")
            names = [(f, la, t) if f else None for f, la, t in zip(key, last, raw, strict=True)]
        nid = _column(prepared, "national_id") if "national_id" in self.constraints else None
        nid = nid or [None] * n
        return first, last, dob, gender, dob_fact, middle, names, weak, nid

    def _link_order(self, links: pd.DataFrame) -> tuple:
        """Links by score, highest first: the order, their two records, whether the chain
        guard checks each and whether it is a family kind of identifier (checked strictly)."""
        order = np.argsort(-links["score"].to_numpy(dtype=float), kind="stable")
        left = links["rid_l"].to_numpy()[order].tolist()
        right = links["rid_r"].to_numpy()[order].tolist()
        strict_col = (
            links["rule"].isin(FAMILY_KINDS).to_numpy()
            if "rule" in links
            else np.zeros(len(links), dtype=bool)
        )
        strict = strict_col[order].tolist()
        if "guarded" in links:
            checked = links["guarded"].to_numpy(dtype=bool)[order].tolist()
        else:
            checked = (links["score"].to_numpy(dtype=float)[order] < self.strong_threshold).tolist()
        return order, left, right, checked, strict

    def fit(
        self, prepared: pd.DataFrame, links: pd.DataFrame, crm: np.ndarray | None = None
    ) -> ChainGuardClusterer:
        """Merge the links' records, strongest link first, unless a constraint, a bridge,
        the contact pin (with ``crm``) or the chain guard refuses; see the class docstring."""
        unknown = set(self.constraints) - set(CONSTRAINTS)
        if unknown:
            raise ValueError(f"unknown constraint(s) {sorted(unknown)}; known: {CONSTRAINTS}")
        n = len(prepared)
        parent = list(range(n))
        first, last, dob, gender, dob_fact, middle, names, weak, nid = self._record_facts(prepared)
        bridges = "bridge" in self.constraints
        # per cluster root, only what is not empty: at a million people most roots hold no
        # name and no fact, and a set or tuple each for them took gigabytes
        state: dict[int, set] = {}
        facts: dict[int, tuple[frozenset, frozenset, int, frozenset, frozenset]] = {}
        one: dict[object, frozenset] = {}  # one shared frozenset per fact value
        bare = ((_EMPTY, _EMPTY, 0, _EMPTY, _EMPTY), (_EMPTY, _EMPTY, 1, _EMPTY, _EMPTY))

        def get_state(i: int) -> set | frozenset:
            st = state.get(i)
            if st is None:
                if not (first[i] or gender[i]):
                    return _EMPTY
                st = {(first[i], last[i], dob[i], gender[i])}
                state[i] = st
            return st

        def single(v) -> frozenset:
            f = one.get(v)
            if f is None:
                f = one[v] = frozenset((v,))
            return f

        def get_facts(i: int) -> tuple[frozenset, frozenset, int, frozenset, frozenset]:
            f = facts.get(i)
            if f is None:
                d, m, nm, ni = dob_fact[i], middle[i], names[i], nid[i]
                if not (d or m or nm or ni):
                    return bare[0 if weak[i] else 1]
                f = (single(d) if d else _EMPTY, single(m) if m else _EMPTY,
                     0 if weak[i] else 1, single(nm) if nm else _EMPTY,
                     single(ni) if ni else _EMPTY)  # fmt: skip
            return f

        def find(i: int) -> int:
            root = i
            while parent[root] != root:
                root = parent[root]
            while parent[i] != root:
                parent[i], i = root, parent[i]
            return root

        order, left, right, checked, strict = self._link_order(links)
        pins = crm is not None and "rule" in links and bool((links["rule"] == CONTACT_RULE).any())
        if pins:
            is_crm = np.asarray(crm, dtype=bool).tolist()
            has_crm = list(is_crm)  # per root: the profile holds a CRM record
            pinned = [False] * n  # per root: an event naming its contact joined the profile
            via_contact = (links["rule"].to_numpy() == CONTACT_RULE)[order].tolist()
        accepted = np.zeros(len(links), dtype=bool)
        refused_by = np.full(len(links), None, dtype=object)
        for k, (i, j, c, st) in enumerate(zip(left, right, checked, strict, strict=True)):
            a, b = find(i), find(j)
            if a == b:
                accepted[order[k]] = True
                continue
            if pins and not via_contact[k]:
                # an event's identifier may not join its pinned contact to another CRM record
                # (nor a CRM record to a pinned profile through an event)
                crm_link = is_crm[i] and is_crm[j]
                if not crm_link and has_crm[a] and has_crm[b] and (pinned[a] or pinned[b]):
                    refused_by[order[k]] = "contact"
                    continue
            fa, fb = get_facts(a), get_facts(b)
            if facts_conflict(fa[0], fb[0], fa[1], fb[1], fa[3], fb[3], fa[4], fb[4]):
                refused_by[order[k]] = "constraint"
                continue
            # a name-only record already in a profile with anchors cannot pull in another
            if bridges and (weak[i] or weak[j]) and fa[2] and fb[2]:
                refused_by[order[k]] = "bridge"
                continue
            sa, sb = get_state(a), get_state(b)
            if self.guard and c and sa and sb and _conflict(sa, sb, st):
                refused_by[order[k]] = "guard"
                continue
            if a > b:
                a, b, sa, sb, fa, fb = b, a, sb, sa, fb, fa
            parent[b] = a
            if pins:
                has_crm[a] = has_crm[a] or has_crm[b]
                pinned[a] = pinned[a] or pinned[b] or via_contact[k]
            if sb:
                if sa:
                    sa |= sb
                else:
                    state[a] = sb
                state.pop(b, None)
            facts[a] = (fa[0] | fb[0] if fb[0] else fa[0], fa[1] | fb[1] if fb[1] else fa[1],
                        fa[2] + fb[2], fa[3] | fb[3] if fb[3] else fa[3],
                        fa[4] | fb[4] if fb[4] else fa[4])  # fmt: skip
            facts.pop(b, None)
            accepted[order[k]] = True
        self.labels_ = np.fromiter((find(i) for i in range(n)), dtype=np.int64, count=n)
        self.accepted_ = accepted
        self.refused_by_ = refused_by
        self.n_refused_ = int((refused_by != None).sum())  # noqa: E711
        return self
