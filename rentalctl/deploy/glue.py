"""``upload-scripts``: ship what the Glue jobs run, and define the jobs.

Plan, then execute (chalice's deployer): ``plan`` builds the files, reads what is in S3 and in
Glue, and decides per file (upload / unchanged) and per job (create / update / unchanged); it
changes nothing. ``execute`` carries the plan out: files first, then the jobs that point at them.
``--dry-run`` is ``plan`` alone. A second run with nothing changed uploads and updates nothing.

What is shipped is ``rentalctl.deploy.glue_files``; the jobs are ``rentalctl.deploy.glue_jobs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from rentalctl import aws, urls
from rentalctl.config import Settings
from rentalctl.deploy.clients import Clients
from rentalctl.deploy.glue_files import Artifact, artifacts
from rentalctl.deploy.glue_jobs import differences, job_definitions
from rentalctl.errors import ConfigError, InvalidSetting, ResourceUnavailable
from rentalctl.jobs import JOB_TYPES

TAGS = {"managed-by": "rentalctl"}
SSE = "AES256"
_DENIED = {"AccessDenied", "AccessDeniedException", "ExpiredToken", "InvalidClientTokenId"}
_INVALID = {"InvalidInputException", "ValidationException", "InvalidParameterValueException"}


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
    # Imported here: importing this module (the plan) stays cheap.
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
