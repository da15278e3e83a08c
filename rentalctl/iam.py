"""Least-privilege IAM policies for the pipeline's roles, rendered from the configuration.

The templates live in ``config/iam/<role>-role.json`` (shipped data, like the state machine); the
settings fill in the names: the lake's bucket and prefix, the state table, the Glue jobs, the SNS
topic, the secrets, the region and the account. Nothing is granted on ``"*"`` except the Step
Functions log-delivery actions, which AWS documents as supporting no resource-level permission
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html): those are the statements
named in ``RESOURCE_STAR_SIDS``, and the tests hold every other statement to a named resource.

A statement whose resources are all optional and none is configured (no secrets, no Glue
connections, no SNS topic, no Step Functions log group) is left out rather than granted broadly.

Placeholders a template may use: ``${partition}``, ``${region}``, ``${account}``, ``${bucket}``,
``${prefix}``, ``${bucket_arn}``, ``${lake_objects_arn}``, ``${state_table}``,
``${state_machine_name}``, and the lists (a placeholder alone in a string becomes a JSON list)
``${lake_list_prefixes}``, ``${glue_job_arns}``, ``${glue_connection_arns}``,
``${sns_topic_arns}``, ``${secret_arns}``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

from rentalctl import resources, urls
from rentalctl.config import Settings
from rentalctl.errors import ConfigError

#: The roles a policy can be rendered for, and what each is for (shown in help and errors).
ROLES: dict[str, str] = {
    "glue-job": "the Glue jobs' role (aws.glue_role_arn)",
    "state-machine": "the Step Functions state machine's role (aws.state_machine_role_arn)",
    "redshift-copy": "the role Redshift COPY assumes to read the lake (aws.redshift_copy_role_arn)",
}

#: Statements allowed to name ``"Resource": "*"``: the CloudWatch Logs delivery actions Step
#: Functions needs for its logging, which accept no resource ARN (AWS Step Functions developer
#: guide, "IAM policies for logging to CloudWatch Logs").
RESOURCE_STAR_SIDS = frozenset({"StepFunctionsLogDelivery"})

#: Statements kept only when the setting they serve is configured.
_ONLY_WHEN: dict[str, Callable[[Settings], bool]] = {
    "StepFunctionsLogDelivery": lambda s: bool(s.aws.state_machine_log_group_arn),
}

_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):[^:]*:(?P<region>[^:]*):(?P<account>\d{12}):")


def policy_template(role: str) -> dict[str, Any]:
    """The shipped template of ``role``'s policy, placeholders unfilled."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    path = resources.shipped(f"config/iam/{role}-role.json")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def render_policy(settings: Settings, role: str) -> dict[str, Any]:
    """``role``'s policy document with the configured names filled in."""
    template = policy_template(role)
    values = _values(settings)
    statements = []
    for statement in template["Statement"]:
        keep = _ONLY_WHEN.get(statement.get("Sid", ""))
        if keep is not None and not keep(settings):
            continue
        filled = resources.fill(statement, values)
        if filled.get("Resource") == []:
            continue  # nothing of this kind is configured: grant nothing rather than "*"
        on_prefix = "s3:prefix" in filled.get("Condition", {}).get("StringLike", {})
        if on_prefix and not values["prefix"]:
            del filled["Condition"]  # the lake is the whole bucket: no prefix to hold it to
        statements.append(filled)
    return {"Version": template["Version"], "Statement": statements}


def _values(settings: Settings) -> dict[str, Any]:
    from rentalctl.orchestration.statemachine import job_names

    lake, state, aws = settings.lake, settings.state, settings.aws
    if not isinstance(lake, urls.S3URL):
        raise ConfigError(
            f"IAM policies are for the AWS target: lake.url must be s3://BUCKET[/PREFIX], "
            f"not {lake}"
        )
    if not isinstance(state, urls.DynamodbURL):
        raise ConfigError(
            f"IAM policies are for the AWS target: state.url must be dynamodb://TABLE, not {state}"
        )
    partition, account = _account(settings)
    region = _region(settings)
    base = f"arn:{partition}"
    lake_arn = f"{base}:s3:::{lake.bucket}" + (f"/{lake.prefix}" if lake.prefix else "")
    glue = f"{base}:glue:{region}:{account}"
    connections = [f"{glue}:connection/{name}" for name in aws.glue_connections]
    return {
        "partition": partition,
        "region": region,
        "account": account,
        "bucket": lake.bucket,
        "prefix": lake.prefix,
        "bucket_arn": f"{base}:s3:::{lake.bucket}",
        "lake_objects_arn": f"{lake_arn}/*",
        "lake_list_prefixes": [lake.prefix, f"{lake.prefix}/*"],
        "state_table": state.table,
        "state_machine_name": aws.state_machine_name,
        "glue_job_arns": [f"{glue}:job/{name}" for name in job_names(settings).values()],
        # GetConnection is authorised on the Data Catalog as well as on the connection.
        "glue_connection_arns": [f"{glue}:catalog", *connections] if connections else [],
        "sns_topic_arns": [aws.sns_topic_arn] if aws.sns_topic_arn else [],
        "secret_arns": [a for a in (aws.source_secret_arn, aws.redshift_secret_arn) if a],
    }


def _account(settings: Settings) -> tuple[str, str]:
    """(partition, account id) from the first configured ARN that names an account: the roles
    first, as they live in the account the pipeline runs in."""
    aws = settings.aws
    for arn in (
        aws.glue_role_arn,
        aws.state_machine_role_arn,
        aws.redshift_copy_role_arn,
        aws.scheduler_role_arn,
        aws.state_machine_log_group_arn,
        aws.sns_topic_arn,
        aws.source_secret_arn,
        aws.redshift_secret_arn,
    ):
        m = _ARN.match(arn or "")
        if m:
            return m.group("partition"), m.group("account")
    raise ConfigError(
        "cannot tell the AWS account id for the policies: set aws.glue_role_arn "
        "(arn:aws:iam::ACCOUNT_ID:role/NAME)"
    )


def _region(settings: Settings) -> str:
    region = (
        settings.aws.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or None
    )
    if not region:
        raise ConfigError("no AWS region for the policies: set aws.region (or AWS_REGION)")
    return region
