"""The Glue entrypoint of every rentalctl job (Python shell and Spark alike).

One script for all five jobs, not one per job: the job to run is a job argument
(``--rentalctl_job``, set per job definition by ``rentalctl upload-scripts``; else ``--JOB_NAME``
minus ``<aws.glue_job_prefix>-``), so there is one file to ship, hash, test and keep 3.9-clean,
and five copies cannot drift apart. All the logic lives in ``rentalctl.jobs.run_job``, the same
function the local executor calls in-process.

Rules this file follows (ARCHITECTURE.md):
- Nothing runs at import time: no argument parsing, no client, no ``awsglue`` and no
  ``rentalctl`` import before ``main`` is called, so the file is safe to import anywhere.
- Options are parsed with argparse ``parse_known_args``, not awsglue's ``getResolvedOptions``:
  Glue adds arguments of its own (``--JOB_ID``, ``--scriptLocation``, ...), which are ignored.
- ``awsglue`` is imported only inside ``_spark_session``, only for the Spark job; without it (on a
  laptop) the local SparkSession is used, so ``main`` runs the same way outside Glue.
- Glue Python shell runs Python 3.9: this file must parse with
  ``ast.parse(src, feature_version=(3, 9))`` and uses no 3.10+ runtime feature.
- Success returns normally (no ``sys.exit(0)``, which some Glue versions report as a failure);
  an expected rentalctl error prints one line on stderr and exits 1, so the Glue run FAILS and
  the state machine's ``glue:startJobRun.sync`` task sees it. Anything else is a bug and keeps
  its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

# Job arguments passed on to rentalctl.jobs.run_job (as "--name": value), from the state machine.
JOB_ARGUMENTS = (
    "run_id",
    "execution_id",
    "table",
    "tables",
    "extract_mode",
    "since",
    "until",
    "error",
)
SOURCE_PASSWORD_ENV = "RENTALCTL_SOURCE_PASSWORD"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rentalctl-glue-job", add_help=False, allow_abbrev=False)
    parser.add_argument("--JOB_NAME", dest="JOB_NAME")
    parser.add_argument("--rentalctl_job", dest="rentalctl_job")
    parser.add_argument("--rentalctl_config", dest="rentalctl_config")
    parser.add_argument("--source_secret_arn", dest="source_secret_arn")
    for name in JOB_ARGUMENTS:
        parser.add_argument(f"--{name}", dest=name)
    known, _glue_own = parser.parse_known_args(argv)
    return known


def job_arguments(options: argparse.Namespace) -> dict[str, str]:
    """The arguments run_job reads, keyed as Glue passes them (``--run_id``, ...)."""
    return {
        f"--{name}": getattr(options, name)
        for name in JOB_ARGUMENTS
        if getattr(options, name) is not None
    }


def job_name(options: argparse.Namespace, prefix: str) -> str | None:
    """An explicit ``--rentalctl_job`` wins; else the Glue job name minus ``<prefix>-``."""
    if options.rentalctl_job:
        return str(options.rentalctl_job)
    name = options.JOB_NAME or ""
    if name.startswith(f"{prefix}-") and len(name) > len(prefix) + 1:
        return name[len(prefix) + 1 :]
    return None


def download_config(uri: str, directory: str) -> str:
    """Fetch the config YAML (``s3://bucket/key``, or a local path) and return a local path."""
    from rentalctl import aws
    from rentalctl.errors import ConfigError, ResourceUnavailable

    if not uri.startswith("s3://"):
        return uri
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ConfigError(f"--rentalctl_config must be s3://BUCKET/KEY, got {uri!r}")
    client = aws.client("s3", aws.session())
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        code = aws.error_code(exc)
        if code:
            raise ResourceUnavailable(
                f"cannot read the rentalctl config {uri} ({code}): run "
                "`rentalctl upload-scripts` and check the job role's s3:GetObject"
            ) from None
        raise
    path = os.path.join(directory, "rentalctl.yaml")
    with open(path, "wb") as out:
        out.write(body)
    return path


def provide_source_password(settings: Any, secret_arn: str | None) -> None:
    """The MySQL source reads its password from RENTALCTL_SOURCE_PASSWORD; on Glue it comes from
    the Secrets Manager secret named by ARN (never from a job argument). Called at run time by
    the extract job only."""
    from rentalctl import aws, urls
    from rentalctl.errors import ConfigError, ResourceUnavailable

    secret_arn = secret_arn or settings.aws.source_secret_arn
    if not isinstance(settings.source, urls.MysqlURL) or not secret_arn:
        return
    if os.environ.get(SOURCE_PASSWORD_ENV):
        return
    client = aws.client("secretsmanager", aws.session(settings.aws.region))
    try:
        text = client.get_secret_value(SecretId=secret_arn)["SecretString"]
    except Exception as exc:
        code = aws.error_code(exc)
        if code:
            raise ResourceUnavailable(
                f"cannot read the source secret {secret_arn} ({code}): check the ARN and the "
                "job role's secretsmanager:GetSecretValue"
            ) from None
        raise
    try:
        password = json.loads(text)["password"]
    except (ValueError, KeyError, TypeError):
        # The secret's text is never echoed: it is the secret.
        raise ConfigError(
            f"secret {secret_arn} is not a JSON object with a 'password' key"
        ) from None
    os.environ[SOURCE_PASSWORD_ENV] = str(password)


def _spark_session(master: str) -> Any:
    """Glue's SparkSession on Glue (``master``, the ``spark.master`` setting, does not apply
    there); the local one elsewhere."""
    try:
        from awsglue.context import GlueContext
    except ImportError:
        from rentalctl.spark import local_session

        return local_session(master)
    from pyspark.context import SparkContext

    return GlueContext(SparkContext.getOrCreate()).spark_session


def main(argv: list[str] | None = None) -> int:
    """Run one rentalctl job; returns 0, or exits 1 on an expected (rentalctl) error."""
    from rentalctl.errors import ConfigError, RentalctlError

    options = parse_args(sys.argv[1:] if argv is None else list(argv))
    job = options.rentalctl_job or options.JOB_NAME or "?"
    try:
        if not options.rentalctl_config:
            raise ConfigError("job argument --rentalctl_config (the config's S3 URI) is missing")
        with tempfile.TemporaryDirectory(prefix="rentalctl-") as scratch:
            result = _run(options, scratch)
    except RentalctlError as exc:
        message = str(exc).replace("\n", " ")
        sys.stderr.write(f"rentalctl job {job} failed: {exc.kind}: {message}\n")
        sys.stderr.flush()
        sys.exit(1)
    sys.stdout.write(json.dumps(result, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
    return 0


def _run(options: argparse.Namespace, scratch: str) -> dict[str, Any]:
    from rentalctl import config
    from rentalctl.context import Context
    from rentalctl.errors import ConfigError
    from rentalctl.jobs import JOB_TYPES, run_job

    settings = config.load(config=download_config(options.rentalctl_config, scratch))
    job = job_name(options, settings.aws.glue_job_prefix)
    if job not in JOB_TYPES:
        raise ConfigError(
            f"cannot tell which job to run: --rentalctl_job {options.rentalctl_job!r}, "
            f"--JOB_NAME {options.JOB_NAME!r}; expected one of {', '.join(JOB_TYPES)}"
        )
    if job == "extract-load":
        provide_source_password(settings, options.source_secret_arn)
    spark = _spark_session(settings.spark_master) if JOB_TYPES[job] == "glueetl" else None
    return {"job": job, "result": run_job(Context(settings), job, job_arguments(options), spark)}


if __name__ == "__main__":
    main()
