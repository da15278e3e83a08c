"""The doctor's checks of the AWS profile: credentials, the lake's bucket, the state table, the
state machine and the Glue jobs. Each only reads (Describe/Get/Head calls).

botocore is imported where used: the doctor of a local profile imports this module too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rentalctl import aws, urls
from rentalctl.errors import ResourceUnavailable
from rentalctl.orchestration.statemachine import job_names


def probes(context: Any) -> Iterator[tuple[str, Callable[[], str]]]:
    yield "aws credentials", lambda: _identity(context)
    yield "state machine", lambda: _state_machine(context)
    yield "glue jobs", lambda: _jobs(context)


def _client(context: Any, service: str) -> Any:
    return aws.client(service, context._session())


def _missing(exc: BaseException, codes: set[str]) -> bool:
    return aws.error_code(exc) in codes


def _identity(context: Any) -> str:
    with aws.errors("reading the caller identity"):
        who = _client(context, "sts").get_caller_identity()
    return f"{who['Arn']} (account {who['Account']}, region {context._session().region_name})"


def bucket(context: Any, lake: urls.S3URL) -> str:
    from botocore.exceptions import ClientError

    try:
        with aws.errors(f"reaching bucket {lake.bucket}"):
            _client(context, "s3").head_bucket(Bucket=lake.bucket)
    except ClientError as exc:
        if _missing(exc, {"404", "NoSuchBucket", "NotFound"}):
            raise ResourceUnavailable(
                f"bucket {lake.bucket} does not exist: create it, or point lake.url at yours"
            ) from None
        raise ResourceUnavailable(
            f"bucket {lake.bucket}: {aws.error_code(exc)}: grant s3:ListBucket on it "
            "(`rentalctl iam-policy` prints the policy)"
        ) from None
    return str(lake)


def table(context: Any, state: urls.DynamodbURL) -> str:
    from botocore.exceptions import ClientError

    try:
        with aws.errors(f"reaching DynamoDB table {state.table}"):
            found = _client(context, "dynamodb").describe_table(TableName=state.table)
    except ClientError as exc:
        if _missing(exc, {"ResourceNotFoundException"}):
            return f"{state} (created by the first run)"
        raise
    return f"{state} ({found['Table']['TableStatus']})"


def _state_machine(context: Any) -> str:
    from botocore.exceptions import ClientError

    name = context.settings.aws.state_machine_name
    with aws.errors("reading the caller identity"):
        account = _client(context, "sts").get_caller_identity()["Account"]
    region = context._session().region_name
    arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
    try:
        with aws.errors(f"reading state machine {name}"):
            _client(context, "stepfunctions").describe_state_machine(stateMachineArn=arn)
    except ClientError as exc:
        if _missing(exc, {"StateMachineDoesNotExist"}):
            raise ResourceUnavailable(
                f"state machine {name} does not exist: run `rentalctl deploy-sfn`"
            ) from None
        raise
    return arn


def _jobs(context: Any) -> str:
    from botocore.exceptions import ClientError

    names = list(job_names(context.settings).values())
    glue = _client(context, "glue")
    missing = []
    for name in names:
        try:
            with aws.errors(f"reading Glue job {name}"):
                glue.get_job(JobName=name)
        except ClientError as exc:
            if not _missing(exc, {"EntityNotFoundException"}):
                raise
            missing.append(name)
    if missing:
        raise ResourceUnavailable(
            f"Glue job {', '.join(missing)} missing: run `rentalctl upload-scripts` and "
            "`rentalctl deploy-sfn`"
        )
    return ", ".join(names)
