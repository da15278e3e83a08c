"""Least-privilege IAM policies for the pipeline's roles, rendered from the configuration.

The templates live in ``config/iam/<role>-role.json`` (shipped data, like the state machine); the
settings fill in the names: the lake's bucket and prefix, the state table, the Glue jobs, the SNS
topic, the secrets, the warehouse, the region and the account. Nothing is granted on ``"*"``
except actions AWS documents as supporting no resource-level permission: those are the
statements named in ``RESOURCE_STAR_SIDS``, and the tests hold every other statement to a named
resource. docs/aws.md gives the reason for each statement, with its AWS documentation.

A statement whose resources are all optional and none is configured (no secrets, no Glue
connections, no SNS topic, no Step Functions log group, no IAM login to Redshift) is left out
rather than granted broadly.

Placeholders a template may use: ``${partition}``, ``${region}``, ``${account}``, ``${bucket}``,
``${prefix}``, ``${bucket_arn}``, ``${lake_objects_arn}``, ``${state_table}``,
``${state_machine_name}``, and the lists (a placeholder alone in a string becomes a JSON list)
``${lake_list_prefixes}``, ``${glue_job_arns}``, ``${glue_connection_arns}``,
``${sns_topic_arns}``, ``${secret_arns}``, ``${redshift_workgroup_arns}``,
``${redshift_cluster_login_arns}``.
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
from rentalctl.orchestration.statemachine import job_names

#: The roles a policy can be rendered for, and what each is for (shown in help and errors).
ROLES: dict[str, str] = {
    "glue-job": "the Glue jobs' role (aws.glue_role_arn)",
    "state-machine": "the Step Functions state machine's role (aws.state_machine_role_arn)",
    "redshift-copy": "the role Redshift COPY assumes to read the lake (aws.redshift_copy_role_arn)",
}

#: Statements allowed to name ``"Resource": "*"``, as their actions accept no resource ARN: the
#: CloudWatch Logs delivery actions Step Functions needs for its logging (Step Functions
#: developer guide, "IAM policies for logging to CloudWatch Logs"), the EC2 Describe* actions Glue
#: calls to set up a job's network interface in a VPC, and cloudwatch:PutMetricData (held to the
#: "Glue" namespace by a condition) (Service Authorization Reference, Amazon EC2 and CloudWatch).
RESOURCE_STAR_SIDS = frozenset({"StepFunctionsLogDelivery", "GlueVpcDescribe", "GlueJobMetrics"})


def _in_vpc(settings: Settings) -> bool:
    return bool(settings.aws.glue_connections)


#: Statements kept only when the setting they serve is configured. Glue creates network
#: interfaces only for a job with a connection (a job in a VPC).
_ONLY_WHEN: dict[str, Callable[[Settings], bool]] = {
    "StepFunctionsLogDelivery": lambda s: bool(s.aws.state_machine_log_group_arn),
    "GlueVpcNetworkInterfaces": _in_vpc,
    "GlueVpcNetworkInterfaceTags": _in_vpc,
    "GlueVpcDescribe": _in_vpc,
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
        **_redshift_login(settings, f"{base}:redshift", region, account),
    }


def _redshift_login(settings: Settings, service: str, region: str, account: str) -> dict[str, Any]:
    """What the jobs' IAM login to Redshift (no aws.redshift_secret_arn) is granted on, as the
    warehouse adapter calls it: GetCredentials for a Serverless workgroup, GetClusterCredentials
    for the database user and database of a provisioned cluster."""
    url = settings.warehouse
    workgroups: list[str] = []
    cluster: list[str] = []
    if isinstance(url, urls.RedshiftURL) and not settings.aws.redshift_secret_arn:
        if url.serverless:
            # A workgroup's ARN ends in its ID, which the endpoint does not name: the account's
            # workgroups in the region.
            workgroups = [f"{service}-serverless:{region}:{account}:workgroup/*"]
        else:
            where = f"{service}:{region}:{account}"
            cluster = [
                f"{where}:dbuser:{url.identifier}/{url.user}",
                f"{where}:dbname:{url.identifier}/{url.database}",
            ]
    return {"redshift_workgroup_arns": workgroups, "redshift_cluster_login_arns": cluster}


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
