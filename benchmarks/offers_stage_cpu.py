"""Stage 04 (``cemlib.offers.run``, what the notebook calls) on a copy of a warehouse, in CPU
seconds: the whole stage and its parts (fit, the two LightGBM phases, recommend, the metric
table, the baselines, consent), the model's phases, the metric table and headlines; ``--cprofile``
adds a cProfile with a CPU clock. The parts run beside each other on more than one worker
(``cemlib.offers.parallel``): each part's CPU then counts every thread of the process while it
ran, so the parts' sum exceeds the total; ``CEM_WORKERS=1`` runs them one after the other. Writes ``OUT.duckdb`` (the copy), ``OUT.offers.parquet``
(``marts.next_offers``, to compare runs with ``assert_frame_equal``), ``OUT.metrics.pkl``.

    .venv/bin/python benchmarks/offers_stage_cpu.py WAREHOUSE OUT [--cprofile]
"""

import cProfile
import json
import pstats
import resource
import shutil
import sys
import time

import cemlib.offers
from cemlib.offers import size, start, training
from cemlib.offers import stage as st
from cemlib.warehouse import Warehouse

src, out = sys.argv[1], sys.argv[2]
work = out + ".duckdb"
shutil.copy(src, work)

# per-part CPU clock around the big steps
clock = {}


def timed(name, fn):
    def wrap(*a, **k):
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            c = clock.setdefault(name, [0.0, 0.0])
            c[0] += time.process_time() - c0
            c[1] += time.perf_counter() - w0

    return wrap


M = st.NextOfferModel
M.fit = timed("fit", M.fit)
M.recommend = timed("recommend", M.recommend)
M.candidate_recall = timed("candidate_recall", M.candidate_recall)
st.metric_table = timed("metric_table", st.metric_table)
st.baseline_metrics = timed("baseline_metrics (side)", st.baseline_metrics)
st.profile_transactions = timed("profile_transactions", st.profile_transactions)
st.profile_events = timed("profile_events", st.profile_events)
st.profile_consent_table = timed("consent", st.profile_consent_table)
st._future_truth = timed("future_truth", st._future_truth)
size.smallest_forest = timed("smallest_forest", size.smallest_forest)

start.train_from_chosen_start = timed("train_from_chosen_start", start.train_from_chosen_start)
training.refit = timed("refit", training.refit)

prof = cProfile.Profile(time.process_time) if "--cprofile" in sys.argv else None
c0, w0 = time.process_time(), time.perf_counter()
with Warehouse(work) as wh:
    if prof:
        prof.enable()
    stage = cemlib.offers.run(
        wh, run_id="prof", as_of="2025-06-30", seed=42, k=10, granularity="item", horizon_days=60
    )
    if prof:
        prof.disable()
    offers = wh.sql("SELECT * FROM marts.next_offers ORDER BY profile_id, rank")
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
res = stage.detail
m = res.model
print(
    f"TOTAL cpu {cpu:.1f} s wall {wall:.1f} s maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GiB"
)
for k, (c, w) in clock.items():
    print(f"  {k:30s} cpu {c:7.1f}  wall {w:7.1f}")
print("fit phases (wall):", {k: round(v, 1) for k, v in m.fit_phases_.items()})
print("score phases (wall):", {k: round(v, 1) for k, v in m.score_phases_.items()})
print(
    "windows",
    m.windows_,
    "best_iter",
    m.best_iteration_,
    "refit trees",
    getattr(m, "refit_rounds_", m.best_iteration_),
    "valid ndcg",
    m.validation_by_start_,
    "threads",
    m.num_threads_,
    "workers",
    m.workers_,
)
print(
    "round cap",
    getattr(m, "rounds_cap_", m.n_estimators),
    "learning rate",
    round(getattr(m, "learning_rate_", 0.1), 4),
    "factor",
    round(getattr(m, "rate_factor_", 1.0), 3),
)
curve = m.eval_history_.get("validation", {}).get("ndcg@10", [])
if curve:  # the forward training's validation curve, every 25 rounds and its best
    marks = {n: round(float(curve[n - 1]), 5) for n in range(25, len(curve) + 1, 25)}
    print("validation curve:", marks, "rounds", len(curve), "best", round(float(max(curve)), 5))
evidence = getattr(m, "size_evidence_", {})
if evidence:
    print("forest size z:", {n: round(z, 2) for n, z in evidence["z"].items()})
    print("forest size NDCG:", {n: round(v, 5) for n, v in evidence["ndcg"].items()})
print(res.metrics.round(4).to_string())
print("headlines", json.dumps(stage.headlines))
offers.to_parquet(out + ".offers.parquet")
res.metrics.to_pickle(out + ".metrics.pkl")
if prof:
    prof.dump_stats(out + ".prof")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
