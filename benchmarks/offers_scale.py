"""Scale of the next-offer model: training and scoring seconds and peak memory on a synthetic world.

    .venv/bin/python benchmarks/offers_scale.py --people 50000 100000 [--k 10] [--horizon-days 60]

Each world is generated first and saved to a temporary folder; the model then runs in a child
process that reads the saved tables and reports its own peak resident memory (``VmHWM``:
``ru_maxrss`` of a child carries the parent's peak across ``execve``, i.e. the generator's).
Printed per size: seconds and peak memory of every phase of ``fit`` and ``recommend``, and the
extrapolation to 1,000,000 people (target there: training + scoring under 15 minutes and 12 GiB
on a 2-core machine). Training phases on the candidates grow with the people only until a window
holds ``max_train_customers`` queries; everything else is extrapolated linearly. With two or more
sizes the memory is extrapolated along the line through the two largest.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_MIN, TARGET_GIB = 15.0, 12.0
# fit phases that work on the sampled training customers (capped), not on the whole history
CAPPED = (
    "candidates",
    "features",
    "labels and negative sampling",
    "lightgbm training (early stopping)",
    "lightgbm refit on both windows",
)


def _status(key: str) -> float:
    """``VmHWM`` / ``VmRSS`` of this process in GiB (ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class RssSampler:
    """Highest ``VmRSS`` seen while a block runs (sampled every 50 ms in a thread), in total
    and per phase of the model (``phase`` is set by :func:`timed_model`)."""

    def __enter__(self) -> RssSampler:
        self.peak = _status("VmRSS")
        self.phase = "(other)"
        self.by_phase: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def sample(self) -> None:
        rss = _status("VmRSS")
        self.peak = max(self.peak, rss)
        self.by_phase[self.phase] = max(self.by_phase.get(self.phase, 0.0), rss)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def timed_model(sampler_ref: list):
    """``NextOfferModel`` whose phases tell the current RSS sampler where it is."""
    from contextlib import contextmanager

    from cemlib.offers import NextOfferModel

    class Timed(NextOfferModel):
        @contextmanager
        def _phase(self, name: str):
            sampler = sampler_ref[0] if sampler_ref else None
            before = sampler.phase if sampler else None
            if sampler:
                sampler.sample()
                sampler.phase = name
            try:
                with super()._phase(name):
                    yield
            finally:
                if sampler:
                    sampler.sample()
                    sampler.phase = before

    return Timed


def worker(folder: Path, k: int, horizon: int) -> None:
    import pandas as pd

    # Arrow-backed columns, as a data frame library reads them (no Python object per value);
    # handed over to fit (no other reference), which frees them once it has coded them
    inputs = {
        name: pd.read_parquet(folder / f"{name}.parquet", dtype_backend="pyarrow")
        for name in ("transactions", "events")
    }
    lines, n_events = len(inputs["transactions"]), len(inputs["events"])
    items = pd.read_parquet(folder / "items.parquet")
    inputs_gib = _status("VmRSS")
    current: list = []
    model = timed_model(current)(k=k, horizon_days=horizon, progress=False)
    t0 = time.perf_counter()
    with RssSampler() as fit_mem:
        current[:] = [fit_mem]
        model.fit(
            inputs.pop("transactions"), "2025-06-30", events=inputs.pop("events"), items=items
        )
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with RssSampler() as score_mem:
        current[:] = [score_mem]
        recs = model.recommend()
    score_s = time.perf_counter() - t0
    out = {
        "fit_seconds": fit_s,
        "score_seconds": score_s,
        "fit_phases": model.fit_phases_,
        "score_phases": model.score_phases_,
        "inputs_gib": inputs_gib,
        "fit_peak_gib": fit_mem.peak,
        "score_peak_gib": score_mem.peak,
        "fit_phase_gib": fit_mem.by_phase,
        "score_phase_gib": score_mem.by_phase,
        "peak_gib": _status("VmHWM"),
        "lines": lines,
        "events": n_events,
        "customers": int(recs["customer_id"].nunique()),
        "offers": len(recs),
        "train_rows": model.windows_["train"]["rows"],
        "validation_rows": model.windows_["validation"]["rows"],
        "best_iteration": model.best_iteration_,
        "queries": max(model.windows_["train"]["queries"], model.windows_["validation"]["queries"]),
        "max_train_customers": model.max_train_customers,
        "chunk_size": model.chunk_size,
        "shap_tables": model.shap_tables_ is not None,
    }
    print("RESULT " + json.dumps(out), flush=True)


def run(people: int, seed: int, k: int, horizon: int) -> dict | None:
    from cemlib.offers.world import frames_from_world
    from cemlib.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frames = frames_from_world(generate(people, seed=seed))
        for name in ("transactions", "events", "items"):
            frames[name].to_parquet(Path(tmp) / f"{name}.parquet")
        gen_s = time.perf_counter() - t0
        del frames
        cmd = [sys.executable, __file__, "--worker", tmp, "--k", str(k)]
        proc = subprocess.run(
            [*cmd, "--horizon-days", str(horizon)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return None
    res = json.loads(
        next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:]
    )
    res["people"], res["gen_seconds"] = people, gen_s
    return res


def report(res: dict) -> None:
    people = res["people"]
    scale = 1_000_000 / people
    # training rows grow with the people only until a window holds max_train_customers queries
    train_scale = min(scale, max(1.0, res["max_train_customers"] / max(res["queries"], 1)))
    print(
        f"\n== people {people:,}: {res['lines']:,} purchase lines, {res['events']:,} identified "
        f"web events (world generated and saved in {res['gen_seconds']:.0f} s)"
    )
    print(
        f"training {res['fit_seconds']:.1f} s (train rows {res['train_rows']:,}, validation rows "
        f"{res['validation_rows']:,}, {res['best_iteration']} trees), scoring "
        f"{res['score_seconds']:.1f} s ({res['offers']:,} offers with SHAP reasons for "
        f"{res['customers']:,} customers; SHAP "
        f"{'tables' if res['shap_tables'] else 'pred_contrib'})"
    )
    print(f"{'phase':<44}{'seconds':>9}{'x to 1M':>9}{'1M est. s':>11}{'peak GiB':>10}")
    est = {"fit": 0.0, "score": 0.0}
    for stage in ("fit", "score"):
        phases = res[f"{stage}_phases"]
        other = res[f"{stage}_seconds"] - sum(phases.values())
        for name, sec in [*phases.items(), ("(rest)", other)]:
            f = train_scale if stage == "fit" and name in CAPPED else scale
            est[stage] += sec * f
            gib = res[f"{stage}_phase_gib"].get(name)
            mem = f"{gib:>10.2f}" if gib else ""
            print(f"  {stage + ': ' + name:<42}{sec:>9.1f}{f:>9.1f}{sec * f:>11.0f}{mem}")
    print(
        f"memory (GiB): inputs read {res['inputs_gib']:.2f}, peak during fit "
        f"{res['fit_peak_gib']:.2f}, during scoring {res['score_peak_gib']:.2f}, process peak "
        f"(VmHWM) {res['peak_gib']:.2f}"
    )
    total = est["fit"] + est["score"]
    print(
        f"extrapolated to 1,000,000 people: training {est['fit'] / 60:.1f} min (capped at "
        f"{res['max_train_customers']:,} queries per window, {res['queries']:,} now) + scoring "
        f"{est['score'] / 60:.1f} min = {total / 60:.1f} min (target < {TARGET_MIN:.0f}); "
        f"all linear {(res['fit_seconds'] + res['score_seconds']) * scale / 60:.1f} min"
    )


def phase_memory(a: dict, b: dict) -> dict[str, float]:
    """Peak memory of each phase extrapolated to 1,000,000 people from runs ``a`` < ``b``."""

    def line(ya: float, yb: float) -> float:
        return yb + (yb - ya) / (b["people"] - a["people"]) * (1_000_000 - b["people"])

    base = "snapshots"
    fa, fb = a["fit_phase_gib"], b["fit_phase_gib"]
    base_1m = line(fa[base], fb[base])
    cap = max(1.0, b["max_train_customers"] / max(b["queries"], 1))
    train_scale = min(1_000_000 / b["people"], cap)
    out = {}
    for stage in ("fit", "score"):
        pa, pb = a[f"{stage}_phase_gib"], b[f"{stage}_phase_gib"]
        for name in pb.keys() & pa.keys():
            if stage == "fit" and (name in CAPPED or name == "(other)"):
                out[f"{stage}: {name}"] = base_1m + (pb[name] - fb[base]) * train_scale
            else:
                out[f"{stage}: {name}"] = line(pa[name], pb[name])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, nargs="+", default=[50_000])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--horizon-days", type=int, default=60)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(Path(args.worker), args.k, args.horizon_days)
        return 0
    results = []
    for people in args.people:  # one size at a time
        res = run(people, args.seed, args.k, args.horizon_days)
        if res is None:
            return 1
        report(res)
        results.append(res)
    results.sort(key=lambda r: r["people"])
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        slope = (b["peak_gib"] - a["peak_gib"]) / (b["people"] - a["people"])
        at_1m = b["peak_gib"] + slope * (1_000_000 - b["people"])
        print(
            f"\nmemory along the line through the process peaks at {a['people']:,} and "
            f"{b['people']:,} people: {slope * 100_000:.2f} GiB per 100,000 people, {at_1m:.1f} "
            f"GiB at 1,000,000 (target < {TARGET_GIB:.0f}; mixes the capped training peak of the "
            "larger run with the scoring peak of the smaller)"
        )
        by_phase = phase_memory(a, b)
        worst = max(by_phase, key=by_phase.get)
        print(
            "memory by phase at 1,000,000 (each phase's peak along its own line; the training "
            "phases' excess over the snapshots grows with the capped queries only): "
            + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(by_phase.items(), key=lambda x: -x[1])[:4]
            )
            + f" GiB; peak {by_phase[worst]:.1f} GiB in {worst} (target < {TARGET_GIB:.0f}; "
            f"scoring in chunks of {b['chunk_size']:,} customers)"
        )
    else:
        r = results[-1]
        print(
            f"\nmemory: {r['peak_gib'] * 1_000_000 / r['people']:.1f} GiB at 1,000,000 as a "
            f"linear upper bound (target < {TARGET_GIB:.0f}); run two sizes for the slope"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
