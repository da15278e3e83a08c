"""Configuration: one YAML profile, overridden by environment variables, overridden by flags.

It is parsed and validated once, into a frozen ``Settings``. Every bad value is reported with its
key, the value, where it came from and what is expected (``InvalidSetting``, exit code 2).
Secrets never live here: the source password is read from ``RENTALCTL_SOURCE_PASSWORD`` by the
adapter that needs it (or from Secrets Manager on AWS). A URL carrying a password, in its
user part or as a query parameter, is refused without being echoed.

Settings that end up in AWS resource names, ARNs and S3 prefixes are held to the characters
those names allow, without wildcards (``rentalctl.setting_checks``); table names and currency
codes are checked against the table specs and ISO 4217: nothing from configuration reaches SQL
as an identifier.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rentalctl import resources, setting_checks, urls
from rentalctl.errors import ConfigError, InvalidSetting, did_you_mean
from rentalctl.tables import TABLES, Kind

DEFAULT_PROFILE = "local"

# Environment variables that override one setting each (docs/contract.md §2).
ENV_OVERRIDES = {
    "RENTALCTL_HOME": "home",
    "RENTALCTL_SOURCE_URL": "source.url",
    "RENTALCTL_LAKE_URL": "lake.url",
    "RENTALCTL_WAREHOUSE_URL": "warehouse.url",
    "RENTALCTL_STATE_URL": "state.url",
    "RENTALCTL_SPARK_MASTER": "spark.master",
    "RENTALCTL_ENGINE": "transform.engine",
}
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


def find_config_file(
    config: str | None, profile: str | None, cwd: Path, env: Mapping[str, str] | None = None
) -> Path:
    """--config FILE wins; else the profile: ./config/NAME.yaml, else the shipped one."""
    env = os.environ if env is None else env
    config = config or env.get("RENTALCTL_CONFIG") or None
    if config:
        path = (cwd / config).resolve()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    name = profile or env.get("RENTALCTL_PROFILE") or DEFAULT_PROFILE
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidSetting("--profile", name, "a profile name such as local or aws")
    local = cwd / "config" / f"{name}.yaml"
    if local.is_file():
        return local.resolve()
    try:
        return resources.shipped(f"config/{name}.yaml")
    except FileNotFoundError:
        known = profiles(cwd)
        hint = did_you_mean(name, known)
        if name == "aws":  # the AWS profile holds account names: each user writes their own
            hint = "copy config/aws.example.yaml to config/aws.yaml and fill it in"
        raise ConfigError(
            f"unknown profile {name!r}: no config/{name}.yaml here or shipped"
            + (f"; {hint}" if hint else "")
            + f" (profiles: {', '.join(known)})"
        ) from None


def profiles(cwd: Path) -> list[str]:
    """The profiles ``--profile`` can name from ``cwd``: config/*.yaml here and the shipped
    ones. An example file (``aws.example.yaml``) is a template to copy, not a profile."""
    folders = [cwd / "config", resources.shipped("config")]
    names = {p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")}
    return sorted(n for n in names if not n.endswith(".example"))


def load(
    config: str | None = None,
    profile: str | None = None,
    overrides: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Read, merge and validate the configuration. ``overrides`` are command-line KEY=VALUE."""
    import yaml

    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    path = find_config_file(config, profile, cwd, env)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += f" ({context} started at line {start.line + 1})"
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, value in _flatten(doc):
        values[key], origins[key] = value, str(path)
    for var, key in ENV_OVERRIDES.items():
        if env.get(var):
            values[key], origins[key] = env[var], var
    for key, value in (overrides or {}).items():
        section, _, entry = key.partition(".")
        if section in _MAPPING_KEYS and entry:
            # --set lookback.bookings=60 sets one entry of a mapping setting.
            mapping = values.get(section)
            values[section] = {
                **(mapping if isinstance(mapping, dict) else {}),
                entry: _scalar(value),
            }
            origins[section] = f"--set {key}"
        else:
            values[key], origins[key] = _scalar(value), f"--set {key}"
    return _validate(values, origins, path, cwd)


def _scalar(text: str) -> Any:
    """A --set value is read as a YAML scalar or list: 5, 0.2, true, [a, b], or a string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# Keys whose value is a whole mapping rather than nested settings.
_MAPPING_KEYS = {"lookback", "fx_rates"}
_SECTIONS = {
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


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        full = f"{prefix}{key}"
        if not prefix and key in _SECTIONS and (value is None or isinstance(value, dict)):
            out.extend(_flatten(value or {}, f"{full}."))  # a section left empty is no error
        else:
            out.append((full, value))
    return out


def _validate(values: dict[str, Any], origins: dict[str, str], path: Path, cwd: Path) -> Settings:
    known = set(_PLAIN) | _MAPPING_KEYS | {f"aws.{f}" for f in AwsSettings.__dataclass_fields__}
    for key in values:
        if key not in known:
            # The closest keys, not all of them: a list of thirty-odd keys hides the typo.
            inside = sorted(k for k in known if k.startswith(f"{key}."))
            if inside:  # `source: sqlite:///x.db` where `source:` holds keys
                hint = f"{key} is a section: set its keys, e.g. {inside[0]}"
            else:
                hint = did_you_mean(key, sorted(known | _SECTIONS)) or (
                    "the settings are listed in the README, section Configuration"
                )
            raise ConfigError(f"unknown setting {key!r} (from {origins[key]}): {hint}")

    def get(key: str) -> Any:
        return values.get(key, _PLAIN.get(key))

    def origin(key: str) -> str | None:
        return origins.get(key)

    target = get("target")
    if target not in ("local", "aws"):
        raise InvalidSetting("target", target, "local or aws", origin("target"))

    home_raw = get("home")
    if not isinstance(home_raw, str) or not home_raw.strip():
        raise InvalidSetting("home", home_raw, "a directory path", origin("home"))
    if "\\" in home_raw:
        raise InvalidSetting("home", home_raw, urls.NO_BACKSLASH, origin("home"))
    home = (cwd / Path(home_raw).expanduser()).resolve()

    def url(key: str) -> str:
        raw = get(key)
        if not isinstance(raw, str):
            raise InvalidSetting(key, raw, "a URL string", origin(key))
        setting_checks.refuse_url_parameters(key, raw, origin(key))
        return raw.replace("{home}", str(home))

    source = urls.parse_source(url("source.url"), cwd, origin=origin("source.url"))
    lake = urls.parse_lake(url("lake.url"), cwd, origin=origin("lake.url"))
    if isinstance(lake, urls.S3URL) and lake.prefix:
        setting_checks.check_key_prefix("lake.url", str(lake), lake.prefix, origin("lake.url"))
    warehouse = urls.parse_warehouse(url("warehouse.url"), cwd, origin=origin("warehouse.url"))
    state = urls.parse_state(url("state.url"), cwd, origin=origin("state.url"))

    tables_raw = get("tables")
    if isinstance(tables_raw, str):
        tables_raw = [t.strip() for t in tables_raw.split(",") if t.strip()]
    expected_tables = f"a non-empty list drawn from {', '.join(TABLES)}"
    if not isinstance(tables_raw, list) or not tables_raw:
        raise InvalidSetting("tables", tables_raw, expected_tables, origin("tables"))
    for name in tables_raw:
        if name not in TABLES:
            raise InvalidSetting("tables", name, expected_tables, origin("tables"))
    tables = tuple(t for t in TABLES if t in tables_raw)  # dependency order, no duplicates

    lookback = _lookback(values.get("lookback") or {}, origin("lookback"))
    fx_rates = _fx_rates(values.get("fx_rates", DEFAULT_FX_RATES), origin("fx_rates"))

    return Settings(
        config_file=path,
        target=target,
        home=home,
        source=source,
        lake=lake,
        warehouse=warehouse,
        state=state,
        tables=tables,
        lookback=lookback,
        fx_rates=fx_rates,
        batch_size=_int(get, origin, "extract.batch_size", 100, 1_000_000),
        part_file_rows=_int(get, origin, "extract.part_file_rows", 1000, 100_000_000),
        max_rejected_share=_share(get("quality.max_rejected_share"), origin),
        quality_min_rows=_int(get, origin, "quality.min_rows", 0, 1_000_000_000),
        max_clock_skew_seconds=_int(get, origin, "extract.max_clock_skew_seconds", 0, 86_400),
        reconcile_every_runs=_int(get, origin, "extract.reconcile_every_runs", 0, 10_000),
        spark_master=setting_checks.check_spark_master(get("spark.master"), origin("spark.master")),
        # 40: the most iterations an inline Map runs at once on AWS.
        max_concurrency=_int(get, origin, "pipeline.max_concurrency", 0, 40),
        transform_engine=setting_checks.check_engine(
            get("transform.engine"), origin("transform.engine")
        ),
        retry=RetryPolicy(
            interval_seconds=_int(get, origin, "retry.interval_seconds", 1, 3600),
            max_attempts=_int(get, origin, "retry.max_attempts", 0, 10),
            backoff_rate=_number(get, origin, "retry.backoff_rate", 1.0, 10.0),
            max_delay_seconds=_int(get, origin, "retry.max_delay_seconds", 1, 86400),
        ),
        aws=_aws(values, origins),
        origins=dict(origins),
    )


# Scalar settings and their defaults.
_PLAIN: dict[str, Any] = {
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
}


def _int(get, origin, key: str, low: int, high: int) -> int:
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSetting(key, value, f"an integer from {low} to {high}", origin(key))
    return value


def _number(get, origin, key: str, low: float, high: float) -> float:
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidSetting(key, value, f"a number from {low:g} to {high:g}", origin(key))
    return float(value)


def _share(value: Any, origin) -> float:
    key = "quality.max_rejected_share"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidSetting(key, value, "a number from 0 to 1 (a share of rows)", origin(key))
    return float(value)


def _lookback(raw: Any, origin: str | None) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise InvalidSetting("lookback", raw, "a mapping of table name to a number", origin)
    out = {}
    for name, spec in TABLES.items():
        timestamp = spec.watermark_kind is Kind.DATETIME
        out[name] = DEFAULT_TIMESTAMP_LOOKBACK_SECONDS if timestamp else DEFAULT_ID_LOOKBACK
    for name, value in raw.items():
        if name not in TABLES:
            raise InvalidSetting(
                f"lookback.{name}", value, f"a table of {', '.join(TABLES)}", origin
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            unit = "seconds" if TABLES[name].watermark_kind is Kind.DATETIME else "ids"
            raise InvalidSetting(f"lookback.{name}", value, f"a whole number of {unit} ≥ 0", origin)
        out[name] = value
    return out


def _fx_rates(raw: Any, origin: str | None) -> dict[str, Decimal]:
    if not isinstance(raw, dict) or not raw:
        raise InvalidSetting("fx_rates", raw, "a mapping of currency code to rate in USD", origin)
    out = {}
    for code, rate in raw.items():
        key = f"fx_rates.{code}"
        if not (isinstance(code, str) and code.isalpha() and code.isupper() and len(code) == 3):
            raise InvalidSetting(key, code, "an ISO 4217 code in upper case, such as EUR", origin)
        try:
            value = Decimal(str(rate))
        except InvalidOperation:
            value = Decimal(-1)
        if isinstance(rate, bool) or not value.is_finite() or value <= 0:
            raise InvalidSetting(key, rate, "a positive number (USD per unit)", origin)
        # Rates are stored and applied as DECIMAL(18,6) (curated.fx_rates).
        exponent = value.normalize().as_tuple().exponent
        if (isinstance(exponent, int) and exponent < -6) or value >= 10**12:
            raise InvalidSetting(
                key, rate, "a rate with at most 6 decimal places, below 10^12", origin
            )
        out[code] = value
    return out


# Lower bounds of the numeric AWS settings (their type is the type of their default).
_AWS_MINIMUM = {"glue_max_retries": 0}  # others: at least 1


def _aws(values: dict[str, Any], origins: dict[str, str]) -> AwsSettings:
    kwargs: dict[str, Any] = {}
    for name, f in AwsSettings.__dataclass_fields__.items():
        key = f"aws.{name}"
        if key not in values or values[key] is None:
            continue
        value, default = values[key], f.default
        where = origins.get(key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidSetting(key, value, "a list of names", where)
            for item in value:
                setting_checks.check_aws_name(name, key, item, where)
            value = tuple(value)
        elif default is None or isinstance(default, str):
            if name == "glue_version" and isinstance(value, (int, float)):
                value = str(value)  # 5.0 unquoted is read by YAML as a number
            if not isinstance(value, str) or not value:
                raise InvalidSetting(key, value, "a non-empty string", where)
            setting_checks.check_aws_name(name, key, value, where)
        elif isinstance(default, int):
            low = _AWS_MINIMUM.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                expected = "a positive whole number" if low else "a whole number ≥ 0"
                raise InvalidSetting(key, value, expected, where)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidSetting(key, value, "a positive number", where)
            value = float(value)
        kwargs[name] = value
    return AwsSettings(**kwargs)
