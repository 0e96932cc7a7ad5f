"""The bulk-write envelope the target sandboxes share (the ERP's records, the WMS's reservations).

A bulk write is `{"records": [{"external_id", "idempotency_key", "record"}, ...]}`, 1 to
`MAX_BULK_RECORDS` entries, as record APIs offer bulk upserts (Salesforce's sObject Collections, OData
`$batch`). It is answered 200 with `{"results": [{"external_id", "status", "body"}, ...]}` in request
order, each entry what the single upsert of that record with that idempotency key would have
answered; records are written one after another, so two writes of one record keep their order. A
malformed envelope is refused whole, before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

MAX_BULK_RECORDS = 100
MALFORMED = "the batch is malformed; nothing was written"
ENTRY_KEYS = frozenset({"external_id", "idempotency_key", "record"})

# One record's upsert: (external id, record body, idempotency key) -> (status, answer body, replayed)
Upsert = Callable[[str, Any, str | None], tuple[int, dict[str, Any], bool]]


class EnvelopeProblem(NamedTuple):
    """What is wrong with a bulk request's envelope: the field, a code and a message."""

    field: str
    code: str
    message: str


def json_or_none(data: bytes) -> Any:
    """A request body parsed as JSON, or None when it is not JSON."""
    try:
        return json.loads(data or b"null")
    except ValueError:
        return None


def bulk_entries(body: Any) -> list[dict[str, Any]] | EnvelopeProblem:
    """The entries of a bulk request, or the first thing wrong with its envelope."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return EnvelopeProblem("records", "required", 'the body must be {"records": [...]}')
    entries = body["records"]
    if not 1 <= len(entries) <= MAX_BULK_RECORDS:
        return EnvelopeProblem(
            "records", "invalid", f"a batch holds 1 to {MAX_BULK_RECORDS} records"
        )
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - ENTRY_KEYS:
            return EnvelopeProblem(
                f"records[{number}]",
                "invalid",
                'must be {"external_id", "idempotency_key", "record"}',
            )
        if not isinstance(entry.get("external_id"), str) or not entry["external_id"]:
            return EnvelopeProblem(
                f"records[{number}].external_id", "required", "a non-empty string"
            )
        key = entry.get("idempotency_key")
        if key is not None and not isinstance(key, str):
            return EnvelopeProblem(
                f"records[{number}].idempotency_key", "invalid", "must be a string"
            )
    return entries


def bulk_answer(entries: list[dict[str, Any]], upsert: Upsert) -> dict[str, Any]:
    """Upsert each entry in turn; the answer body with one result per entry, in order."""
    results = []
    for entry in entries:
        status, body, replayed = upsert(
            entry["external_id"], entry.get("record"), entry.get("idempotency_key")
        )
        result = {"external_id": entry["external_id"], "status": status, "body": body}
        if replayed:
            result["idempotent_replayed"] = True
        results.append(result)
    return {"results": results}
