"""What stage 02 on Spark holds on the driver, step by step: peaks and the frames' sizes.

    TMPDIR=/tmp/me PYTHONPATH=. .venv/bin/python benchmarks/engine_identity_driver.py /tmp/w20k

Runs :func:`cemlib.identity.sparkstage.run_stage_spark` over ``folder/lake``'s ``clean.*``
as the notebook does (``keep_records=False``; ``--keep-records``: the per-record objects kept)
(the world of ``engine_identity_parity.py``; build it with that script first) on ``local[2]``
and prints, as one JSON object:

* ``peak_gib``: the driver's (this process's) peak resident memory, and ``by_step``: the
  highest resident memory sampled (every 0.2 s) while the main thread was inside each cemlib
  function (the innermost one of the resolution: ``file:function``), with the seconds spent
  there;
* ``held_mib``: the deep pandas size of what the driver holds: the prepared records
  (``collect_records``), the frame given to Splink, the scored pairs (``SplinkModel.predict``,
  every pair from the calibration floor up), the links, the map, the golden records;
* ``counts``: the records, the scored pairs collected and those at or above the threshold;
* ``components``: the connected components of every candidate link (accepted or refused):
  how many, their sizes, the records in none (what a per-component resolution would split).

Then, when ``folder/cem.duckdb`` holds the DuckDB engine's ``identity.map`` of the same records
(``engine_offers_parity.py``'s world), their
:func:`~cemlib.identity.sparkstage.pairwise_agreement`. The lake's ``identity.*`` is rewritten
(a full run, the lasting ids carried over).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

GIB = 2**30


def _mib(obj) -> float:
    if isinstance(obj, pd.DataFrame):
        return round(obj.memory_usage(deep=True).sum() / 2**20, 1)
    return float("nan")


class Sampler(threading.Thread):
    """Resident memory of this process every ``every`` seconds, filed under the innermost
    cemlib function the main thread is in."""

    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True)
        self.every, self.main = every, threading.main_thread().ident
        self.peak: dict[str, float] = defaultdict(float)
        self.seconds: dict[str, float] = defaultdict(float)
        self.stop = threading.Event()

    def run(self) -> None:
        from cemlib.budget import rss_gib

        while not self.stop.wait(self.every):
            frame, where = sys._current_frames().get(self.main), "other"
            while frame is not None:
                name = frame.f_code.co_filename
                if "/cemlib/" in name:
                    where = f"{name.split('/cemlib/')[-1]}:{frame.f_code.co_name}"
                    break
                frame = frame.f_back
            self.peak[where] = max(self.peak[where], rss_gib())
            self.seconds[where] += self.every


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-gib", type=int, default=3, help="Spark driver memory (GiB)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-records", action="store_true",
                        help="keep the per-record objects (the notebook does not)")  # fmt: skip
    args = parser.parse_args()

    import cemlib.identity.model as model_mod
    import cemlib.identity.sparkstage as stage_mod
    from cemlib.engine import Lake, spark_session

    held: dict[str, float] = {}
    counts: dict[str, int] = {}
    collect, predict, to_spark = (stage_mod.collect_records, model_mod.SplinkModel.predict,
                                  model_mod._records_to_spark)  # fmt: skip

    def collect_records(sdf):
        out = collect(sdf)
        held["prepared_records"] = _mib(out)
        counts["records"] = len(out)
        return out

    def records_to_spark(spark, frame, name):
        held["splink_frame"] = _mib(frame)
        return to_spark(spark, frame, name)

    def predict_(self, threshold=0.5):
        out = predict(self, threshold)
        held["scored_pairs"] = _mib(out)
        counts["pairs_collected"] = len(out)
        return out

    carry = stage_mod.carry_ids

    def carry_ids(lake, result, **kw):  # the map, whole, before the notebook's empties it
        held["map"] = _mib(result.map)
        return carry(lake, result, **kw)

    stage_mod.collect_records = collect_records
    stage_mod.carry_ids = carry_ids
    model_mod._records_to_spark = records_to_spark
    model_mod.SplinkModel.predict = predict_

    spark = spark_session(args.master, memory_limit=2 * args.driver_gib * GIB)
    lake = Lake(args.folder / "lake", spark_master=args.master)
    sampler = Sampler()
    sampler.start()
    t = time.perf_counter()
    result = stage_mod.run_stage_spark(lake, spark, run_id="p", as_of="2025-06-30", seed=args.seed,
                                       keep_records=args.keep_records)  # fmt: skip
    seconds = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    r = result.resolver
    model = r.links_["rule"] == "model"
    counts["pairs_kept"] = int(model.sum())
    held.update(links=_mib(result.links), profiles=_mib(result.profiles),
                resolver_links=_mib(r.links_), resolver_nodes=_mib(r.nodes_))  # fmt: skip
    # the connected components of every candidate link (accepted or refused): the units a
    # per-component resolution on the executors would resolve apart (docs/spark.md)
    n = len(r.nodes_)
    ends = r.links_[["rid_l", "rid_r"]].to_numpy(np.int64)
    graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label)
    linked = size[size > 1]
    components = {
        "records": n, "links": len(ends), "components_linked": len(linked),
        "records_linked": int(linked.sum()), "records_alone": int((size == 1).sum()),
        "largest": int(size.max()), "p99_size": float(np.percentile(linked, 99)),
        "mean_linked_size": round(float(linked.mean()), 2),
    }  # fmt: skip
    by_step = {k: [round(sampler.peak[k], 2), round(sampler.seconds[k], 1)]
               for k in sorted(sampler.peak, key=sampler.peak.get, reverse=True)[:12]}  # fmt: skip
    print(json.dumps({
        "seconds": round(seconds, 1),
        "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "threshold": r.threshold_, "counts": counts, "held_mib": held,
        "components": components,
        "steps_s": result.figures["seconds"], "resident_gib": result.figures["resident_gib"],
        "by_step_peak_gib_seconds": by_step,
    }, indent=1))  # fmt: skip
    spark.stop()
    if (args.folder / "cem.duckdb").exists():  # the DuckDB engine's map of the same records
        from cemlib.identity.sparkstage import pairwise_agreement
        from cemlib.warehouse import Warehouse

        with Warehouse(args.folder / "cem.duckdb", read_only=True) as wh:
            if wh.has_table("identity", "map"):
                a = wh.sql("SELECT source_table, record_id, profile_id FROM identity.map")
                b = lake.sql("SELECT source_table, record_id, profile_id FROM identity.map")
                print("agreement (a = duckdb, b = spark):", json.dumps(pairwise_agreement(a, b)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
