"""The outbox's rules, without a database: what to enqueue, and what an attempt's outcome does to a row.

One row per intended write. Its idempotency key is the external id plus the hash of its content, so
the same content for the same record is never enqueued twice, and a write that was delivered is never
sent again. Statuses:

- pending            waiting to be sent (new, approved, or edited and retried by an operator)
- failed             tried, the target was unavailable or a reference was missing; retried next time
- sent               delivered; terminal
- dead               a dead letter: the target refused it for good (400/409) or retries ran out
- awaiting_approval  a high-stakes write waiting for a person
- rejected           a person said no; terminal
- superseded         newer content for the same record was enqueued before this one was delivered

Every intended write ends in exactly one status, so the books balance:
promoted (enqueued) = sent + dead + awaiting_approval + pending + failed + rejected + superseded.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from integration_assets.streams.balances import Balance
from integration_assets.streams.hashing import payload_hash

PENDING = "pending"
FAILED = "failed"
SENT = "sent"
DEAD = "dead"
AWAITING_APPROVAL = "awaiting_approval"
REJECTED = "rejected"
SUPERSEDED = "superseded"
STATUSES = (SENT, DEAD, AWAITING_APPROVAL, PENDING, FAILED, REJECTED, SUPERSEDED)
DUE_STATUSES = (PENDING, FAILED)
OPEN_STATUSES = (PENDING, FAILED, AWAITING_APPROVAL)  # newer content supersedes these

# Outcomes as the clients report them (integration_assets/systems/write_outcome.py).
DELIVERED = "delivered"
REJECTED_BY_TARGET = "rejected"
CONFLICT = "conflict"
MISSING_REFERENCE = "missing_reference"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class WriteIntent:
    """A write the pipeline wants a target to hold; `approval_rule` says why a person must approve."""

    target: str
    entity: str
    external_id: str
    payload: Mapping[str, Any]
    source_ref: str
    approval_rule: str | None = None

    @cached_property  # asked by the enqueue plan and the outbox row: hash the payload once
    def content_hash(self) -> str:
        return payload_hash(self.payload)


@dataclass(frozen=True)
class OutboxHead:
    """The newest row already in the outbox for one (target, entity, external id)."""

    idempotency_key: str
    payload_hash: str
    sequence: int
    status: str


@dataclass(frozen=True)
class NewRow:
    idempotency_key: str
    intent: WriteIntent
    sequence: int
    status: str


@dataclass
class EnqueuePlan:
    """What one planning pass does to the outbox."""

    new_rows: list[NewRow] = field(default_factory=list)
    superseded_keys: list[str] = field(default_factory=list)
    unchanged: int = 0  # the outbox already holds this content as the newest intent

    @property
    def enqueued(self) -> int:
        return len(self.new_rows)

    @property
    def awaiting_approval(self) -> int:
        return sum(1 for row in self.new_rows if row.status == AWAITING_APPROVAL)


def idempotency_key(
    target: str, entity: str, external_id: str, content_hash: str, sequence: int | None = None
) -> str:
    """`erp/sales_order/5100004000#3f2a...`: the record plus its content.

    Content that returns to an earlier version (A, then B, then A again) must be sent again, so
    it gets the sequence as a suffix: the key stays unique and still names record and content.
    """
    key = f"{target}/{entity}/{external_id}#{content_hash[:20]}"
    return key if sequence is None else f"{key}~{sequence}"


def plan_enqueue(
    intents: Iterable[WriteIntent],
    heads: Mapping[tuple[str, str, str], OutboxHead],
    used_keys: Container[str] = frozenset(),
) -> EnqueuePlan:
    """Compare intents with the newest outbox row per record: enqueue what changed, supersede what it replaces.

    An intent equal to the newest row's content changes nothing (whatever that row's status: a dead
    letter stays dead until someone acts, a sent write is not sent again). Two intents for the same
    record in one pass are a bug in the caller, and fail loudly. `used_keys` holds every key the
    outbox has seen for these records.
    """
    plan = EnqueuePlan()
    seen: set[tuple[str, str, str]] = set()
    for intent in intents:
        record = (intent.target, intent.entity, intent.external_id)
        if record in seen:
            raise ValueError(f"two intents for {'/'.join(record)} in one planning pass")
        seen.add(record)
        content = intent.content_hash
        head = heads.get(record)
        if head is not None and head.payload_hash == content:
            plan.unchanged += 1
            continue
        sequence = 1 if head is None else head.sequence + 1
        key = idempotency_key(*record, content)
        if key in used_keys:  # the content went back to an earlier version: send it again
            key = idempotency_key(*record, content, sequence)
        status = AWAITING_APPROVAL if intent.approval_rule else PENDING
        plan.new_rows.append(NewRow(key, intent, sequence, status))
        if head is not None and head.status in OPEN_STATUSES:
            plan.superseded_keys.append(head.idempotency_key)
    return plan


@dataclass(frozen=True)
class Transition:
    """What an attempt changes on a row."""

    status: str
    attempts: int
    error_class: str | None
    target_status: int | None
    target_message: str | None
    target_record_id: str | None


def after_attempt(
    attempts_before: int,
    outcome: str,
    http_status: int | None,
    message: str,
    error_class: str | None,
    target_record_id: str | None,
    max_attempts: int,
) -> Transition:
    """The row's next state after one delivery attempt.

    Retryable outcomes (target unavailable, a referenced record not there yet) stay due until
    `max_attempts`, then become dead letters with error class `retries_exhausted`; a refusal
    (validation, conflict) is a dead letter at once with the target's own message.
    """
    attempts = attempts_before + 1
    if outcome == DELIVERED:
        return Transition(SENT, attempts, None, http_status, message or None, target_record_id)
    if outcome in (UNAVAILABLE, MISSING_REFERENCE):
        if attempts >= max_attempts:
            return Transition(
                DEAD,
                attempts,
                "retries_exhausted",
                http_status,
                f"{error_class or outcome} after {attempts} attempts: {message}",
                None,
            )
        return Transition(FAILED, attempts, error_class or outcome, http_status, message, None)
    if outcome in (REJECTED_BY_TARGET, CONFLICT):
        return Transition(DEAD, attempts, error_class or outcome, http_status, message, None)
    raise ValueError(f"unknown delivery outcome {outcome!r}")


def apply_override(payload: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """An operator's field edits over the mapped payload; dotted names reach into nested objects.

    `{"billing_address.postal_code": "40202"}` sets one nested field; a value of None removes it.
    """
    result = _deep_copy(payload)
    for dotted, value in override.items():
        parts = dotted.split(".")
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def outbox_books(counts_by_status: Mapping[str, int], promoted: int | None = None) -> Balance:
    """promoted = delivered + dead-lettered + awaiting approval + pending (+ retry later, rejected, superseded).

    `promoted` defaults to the rows counted: then the equation holds exactly when every row is in one
    of the known statuses. A caller that counted the intents separately passes its own figure.
    """
    statuses = {status: int(count) for status, count in counts_by_status.items()}
    return Balance(
        "promoted_equals_delivered_dead_awaiting_pending",
        {"promoted": sum(statuses.values()) if promoted is None else int(promoted)},
        {
            "delivered": statuses.get(SENT, 0),
            "dead_lettered": statuses.get(DEAD, 0),
            "awaiting_approval": statuses.get(AWAITING_APPROVAL, 0),
            "pending": statuses.get(PENDING, 0),
            "retry_later": statuses.get(FAILED, 0),
            "rejected": statuses.get(REJECTED, 0),
            "superseded": statuses.get(SUPERSEDED, 0),
        },
    )
