"""What ``upload-scripts`` ships (``rentalctl.deploy.glue`` plans and uploads it), under
``s3://<lake bucket>/<lake prefix>/<aws.scripts_prefix>/``:

- ``glue/job.py``: the one entrypoint of every job (see its docstring);
- ``lib/rentalctl-<version>-py3-none-any.whl``: the library, as a wheel built here. Not the
  project's own wheel: that one says ``Requires-Python >=3.11`` and depends on pyspark, duckdb,
  typer and rich, so pip would refuse it on Glue Python shell (3.9) or drag in hundreds of MB.
  Not a plain zip either: Glue Python shell accepts only .whl/.egg in ``--extra-py-files``, and
  the library reads its SQL files from the installed package (``resources.shipped``), which a
  zip on ``sys.path`` (zipimport) cannot provide. The wheel is built in memory from the package
  directory, byte for byte reproducible (fixed timestamps, sorted entries), without a build
  backend or network, and declares only what the jobs import on Glue (``GLUE_REQUIREMENTS``,
  versions as in the project's metadata); boto3 and pyspark are Glue's own.
- ``lib/wheels/<wheel>``: what those requirements need, every wheel of the lock
  ``glue_requirements.txt`` for the Python of the Python shell jobs (3.9) and of the Spark job
  (``rentalctl.deploy.wheelhouse``). The jobs install them with no package index: a job in a
  VPC has no internet without a NAT gateway. Python shell jobs get them in ``--extra-py-files``,
  dependencies first and the library last, so that each wheel finds what it requires already
  installed; the Spark job gets them in ``--additional-python-modules``, with pip's
  ``--no-index`` as ``--python-modules-installer-option``.
- ``redshift/**.sql``: the warehouse SQL (also inside the wheel, where the jobs read it from;
  shipped on its own for operators and the Redshift query editor);
- ``config/rentalctl.yaml``: the effective settings (file, RENTALCTL_* environment, --set),
  rendered as one YAML file, so the jobs run with exactly what upload-scripts saw. Never a
  secret: settings hold none (secrets are ARNs).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import rentalctl
from rentalctl import __version__, resources
from rentalctl.config import Settings
from rentalctl.deploy import wheelhouse

ENTRYPOINT = "glue/job.py"
CONFIG = "config/rentalctl.yaml"
WHEEL = f"lib/rentalctl-{__version__}-py3-none-any.whl"
DEPENDENCIES = "lib/wheels"
GLUE_REQUIREMENTS = ("pyyaml", "pymysql", "redshift-connector", "sqlglot")
SHIPPED_IN_WHEEL = ("redshift", "step-functions", "mysql", "config")
GLUE_HOME = "/tmp/rentalctl"  # home (scratch only) of the jobs on Glue
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Artifact:
    path: str  # under the scripts prefix
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def artifacts(settings: Settings) -> list[Artifact]:
    files = [Artifact(ENTRYPOINT, resources.shipped(ENTRYPOINT).read_bytes(), "text/x-python")]
    files.append(Artifact(WHEEL, build_wheel(), "application/zip"))
    # By file name: a pure-Python wheel serves both runtimes.
    wheels = {p.name: p for paths in _dependencies(settings).values() for p in paths}
    files += [Artifact(f"{DEPENDENCIES}/{name}", p.read_bytes()) for name, p in wheels.items()]
    sql_root = resources.shipped("redshift")
    for path in sorted(sql_root.rglob("*.sql")):
        rel = path.relative_to(sql_root).as_posix()
        files.append(Artifact(f"redshift/{rel}", path.read_bytes(), "application/sql"))
    files.append(Artifact(CONFIG, render_config(settings), "application/yaml"))
    return files


def _dependencies(settings: Settings) -> dict[str, list[Path]]:
    """Job type -> the wheels of the library's dependencies for the Python of its Glue runtime,
    in install order."""
    pythons = {
        "pythonshell": wheelhouse.PYTHON_SHELL,
        "glueetl": wheelhouse.spark_python(settings.aws.glue_version),
    }
    return {kind: wheelhouse.wheels(settings.home, python) for kind, python in pythons.items()}


def libraries(settings: Settings) -> dict[str, list[str]]:
    """Job type -> the wheels its jobs install (artifact paths), in install order: the
    dependencies first, the job library last."""
    return {
        kind: [*(f"{DEPENDENCIES}/{p.name}" for p in paths), WHEEL]
        for kind, paths in _dependencies(settings).items()
    }


def render_config(settings: Settings) -> bytes:
    """The effective settings as a config file that ``config.load`` reads back to the same
    settings (``home`` aside: on Glue it is scratch space in /tmp)."""
    import yaml  # imported here: importing this module stays cheap

    handled = {"config_file", "home", "target", "source", "lake", "warehouse", "state", "tables"}
    handled |= {"lookback", "fx_rates", "batch_size", "part_file_rows", "max_rejected_share"}
    handled |= {"retry", "aws", "max_clock_skew_seconds", "quality_min_rows"}
    handled |= {"spark_master"}  # not shipped: a Glue job's Spark session is Glue's own
    handled |= {"extract_parallel_min_rows"}  # not shipped: a Glue job extracts in its process
    handled |= {"transform_engine", "transform_parallel_min_rows"}  # not shipped: Glue jobs
    # always transform on Spark, one job per table
    handled |= {"max_concurrency"}  # not shipped: deploy-sfn renders it into the Map
    handled |= {"reconcile_every_runs"}
    handled |= {"origins"}  # not shipped: where each setting came from, for `doctor` here
    missing = set(Settings.__dataclass_fields__) - handled
    if missing:  # a new setting must be shipped to the jobs too: teach this function about it
        raise NotImplementedError(f"render_config does not ship {sorted(missing)}")
    doc = {
        "target": settings.target,
        "home": GLUE_HOME,
        "source": {"url": str(settings.source)},
        "lake": {"url": str(settings.lake)},
        "warehouse": {"url": str(settings.warehouse)},
        "state": {"url": str(settings.state)},
        "tables": list(settings.tables),
        "lookback": dict(settings.lookback),
        "fx_rates": {code: str(rate) for code, rate in settings.fx_rates.items()},
        "extract": {
            "batch_size": settings.batch_size,
            "part_file_rows": settings.part_file_rows,
            "max_clock_skew_seconds": settings.max_clock_skew_seconds,
            "reconcile_every_runs": settings.reconcile_every_runs,
        },
        "quality": {
            "max_rejected_share": settings.max_rejected_share,
            "min_rows": settings.quality_min_rows,
        },
        "retry": asdict(settings.retry),
        "aws": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in asdict(settings.aws).items()
            if v is not None and v != ()
        },
    }
    header = (
        f"# Rendered by `rentalctl upload-scripts` from {settings.config_file.name}, the\n"
        "# environment and --set: the settings the Glue jobs run with. Do not edit; re-run\n"
        "# upload-scripts instead. No secrets: those are referenced by ARN.\n"
    )
    return (header + yaml.safe_dump(doc, sort_keys=False)).encode()


def _requirements() -> list[str]:
    """The Requires-Dist lines of the Glue wheel, pinned as in the project's own metadata."""
    try:
        declared = metadata.requires("rentalctl") or []
    except metadata.PackageNotFoundError:
        declared = []
    pins = {}
    for line in declared:
        m = re.match(r"\s*([A-Za-z0-9._-]+)\s*([^;]*)$", line)  # extras' lines carry a ';'
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2).strip()
    return [name + pins.get(name, "") for name in GLUE_REQUIREMENTS]


def build_wheel() -> bytes:
    """The library as a pure-Python wheel, reproducible byte for byte (see module docstring)."""
    package = Path(rentalctl.__file__).resolve().parent
    files: dict[str, bytes] = {}
    for path in sorted(package.rglob("*")):
        parts = path.relative_to(package).parts
        skip = "__pycache__" in parts or parts[0] == "_shipped" or path.suffix in (".pyc", ".pyo")
        if path.is_file() and not skip and not any(p.startswith(".") for p in parts):
            files["rentalctl/" + "/".join(parts)] = path.read_bytes()
    for folder in SHIPPED_IN_WHEEL:
        root = resources.shipped(folder)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            files[f"rentalctl/_shipped/{folder}/{path.relative_to(root).as_posix()}"] = (
                path.read_bytes()
            )
    dist = f"rentalctl-{__version__}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        "Name: rentalctl",
        f"Version: {__version__}",
        "Summary: rentalctl pipeline jobs, packaged for AWS Glue by rentalctl upload-scripts",
        "Requires-Python: >=3.9",
        *(f"Requires-Dist: {r}" for r in _requirements()),
    ]
    files[f"{dist}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    wheel = "Wheel-Version: 1.0\nGenerator: rentalctl\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist}/WHEEL"] = wheel.encode()
    files[f"{dist}/top_level.txt"] = b"rentalctl\n"
    record = [f"{name},sha256={_b64(data)},{len(data)}" for name, data in files.items()]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
