"""The Glue job definitions ``upload-scripts`` creates or updates: one per
``rentalctl.jobs.JOB_TYPES`` entry, named by ``statemachine.job_names``, and how a definition is
compared with the deployed job."""

from __future__ import annotations

from typing import Any

from rentalctl.config import Settings
from rentalctl.deploy.glue_files import CONFIG, ENTRYPOINT, libraries
from rentalctl.jobs import JOB_TYPES, USES_CONNECTIONS
from rentalctl.orchestration.statemachine import job_names

PYTHON_SHELL_GLUE_VERSION = "3.0"  # the Glue version of Python shell 3.9
PER_TABLE_JOBS = frozenset({"extract-load"})  # run once per table, side by side (Map)
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


def job_definitions(settings: Settings, uris: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Glue job definition of each job (CreateJob parameters without Tags), keyed by job."""
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
