"""DynamoDB state store: one on-demand table holding bookmarks and run records (on AWS).

Single-table design, partition key ``pk`` only (the table itself:
``rentalctl/adapters/state_dynamodb_table.py``):
- ``bookmark#<table>``: ``table_name``, ``wm`` (S for a timestamp, N for an id; absent when the
  bookmark is None), ``updated_at``, ``run_id``;
- ``history#<table>#<time>#<random>``: one change of a bookmark
  (``rentalctl/adapters/state_dynamodb_history.py``, written in one transaction with it);
- ``run#<run_id>``: ``run_id``, ``started_at``, ``doc`` (the run record as JSON text), ``rev``
  (a token new with every write: ``update_run`` writes only if the token it read is still
  there, so concurrent updates of one record retry instead of overwriting each other).

The low-level client is used on purpose: its typed attribute values keep an id an ``int`` and a
timestamp a ``str`` (the resource API would hand back ``Decimal``). Bookmark moves are one
conditional transaction with their history item.

botocore retries a request whose response it did not get (a timeout, a dropped connection, a
5xx) although DynamoDB may already have applied it. A conditional write repeated that way fails
its own condition, so a refused bookmark commit or lock acquisition first checks whether the
item already holds exactly what this caller wrote: then it is this caller's write, not a
conflict. The same holds when the state machine retries a `publish` job whose bookmark commit
had moved some bookmarks before it failed.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from rentalctl import aws
from rentalctl.adapters import state_dynamodb_history as ddb_history
from rentalctl.adapters import state_dynamodb_table as ddb_table
from rentalctl.adapters.state import (
    MISSING,
    Bookmark,
    BookmarkChange,
    RunChange,
    StateStore,
    Watermark,
    changed,
    conflict,
    is_forward,
    lock_held,
)
from rentalctl.errors import ResourceUnavailable

_DENIED = {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"}
# Conditional run-record updates that lost to another writer are tried again this many times,
# after a short random pause (the writers are a handful of jobs of one run).
UPDATE_ATTEMPTS = 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class DynamoStateStore(StateStore):
    def __init__(self, table: str, *, boto3_session: Any | None = None) -> None:
        self.table = table
        self.name = f"dynamodb://{table}"
        self._session = boto3_session
        self._client_: Any | None = None

    @property
    def _client(self) -> Any:
        # Built on first use: opening a store must not need credentials or the network.
        if self._client_ is None:
            self._client_ = aws.client("dynamodb", self._session)
        return self._client_

    def known_empty(self) -> bool:
        return False  # only a call to DynamoDB can tell; a read of a missing table says so

    def _key(self, pk: str) -> dict[str, Any]:
        return {"TableName": self.table, "Key": {"pk": {"S": pk}}}

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Botocore failures that mean "cannot use the table" become ResourceUnavailable naming
        it; any other ClientError is left to the caller (or is a bug)."""
        try:
            yield
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == "ResourceNotFoundException":
                region = self._client.meta.region_name
                why = f"not found (region {region}): run `rentalctl seed-bookmarks`"
            elif code in aws.BUSY_CODES:  # outlived the client's retries: capacity, not a bug
                why = aws.busy(code)
            elif code in _DENIED:
                why = f"refused the request ({code}): check the credentials and IAM permissions"
            else:
                raise
            raise ResourceUnavailable(f"state store {self.name} {why}") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise ResourceUnavailable(f"cannot reach DynamoDB for {self.name}: {exc}") from exc

    def ensure(self) -> bool:
        with self._errors():
            return ddb_table.ensure(self.table, self._session)

    def _scan(self, prefix: str) -> list[dict[str, Any]]:
        # A Scan reads the whole table; fine here: one item per source table plus one per run.
        # If run records ever grow into the many thousands, add a GSI on started_at.
        pages = self._client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": prefix}},
            ConsistentRead=True,
        )
        with self._errors():
            return [item for page in pages for item in page["Items"]]

    def _current(self, table: str) -> tuple[object, str | None]:
        """The stored value (MISSING without an entry) and the run that committed it."""
        with self._errors():
            item = self._client.get_item(**self._key(f"bookmark#{table}"), ConsistentRead=True)
        if "Item" not in item:
            return MISSING, None
        return ddb_history.decode(item["Item"].get("wm")), item["Item"].get("run_id", {}).get("S")

    def bookmarks(self) -> dict[str, Bookmark]:
        result = {}
        for item in self._scan("bookmark#"):
            table = item["table_name"]["S"]
            updated_at = item.get("updated_at", {}).get("S")
            run_id = item.get("run_id", {}).get("S")
            result[table] = Bookmark(table, ddb_history.decode(item.get("wm")), updated_at, run_id)
        return result

    def seed(self, tables: Iterable[str]) -> list[str]:
        added: list[str] = []
        now = _now()
        for table in dict.fromkeys(tables):  # keeps order, drops repeats
            item = {"pk": {"S": f"bookmark#{table}"}, "table_name": {"S": table},
                    "updated_at": {"S": now}}  # fmt: skip
            try:
                with self._errors():
                    self._client.put_item(
                        TableName=self.table,
                        Item=item,
                        ConditionExpression="attribute_not_exists(pk)",
                    )
            except ClientError as exc:
                if aws.error_code(exc) != "ConditionalCheckFailedException":
                    raise
                continue  # already there: seeding never touches an existing entry
            added.append(table)
        return added

    def _move(
        self,
        table: str,
        expected: object,
        new: Watermark | None,
        run_id: str | None,
        command: str | None,
        record: bool = True,
    ) -> bool:
        """Move the bookmark and record the change (when ``record``) in one transaction; False
        when the stored value is not ``expected`` (nothing written)."""
        for attempt in range(UPDATE_ATTEMPTS):
            request = ddb_history.change_request(
                self.table, table, expected, new, at=_now(), run_id=run_id, command=command
            )
            if not record:
                del request["TransactItems"][1]
            try:
                with self._errors():
                    self._client.transact_write_items(**request)
                return True
            except ClientError as exc:
                if aws.error_code(exc) != "TransactionCanceledException":
                    raise
                codes = ddb_history.cancellation_codes(exc.response)
                if "ConditionalCheckFailed" in codes:
                    return False
                if "TransactionConflict" not in codes:  # another transaction at that instant
                    raise
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        raise ResourceUnavailable(f"state store {self.name}: the bookmark of {table} kept moving")

    def reset(self, table: str, command: str = "seed-bookmarks --reset") -> None:
        # An upsert (the contract is the end state), conditional on the value read and recorded.
        for _attempt in range(UPDATE_ATTEMPTS):
            found, _ = self._current(table)
            if self._move(table, found, None, None, command):
                return
        raise ResourceUnavailable(f"state store {self.name}: the bookmark of {table} kept moving")

    def set_bookmark(
        self, table: str, expected: Watermark | None, new: Watermark, command: str
    ) -> None:
        if not self._move(table, expected, new, None, command):
            raise changed(table, expected, self._current(table)[0])

    def history(self, table: str | None = None) -> list[BookmarkChange]:
        entries = [ddb_history.history_entry(i) for i in self._scan("history#")]
        entries.sort(key=lambda e: e.at)  # the times come from one clock per writer, µs apart
        return [e for e in entries if table is None or e.table == table]

    def commit_bookmark(
        self, table: str, expected: Watermark | None, new: Watermark, run_id: str
    ) -> None:
        ddb_history.encode(new)  # a value that is no watermark is a bug: TypeError, not conflict
        # A commit that moves nothing (the same value) records the run, but no history entry.
        record = not (type(expected) is type(new) and expected == new)
        if is_forward(expected, new) and self._move(table, expected, new, run_id, None, record):
            return
        # Read after the failure: to recognise this run's own write, repeated by a retry, and
        # otherwise only to explain the conflict; the decision was the condition's.
        found, by_run = self._current(table)
        if by_run == run_id and type(found) is type(new) and found == new:
            return
        raise conflict(table, expected, found, new)

    def _run_item(self, run: dict[str, Any]) -> dict[str, Any]:
        return {
            "pk": {"S": f"run#{run['run_id']}"},
            "run_id": {"S": run["run_id"]},
            "started_at": {"S": run["started_at"]},
            "doc": {"S": json.dumps(run, sort_keys=True)},
            "rev": {"S": uuid.uuid4().hex},
        }

    def put_run(self, run: dict[str, Any]) -> None:
        with self._errors():
            self._client.put_item(TableName=self.table, Item=self._run_item(run))

    def update_run(self, run_id: str, change: RunChange) -> dict[str, Any]:
        for attempt in range(UPDATE_ATTEMPTS):
            with self._errors():
                found = self._client.get_item(**self._key(f"run#{run_id}"), ConsistentRead=True)
            item = found.get("Item")
            run = change(json.loads(item["doc"]["S"]) if item else None)
            if item is None:
                condition, values = "attribute_not_exists(pk)", {}
            elif "rev" in item:
                condition, values = "rev = :rev", {":rev": item["rev"]}
            else:  # written before records had a token: the whole document is the token
                condition = "attribute_not_exists(rev) AND doc = :doc"
                values = {":doc": item["doc"]}
            try:
                with self._errors():
                    self._client.put_item(
                        TableName=self.table,
                        Item=self._run_item({**run, "run_id": run_id}),
                        ConditionExpression=condition,
                        **({"ExpressionAttributeValues": values} if values else {}),
                    )
                return run
            except ClientError as exc:
                if aws.error_code(exc) != "ConditionalCheckFailedException":
                    raise
            # Another writer came in between: read its record and apply the change to it.
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        raise ResourceUnavailable(
            f"state store {self.name}: run record {run_id} kept changing under "
            f"{UPDATE_ATTEMPTS} attempts to update it; try again"
        )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._errors():
            item = self._client.get_item(**self._key(f"run#{run_id}"), ConsistentRead=True)
        return json.loads(item["Item"]["doc"]["S"]) if "Item" in item else None

    _LOCK = "lock#pipeline"

    def lock_holder(self) -> dict[str, Any] | None:
        with self._errors():
            item = self._client.get_item(**self._key(self._LOCK), ConsistentRead=True)
        return json.loads(item["Item"]["holder"]["S"]) if "Item" in item else None

    def acquire_lock(
        self, holder: dict[str, Any], is_stale: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        current = self.lock_holder()
        other = current is not None and current.get("run_id") != holder["run_id"]
        if other and not is_stale(current):  # type: ignore[arg-type]
            raise lock_held(current)  # type: ignore[arg-type]
        # Conditional: the lock is free, or still held by exactly the holder judged above; a
        # racing runner that got there first makes this fail, and it is then the one to report.
        seen = current.get("run_id") if current else None
        condition, values = "attribute_not_exists(pk)", {}
        if seen is not None:
            condition, values = "holder_run_id = :seen", {":seen": {"S": seen}}
        try:
            self._put_lock(holder, condition, values)
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            now = self.lock_holder()
            if now != json.loads(json.dumps(holder)):  # not this very put, repeated by a retry
                raise lock_held(now or {}) from None
        return dict(current) if other and current else None

    def refresh_lock(self, run_id: str, heartbeat_at: str) -> None:
        current = self.lock_holder()
        if not current or current.get("run_id") != run_id:
            return
        try:
            refreshed = {**current, "heartbeat_at": heartbeat_at}
            self._put_lock(refreshed, "holder_run_id = :me", {":me": {"S": run_id}})
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise  # lost the lock meanwhile: nothing to refresh

    def _put_lock(self, holder: dict[str, Any], condition: str, values: dict[str, Any]) -> None:
        """Write the lock item of ``holder`` where ``condition`` holds (a ClientError
        ConditionalCheckFailedException where it does not)."""
        with self._errors():
            self._client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": self._LOCK},
                    "holder_run_id": {"S": holder["run_id"]},
                    "holder": {"S": json.dumps(holder, sort_keys=True)},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )

    def release_lock(self, run_id: str) -> None:
        try:
            with self._errors():
                self._client.delete_item(
                    **self._key(self._LOCK),
                    ConditionExpression="holder_run_id = :me",
                    ExpressionAttributeValues={":me": {"S": run_id}},
                )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise

    def delete_runs(self) -> int:
        items = self._scan("run#")
        with self._errors():
            for item in items:
                self._client.delete_item(**self._key(item["pk"]["S"]))
        return len(items)

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        items = self._scan("run#")
        items.sort(key=lambda i: (i["started_at"]["S"], i["run_id"]["S"]), reverse=True)
        return [json.loads(i["doc"]["S"]) for i in items[: max(limit, 0)]]
