"""``rentalctl iam-policy ROLE``: least-privilege policies rendered with the configured names.

Every policy is checked for what it must grant (the configured bucket, table, jobs, topic,
secrets) and for what it must not: no wildcard action, no ``"Resource": "*"`` outside the one
statement AWS documents as needing it (Step Functions' log delivery), nothing outside the
lake's prefix. moto's IAM then accepts each document as a managed policy.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from typer.testing import CliRunner

from rentalctl.cli import _Group, main_options
from rentalctl.cli.aws_commands import iam_policy
from tests.support.moto_aws import ACCOUNT, REGION

ROLES = ("glue-job", "state-machine", "redshift-copy")
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:rentalctl-alerts"
SOURCE_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rentalctl/aurora-AbCdEf"
REDSHIFT_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rentalctl/redshift-AbCdEf"
JOBS = [
    "begin",
    "extract-load",
    "transform",
    "publish",
    "record-failure",
]
# The only statements allowed to name "Resource": "*", and exactly the actions AWS documents as
# having no resource-level permissions (Service Authorization Reference): CloudWatch Logs'
# log-delivery API (Step Functions developer guide, "IAM policies for logging to CloudWatch
# Logs"), EC2's Describe* calls and CloudWatch's PutMetricData.
VPC_DESCRIBE = {
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcEndpoints",
}
RESOURCE_STAR_ALLOWED = {
    ("glue-job", "GlueVpcDescribe"): VPC_DESCRIBE,
    ("glue-job", "GlueJobMetrics"): {"cloudwatch:PutMetricData"},
    ("state-machine", "StepFunctionsLogDelivery"): {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    },
}

CONFIG = f"""\
target: aws
source: {{url: "mysql://etl@db.example.com:3306/marketplace"}}
lake: {{url: "s3://test-lake/rentalctl"}}
warehouse: {{url: "redshift://etl@wg.{ACCOUNT}.{REGION}.redshift-serverless.amazonaws.com:5439/dw"}}
state: {{url: "dynamodb://rentalctl-state"}}
aws:
  region: {REGION}
  glue_role_arn: arn:aws:iam::{ACCOUNT}:role/rentalctl-glue
  glue_connections: [rentalctl-aurora-vpc]
  state_machine_role_arn: arn:aws:iam::{ACCOUNT}:role/rentalctl-sfn
  state_machine_log_group_arn: "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/rentalctl/sfn:*"
  sns_topic_arn: {TOPIC}
  source_secret_arn: {SOURCE_SECRET}
  redshift_secret_arn: {REDSHIFT_SECRET}
  redshift_copy_role_arn: arn:aws:iam::{ACCOUNT}:role/rentalctl-redshift-copy
"""


@pytest.fixture
def app() -> typer.Typer:
    test_app = typer.Typer(cls=_Group, pretty_exceptions_enable=False, add_completion=False)
    test_app.callback()(main_options)
    test_app.command("iam-policy")(iam_policy)
    return test_app


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "aws.yaml"
    path.write_text(CONFIG)
    return path


def invoke(app: typer.Typer, config_file: Path, *args: str, output: str = "json") -> Any:
    return CliRunner().invoke(app, ["--config", str(config_file), "--output", output, *args])


def policy(app: typer.Typer, config_file: Path, role: str, *sets: str) -> dict[str, Any]:
    result = invoke(app, config_file, *(f"--set={s}" for s in sets), "iam-policy", role)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return dict(json.loads(result.stdout))


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def by_sid(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in doc["Statement"]}


def actions(doc: dict[str, Any]) -> set[str]:
    return {a for s in doc["Statement"] for a in as_list(s["Action"])}


def resources(doc: dict[str, Any]) -> set[str]:
    return {r for s in doc["Statement"] for r in as_list(s["Resource"])}


# ------------------------------------------------------------------------- every role, same rules


@pytest.mark.parametrize("role", ROLES)
def test_policy_is_least_privilege(app: typer.Typer, config_file: Path, role: str) -> None:
    doc = policy(app, config_file, role)

    assert set(doc) == {"Version", "Statement"}
    assert doc["Version"] == "2012-10-17"
    assert doc["Statement"]
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            assert service and name, action
            assert "*" not in action, f"wildcard action {action} in {statement['Sid']}"
        statement_resources = as_list(statement["Resource"])
        assert statement_resources, statement["Sid"]
        if "*" in statement_resources:
            allowed = RESOURCE_STAR_ALLOWED.get((role, statement["Sid"]))
            assert allowed is not None, f'"Resource": "*" in {role}/{statement["Sid"]}'
            assert statement_resources == ["*"]
            assert set(as_list(statement["Action"])) == allowed
        for resource in statement_resources:
            if resource.startswith("arn:aws:s3:::"):
                assert resource in ("arn:aws:s3:::test-lake", "arn:aws:s3:::test-lake/rentalctl/*")
            elif resource != "*":
                assert resource.startswith("arn:aws:"), resource
                assert "${" not in resource, resource  # every placeholder filled


@pytest.mark.parametrize("role", ROLES)
def test_policy_is_the_same_json_document_in_both_output_modes(
    app: typer.Typer, config_file: Path, role: str
) -> None:
    text = invoke(app, config_file, "iam-policy", role, output="text")
    assert text.exit_code == 0, text.stderr
    assert json.loads(text.stdout) == policy(app, config_file, role)


@pytest.mark.parametrize("role", ROLES)
def test_moto_iam_accepts_the_policy(
    app: typer.Typer, config_file: Path, role: str, on_moto: str
) -> None:
    doc = policy(app, config_file, role)
    iam = boto3.client("iam")
    created = iam.create_policy(PolicyName=f"rentalctl-{role}", PolicyDocument=json.dumps(doc))
    version = iam.get_policy_version(
        PolicyArn=created["Policy"]["Arn"], VersionId=created["Policy"]["DefaultVersionId"]
    )
    stored = version["PolicyVersion"]["Document"]
    assert (json.loads(stored) if isinstance(stored, str) else stored) == doc


# ---------------------------------------------------------------------------- what each grants


def test_glue_job_role(app: typer.Typer, config_file: Path) -> None:
    doc = policy(app, config_file, "glue-job")
    s = by_sid(doc)

    assert set(as_list(s["LakeObjects"]["Action"])) >= {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    }
    assert s["LakeObjects"]["Resource"] == "arn:aws:s3:::test-lake/rentalctl/*"
    assert s["LakeListing"]["Action"] == "s3:ListBucket"
    assert s["LakeListing"]["Resource"] == "arn:aws:s3:::test-lake"
    assert s["LakeListing"]["Condition"] == {
        "StringLike": {"s3:prefix": ["rentalctl", "rentalctl/*"]}
    }
    assert set(as_list(s["StateTable"]["Action"])) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
        "dynamodb:DescribeTable",
    }
    assert s["StateTable"]["Resource"] == (
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/rentalctl-state"
    )
    assert s["DatabaseSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert set(as_list(s["DatabaseSecrets"]["Resource"])) == {SOURCE_SECRET, REDSHIFT_SECRET}
    assert all(
        r.startswith(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/")
        for r in as_list(s["GlueJobLogs"]["Resource"])
    )
    assert s["GlueConnections"]["Action"] == "glue:GetConnection"
    assert f"arn:aws:glue:{REGION}:{ACCOUNT}:connection/rentalctl-aurora-vpc" in as_list(
        s["GlueConnections"]["Resource"]
    )
    # A job in a VPC: Glue gives it a network interface in the connection's subnet (Glue
    # developer guide, "Setting up IAM permissions for AWS Glue": the AWSGlueServiceRole policy).
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    assert s["GlueVpcNetworkInterfaces"] == {
        "Sid": "GlueVpcNetworkInterfaces",
        "Effect": "Allow",
        "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
        "Resource": [f"{ec2}:network-interface/*", f"{ec2}:subnet/*", f"{ec2}:security-group/*"],
    }
    assert s["GlueVpcNetworkInterfaceTags"] == {
        "Sid": "GlueVpcNetworkInterfaceTags",
        "Effect": "Allow",
        "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
        "Resource": [f"{ec2}:network-interface/*", f"{ec2}:security-group/*"],
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
    }
    assert set(as_list(s["GlueVpcDescribe"]["Action"])) == VPC_DESCRIBE
    assert s["GlueJobMetrics"] == {
        "Sid": "GlueJobMetrics",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
    }
    assert s["EarlierExecutions"] == {
        "Sid": "EarlierExecutions",
        "Effect": "Allow",
        "Action": "states:DescribeExecution",
        "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:rentalctl-pipeline:*",
    }
    # Redshift's password is in a secret here: no IAM login.
    assert "RedshiftServerlessLogin" not in s and "RedshiftClusterLogin" not in s
    # A job does not start jobs or executions, publish alerts or touch IAM.
    assert not {a for a in actions(doc) if a.split(":")[0] in ("sns", "iam", "events")}
    assert {a for a in actions(doc) if a.split(":")[0] in ("states", "glue")} == {
        "states:DescribeExecution",
        "glue:GetConnection",
    }


def test_iam_login_to_redshift_is_granted_for_the_configured_warehouse_only(
    app: typer.Typer, config_file: Path
) -> None:
    """Without aws.redshift_secret_arn the jobs log in to Redshift with IAM, as the warehouse
    adapter does it: GetCredentials for a Serverless workgroup (whose ARN ends in an ID the
    endpoint does not name), GetClusterCredentials for the user and database of a cluster."""
    serverless = by_sid(policy(app, config_file, "glue-job", "aws.redshift_secret_arn="))
    assert serverless["RedshiftServerlessLogin"] == {
        "Sid": "RedshiftServerlessLogin",
        "Effect": "Allow",
        "Action": "redshift-serverless:GetCredentials",
        "Resource": [f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/*"],
    }
    assert "RedshiftClusterLogin" not in serverless

    cluster_url = f"redshift://loader@analytics.abc123xyz.{REGION}.redshift.amazonaws.com:5439/dw"
    cluster = by_sid(
        policy(
            app, config_file, "glue-job", "aws.redshift_secret_arn=", f"warehouse.url={cluster_url}"
        )
    )
    assert cluster["RedshiftClusterLogin"] == {
        "Sid": "RedshiftClusterLogin",
        "Effect": "Allow",
        "Action": "redshift:GetClusterCredentials",
        "Resource": [
            f"arn:aws:redshift:{REGION}:{ACCOUNT}:dbuser:analytics/loader",
            f"arn:aws:redshift:{REGION}:{ACCOUNT}:dbname:analytics/dw",
        ],
    }
    assert "RedshiftServerlessLogin" not in cluster


def test_state_machine_role(app: typer.Typer, config_file: Path) -> None:
    doc = policy(app, config_file, "state-machine")
    s = by_sid(doc)

    glue = s["RunPipelineGlueJobs"]
    assert set(as_list(glue["Action"])) == {
        "glue:StartJobRun",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
    }
    assert sorted(as_list(glue["Resource"])) == sorted(
        f"arn:aws:glue:{REGION}:{ACCOUNT}:job/rentalctl-{job}" for job in JOBS
    )
    assert s["NotifyFailures"] == {
        "Sid": "NotifyFailures",
        "Effect": "Allow",
        "Action": "sns:Publish",
        "Resource": [TOPIC],
    }
    # glue:startJobRun.sync polls the job run: Step Functions documents the four glue actions
    # above and no EventBridge rule for it (developer guide, "Start an AWS Glue job with Step
    # Functions", IAM policies).
    assert set(s) == {"RunPipelineGlueJobs", "NotifyFailures", "StepFunctionsLogDelivery"}
    assert not {a for a in actions(doc) if a.split(":")[0] in ("s3", "dynamodb", "iam", "events")}


def test_redshift_copy_role_reads_the_lake_only(app: typer.Typer, config_file: Path) -> None:
    doc = policy(app, config_file, "redshift-copy")

    assert actions(doc) == {"s3:GetObject", "s3:ListBucket"}
    assert resources(doc) == {"arn:aws:s3:::test-lake", "arn:aws:s3:::test-lake/rentalctl/*"}
    listing = next(s for s in doc["Statement"] if s["Action"] == "s3:ListBucket")
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["rentalctl", "rentalctl/*"]


def test_names_follow_the_configuration(app: typer.Typer, config_file: Path) -> None:
    sets = (
        "aws.glue_job_prefix=acme",
        "lake.url=s3://other-lake/deep/prefix",
        "state.url=dynamodb://acme-state",
        "aws.glue_role_arn=arn:aws:iam::210987654321:role/g",
        "aws.region=us-east-2",
    )
    glue_job = policy(app, config_file, "glue-job", *sets)
    state_machine = policy(app, config_file, "state-machine", *sets)

    assert "arn:aws:s3:::other-lake/deep/prefix/*" in resources(glue_job)
    assert "arn:aws:dynamodb:us-east-2:210987654321:table/acme-state" in resources(glue_job)
    assert by_sid(glue_job)["LakeListing"]["Condition"]["StringLike"]["s3:prefix"] == [
        "deep/prefix",
        "deep/prefix/*",
    ]
    assert "arn:aws:glue:us-east-2:210987654321:job/acme-publish" in resources(state_machine)
    assert not any("rentalctl-" in r for r in resources(state_machine) if ":job/" in r)


def test_a_lake_at_the_bucket_root_has_no_prefix_condition(
    app: typer.Typer, config_file: Path
) -> None:
    doc = policy(app, config_file, "redshift-copy", "lake.url=s3://test-lake")

    assert resources(doc) == {"arn:aws:s3:::test-lake", "arn:aws:s3:::test-lake/*"}
    assert all("Condition" not in s for s in doc["Statement"])


def test_statements_for_unconfigured_resources_are_left_out(
    app: typer.Typer, config_file: Path
) -> None:
    unset = (
        "aws.glue_connections=[]",
        "aws.source_secret_arn=",
        "aws.redshift_secret_arn=",
        "aws.sns_topic_arn=",
        "aws.state_machine_log_group_arn=",
    )
    glue_job = by_sid(policy(app, config_file, "glue-job", *unset))
    state_machine = by_sid(policy(app, config_file, "state-machine", *unset))

    assert "DatabaseSecrets" not in glue_job and "GlueConnections" not in glue_job
    assert not [sid for sid in glue_job if sid.startswith("GlueVpc")]  # no job in a VPC
    assert "NotifyFailures" not in state_machine
    assert "StepFunctionsLogDelivery" not in state_machine
    every = [*glue_job.values(), *state_machine.values()]
    # Left: the Spark job's metrics, always on (held to Glue's namespace by a condition).
    assert [s["Sid"] for s in every if "*" in as_list(s["Resource"])] == ["GlueJobMetrics"]


# ---------------------------------------------------- what the jobs call is what the role allows

# The AWS calls of the code the Glue jobs run (boto3 client methods; paginators by operation)
# and the IAM actions each needs (Service Authorization Reference; s3's upload_file is a
# multipart upload above its threshold, copy_object reads the source and writes the target).
JOB_CALLS = {
    ("s3", "get_object"): {"s3:GetObject"},
    ("s3", "head_object"): {"s3:GetObject"},  # HeadObject is authorised by s3:GetObject
    ("s3", "put_object"): {"s3:PutObject"},
    ("s3", "upload_file"): {"s3:PutObject", "s3:AbortMultipartUpload"},
    ("s3", "copy_object"): {"s3:GetObject", "s3:PutObject"},
    ("s3", "delete_object"): {"s3:DeleteObject"},
    ("s3", "delete_objects"): {"s3:DeleteObject"},
    ("s3", "list_objects_v2"): {"s3:ListBucket"},
    ("dynamodb", "get_item"): {"dynamodb:GetItem"},
    ("dynamodb", "put_item"): {"dynamodb:PutItem"},
    # A bookmark moves with its history entry in one transaction, authorised item by item: the
    # bookmark's update and the history entry's put.
    ("dynamodb", "transact_write_items"): {"dynamodb:UpdateItem", "dynamodb:PutItem"},
    ("dynamodb", "delete_item"): {"dynamodb:DeleteItem"},
    ("dynamodb", "scan"): {"dynamodb:Scan"},
    ("secretsmanager", "get_secret_value"): {"secretsmanager:GetSecretValue"},
    # Begin asks whether the execution holding the lock, or a stale run's, still runs.
    ("stepfunctions", "describe_execution"): {"states:DescribeExecution"},
}
# Made by redshift_connector for the IAM login (no aws.redshift_secret_arn).
LIBRARY_CALLS = {
    "redshift-serverless:GetCredentials",
    "redshift:GetClusterCredentials",
}
JOB_FILES = (
    "glue/job.py",
    "rentalctl/adapters/lake_s3.py",
    "rentalctl/adapters/state_dynamodb.py",
    "rentalctl/adapters/warehouse_redshift.py",
    "rentalctl/pipeline/begin.py",
)
OPERATOR_FILES = ("rentalctl/deploy/clients.py",)
# The state table is created (and its PITR turned on) only by operator commands (seed-bookmarks,
# run) with the operator's credentials.
OPERATOR_FILES += ("rentalctl/adapters/state_dynamodb_table.py",)
OPERATOR_FILES += ("rentalctl/orchestration/aws_run.py", "rentalctl/orchestration/cancel.py")
# doctor and logs: an operator reads the deployment and its logs with the operator's credentials.
OPERATOR_FILES += ("rentalctl/doctor_aws.py", "rentalctl/run_logs.py")
REPO = Path(__file__).resolve().parents[1]


def _client_services(node: ast.AST) -> set[str]:
    """Services of the ``aws.client("service", ...)`` calls under ``node``."""
    return {
        call.args[0].value
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and ast.unparse(call.func) == "aws.client"
        and isinstance(call.args[0], ast.Constant)
    }


def aws_calls(path: Path) -> set[tuple[str, str]]:
    """(service, operation) of every call on a boto3 client in ``path``: ``client`` is the
    client its function creates, ``self._client`` the one client its module creates."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (module_service,) = _client_services(tree) if "self._client" in ast.unparse(tree) else ("",)
    found = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        local = _client_services(function)
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            owner, method = ast.unparse(call.func.value), call.func.attr
            if owner == "client" and len(local) == 1:
                service = next(iter(local))
            elif owner == "self._client":
                service = module_service
            else:
                continue
            if method in ("get_paginator", "get_waiter"):
                method = call.args[0].value  # type: ignore[attr-defined]
            found.add((service, method))
    return found


def test_the_glue_role_allows_every_call_the_jobs_make(app: typer.Typer, config_file: Path) -> None:
    clients = {
        path.relative_to(REPO).as_posix()
        for path in [*REPO.glob("rentalctl/**/*.py"), *REPO.glob("glue/*.py")]
        if "aws.client(" in path.read_text(encoding="utf-8")
    }
    assert clients == {*JOB_FILES, *OPERATOR_FILES}  # a new client: add its calls to the table
    calls = set().union(*(aws_calls(REPO / path) for path in JOB_FILES))
    assert calls == set(JOB_CALLS)

    cluster_url = f"redshift://loader@analytics.abc123xyz.{REGION}.redshift.amazonaws.com:5439/dw"
    allowed = set().union(
        actions(policy(app, config_file, "glue-job")),
        actions(policy(app, config_file, "glue-job", "aws.redshift_secret_arn=")),
        actions(
            policy(
                app,
                config_file,
                "glue-job",
                "aws.redshift_secret_arn=",
                f"warehouse.url={cluster_url}",
            )
        ),
    )
    needed = set().union(*JOB_CALLS.values(), LIBRARY_CALLS)
    assert needed - allowed == set()


def test_the_glue_role_allows_what_the_job_definitions_ask_of_glue(
    app: typer.Typer, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Glue publishes a job's metrics (--enable-metrics) and gives a job with a connection a
    network interface in the VPC, both with the job's role."""
    from collections import defaultdict

    from rentalctl import config
    from rentalctl.deploy import glue_jobs

    monkeypatch.setattr("rentalctl.deploy.wheelhouse.wheels", lambda home, python: [])
    settings = config.load(config=str(config_file), env={})
    definitions = glue_jobs.job_definitions(settings, defaultdict(lambda: "s3://b/k"))
    needed = set()
    for definition in definitions.values():
        if definition["DefaultArguments"].get("--enable-metrics") == "true":
            needed.add("cloudwatch:PutMetricData")
        if definition.get("Connections"):
            needed |= {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"}
            needed |= {"ec2:CreateTags", "ec2:DeleteTags", *VPC_DESCRIBE}
    assert needed >= {"cloudwatch:PutMetricData", "ec2:CreateNetworkInterface"}
    assert needed - actions(policy(app, config_file, "glue-job")) == set()


# -------------------------------------------------------------------------------------- errors


def test_unknown_role_exits_2(app: typer.Typer, config_file: Path) -> None:
    result = invoke(app, config_file, "iam-policy", "nope")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    message = json.loads(result.stdout)["error"]["message"]
    assert "nope" in message
    assert all(role in message for role in ROLES)


def test_no_account_in_any_arn_exits_2_asking_for_the_glue_role(
    app: typer.Typer, config_file: Path
) -> None:
    unset = [
        f"--set=aws.{key}="
        for key in (
            "glue_role_arn",
            "state_machine_role_arn",
            "redshift_copy_role_arn",
            "state_machine_log_group_arn",
            "sns_topic_arn",
            "source_secret_arn",
            "redshift_secret_arn",
        )
    ]
    result = invoke(app, config_file, *unset, "iam-policy", "glue-job", output="text")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "aws.glue_role_arn" in result.stderr
    assert "${" not in result.stderr


def test_a_local_lake_exits_2(app: typer.Typer, config_file: Path) -> None:
    result = invoke(app, config_file, "--set=lake.url=file://lake", "iam-policy", "glue-job")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "lake.url" in json.loads(result.stdout)["error"]["message"]
