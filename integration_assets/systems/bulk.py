"""Bulk upserts by external id, as the clients send them and read their answers.

The request is `{"records": [{"external_id", "idempotency_key", "record"}, ...]}` and the answer
`{"results": [{"external_id", "status", "body"}, ...]}`, one result per record in request order
(the ERP's `POST /api/v1/records/{type}/batch`, the WMS's `POST /api/v1/reservations/batch`). Each
result is read as the answer to that record's own upsert would be; an answer that does not name the
records sent, in order, is not read at all (no outcome would be true).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from integration_assets.systems.http_client import BulkEntry, RetryingHttpResource
from integration_assets.systems.write_outcome import WriteOutcome

MAX_BULK_RECORDS = 100  # records a bulk endpoint takes in one request


class RecordWrite(NamedTuple):
    """One record of a bulk upsert."""

    external_id: str
    payload: dict[str, Any]
    idempotency_key: str


def bulk_request(writes: Sequence[RecordWrite]) -> dict[str, Any]:
    return {
        "records": [
            {
                "external_id": write.external_id,
                "idempotency_key": write.idempotency_key,
                "record": write.payload,
            }
            for write in writes
        ]
    }


def bulk_entries(writes: Sequence[RecordWrite]) -> list[BulkEntry]:
    """What the audit trail keeps of each record: its key and its own body."""
    return [BulkEntry(write.idempotency_key, write.payload) for write in writes]


def check_bulk_size(writes: Sequence[RecordWrite], batch_size: int) -> None:
    largest = min(batch_size, MAX_BULK_RECORDS)
    if not 1 <= len(writes) <= largest:
        raise ValueError(f"a bulk upsert takes 1 to {largest} records, not {len(writes)}")


def bulk_results(body: Any) -> list[dict[str, Any]] | None:
    """The answer's results, each with an integer status; None if it is not that shape."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not all(
        isinstance(result, dict)
        and isinstance(result.get("status"), int)
        and not isinstance(result.get("status"), bool)
        for result in results
    ):
        return None
    return results


def results_for(body: Any, writes: Sequence[RecordWrite]) -> list[dict[str, Any]] | None:
    """One result per write, naming the writes' external ids in order; None otherwise."""
    results = bulk_results(body)
    if results is None or [result.get("external_id") for result in results] != [
        write.external_id for write in writes
    ]:
        return None
    return results


def bulk_parts(body: Any) -> list[tuple[int, str]] | None:
    """Each record's status and answer text in a bulk answer, for its audit lines."""
    results = bulk_results(body)
    if results is None:
        return None
    return [(result["status"], answer_text(result.get("body"))) for result in results]


# One record's answer read as its own upsert's: (the write, which record of the request it was,
# status, body) -> its outcome, or None when no outcome describes it.
RecordAnswerReader = Callable[[RecordWrite, str, int, Any], WriteOutcome | None]


def bulk_outcomes(
    status: int, body: Any, writes: Sequence[RecordWrite], read_record: RecordAnswerReader
) -> list[WriteOutcome] | None:
    """One outcome per write from a bulk answer; None unless every record's answer can be read."""
    results = results_for(body, writes) if status == 200 else None
    if results is None:
        return None
    outcomes = []
    for number, (write, result) in enumerate(zip(writes, results, strict=True), 1):
        outcome = read_record(
            write, f"record {number} of {len(results)}", result["status"], result.get("body")
        )
        if outcome is None:
            return None
        outcomes.append(outcome)
    return outcomes


def answer_text(body: Any) -> str:
    """A record's answer body as text (for an error detail when it names no message)."""
    return orjson.dumps(body).decode()


def send_bulk(
    client: RetryingHttpResource,
    url: str,
    writes: Sequence[RecordWrite],
    read_record: RecordAnswerReader,
    system: str,
) -> list[WriteOutcome]:
    """POST `writes` to a bulk endpoint through `client` (at most its `batch_size`); one outcome
    per write, each record's answer read by `read_record` (given "POST <path> (record n of m)")."""
    check_bulk_size(writes, getattr(client, "batch_size", MAX_BULK_RECORDS))
    request = f"POST {urlsplit(url).path}"
    return client.write_many(
        "POST",
        url,
        json_body=bulk_request(writes),
        entries=bulk_entries(writes),
        read_answer=lambda response, body: bulk_outcomes(
            response.status_code,
            body,
            writes,
            lambda write, record, status, answer: read_record(
                write, f"{request} ({record})", status, answer
            ),
        ),
        split_answer=bulk_parts,
        unknown_answer_hint=(
            f"check the {system} base URL; set the {system} client's batch_size to 1 if this "
            f"{system} has no batch endpoint"
        ),
    )
