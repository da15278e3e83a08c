"""The local SparkSession: one per process, sized for a small machine.

pyspark is imported inside the function only: the CLI must start (and print ``--help``) without
loading it. The Glue context is not built here; Glue entrypoints bring their own session.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_NAME = "rentalctl"

# Small and predictable: two cores, a handful of shuffle partitions (the default 200 makes tiny
# jobs slow), no UI port to collide on, and UTC so nothing depends on the machine's zone.
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "1g",
    # A local driver never needs a routable hostname; binding to loopback avoids failures on
    # machines whose hostname does not resolve.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


@functools.lru_cache(maxsize=1)
def local_session() -> SparkSession:
    """The process's local SparkSession (created on first use, then reused)."""
    import os
    import shutil

    from pyspark.sql import SparkSession

    from rentalctl.errors import ResourceUnavailable

    if not os.environ.get("JAVA_HOME") and not shutil.which("java"):
        raise ResourceUnavailable(
            "Spark needs Java 17 and none was found: install a JDK (for example "
            "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        )
    builder = SparkSession.builder.master("local[2]").appName(APP_NAME)
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j/pyspark raise plain exceptions when the JVM cannot start
        raise ResourceUnavailable(f"cannot start local Spark: {exc}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session
