"""``rentalctl.aws``: the ARNs of what rentalctl deploys, and "describe it, or None"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from rentalctl import aws


@pytest.fixture
def moto(aws_credentials: str) -> Iterator[str]:
    from moto import mock_aws

    with mock_aws():
        yield aws_credentials


def test_arns_name_the_sessions_account_and_region(moto: str) -> None:
    session = aws.session("eu-central-1")
    assert aws.state_machine_arn(session, "rentalctl-pipeline") == (
        "arn:aws:states:eu-central-1:123456789012:stateMachine:rentalctl-pipeline"
    )
    assert aws.arn(session, "glue", "job/") == "arn:aws:glue:eu-central-1:123456789012:job/"


def _refusal(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Describe")


def test_or_none_is_none_only_for_the_missing_code() -> None:
    def missing() -> dict[str, str]:
        raise _refusal("StateMachineDoesNotExist")

    def denied() -> dict[str, str]:
        raise _refusal("AccessDeniedException")

    assert aws.or_none(lambda: {"name": "x"}, "StateMachineDoesNotExist") == {"name": "x"}
    assert aws.or_none(missing, "StateMachineDoesNotExist") is None
    with pytest.raises(ClientError) as raised:
        aws.or_none(denied, "StateMachineDoesNotExist")
    assert aws.error_code(raised.value) == "AccessDeniedException"
