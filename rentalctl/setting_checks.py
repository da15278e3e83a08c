"""Checks of settings that end up in URLs, AWS resource names, ARNs and S3 prefixes.

They are pasted into object keys, execution names and IAM policies, so they are held to the
characters those names allow, and may not hold a wildcard (``*`` or ``?``) that would widen
what a role may do. A URL with query parameters is refused without showing them: that is where
drivers take passwords, and rentalctl reads none from there.
"""

from __future__ import annotations

import re

from rentalctl import urls
from rentalctl.errors import InvalidSetting

# Network URLs: a query string or fragment is where drivers take passwords (?password=...), and
# rentalctl reads none from there.
_NETWORK_SCHEMES = ("mysql", "redshift", "s3", "dynamodb")


def refuse_url_parameters(key: str, raw: str, origin: str | None) -> None:
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in _NETWORK_SCHEMES:
        return
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return
    shown = urls.mask(f"{scheme}://{rest[:cut]}") + rest[cut] + "***"  # never the parameters
    raise InvalidSetting(
        key,
        shown,
        "a URL without query parameters or fragment; a password goes in the environment "
        "(RENTALCTL_SOURCE_PASSWORD) or in Secrets Manager, never in configuration",
        origin,
    )


# One S3 key segment: letters, digits and . _ = -, not starting with "." (so no "." or "..").
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9._=-]*")


def check_key_prefix(key: str, shown: str, prefix: str, origin: str | None) -> None:
    """An S3 key prefix: it becomes object keys and the lake's ARN in the IAM policies."""
    parts = prefix.strip("/").split("/")
    if not all(_KEY_SEGMENT.fullmatch(p) for p in parts):
        raise InvalidSetting(
            key,
            shown,
            "an S3 prefix of folder names made of letters, digits and . _ = -, none starting "
            "with . (no wildcard, no . or .. folder)",
            origin,
        )


# Names pasted into AWS resource names and ARNs (and so into the IAM policies).
_NAMES: dict[str, tuple[re.Pattern[str], str]] = {
    "glue_job_prefix": (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"),
        "a name of at most 64 letters, digits, - and _, such as rentalctl "
        "(the Glue jobs are <prefix>-extract, …)",
    ),
    "state_machine_name": (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}"),
        "a Step Functions name of at most 80 letters, digits, - and _",
    ),
    "glue_connections": (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}"),
        "Glue connection names of letters, digits and . _ -",
    ),
    "region": (
        re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}"),
        "an AWS region such as eu-west-1",
    ),
}

# arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, the resource without wildcards or spaces.
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12})?:[A-Za-z0-9_+=,.@/:-]+")
# CloudWatch Logs names a log group's ARN with a trailing ":*" (DescribeLogGroups' "arn"); that
# suffix is the one wildcard accepted, after a log group's name, and the ARN is only handed to
# Step Functions' logging configuration.
_LOG_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[A-Za-z0-9_./#-]{1,512}(:\*)?"
)


def check_aws_name(name: str, key: str, value: str, where: str | None) -> None:
    """``value`` of the AWS setting ``name`` (an item, for a list setting), or InvalidSetting."""
    if name in _NAMES:
        pattern, expected = _NAMES[name]
        if not pattern.fullmatch(value):
            raise InvalidSetting(key, value, expected, where)
    elif name == "scripts_prefix":
        check_key_prefix(key, value, value, where)
    elif name == "state_machine_log_group_arn":
        if not _LOG_GROUP_ARN.fullmatch(value):
            raise InvalidSetting(
                key,
                value,
                "the ARN of a CloudWatch Logs log group "
                "(arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*])",
                where,
            )
    elif name.endswith("_arn") and not _ARN.fullmatch(value):
        raise InvalidSetting(
            key,
            value,
            "an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE) without wildcards or spaces",
            where,
        )


# Spark master URLs a local run can use: local threads, a standalone cluster (several masters
# for standby), YARN, or Kubernetes. Nothing else: the value is handed to Spark as it is.
_HOST_PORT = r"[A-Za-z0-9.-]+:[0-9]{1,5}"
_SPARK_MASTER = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?"
    rf"|spark://{_HOST_PORT}(,{_HOST_PORT})*"
    r"|yarn"
    rf"|k8s://(https?://)?{_HOST_PORT}"
)


def check_spark_master(value: object, origin: str | None) -> str:
    """The ``spark.master`` setting, or InvalidSetting."""
    if not isinstance(value, str) or not _SPARK_MASTER.fullmatch(value):
        raise InvalidSetting(
            "spark.master",
            value,
            "a Spark master URL: local[*], local[N], spark://HOST:PORT, yarn or "
            "k8s://https://HOST:PORT",
            origin,
        )
    return value


#: the engines of ``transform.engine`` (rentalctl.pipeline.frame_api names them)
TRANSFORM_ENGINES = ("duckdb", "spark")


def check_engine(value: object, origin: str | None) -> str:
    """The ``transform.engine`` setting, or InvalidSetting."""
    if value not in TRANSFORM_ENGINES:
        raise InvalidSetting("transform.engine", value, " or ".join(TRANSFORM_ENGINES), origin)
    assert isinstance(value, str)
    return value
