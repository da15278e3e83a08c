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

This module finds and reads the profile and layers the environment and flags over it; the
settings and their defaults are ``rentalctl.config_model`` (``Settings`` is also taken from here,
as what ``load`` returns), the checks of each value ``rentalctl.config_values``.

yaml is imported where used: ``rentalctl --help`` imports this module and must not load it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rentalctl import resources
from rentalctl.config_model import MAPPING_KEYS, SECTIONS, Settings
from rentalctl.config_values import validate
from rentalctl.errors import ConfigError, InvalidSetting, did_you_mean

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
        if section in MAPPING_KEYS and entry:
            # --set lookback.bookings=60 sets one entry of a mapping setting.
            mapping = values.get(section)
            values[section] = {
                **(mapping if isinstance(mapping, dict) else {}),
                entry: _scalar(value),
            }
            origins[section] = f"--set {key}"
        else:
            values[key], origins[key] = _scalar(value), f"--set {key}"
    return validate(values, origins, path, cwd)


def _scalar(text: str) -> Any:
    """A --set value is read as a YAML scalar or list: 5, 0.2, true, [a, b], or a string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        full = f"{prefix}{key}"
        if not prefix and key in SECTIONS and (value is None or isinstance(value, dict)):
            out.extend(_flatten(value or {}, f"{full}."))  # a section left empty is no error
        else:
            out.append((full, value))
    return out
