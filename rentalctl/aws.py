"""The one place that builds AWS clients.

Every client comes from one ``boto3.Session`` with one botocore ``Config``: adaptive retries,
bounded timeouts and a ``rentalctl/<version>`` user agent. botocore retries throttling, 5xx
responses and connection errors itself (``RETRIES`` times after the first attempt, with
exponential back-off and client-side rate limiting); what still fails after that reaches the
adapters, which report throttling and service trouble as ResourceUnavailable (exit 3, and a
transient error the state machine retries). ``AWS_PROFILE``, ``AWS_REGION`` and
``AWS_ENDPOINT_URL`` (also per service, e.g. ``AWS_ENDPOINT_URL_S3``) are honoured by boto3
itself, which is how the tests point everything at moto. Nothing here runs at import time,
and boto3 and botocore are imported where used: importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rentalctl import __version__
from rentalctl.errors import ConfigError, ResourceUnavailable

T = TypeVar("T")

#: Retries botocore makes after the first attempt (its ``max_attempts``: 9 attempts in all).
RETRIES = 8


def session(region: str | None = None) -> Any:
    """A boto3 session; ``region`` (from config) wins over the environment's. botocore itself
    reads only AWS_DEFAULT_REGION, so AWS_REGION (what the AWS CLI v2 and SDKs honour) is read
    here."""
    import boto3

    region = region or os.environ.get("AWS_REGION") or None
    return boto3.Session(region_name=region) if region else boto3.Session()


def client(service: str, boto3_session: Any | None = None) -> Any:
    """A client for ``service`` with the project's retry, timeout and user-agent settings.
    Missing region or credentials raise ResourceUnavailable (exit 3) with the fix."""
    from botocore.config import Config

    sess = boto3_session or session()
    if not sess.region_name:
        raise ResourceUnavailable(
            "no AWS region configured: set AWS_REGION (or aws.region in the profile)"
        )
    if sess.get_credentials() is None:
        raise ResourceUnavailable(
            "no AWS credentials found: set AWS_PROFILE, run `aws sso login`, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    config = Config(
        retries={"mode": "adaptive", "max_attempts": RETRIES},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra=f"rentalctl/{__version__}",
    )
    return sess.client(service, config=config)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# Throttling and service-side trouble, as the services spell it. botocore has already retried
# these when an adapter sees one, so it lasted; the request itself was fine and later it may pass.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",  # S3
        "BandwidthLimitExceeded",
    }
)
SERVICE_ERROR_CODES = frozenset(
    {
        "InternalServerError",  # DynamoDB
        "InternalServerException",
        "InternalError",  # S3
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",  # S3: the upload stalled
        "RequestTimeoutException",
        "500",
        "502",
        "503",
        "504",
    }
)
# .union, not |: the Python 3.9 check of Glue modules takes a module-level | for a type union
BUSY_CODES = THROTTLING_CODES.union(SERVICE_ERROR_CODES)

# Codes meaning "AWS cannot be used from here right now": credentials, permissions, throttling
# and service trouble. Retrying or fixing the setup helps; the request itself was fine.
UNAVAILABLE_CODES = BUSY_CODES.union(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "ExecutionLimitExceeded",
        "ServiceQuotaExceededException",
    }
)


def busy(code: str) -> str:
    """How a throttling or service error that outlived botocore's retries is reported."""
    kind = "throttled" if code in THROTTLING_CODES else "failing on the AWS side"
    return f"still {kind} after retrying ({code}, up to {RETRIES + 1} attempts): try again later"


@contextmanager
def errors(what: str, invalid: Collection[str] = ()) -> Iterator[None]:
    """AWS refusals become typed errors naming what was being done: a code in ``invalid`` is a
    configuration error (exit 2), an UNAVAILABLE_CODES one or a connection failure
    ResourceUnavailable (exit 3); anything else propagates, as a bug would."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        message = (exc.response.get("Error") or {}).get("Message") or str(exc)
        if code in invalid:
            raise ConfigError(f"{what}: AWS refused it ({code}): {message}") from exc
        if code in BUSY_CODES:
            raise ResourceUnavailable(f"{what}: {busy(code)}: {message}") from exc
        if code in UNAVAILABLE_CODES:
            raise ResourceUnavailable(
                f"{what}: AWS refused the request ({code}): {message}; check the credentials, "
                "the region and the IAM permissions"
            ) from exc
        raise
    except BotoCoreError as exc:
        raise ResourceUnavailable(f"{what}: {exc}") from exc


def or_none(call: Callable[[], T], missing: str) -> T | None:
    """``call()``, or None when AWS answers that the thing does not exist (error code
    ``missing``): the "describe it, or learn it is not there" of every deploy plan."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        if error_code(exc) == missing:
            return None
        raise


def arn(boto3_session: Any, service: str, resource: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>:<resource>`` in the session's account
    and region (the account from sts:GetCallerIdentity). The one place an ARN of something
    rentalctl deploys is built, for deploy and for starting runs alike."""
    sts = client("sts", boto3_session)
    with errors("reading the AWS account (sts:GetCallerIdentity)"):
        identity = sts.get_caller_identity()
    partition = str(identity.get("Arn", "arn:aws:")).split(":")[1] or "aws"
    return f"arn:{partition}:{service}:{boto3_session.region_name}:{identity['Account']}:{resource}"


def state_machine_arn(boto3_session: Any, name: str) -> str:
    """The ARN a state machine called ``name`` has in this account and region."""
    return arn(boto3_session, "states", f"stateMachine:{name}")
