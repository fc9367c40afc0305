"""The driver of tests/spark/test_standalone_cluster.py, run in its own process (one JVM per process: the
test session's local[2] JVM stays untouched): the quality stage of one table on the standalone
cluster at ``argv[1]``, reading the lake at ``argv[2]``; prints its figures as JSON."""

from __future__ import annotations

import json
import sys

from cemlib.engine import Lake, spark_session, stop_spark
from cemlib.quality.sparkstage import SparkQualityStage


def main(master: str, lake_root: str, table: str, as_of: str) -> None:
    spark = spark_session(master, memory_limit=2**30,
                          conf={"spark.executor.memory": "512m", "spark.cores.max": "2",
                                "spark.sql.shuffle.partitions": "4"})  # fmt: skip
    try:
        lake = Lake(lake_root, spark_master=master)
        got = SparkQualityStage(tables=[table], progress=False).run_spark(
            spark, lake, run_id="cluster", as_of=as_of
        )
        row = got.conservation.set_index("table").loc[table]
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
        print(json.dumps({
            "master": spark.sparkContext.master,
            "rows_in": int(row["rows_in"]), "clean": int(row["clean"]),
            "quarantined": int(row["quarantined"]), "block_managers": int(executors),
        }))  # fmt: skip
    finally:
        stop_spark()


if __name__ == "__main__":
    main(*sys.argv[1:5])
