"""``upload-scripts``: ship what the Glue jobs run, and define the jobs.

Plan, then execute (chalice's deployer): ``plan`` builds the files, reads what is in S3 and in
Glue, and decides per file (upload / unchanged) and per job (create / update / unchanged); it
changes nothing. ``execute`` carries the plan out: files first, then the jobs that point at them.
``--dry-run`` is ``plan`` alone. A second run with nothing changed uploads and updates nothing.

Files, under ``s3://<lake bucket>/<lake prefix>/<aws.scripts_prefix>/``, each stored with
SSE-S3 and its SHA-256 as object metadata ``sha256`` (what the next plan compares):

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

Jobs: one per ``rentalctl.jobs.JOB_TYPES`` entry, named by ``statemachine.job_names``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rentalctl import __version__, aws, resources, urls
from rentalctl.config import Settings
from rentalctl.deploy import wheelhouse
from rentalctl.deploy.clients import Clients
from rentalctl.errors import ConfigError, InvalidSetting, ResourceUnavailable

ENTRYPOINT = "glue/job.py"
CONFIG = "config/rentalctl.yaml"
WHEEL = f"lib/rentalctl-{__version__}-py3-none-any.whl"
DEPENDENCIES = "lib/wheels"
PYTHON_SHELL_GLUE_VERSION = "3.0"  # the Glue version of Python shell 3.9
GLUE_REQUIREMENTS = ("pyyaml", "pymysql", "redshift-connector", "sqlglot")
SHIPPED_IN_WHEEL = ("redshift", "step-functions", "mysql", "config")
PER_TABLE_JOBS = frozenset({"extract-load"})  # run once per table, side by side (Map)
GLUE_HOME = "/tmp/rentalctl"  # home (scratch only) of the jobs on Glue
TAGS = {"managed-by": "rentalctl"}
SSE = "AES256"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Fields of a job definition compared with the deployed job (besides tags).
_COMPARED = (
    "Description",
    "Role",
    "Command",
    "GlueVersion",
    "MaxCapacity",
    "WorkerType",
    "NumberOfWorkers",
    "Timeout",
    "MaxRetries",
    "Connections",
    "ExecutionProperty",
    "DefaultArguments",
)
_DENIED = {"AccessDenied", "AccessDeniedException", "ExpiredToken", "InvalidClientTokenId"}
_INVALID = {"InvalidInputException", "ValidationException", "InvalidParameterValueException"}


@dataclass(frozen=True)
class Artifact:
    path: str  # under the scripts prefix
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class FilePlan:
    artifact: Artifact
    uri: str
    key: str
    action: str  # "upload" | "unchanged"
    reason: str  # "new" | "content changed" | "not encrypted" | "up to date"


@dataclass(frozen=True)
class JobPlan:
    job: str
    name: str
    kind: str  # "pythonshell" | "glueetl"
    action: str  # "create" | "update" | "unchanged"
    changes: tuple[str, ...]  # the fields that differ from the deployed job ("Tags" included)
    definition: dict[str, Any] = field(repr=False)
    tags: dict[str, str] = field(repr=False)
    arn: str | None = None  # of a deployed job


@dataclass(frozen=True)
class Plan:
    bucket: str
    root: str  # object-key prefix of the scripts
    files: tuple[FilePlan, ...]
    jobs: tuple[JobPlan, ...]

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.root}"

    @property
    def changed(self) -> bool:
        return any(f.action != "unchanged" for f in self.files) or any(
            j.action != "unchanged" for j in self.jobs
        )


@dataclass(frozen=True)
class Outcome:
    uploaded: tuple[str, ...]
    created: tuple[str, ...]
    updated: tuple[str, ...]


def require(settings: Settings) -> urls.S3URL:
    """The S3 lake; refuses settings upload-scripts cannot work with (exit 2)."""
    if not isinstance(settings.lake, urls.S3URL):
        raise InvalidSetting(
            "lake.url",
            str(settings.lake),
            "an s3://BUCKET[/PREFIX] URL: Glue jobs read their scripts from the lake",
        )
    if not settings.aws.glue_role_arn:
        raise InvalidSetting(
            "aws.glue_role_arn",
            None,
            "the ARN of the IAM role the Glue jobs run as (arn:aws:iam::ACCOUNT:role/NAME)",
        )
    return settings.lake


def scripts_root(settings: Settings) -> str:
    lake = require(settings)
    return "/".join(p for p in (lake.prefix, settings.aws.scripts_prefix.strip("/")) if p)


# --- the files -----------------------------------------------------------------------------


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
    import yaml

    handled = {"config_file", "home", "target", "source", "lake", "warehouse", "state", "tables"}
    handled |= {"lookback", "fx_rates", "batch_size", "part_file_rows", "max_rejected_share"}
    handled |= {"retry", "aws", "max_clock_skew_seconds", "quality_min_rows"}
    handled |= {"spark_master"}  # not shipped: a Glue job's Spark session is Glue's own
    handled |= {"transform_engine"}  # not shipped: Glue jobs always transform on Spark
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
    from importlib import metadata

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
    import rentalctl

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


# --- the jobs ------------------------------------------------------------------------------


def job_definitions(settings: Settings, uris: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Glue job definition of each job (CreateJob parameters without Tags), keyed by job."""
    from rentalctl.jobs import JOB_TYPES, USES_CONNECTIONS
    from rentalctl.orchestration.statemachine import job_names

    s = settings.aws
    names = job_names(settings)
    wheels = {kind: ",".join(uris[p] for p in paths) for kind, paths in libraries(settings).items()}
    out = {}
    for job, kind in JOB_TYPES.items():
        args = {
            "--job-language": "python",
            "--rentalctl_job": job,
            "--rentalctl_config": uris[CONFIG],
        }
        definition: dict[str, Any] = {
            "Name": names[job],
            "Description": f"rentalctl {job} job, managed by `rentalctl upload-scripts`",
            "Role": s.glue_role_arn,
        }
        if kind == "pythonshell":
            command = {"Name": kind, "ScriptLocation": uris[ENTRYPOINT], "PythonVersion": "3.9"}
            definition.update(Command=command, GlueVersion=PYTHON_SHELL_GLUE_VERSION)
            definition.update(MaxCapacity=s.python_shell_dpu)
            args["--extra-py-files"] = wheels[kind]  # Python shell installs each .whl in order
        else:
            command = {"Name": kind, "ScriptLocation": uris[ENTRYPOINT], "PythonVersion": "3"}
            definition.update(Command=command, GlueVersion=s.glue_version)
            definition.update(WorkerType=s.spark_worker_type, NumberOfWorkers=s.spark_workers)
            # Spark jobs pip-install the wheels, from these files only; continuous logs and
            # metrics are Spark features (the glue-job policy's GlueJobMetrics statement lets
            # Glue publish the metrics).
            args["--additional-python-modules"] = wheels[kind]
            args["--python-modules-installer-option"] = "--no-index"
            args["--enable-continuous-cloudwatch-log"] = "true"
            args["--enable-metrics"] = "true"
            # Spark's executors write the transform's Parquet to S3 themselves (not through the
            # lake adapter, which asks for SSE-S3 on every put): Glue's --encryption-type asks
            # the same of every object the job writes.
            args["--encryption-type"] = "sse-s3"
        for key in ("source_secret_arn", "redshift_secret_arn"):  # ARNs only, never a secret
            if getattr(s, key):
                args[f"--{key}"] = getattr(s, key)
        definition.update(Timeout=s.glue_timeout_minutes, MaxRetries=s.glue_max_retries)
        concurrency = len(settings.tables) if job in PER_TABLE_JOBS else 1
        definition["ExecutionProperty"] = {"MaxConcurrentRuns": max(concurrency, 1)}
        if s.glue_connections and USES_CONNECTIONS[job]:
            definition["Connections"] = {"Connections": list(s.glue_connections)}
        definition["DefaultArguments"] = args
        out[job] = definition
    return out


def differences(desired: dict[str, Any], deployed: dict[str, Any]) -> list[str]:
    """Fields of ``desired`` the deployed job (a GetJob ``Job``) does not match."""
    out = []
    for key in _COMPARED:
        if key == "MaxCapacity" and "WorkerType" in desired:
            continue  # derived by Glue from the workers of a Spark job
        if _normal(key, desired.get(key)) != _normal(key, deployed.get(key)):
            out.append(key)
    return out


def _normal(key: str, value: Any) -> Any:
    if key == "Connections":
        return sorted((value or {}).get("Connections") or [])
    if key == "Command":
        value = value or {}
        return {k: value.get(k) for k in ("Name", "ScriptLocation", "PythonVersion")}
    if key == "ExecutionProperty":
        return int((value or {}).get("MaxConcurrentRuns") or 1)
    if key == "DefaultArguments":
        return dict(value or {})
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value or None


# --- plan and execute ----------------------------------------------------------------------


def plan(settings: Settings, clients: Clients) -> Plan:
    lake, root = require(settings), scripts_root(settings)
    files = artifacts(settings)
    keys = {f.path: f"{root}/{f.path}" if root else f.path for f in files}
    uris = {path: f"s3://{lake.bucket}/{key}" for path, key in keys.items()}
    present = _listing(clients, lake.bucket, root)
    file_plans = []
    for artifact in files:
        key = keys[artifact.path]
        reason = "new"
        if key in present:
            with _aws_errors(f"reading s3://{lake.bucket}/{key}"):
                head = clients.s3.head_object(Bucket=lake.bucket, Key=key)
            if head.get("Metadata", {}).get("sha256") != artifact.sha256:
                reason = "content changed"
            elif head.get("ServerSideEncryption") != SSE:
                reason = "not encrypted"
            else:
                reason = "up to date"
        action = "unchanged" if reason == "up to date" else "upload"
        file_plans.append(FilePlan(artifact, uris[artifact.path], key, action, reason))

    from rentalctl.jobs import JOB_TYPES

    job_plans = []
    arn_prefix = ""
    for job, definition in job_definitions(settings, uris).items():
        name, tags = definition["Name"], {**TAGS, "rentalctl:job": job}
        deployed = _get_job(clients, name)
        if deployed is None:
            job_plans.append(JobPlan(job, name, JOB_TYPES[job], "create", (), definition, tags))
            continue
        arn_prefix = arn_prefix or _job_arn_prefix(clients)
        changed = differences(definition, deployed)
        with _aws_errors(f"reading the tags of Glue job {name}"):
            current = clients.glue.get_tags(ResourceArn=arn_prefix + name).get("Tags") or {}
        if any(current.get(k) != v for k, v in tags.items()):
            changed.append("Tags")  # only our tags are compared: others' tags stay
        action = "update" if changed else "unchanged"
        job_plans.append(
            JobPlan(
                job,
                name,
                JOB_TYPES[job],
                action,
                tuple(changed),
                definition,
                tags,
                arn_prefix + name,
            )
        )
    return Plan(lake.bucket, root, tuple(file_plans), tuple(job_plans))


def execute(the_plan: Plan, clients: Clients) -> Outcome:
    """Files first (the jobs point at them), then the jobs."""
    uploaded, created, updated = [], [], []
    for f in the_plan.files:
        if f.action != "upload":
            continue
        with _aws_errors(f"uploading {f.uri}"):
            clients.s3.put_object(
                Bucket=the_plan.bucket,
                Key=f.key,
                Body=f.artifact.content,
                ContentType=f.artifact.content_type,
                Metadata={"sha256": f.artifact.sha256},
                ServerSideEncryption=SSE,
            )
        uploaded.append(f.artifact.path)
    for j in the_plan.jobs:
        with _aws_errors(f"{j.action} of Glue job {j.name}"):
            if j.action == "create":
                clients.glue.create_job(**j.definition, Tags=j.tags)
                created.append(j.name)
            elif j.action == "update":
                if set(j.changes) - {"Tags"}:
                    update = {k: v for k, v in j.definition.items() if k != "Name"}
                    clients.glue.update_job(JobName=j.name, JobUpdate=update)
                if "Tags" in j.changes:
                    clients.glue.tag_resource(ResourceArn=j.arn, TagsToAdd=j.tags)
                updated.append(j.name)
    return Outcome(tuple(uploaded), tuple(created), tuple(updated))


def report(the_plan: Plan, outcome: Outcome | None) -> dict[str, Any]:
    """The plan, and what was done (None on a dry run), as one JSON-able document."""
    return {
        "dry_run": outcome is None,
        "location": the_plan.location,
        "changed": the_plan.changed,
        "files": [
            {
                "path": f.artifact.path,
                "uri": f.uri,
                "size": len(f.artifact.content),
                "sha256": f.artifact.sha256,
                "action": f.action,
                "reason": f.reason,
            }
            for f in the_plan.files
        ],
        "jobs": [
            {
                "job": j.job,
                "name": j.name,
                "type": j.kind,
                "action": j.action,
                "changes": list(j.changes),
            }
            for j in the_plan.jobs
        ],
        "done": None if outcome is None else asdict(outcome),
    }


def _listing(clients: Clients, bucket: str, root: str) -> set[str]:
    keys: set[str] = set()
    paginator = clients.s3.get_paginator("list_objects_v2")
    with _aws_errors(f"listing s3://{bucket}/{root}"):
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{root}/" if root else ""):
            keys.update(o["Key"] for o in page.get("Contents", []))
    return keys


def _get_job(clients: Clients, name: str) -> dict[str, Any] | None:
    with _aws_errors(f"reading Glue job {name}"):
        found = aws.or_none(lambda: clients.glue.get_job(JobName=name), "EntityNotFoundException")
    return None if found is None else dict(found["Job"])


def _job_arn_prefix(clients: Clients) -> str:
    """``arn:<partition>:glue:<region>:<account>:job/`` (GetTags wants the job's ARN)."""
    return aws.arn(clients.session, "glue", "job/")


@contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    """Errors a user can fix become typed errors; anything else propagates unchanged."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    try:
        yield
    except ClientError as exc:
        code = aws.error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            raise ResourceUnavailable(
                f"{what}: the bucket does not exist (check lake.url)"
            ) from None
        if code in _DENIED:
            raise ResourceUnavailable(f"{what}: access denied ({code}): {message}") from None
        if code in _INVALID:
            raise ConfigError(f"{what}: AWS refused the definition ({code}): {message}") from None
        raise
    except EndpointConnectionError as exc:
        raise ResourceUnavailable(f"{what}: cannot reach AWS ({exc})") from None
