"""The sessions the transform of local runs is given, chosen once here by ``transform.engine``:
- ``duckdb`` (the default): a SQLFrame session over an in-process DuckDB connection, which
  answers the PySpark DataFrame API with DuckDB SQL; no Java, no JVM start-up;
- ``spark``: the SparkSession, one per process, sized for a small machine, on the master of the
  ``spark.master`` setting (``local[*]``: in this process; ``spark://HOST:PORT``: a cluster).

pyspark and sqlframe are imported inside the functions only: the CLI must start (and print
``--help``) without loading them. The Glue context is not built here; Glue entrypoints bring
their own session (always Spark), and the settings do not apply to them.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rentalctl.errors import ResourceUnavailable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rentalctl.config import Settings

APP_NAME = "rentalctl"

log = logging.getLogger(__name__)

# Where the JVM's own output (log4j, Spark's start-up notes, the launcher script's errors) goes:
# a run's log file, set by the command that runs it; None leaves it on the terminal (--verbose).
_jvm_log: Path | None = None
# The engines this process started, so that an interrupted run can stop their work.
_engines: list[tuple[str, Any]] = []


def send_jvm_output_to(path: Path | None) -> None:
    """Send the output of a JVM started from now on to ``path`` (appended), not the terminal."""
    global _jvm_log
    _jvm_log = path


def interrupt() -> None:
    """Stop what the engines of this process are running (called when a run is cancelled):
    Spark cancels its jobs, DuckDB its query; the task waiting on them then fails at once.
    Never raises: the engine may be starting or stopping."""
    for kind, engine in list(_engines):
        try:
            if kind == "spark":
                engine.sparkContext.cancelAllJobs()
                continue
            # DuckDB interrupts per connection: the transform's own statements run on the
            # session's connection, SQLFrame's on the cursor it keeps (made on first use).
            engine._conn.interrupt()
            cursor = engine.__dict__.get("_cur")
            if cursor is not None:
                cursor.interrupt()
        except Exception:  # nothing more can be done; the run stops at its next state anyway
            log.debug("could not interrupt the %s engine", kind, exc_info=True)


# Small and predictable: two cores, a handful of shuffle partitions (the default 200 makes tiny
# jobs slow), no UI port to collide on, and UTC so nothing depends on the machine's zone.
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "1g",
}
# An in-process master never needs a routable hostname; binding to loopback avoids failures on
# machines whose hostname does not resolve. A cluster's executors must reach the driver, so
# there Spark's own choice (or SPARK_LOCAL_IP / SPARK_LOCAL_HOSTNAME) applies.
LOOPBACK_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


@functools.lru_cache(maxsize=1)
def local_session(master: str) -> SparkSession:
    """The process's SparkSession on ``master`` (created on first use, then reused: a process
    holds one Spark context, so the first master asked for is the one it keeps)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    if not os.environ.get("JAVA_HOME") and not shutil.which("java"):
        raise ResourceUnavailable(
            "Spark needs Java 17 and none was found: install a JDK (for example "
            "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        )
    settings = {**LOCAL_CONF, **(LOOPBACK_CONF if master.startswith("local") else {})}
    conf = SparkConf().setMaster(master).setAppName(APP_NAME).setAll(list(settings.items()))
    try:
        if _jvm_log is not None and SparkContext._gateway is None:
            # The JVM is started here, rather than by SparkContext, only to give it the log
            # file as its stdout and stderr (pyspark hands these to the process it starts).
            _jvm_log.parent.mkdir(parents=True, exist_ok=True)
            with open(_jvm_log, "ab") as out:
                gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": out})
            SparkContext(conf=conf, gateway=gateway)  # the process's context from now on
        session = SparkSession.builder.config(conf=conf).getOrCreate()
    except Exception as exc:  # py4j/pyspark raise plain exceptions when the JVM cannot start
        where = f" (the JVM's output is in {_jvm_log})" if _jvm_log else ""
        raise ResourceUnavailable(f"cannot start Spark on {master}: {exc}{where}") from None
    session.sparkContext.setLogLevel("ERROR")
    _engines.append(("spark", session))
    return session


# DuckDB keeps the rows' order only where a query asks for one (none of the transform's
# outputs has an order), which lets it stream instead of buffering. No time zone is set: the
# transform's times are wall-clock (TIMESTAMP without zone), and setting one needs DuckDB's
# ICU extension, which may not be installed.
DUCKDB_CONFIG = {"preserve_insertion_order": False}


@functools.lru_cache(maxsize=1)
def duckdb_session() -> Any:
    """The process's SQLFrame DuckDB session, over its own in-memory DuckDB connection."""
    import duckdb
    from sqlframe.duckdb import DuckDBSession

    session = DuckDBSession(conn=duckdb.connect(config=dict(DUCKDB_CONFIG)))
    _engines.append(("duckdb", session))
    return session


def transform_session(settings: Settings) -> Any:
    """The session the transform of a local run uses, as ``transform.engine`` says."""
    if settings.transform_engine == "spark":
        return local_session(settings.spark_master)
    return duckdb_session()
