"""The engines a run can use: DuckDB (the default, :mod:`cemlib.warehouse`) or Spark.

:mod:`cemlib.engine.session` builds the one Spark session of a process; :mod:`cemlib.engine.lake`
is the Spark engine's store (Parquet, one folder per table) with the reading surface of
:class:`~cemlib.warehouse.Warehouse`. pyspark is an optional extra (``cemlib[spark]``): nothing
here imports it until a session is asked for.
"""

from cemlib.engine.lake import Lake, lake_of, lake_path, open_store
from cemlib.engine.session import (
    ENGINES,
    SPARK_STAGES,
    require_pyspark,
    spark_refusal,
    spark_session,
    stop_spark,
)

__all__ = [
    "ENGINES",
    "SPARK_STAGES",
    "Lake",
    "lake_of",
    "lake_path",
    "open_store",
    "require_pyspark",
    "spark_refusal",
    "spark_session",
    "stop_spark",
]
