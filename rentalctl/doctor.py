"""What ``rentalctl doctor`` finds: the effective settings and where each came from, the versions
of what runs the pipeline, and whether each resource the profile names can be reached.

Every check only reads: nothing is created, locked or written (a folder that does not exist yet
passes when the first run can create it). A failed check carries the fix in its detail.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rentalctl import __version__, doctor_aws, urls
from rentalctl.context import Context
from rentalctl.errors import RentalctlError, ResourceUnavailable
from rentalctl.preflight import check_java, check_warehouse_free, java_binary
from rentalctl.tables import table

_NOTHING_RUN = re.compile(r"\s*Nothing was run\.?$")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def diagnose(settings: Any, boto3_session: Any | None = None) -> dict[str, Any]:
    """The doctor's report (its JSON shape is documented in docs/troubleshooting.md)."""
    context = Context(settings, boto3_session=boto3_session)
    checks = [
        _check("config file", lambda: f"{settings.config_file}"),
        _check("home", lambda: _writable(settings.home, "home")),
        _java_check(settings),
        _check("source", lambda: _source(context)),
        _check("lake", lambda: _lake(context)),
        _check("warehouse", lambda: _warehouse(context)),
        _check("state store", lambda: _state(context)),
    ]
    if settings.target == "aws":
        checks += [_check(name, probe) for name, probe in doctor_aws.probes(context)]
    return {
        "ok": all(c.ok for c in checks),
        "config_file": str(settings.config_file),
        "home": str(settings.home),
        "settings": settings_with_origins(settings),
        "versions": versions(),
        "checks": [asdict(c) for c in checks],
    }


def settings_with_origins(settings: Any) -> list[dict[str, Any]]:
    """Each effective setting with its origin: the profile file's path, an environment
    variable, ``--set KEY`` or ``default``."""
    rows = []
    public = settings.public()
    public.pop("config_file")
    if settings.target == "aws":
        public.update(
            {f"aws.{k}": v for k, v in asdict(settings.aws).items() if v not in (None, ())}
        )
    for key, value in public.items():
        origin = settings.origins.get(key) or next(
            (o for k, o in settings.origins.items() if k.startswith(key + ".")), "default"
        )
        rows.append({"key": key, "value": value, "origin": origin})
    return rows


def versions() -> dict[str, str | None]:
    """Versions of what a run uses; None for what is not installed."""

    def package(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "rentalctl": __version__,
        "python": platform.python_version(),
        "java": java_version(),
        "pyspark": package("pyspark"),
        "duckdb": package("duckdb"),
        "sqlframe": package("sqlframe"),
    }


def java_version() -> str | None:
    """The version the java Spark would start reports (`java -version` prints it on stderr)."""
    java = java_binary()
    if java is None or not os.access(java, os.X_OK):
        return None
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "([^"]+)"', done.stderr + done.stdout)
    return found.group(1) if found else None


def _check(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except RentalctlError as exc:
        return Check(name, False, _NOTHING_RUN.sub("", str(exc)))
    except Exception as exc:  # a driver's own error: the doctor reports it and checks on
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _java_check(settings: Any) -> Check:
    """Java is needed only by transform.engine=spark: without it, its absence is not a fault."""
    version = java_version()
    if settings.transform_engine != "spark":
        shown = f"java {version}" if version else "no java found"
        return Check("java", True, f"{shown}; not needed (transform.engine=duckdb)")

    def probe() -> str:
        check_java()
        return f"java {version or '(version unknown)'}"

    return _check("java", probe)


def _writable(path: Path, what: str) -> str:
    """``path`` can be written, or created by the first run (its nearest existing folder is
    writable)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if os.access(existing, os.W_OK):
        return f"{path}" if existing == path else f"{path} (created by the first run)"
    raise ResourceUnavailable(
        f"{what} {path} cannot be written ({existing} is not writable): give this user write "
        f"access to {existing}, or point the `{what}` setting at a folder it can write"
    )


def _source(context: Any) -> str:
    settings = context.settings
    with context.source() as source:
        source.check_tables([table(t) for t in settings.tables])
    return f"{urls.mask(str(settings.source))}: tables {', '.join(settings.tables)} readable"


def _lake(context: Any) -> str:
    lake = context.settings.lake
    if isinstance(lake, urls.FileURL):
        return _writable(lake.path, "lake.url")

    return doctor_aws.bucket(context, lake)


def _warehouse(context: Any) -> str:
    settings = context.settings
    if isinstance(settings.warehouse, urls.DuckdbURL):
        path = settings.warehouse.path
        shown = _writable(path, "warehouse.url")
        if path.exists():
            check_warehouse_free(path, None)
        return shown
    with context.warehouse():
        pass
    return urls.mask(str(settings.warehouse))


def _state(context: Any) -> str:
    state = context.settings.state
    if isinstance(state, urls.SqliteURL):
        if not state.path.exists():
            return _writable(state.path, "state.url")
        holder = context.state.lock_holder()
        held = f"; a run holds the lock: {holder.get('run_id')}" if holder else ""
        return f"{state.path}{held}"

    return doctor_aws.table(context, state)
