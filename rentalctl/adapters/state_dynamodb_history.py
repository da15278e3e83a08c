"""The bookmark history on DynamoDB, and the one transactional write every bookmark change uses.

A change of ``bookmark#<table>`` and its history item ``history#<table>#<time>#<random>`` go in
one ``TransactWriteItems``: DynamoDB applies both or neither, so a process that dies, or a
connection that drops, can never leave a moved bookmark without its entry (or an entry for a
move that did not happen). The transaction carries a client request token: when botocore
repeats a request whose response was lost, DynamoDB recognises the token and applies nothing
twice (within ten minutes, far longer than botocore's retries).
"""

from __future__ import annotations

import uuid
from typing import Any

from rentalctl.adapters.state import MISSING, BookmarkChange, Watermark, actor


def encode(value: Watermark) -> dict[str, str]:
    # bool is an int subclass but never a watermark.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"a watermark is a str or an int, not {type(value).__name__}")
    return {"S": value} if isinstance(value, str) else {"N": str(value)}


def decode(attr: dict[str, Any] | None) -> Watermark | None:
    if attr is None:
        return None
    return attr["S"] if "S" in attr else int(attr["N"])


def change_request(
    store: str,
    table: str,
    expected: object,
    new: Watermark | None,
    *,
    at: str,
    run_id: str | None,
    command: str | None,
) -> dict[str, Any]:
    """The ``transact_write_items`` arguments that move ``table``'s bookmark from ``expected``
    (MISSING: no entry yet, which the write creates) to ``new`` and record the change."""
    values: dict[str, Any] = {":t": {"S": table}, ":u": {"S": at}}
    sets = ["table_name = :t", "updated_at = :u"]
    removes = []
    if new is None:
        removes.append("wm")
    else:
        sets.append("wm = :new")
        values[":new"] = encode(new)
    if run_id is None:
        removes.append("run_id")
    else:
        sets.append("run_id = :r")
        values[":r"] = {"S": run_id}
    if expected is MISSING:
        condition = "attribute_not_exists(pk)"
    elif expected is None:
        # attribute_exists(pk): a table never seeded is a conflict, not a silent create.
        condition = "attribute_exists(pk) AND attribute_not_exists(wm)"
    else:
        # Typed comparison: an N never equals an S, so the type must match too.
        condition = "wm = :expected"
        values[":expected"] = encode(expected)  # type: ignore[arg-type]
    update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    host, user = actor()
    entry = {
        "pk": {"S": f"history#{table}#{at}#{uuid.uuid4().hex[:8]}"},
        "table_name": {"S": table},
        "at": {"S": at},
        "host": {"S": host},
        "user": {"S": user},
    }
    if expected is not MISSING and expected is not None:
        entry["old"] = encode(expected)  # type: ignore[arg-type]
    if new is not None:
        entry["new"] = encode(new)
    if run_id is not None:
        entry["run_id"] = {"S": run_id}
    if command is not None:
        entry["command"] = {"S": command}
    return {
        "TransactItems": [
            {
                "Update": {
                    "TableName": store,
                    "Key": {"pk": {"S": f"bookmark#{table}"}},
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Put": {
                    "TableName": store,
                    "Item": entry,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ],
        "ClientRequestToken": uuid.uuid4().hex,
    }


def cancellation_codes(response: dict[str, Any]) -> list[str]:
    """The per-item reasons of a cancelled transaction (``None`` for items that were fine)."""
    return [str(r.get("Code")) for r in response.get("CancellationReasons") or []]


def history_entry(item: dict[str, Any]) -> BookmarkChange:
    return BookmarkChange(
        table=item["table_name"]["S"],
        old=decode(item.get("old")),
        new=decode(item.get("new")),
        at=item["at"]["S"],
        run_id=item.get("run_id", {}).get("S"),
        command=item.get("command", {}).get("S"),
        host=item["host"]["S"],
        user=item["user"]["S"],
    )
