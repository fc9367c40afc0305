"""Identity noise: vectorised string helpers that turn true values into valid-but-different ones.

Everything here keeps values *valid*: a reformatted phone is still a valid Russian mobile
number, a varied e-mail is still a well-formed address, a misspelt name is still a name. The
invalid values of the quality stage live in :mod:`cemlib.synth.defects`.

Columns are :mod:`pyarrow` string arrays; work on millions of rows is done with
:mod:`pyarrow.compute` kernels, and Python loops only run over small noisy subsets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: the Arrow type of every text column (what pandas' ``string[pyarrow]`` holds, so wrapping an
#: array in a pandas Series copies nothing)
TEXT = pa.large_string()

#: the phone formats of real Russian exports, in the order of :data:`PHONE_STYLE_WEIGHTS`
PHONE_STYLES: tuple[str, ...] = (
    "+7 (999) 123-45-67",
    "8 999 1234567",
    "9991234567",
    "+79991234567",
    "8-999-123-45-67",
    "8 (999) 123-45-67",
    "+7 999 123 45 67",
    "89991234567",
)
PHONE_STYLE_WEIGHTS = np.array([0.22, 0.10, 0.12, 0.20, 0.08, 0.10, 0.08, 0.10])
#: each system has its own habits: a masked web form, a till keyboard, a call-centre CTI
PHONE_STYLE_BY_SOURCE: dict[str, tuple[float, ...]] = {
    "crm_contacts": (0.25, 0.12, 0.10, 0.15, 0.10, 0.10, 0.08, 0.10),
    "online_orders": (0.55, 0.02, 0.05, 0.25, 0.02, 0.03, 0.05, 0.03),
    "pos_receipts": (0.02, 0.05, 0.45, 0.05, 0.02, 0.01, 0.00, 0.40),
    "support_tickets": (0.05, 0.25, 0.05, 0.05, 0.15, 0.10, 0.00, 0.35),
}

_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


def translit(text: str) -> str:
    """Latin spelling of a Russian name as people type it (Иванов -> Ivanov, Юлия -> Yuliya)."""
    out = []
    for ch in text:
        low = ch.lower()
        if low in _TRANSLIT:
            t = _TRANSLIT[low]
            out.append(t.capitalize() if ch != low and t else t)
        else:
            out.append(ch)
    return "".join(out)


def as_str(values) -> pa.Array:
    """Any array-like of text (or a pyarrow array) as a pyarrow ``string`` array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == TEXT else values.cast(TEXT)
    return pa.array(values, type=TEXT)


def cat(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars (null if any part is null)."""
    parts = [pa.scalar(x, TEXT) if isinstance(x, str) else as_str(x) for x in parts]
    return pc.binary_join_element_wise(*parts, pa.scalar("", TEXT))


def zfill(values: np.ndarray, width: int) -> pa.Array:
    """Integers as zero-padded decimal strings."""
    return pc.utf8_lpad(pa.array(np.asarray(values, dtype=np.int64)).cast(TEXT), width, "0")


def ids(prefix: str, n: int, width: int, start: int = 1) -> pa.Array:
    """``prefix`` + zero-padded running numbers, e.g. ``C00000001``."""
    return cat(prefix, zfill(np.arange(start, start + n), width))


def by_group(
    groups: np.ndarray, n_groups: int, fn: Callable[[int, np.ndarray], pa.Array]
) -> pa.Array:
    """Build a column where rows of group ``k`` are ``fn(k, idx)``; results keep row order."""
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    bounds = np.searchsorted(sorted_groups, np.arange(n_groups + 1))
    pieces = []
    for k in range(n_groups):
        idx = order[bounds[k] : bounds[k + 1]]
        if len(idx):
            pieces.append(as_str(fn(k, idx)))
    if not pieces:
        return pa.array([], type=TEXT)
    stacked = pa.concat_arrays(pieces)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    return stacked.take(pa.array(inverse))


def where(mask: np.ndarray, a: pa.Array, b: pa.Array | None) -> pa.Array:
    """``a`` where ``mask`` else ``b`` (``None`` = null)."""
    if b is None:
        b = pa.nulls(len(a), TEXT)
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), as_str(a), as_str(b))


def format_phones(digits10: pa.Array, style: np.ndarray) -> pa.Array:
    """Write 10-digit national numbers (``9991234567``) in the given :data:`PHONE_STYLES`."""
    d = as_str(digits10)

    def fmt(k: int, idx: np.ndarray) -> pa.Array:
        s = d.take(pa.array(idx))
        a = pc.utf8_slice_codeunits(s, 0, 3)
        b = pc.utf8_slice_codeunits(s, 3, 6)
        c = pc.utf8_slice_codeunits(s, 6, 8)
        e = pc.utf8_slice_codeunits(s, 8, 10)
        return [
            lambda: cat("+7 (", a, ") ", b, "-", c, "-", e),
            lambda: cat("8 ", a, " ", b, c, e),
            lambda: s,
            lambda: cat("+7", s),
            lambda: cat("8-", a, "-", b, "-", c, "-", e),
            lambda: cat("8 (", a, ") ", b, "-", c, "-", e),
            lambda: cat("+7 ", a, " ", b, " ", c, " ", e),
            lambda: cat("8", s),
        ][k]()

    return by_group(style, len(PHONE_STYLES), fmt)


def random_phone_styles(rng: np.random.Generator, n: int, weights=None) -> np.ndarray:
    """``n`` phone writing styles drawn with ``weights`` (default ``PHONE_STYLE_WEIGHTS``)."""
    w = PHONE_STYLE_WEIGHTS if weights is None else np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())


def _split_email(emails: pa.Array) -> tuple[pa.Array, pa.Array]:
    parts = pc.split_pattern(emails, "@", max_splits=1)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)


def vary_emails(rng: np.random.Generator, emails: pa.Array, rates) -> pa.Array:
    """Case changes, Gmail dots / ``+tags`` and local-part typos at the rates of ``rates``."""
    emails = as_str(emails)
    n = len(emails)
    if n == 0:
        return emails
    local, domain = _split_email(emails)
    is_gmail = pc.fill_null(pc.equal(domain, "gmail.com"), False).to_numpy(zero_copy_only=False)
    u = rng.random(n)
    gm = is_gmail & (u < rates.gmail_variant)
    if gm.any():
        tag = rng.random(n) < 0.5
        no_dots = pc.replace_substring(local, ".", "")
        tagged = cat(local, "+", pa.array(rng.choice(["shop", "promo", "orders", "sale"], n)))
        local = where(gm & tag, tagged, where(gm & ~tag, no_dots, local))
    typo = rng.random(n) < rates.email_typo
    if typo.any():
        idx = np.flatnonzero(typo & pc.is_valid(local).to_numpy(zero_copy_only=False))
        vals = local.take(pa.array(idx)).to_pylist()
        sub_rng = np.random.default_rng(rng.integers(2**63))
        new = [_typo_local(v, sub_rng) for v in vals]
        arr = local.to_numpy(zero_copy_only=False).astype(object)
        arr[idx] = new
        local = pa.array(arr, type=TEXT)
    out = cat(local, "@", domain)
    case = rng.random(n) < rates.email_case
    if case.any():
        upper_first = rng.random(n) < 0.8
        out = where(case & upper_first, pc.utf8_title(out), where(case, pc.utf8_upper(out), out))
    return out


_OTHER_PROVIDER = {"mail.ru": "yandex.ru", "yandex.ru": "mail.ru", "gmail.com": "mail.ru"}


def other_provider(emails: pa.Array) -> pa.Array:
    """The same local part at another provider (a new mailbox made for a second account)."""
    local, domain = _split_email(as_str(emails))
    dom = pc.fill_null(domain, "")
    new = pa.array(
        [_OTHER_PROVIDER.get(d, "gmail.com") for d in dom.unique().to_pylist()], type=TEXT
    )
    mapped = new.take(pc.index_in(dom, dom.unique()))
    return cat(local, "@", mapped)


_ALNUM = "abcdefghijklmnopqrstuvwxyz"


def _typo_local(local: str, rng: np.random.Generator) -> str:
    """A typo in an e-mail local part that keeps it a valid local part."""
    core = local.split("+", 1)[0]
    letters = [i for i, ch in enumerate(core) if ch.isalpha()]
    if len(letters) < 3:
        return local + str(rng.integers(1, 9))
    kind = rng.integers(3)
    i = letters[rng.integers(1, len(letters))]
    if kind == 0:  # doubled letter
        return local[:i] + local[i] + local[i:]
    if kind == 1:  # dropped letter, unless that would join two dots or leave one at an end
        out = local[:i] + local[i + 1 :]
        if ".." not in out and not out.startswith(".") and not out.split("+")[0].endswith("."):
            return out
        return local[:i] + local[i] + local[i:]
    return local[:i] + _ALNUM[rng.integers(len(_ALNUM))] + local[i + 1 :]  # wrong letter


def name_typo(name: str, rng: np.random.Generator) -> str:
    """A plausible typo: swapped neighbours, dropped or doubled letter, е for ё."""
    if not name or len(name) < 4:
        return name
    if "ё" in name and rng.random() < 0.6:
        return name.replace("ё", "е")
    kind = rng.integers(3)
    i = int(rng.integers(1, len(name) - 1))
    if kind == 0:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i] + name[i:]


def apply_typos(rng: np.random.Generator, values: pa.Array, rate: float) -> pa.Array:
    """Misspell a ``rate`` share of the non-null values (Python runs on that subset only)."""
    values = as_str(values)
    n = len(values)
    mask = (rng.random(n) < rate) & pc.is_valid(values).to_numpy(zero_copy_only=False)
    if not mask.any():
        return values
    idx = np.flatnonzero(mask)
    sub_rng = np.random.default_rng(rng.integers(2**63))
    new = [name_typo(v, sub_rng) for v in values.take(pa.array(idx)).to_pylist()]
    arr = values.to_numpy(zero_copy_only=False).astype(object)
    arr[idx] = new
    return pa.array(arr, type=TEXT)


def hex_ids(rng: np.random.Generator, n: int, n_bytes: int = 8) -> pa.Array:
    """``n`` random lower-case hex strings of ``2 * n_bytes`` characters (no Python objects)."""
    table = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    raw = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8)
    chars = np.empty((n, 2 * n_bytes), dtype=np.uint8)
    chars[:, 0::2] = table[raw >> 4]
    chars[:, 1::2] = table[raw & 15]
    offsets = np.arange(0, (n + 1) * 2 * n_bytes, 2 * n_bytes, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def hash64(values: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64 of ``values`` xor ``seed``: a stable pseudo-random uint64 per value."""
    with np.errstate(over="ignore"):
        z = np.asarray(values).astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hex_of(values: np.ndarray, n_chars: int = 14) -> pa.Array:
    """The low ``4 * n_chars`` bits of uint64 ``values`` as lower-case hex strings."""
    table = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    v = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(n_chars - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    chars = table[((v[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]
    n = len(v)
    offsets = np.arange(0, (n + 1) * n_chars, n_chars, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    )


def unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct random integers in ``[low, high)`` in random order."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        more = rng.integers(low, high, size=int((n - len(out)) * 1.2) + 16)
        out = np.concatenate([out, more])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
    return out[:n]
