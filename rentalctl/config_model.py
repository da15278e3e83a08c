"""The settings as the program holds them: frozen dataclasses, the default of every key, and
the shape of the configuration's keys (sections of keys, and settings that are mappings).
``rentalctl.config`` reads a profile into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from rentalctl import urls
from rentalctl.tables import TABLES

DEFAULT_FX_RATES = {"USD": "1.0", "EUR": "1.08", "GBP": "1.27", "INR": "0.012"}
DEFAULT_TIMESTAMP_LOOKBACK_SECONDS = 300
# An AUTO_INCREMENT id is taken at insert and seen at commit, so a transaction committing late
# shows an id below what a run already read: re-read this many ids (rentalctl.pipeline.extract).
DEFAULT_ID_LOOKBACK = 10_000


@dataclass(frozen=True)
class AwsSettings:
    """Everything the AWS target needs; documented in config/aws.example.yaml."""

    region: str | None = None
    scripts_prefix: str = "scripts"
    glue_role_arn: str | None = None
    glue_version: str = "5.0"
    glue_job_prefix: str = "rentalctl"
    spark_worker_type: str = "G.1X"
    spark_workers: int = 2
    python_shell_dpu: float = 0.0625
    glue_timeout_minutes: int = 60
    glue_max_retries: int = 0
    glue_connections: tuple[str, ...] = ()
    state_machine_name: str = "rentalctl-pipeline"
    state_machine_role_arn: str | None = None
    state_machine_log_group_arn: str | None = None
    schedule: str | None = None
    scheduler_role_arn: str | None = None
    sns_topic_arn: str | None = None
    source_secret_arn: str | None = None
    redshift_secret_arn: str | None = None
    redshift_copy_role_arn: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Retry of a pipeline step after a transient error, as in the state machine's Retry."""

    interval_seconds: int = 10
    max_attempts: int = 2
    backoff_rate: float = 2.0
    max_delay_seconds: int = 120


@dataclass(frozen=True)
class Settings:
    config_file: Path
    target: str
    home: Path
    source: urls.SqliteURL | urls.MysqlURL
    lake: urls.FileURL | urls.S3URL
    warehouse: urls.DuckdbURL | urls.RedshiftURL
    state: urls.SqliteURL | urls.DynamodbURL
    tables: tuple[str, ...]
    lookback: Mapping[str, int]
    fx_rates: Mapping[str, Decimal]
    batch_size: int
    part_file_rows: int
    max_rejected_share: float
    #: where local runs send Spark work (Glue jobs use their own session instead)
    spark_master: str
    # Map iterations (tables) that run at once, in the state machine (0: all of them).
    max_concurrency: int = 4
    # How far ahead of the source's clock a timestamp may be and still carry a bookmark.
    max_clock_skew_seconds: int = 60
    # Every this many runs a table's key set is read to find rows deleted in the source (0: never).
    reconcile_every_runs: int = 1
    # Below this many rows read, a table's rejected share is not held against the gate.
    quality_min_rows: int = 100
    #: what runs the transform of local runs: DuckDB (through SQLFrame) or Spark on spark_master.
    #: Glue jobs always run Spark.
    transform_engine: str = "duckdb"
    #: with the DuckDB engine, a Transform of at least this many rows transforms its tables side
    #: by side, each in a process of its own (0: always).
    transform_parallel_min_rows: int = 100_000
    #: a local extract of a window of at least this many rows (or of every key of its table)
    #: runs in a process of its own; of fewer, in the run's process (0: always apart).
    extract_parallel_min_rows: int = 100_000
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy())
    aws: AwsSettings = field(default_factory=AwsSettings)
    #: where each setting given explicitly came from (a file's path, a variable, `--set KEY`);
    #: a key not here has its default. `rentalctl doctor` shows it.
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    def public(self) -> dict[str, Any]:
        """The effective settings as plain data (they never hold a secret)."""
        return {
            "config_file": str(self.config_file),
            "target": self.target,
            "home": str(self.home),
            "source.url": str(self.source),
            "lake.url": str(self.lake),
            "warehouse.url": str(self.warehouse),
            "state.url": str(self.state),
            "tables": list(self.tables),
            "lookback": dict(self.lookback),
            "fx_rates": {k: str(v) for k, v in self.fx_rates.items()},
            "spark.master": self.spark_master,
            "transform.engine": self.transform_engine,
        }


# Scalar settings and their defaults.
SCALAR_DEFAULTS: dict[str, Any] = {
    "target": "local",
    "home": "./.rentalctl",
    "source.url": "sqlite:///{home}/source.db",
    "lake.url": "file://{home}/lake",
    "warehouse.url": "duckdb:///{home}/warehouse.duckdb",
    "state.url": "sqlite:///{home}/state.db",
    "tables": list(TABLES),
    "extract.batch_size": 10_000,
    "extract.part_file_rows": 100_000,
    "extract.max_clock_skew_seconds": 60,
    "extract.parallel_min_rows": 100_000,
    "extract.reconcile_every_runs": 1,
    "quality.max_rejected_share": 0.2,
    "quality.min_rows": 100,
    "pipeline.max_concurrency": 4,
    "retry.interval_seconds": 10,
    "retry.max_attempts": 2,
    "retry.backoff_rate": 2.0,
    "retry.max_delay_seconds": 120,
    "spark.master": "local[*]",
    "transform.engine": "duckdb",
    "transform.parallel_min_rows": 100_000,
}

# Keys whose value is a whole mapping rather than nested settings.
MAPPING_KEYS = {"lookback", "fx_rates"}
SECTIONS = {
    "source",
    "lake",
    "warehouse",
    "state",
    "extract",
    "quality",
    "pipeline",
    "retry",
    "spark",
    "transform",
    "aws",
}
