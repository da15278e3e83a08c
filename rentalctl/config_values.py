"""From the merged values of a profile, the environment and ``--set`` to one valid ``Settings``:
every value checked against what its key expects, and refused with its key, the value, where it
came from and what is expected (``InvalidSetting``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rentalctl import setting_checks, urls
from rentalctl.config_model import (
    DEFAULT_FX_RATES,
    DEFAULT_ID_LOOKBACK,
    DEFAULT_TIMESTAMP_LOOKBACK_SECONDS,
    MAPPING_KEYS,
    SCALAR_DEFAULTS,
    SECTIONS,
    AwsSettings,
    RetryPolicy,
    Settings,
)
from rentalctl.errors import ConfigError, InvalidSetting, did_you_mean
from rentalctl.tables import TABLES, Kind


def validate(values: dict[str, Any], origins: dict[str, str], path: Path, cwd: Path) -> Settings:
    """The ``Settings`` of ``values`` (flat keys, e.g. ``source.url``; a key not given has its
    default), read from ``path``; ``origins`` says where each value came from."""
    aws_keys = {f"aws.{f}" for f in AwsSettings.__dataclass_fields__}
    known = set(SCALAR_DEFAULTS).union(MAPPING_KEYS, aws_keys)
    for key in values:
        if key not in known:
            # The closest keys, not all of them: a list of thirty-odd keys hides the typo.
            inside = sorted(k for k in known if k.startswith(f"{key}."))
            if inside:  # `source: sqlite:///x.db` where `source:` holds keys
                hint = f"{key} is a section: set its keys, e.g. {inside[0]}"
            else:
                hint = did_you_mean(key, sorted(known.union(SECTIONS))) or (
                    "the settings are listed in the README, section Configuration"
                )
            raise ConfigError(f"unknown setting {key!r} (from {origins[key]}): {hint}")

    def get(key: str) -> Any:
        return values.get(key, SCALAR_DEFAULTS.get(key))

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
        transform_parallel_min_rows=_int(
            get, origin, "transform.parallel_min_rows", 0, 1_000_000_000
        ),
        extract_parallel_min_rows=_int(get, origin, "extract.parallel_min_rows", 0, 1_000_000_000),
        retry=RetryPolicy(
            interval_seconds=_int(get, origin, "retry.interval_seconds", 1, 3600),
            max_attempts=_int(get, origin, "retry.max_attempts", 0, 10),
            backoff_rate=_number(get, origin, "retry.backoff_rate", 1.0, 10.0),
            max_delay_seconds=_int(get, origin, "retry.max_delay_seconds", 1, 86400),
        ),
        aws=_aws(values, origins),
        origins=dict(origins),
    )


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
