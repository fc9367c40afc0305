"""Where the ranker starts: plain LambdaRank or boosted from the :class:`~cemlib.offers.training.Prior`.

Each start is early-stopped twice, as a two-fold cross-validation over time: trained on the
training window and judged on the validation window, and trained on the validation window and
judged on the training window. The start with the higher mean NDCG@k over the customers of both
windows wins. One window alone misleads where a month is unusual: on Ta-Feng products January
(the Lunar New Year month) preferred plain LambdaRank by 0.005 at seed 42, December preferred the
prior by 0.038, and February the prior (lift 1.119 against 1.075); at subclass level both months
prefer plain, and so does February.

On large windows the choice is first made on stratified samples of the queries (customers) of
both windows (:func:`decide_on_samples`): :data:`FIRST_SAMPLE` of each, doubled while a sample is
at most a quarter of the smaller window. The four trainings of a sample stop the search when
the paired per-query gain over both windows is decisive (``|z| >=`` :data:`DECISIVE_Z`); only the
winner is then trained on the whole windows. Otherwise the four trainings run on the whole
windows, as on small data. At 200,000 people (16,758 and 17,298 queries) the four whole-window
trainings were half of the stage's CPU while the two starts were within 0.003 NDCG@10.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cemlib.offers.training import Prior, WindowData, train_early_stopped, window_datasets


def query_ndcg(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 10):
    """NDCG@k of each query: rows in query order (``groups`` their sizes), binary labels;
    equal scores keep the row order."""
    q = np.repeat(np.arange(len(groups)), groups)
    order = np.lexsort((np.arange(len(q)), -np.asarray(scores, dtype=np.float64), q))
    start = np.r_[0, np.cumsum(groups)[:-1]]
    rank = np.empty(len(q), dtype=np.int64)
    rank[order] = np.arange(len(q)) - np.repeat(start, groups)
    lab = np.asarray(labels, dtype=np.float64)
    gain = np.where(rank < k, lab / np.log2(rank + 2.0), 0.0)
    dcg = np.bincount(q, weights=gain, minlength=len(groups))
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    n_pos = np.minimum(np.bincount(q, weights=lab, minlength=len(groups)), k).astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, dcg / ideal[n_pos], 0.0)


def paired_z(a: np.ndarray, b: np.ndarray) -> float:
    """z statistic of the mean per-query difference ``b - a`` (0 when all differences are 0)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if len(d) < 2:
        return 0.0
    se = d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean() / se) if se > 0 else 0.0


def prior_wins(evidence: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Whether the prior start wins: a higher mean NDCG over the customers of every window,
    from ``(plain, prior)`` per-query NDCG pairs, one pair per window (ties: plain)."""
    gain = np.concatenate([np.asarray(b) - np.asarray(a) for a, b in evidence])
    return bool(len(gain)) and float(gain.mean()) > 0


#: queries per window of the first sample the start is decided on (then doubled)
FIRST_SAMPLE = 2_000
#: a sample decides when the paired z of the prior's per-query gain over both windows is this far
#: from zero (the start chosen is its sign); closer, the next sample (or the whole windows) decides
DECISIVE_Z = 2.0


def sample_window(window: WindowData, n: int, rng: np.random.Generator) -> WindowData:
    """``n`` of the window's queries (all their rows), stratified: the queries ordered by their
    positives and their size (random among equals) and every ``len/n``-th one taken, so every
    kind of query keeps its share. The window itself when it has ``n`` queries or fewer."""
    f = window.frame
    c = f["c"].to_numpy()
    custs, query = np.unique(c, return_inverse=True)
    if n >= len(custs):
        return window
    sizes = np.bincount(query, minlength=len(custs))
    pos = np.bincount(query, weights=f["label"].to_numpy(), minlength=len(custs))
    order = np.lexsort((rng.random(len(custs)), sizes, pos))
    pick = order[(np.arange(n) * len(custs)) // n]
    frame = f[np.isin(c, custs[pick])].reset_index(drop=True)
    groups = frame.groupby("c", sort=True).size().to_numpy()
    return WindowData(window.cutoff, frame, groups, window.recall, n)


def _four_trainings(train, valid, names, params, rounds, patience, workers: int = 1):
    """Both starts trained both ways: the forward runs (``_early_stopped``'s result per start)
    and the per-query NDCG of each start trained on ``valid`` and judged on ``train``.

    ``workers > 1``: the backward pair in a thread beside the forward pair, each training on
    one LightGBM thread with its own datasets (the same trees and figures as one after the
    other); the windows' ``_prior`` columns are left as they were."""
    forward, backward = window_datasets(train, valid, names), window_datasets(valid, train, names)
    if workers > 1:
        one = {**params, "num_threads": 1}

        def way(a, b, datasets):
            return {
                use: _early_stopped(a, b, names, one, rounds, patience, use, datasets, keep=False)
                for use in (False, True)
            }

        with ThreadPoolExecutor(max_workers=1) as pool:
            backs = pool.submit(way, valid, train, backward)
            runs = way(train, valid, forward)
            back = {use: r[2] for use, r in backs.result().items()}
        return runs, back
    runs, back = {}, {}
    for use in (False, True):
        back[use] = _early_stopped(valid, train, names, params, rounds, patience, use, backward)[2]
        runs[use] = _early_stopped(train, valid, names, params, rounds, patience, use, forward)
    return runs, back


def _seen(runs, back) -> dict[str, float]:
    return {
        "plain": runs[False][1][2],
        "prior": runs[True][1][2],
        "plain_back": float(back[False].mean()),
        "prior_back": float(back[True].mean()),
    }


def decide_on_samples(
    train: WindowData,
    valid: WindowData,
    names: list[str],
    params: dict,
    rounds: int,
    patience: int,
    workers: int = 1,
) -> tuple[bool, dict[str, float]] | None:
    """The start chosen on stratified samples of both windows (:func:`sample_window`), or
    ``None`` when no sample was decisive (or the windows are too small to sample): ``(prior
    wins, the evidence of the deciding sample)`` with its size (``sample``) and ``z``;
    ``workers``: see :func:`_four_trainings`."""
    rng = np.random.default_rng(params.get("seed", 0))
    smaller = min(len(train.groups), len(valid.groups))
    n = FIRST_SAMPLE
    while 4 * n <= smaller:
        t, v = sample_window(train, n, rng), sample_window(valid, n, rng)
        runs, back = _four_trainings(t, v, names, params, rounds, patience, workers)
        evidence = [(runs[False][2], runs[True][2]), (back[False], back[True])]
        z = paired_z(np.r_[evidence[0][0], evidence[1][0]], np.r_[evidence[0][1], evidence[1][1]])
        if abs(z) >= DECISIVE_Z:
            return prior_wins(evidence), {**_seen(runs, back), "sample": float(n), "z": z}
        n *= 2
    return None


def _early_stopped(
    train,
    valid,
    names,
    params,
    rounds,
    patience,
    use: bool,
    datasets,
    *,
    keep: bool = True,
    judge: bool = True,
):
    """One start (``use``: the prior) trained on ``train``, early-stopped on ``valid`` (their
    LightGBM ``datasets``, built once for both starts): the prior, ``train_early_stopped``'s
    result and the per-query NDCG on ``valid`` (``judge=False``: ``None``, the start is chosen
    already and the scoring of every validation row is saved). ``keep``: the prior's scores are
    left in the windows' ``_prior`` columns (``False``: the windows are only read)."""
    prior = Prior().fit(train.frame, use=use)
    init = (prior(train.frame), prior(valid.frame))
    if keep:
        for w, scores in zip((train, valid), init, strict=True):
            w.frame["_prior"] = scores
    result = train_early_stopped(train, valid, names, params, rounds, patience, datasets, init)
    if not judge:
        return prior, result, None
    X = valid.frame[names].to_numpy(np.float32)
    # the training's own thread count: LightGBM keeps one for the process, and a predict
    # without it resets it to every core for a training running beside this one
    threads = params.get("num_threads", 1)
    v = result[0].predict(X, num_iteration=result[1], num_threads=threads) + init[1]
    return prior, result, query_ndcg(v, valid.frame["label"].to_numpy(), valid.groups)


def train_from_chosen_start(
    train: WindowData,
    valid: WindowData,
    names: list[str],
    params: dict,
    rounds: int,
    patience: int,
    workers: int = 1,
) -> tuple[Prior, tuple, dict[str, float]]:
    """Early-stopped LambdaRank from zero and from the :class:`Prior`, each also trained the
    other way round (on the validation window, early-stopped on the training one); the start is
    chosen by :func:`prior_wins` on both windows' evidence, first on samples of large windows
    (:func:`decide_on_samples`; then only the winner is trained on the whole windows). Leaves
    the winner's ``_prior`` column on the windows; returns the prior (zero when plain won), the
    forward ``train_early_stopped`` result and the evidence (validation NDCG of each start and
    way; ``sample`` and ``z`` when a sample decided). ``workers``: see :func:`_four_trainings`
    (the trainings on the whole windows use ``params``' LightGBM threads)."""
    decided = decide_on_samples(train, valid, names, params, rounds, patience, workers)
    if decided is not None:
        use, seen = decided
        datasets = window_datasets(train, valid, names)
        prior, result, _ = _early_stopped(
            train, valid, names, params, rounds, patience, use, datasets, judge=False
        )
        return prior, result, seen
    runs, back = _four_trainings(train, valid, names, params, rounds, patience, workers)
    evidence = [(runs[False][2], runs[True][2]), (back[False], back[True])]
    prior, result, _ = runs[prior_wins(evidence)]
    for w in (train, valid):
        w.frame["_prior"] = prior(w.frame)
    return prior, result, _seen(runs, back)
