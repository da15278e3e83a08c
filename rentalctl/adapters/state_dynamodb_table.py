"""The DynamoDB table of the state store: one on-demand table, partition key ``pk`` only,
created when missing and kept with point-in-time recovery on. Only operator commands
(``seed-bookmarks``, ``run``, ``demo``) ensure the table; the jobs only use it
(``state_dynamodb.py``)."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from rentalctl import aws
from rentalctl.errors import ResourceUnavailable


def ensure(table: str, boto3_session: Any | None) -> bool:
    """Create ``table`` unless it exists, wait until it is ACTIVE and turn point-in-time recovery
    on; True when this call created it. Other client errors propagate to the store, which names
    the table in them."""
    client = aws.client("dynamodb", boto3_session)
    created = False
    try:
        client.describe_table(TableName=table)
    except ClientError as exc:
        if aws.error_code(exc) != "ResourceNotFoundException":
            raise
        created = _create(client, table)
    try:
        client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
        )
    except WaiterError as exc:
        raise ResourceUnavailable(f"DynamoDB table {table} did not become ACTIVE: {exc}") from exc
    _enable_pitr(client, table)
    return created


def _create(client: Any, table: str) -> bool:
    try:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",  # a few requests per run: no capacity to manage
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ResourceInUseException":
            raise
        return False  # another process is creating it right now
    return True


def _enable_pitr(client: Any, table: str) -> None:
    # Checked on every ensure (not only on creation) so a run interrupted between creating
    # the table and enabling PITR is repaired by the next one.
    described = client.describe_continuous_backups(TableName=table)
    pitr = described["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        return
    for _attempt in range(10):
        try:
            client.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            return
        except ClientError as exc:
            # A brand-new table may refuse for a short while after turning ACTIVE.
            if aws.error_code(exc) != "ContinuousBackupsUnavailableException":
                raise
            time.sleep(3)
    raise ResourceUnavailable(
        f"point-in-time recovery could not be enabled on {table} yet: run again"
    )
