"""ops.outbox and ops.operator_actions in the warehouse: enqueue, pick what is due, record attempts, act.

Every function takes an open DuckDB connection (inside the caller's transaction where it writes) and
keeps the rules in `integration_assets/streams/outbox.py`. Operator actions (approve, reject, edit,
retry, resolve) are written to ops.operator_actions in the same transaction as the change they make.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import orjson

from integration_assets.contracts.ownership import OwnershipRegistry, load_ownership
from integration_assets.delivery.ownership_guard import (
    OwnershipRefused,
    check_override,
    write_refusal,
)
from integration_assets.storage.warehouse import ORDER_ID_OF_SOURCE_REF
from integration_assets.streams import outbox as rules
from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.timestamps import utc_now_naive

ROW_COLUMNS = (
    "idempotency_key",
    "target",
    "entity",
    "external_id",
    "sequence",
    "payload",
    "payload_hash",
    "source_ref",
    "status",
    "attempts",
    "error_class",
    "target_status",
    "target_message",
    "target_record_id",
    "approval_rule",
    "decided_by",
    "decision_reason",
    "override",
    "resolution",
    "enqueued_run_id",
    "last_run_id",
    "enqueued_at",
    "last_attempt_at",
    "sent_at",
    "dead_at",
    "decided_at",
    "resolved_at",
)


class OutboxError(ValueError):
    """An operator asked for something the row's state does not allow; the message says why."""


@dataclass(frozen=True)
class OutboxRow:
    idempotency_key: str
    target: str
    entity: str
    external_id: str
    sequence: int
    payload: dict[str, Any]
    status: str
    attempts: int
    override: dict[str, Any] | None
    source_ref: str

    def payload_to_send(self) -> dict[str, Any]:
        """The mapped payload with the operator's audited field edits applied (the mapped payload
        itself when there are none: not copied per write, so a caller must not change it)."""
        if not self.override:
            return self.payload
        return rules.apply_override(self.payload, self.override)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _heads(
    con: duckdb.DuckDBPyConnection, target: str, entity: str, intents: list[rules.WriteIntent]
) -> tuple[dict[tuple[str, str, str], rules.OutboxHead], set[str]]:
    """The newest row of each intent's record (one row per record, not the entity's history), and
    which of the keys the intents would take are already used (content gone back to an earlier
    version), the only keys `plan_enqueue` asks about."""
    heads: dict[tuple[str, str, str], rules.OutboxHead] = {}
    if not intents:
        return heads, set()
    for external_id, key, digest, sequence, status in con.execute(
        "SELECT external_id, arg_max(idempotency_key, sequence), arg_max(payload_hash, sequence), "
        "max(sequence), arg_max(status, sequence) FROM ops.outbox "
        "WHERE target = $target AND entity = $entity "
        "AND external_id IN (SELECT unnest($external_ids::VARCHAR[])) GROUP BY external_id",
        {
            "target": target,
            "entity": entity,
            "external_ids": [intent.external_id for intent in intents],
        },
    ).fetchall():
        heads[(target, entity, external_id)] = rules.OutboxHead(key, digest, sequence, status)
    candidates = [
        rules.idempotency_key(target, entity, intent.external_id, intent.content_hash)
        for intent in intents
    ]
    used = {
        key
        for (key,) in con.execute(
            "SELECT idempotency_key FROM ops.outbox "
            "WHERE idempotency_key IN (SELECT unnest($keys::VARCHAR[]))",
            {"keys": candidates},
        ).fetchall()
    }
    return heads, used


def enqueue(
    con: duckdb.DuckDBPyConnection,
    target: str,
    entity: str,
    intents: Iterable[rules.WriteIntent],
    run_id: str,
) -> rules.EnqueuePlan:
    """Add the intents that change something; mark what they replace as superseded."""
    intents = list(intents)
    for intent in intents:
        if (intent.target, intent.entity) != (target, entity):
            raise ValueError(
                f"intent for {intent.target}/{intent.entity} passed to the {target}/{entity} outbox"
            )
    heads, used = _heads(con, target, entity, intents)
    plan = rules.plan_enqueue(intents, heads, used)
    now = utc_now_naive()
    if plan.superseded_keys:
        con.execute(
            "UPDATE ops.outbox SET status = $status, resolution = 'superseded by newer content', "
            "resolved_at = $now WHERE idempotency_key IN (SELECT unnest($keys::VARCHAR[]))",
            {"status": rules.SUPERSEDED, "now": now, "keys": plan.superseded_keys},
        )
    if plan.new_rows:
        # One statement for the whole plan: each list is a column, unnested side by side.
        con.execute(
            "INSERT INTO ops.outbox (idempotency_key, target, entity, external_id, sequence, payload, "
            "payload_hash, source_ref, status, attempts, approval_rule, enqueued_run_id, enqueued_at, "
            f"order_id) SELECT *, {ORDER_ID_OF_SOURCE_REF} FROM (SELECT "
            "unnest($keys::VARCHAR[]), $target, $entity, unnest($external_ids::VARCHAR[]), "
            "unnest($sequences::BIGINT[]), unnest($payloads::VARCHAR[])::JSON, "
            "unnest($hashes::VARCHAR[]), unnest($source_refs::VARCHAR[]) AS source_ref, "
            "unnest($statuses::VARCHAR[]), 0, unnest($approval_rules::VARCHAR[]), $run_id, $now)",
            {
                "keys": [row.idempotency_key for row in plan.new_rows],
                "target": target,
                "entity": entity,
                "external_ids": [row.intent.external_id for row in plan.new_rows],
                "sequences": [row.sequence for row in plan.new_rows],
                "payloads": [_json(dict(row.intent.payload)) for row in plan.new_rows],
                "hashes": [row.intent.content_hash for row in plan.new_rows],
                "source_refs": [row.intent.source_ref for row in plan.new_rows],
                "statuses": [row.status for row in plan.new_rows],
                "approval_rules": [row.intent.approval_rule for row in plan.new_rows],
                "run_id": run_id,
                "now": now,
            },
        )
    return plan


def due(
    con: duckdb.DuckDBPyConnection,
    target: str,
    entity: str,
    keys: Iterable[str] | None = None,
) -> list[OutboxRow]:
    """Rows to send now (pending or failed), oldest intent first; optionally only `keys`."""
    rows = con.execute(
        "SELECT idempotency_key, target, entity, external_id, sequence, payload, status, attempts, "
        "override, source_ref FROM ops.outbox WHERE target = ? AND entity = ? AND status IN (?, ?) "
        "ORDER BY enqueued_at, external_id, sequence",
        [target, entity, *rules.DUE_STATUSES],
    ).fetchall()
    wanted = None if keys is None else set(keys)
    return [
        OutboxRow(
            key,
            row_target,
            row_entity,
            external_id,
            int(sequence),
            orjson.loads(payload),
            status,
            int(attempts),
            None if override is None else orjson.loads(override),
            source_ref,
        )
        for key, row_target, row_entity, external_id, sequence, payload, status, attempts, override, source_ref in rows
        if wanted is None or key in wanted
    ]


class Attempt(NamedTuple):
    """One write sent to the target: the row, what its outcome does to it, and when it was made."""

    row: OutboxRow
    transition: rules.Transition
    at: datetime


# The attempts of one chunk as a relation: each list parameter is a column, unnested side by side;
# `position` is the order the writes were made in.
_ATTEMPTS = (
    "SELECT unnest($positions::BIGINT[]) AS position, "
    "unnest($keys::VARCHAR[]) AS idempotency_key, "
    "unnest($targets::VARCHAR[]) AS target, "
    "unnest($entities::VARCHAR[]) AS entity, "
    "unnest($external_ids::VARCHAR[]) AS external_id, "
    "unnest($statuses::VARCHAR[]) AS status, "
    "unnest($attempts::INTEGER[]) AS attempts, "
    "unnest($error_classes::VARCHAR[]) AS error_class, "
    "unnest($target_statuses::INTEGER[]) AS target_status, "
    "unnest($target_messages::VARCHAR[]) AS target_message, "
    "unnest($target_record_ids::VARCHAR[]) AS target_record_id, "
    "unnest($attempted_at::TIMESTAMP[]) AS attempted_at"
)

_RECORD_STATUSES = f"""
WITH a AS ({_ATTEMPTS})
UPDATE ops.outbox SET
    status = a.status,
    attempts = a.attempts,
    error_class = a.error_class,
    target_status = a.target_status,
    target_message = a.target_message,
    target_record_id = coalesce(a.target_record_id, ops.outbox.target_record_id),
    last_run_id = $run_id,
    last_attempt_at = a.attempted_at,
    sent_at = CASE WHEN a.status = 'sent' THEN a.attempted_at ELSE ops.outbox.sent_at END,
    dead_at = CASE WHEN a.status = 'dead' THEN a.attempted_at ELSE ops.outbox.dead_at END
FROM a WHERE ops.outbox.idempotency_key = a.idempotency_key
"""

# A delivery resolves the record's dead letters that were open when it was made: those from earlier
# runs, and those made dead earlier in this chunk (not a later write of the chunk that failed). The
# first such delivery names itself in the resolution, as when attempts were recorded one by one.
_RESOLVE_DEAD_LETTERS = f"""
WITH a AS ({_ATTEMPTS}),
resolved AS (
    SELECT o.idempotency_key AS dead_key,
        arg_min(a.idempotency_key, a.position) AS by_key,
        arg_min(a.attempted_at, a.position) AS resolved_at
    FROM ops.outbox o
    JOIN a ON o.target = a.target AND o.entity = a.entity AND o.external_id = a.external_id
    LEFT JOIN a AS same ON same.idempotency_key = o.idempotency_key
    WHERE a.status = 'sent' AND o.status = 'dead' AND o.resolved_at IS NULL
        AND o.idempotency_key <> a.idempotency_key
        AND (same.position IS NULL OR same.position < a.position)
    GROUP BY o.idempotency_key
)
UPDATE ops.outbox SET
    resolution = 'a later write for the same record was delivered (' || resolved.by_key || ')',
    resolved_at = resolved.resolved_at
FROM resolved WHERE ops.outbox.idempotency_key = resolved.dead_key
RETURNING ops.outbox.idempotency_key
"""


def record_attempts(
    con: duckdb.DuckDBPyConnection, attempts: Sequence[Attempt], run_id: str
) -> int:
    """Write a chunk of attempts' results in two statements, in the caller's transaction; every
    delivery auto-resolves its record's open dead letters.

    The same end state as recording them one by one in order. Returns how many dead letters the
    deliveries resolved.
    """
    if not attempts:
        return 0
    keys = [attempt.row.idempotency_key for attempt in attempts]
    if len(set(keys)) != len(keys):
        raise ValueError("the same outbox row attempted twice in one chunk")
    columns = {
        "positions": list(range(len(attempts))),
        "keys": keys,
        "targets": [attempt.row.target for attempt in attempts],
        "entities": [attempt.row.entity for attempt in attempts],
        "external_ids": [attempt.row.external_id for attempt in attempts],
        "statuses": [attempt.transition.status for attempt in attempts],
        "attempts": [attempt.transition.attempts for attempt in attempts],
        "error_classes": [attempt.transition.error_class for attempt in attempts],
        "target_statuses": [attempt.transition.target_status for attempt in attempts],
        "target_messages": [attempt.transition.target_message for attempt in attempts],
        "target_record_ids": [attempt.transition.target_record_id for attempt in attempts],
        "attempted_at": [attempt.at for attempt in attempts],
    }
    con.execute(_RECORD_STATUSES, {**columns, "run_id": run_id})
    if not any(attempt.transition.status == rules.SENT for attempt in attempts):
        return 0
    return len(con.execute(_RESOLVE_DEAD_LETTERS, columns).fetchall())


def record_attempt(
    con: duckdb.DuckDBPyConnection,
    row: OutboxRow,
    transition: rules.Transition,
    run_id: str,
    at: datetime | None = None,
) -> int:
    """Write one attempt's result; a delivery auto-resolves the record's open dead letters.

    Returns how many dead letters that resolved.
    """
    return record_attempts(con, [Attempt(row, transition, at or utc_now_naive())], run_id)


def unbuilt_or_refused(
    con: duckdb.DuckDBPyConnection, exclude: tuple[str, str]
) -> dict[tuple[str, str, str], str]:
    """Every record another planner could not build (mapping quarantine) or whose write is an open
    dead letter, with why: the writes that reference one of them must wait (outside `exclude`)."""
    target, entity = exclude
    return {
        (row_target, row_entity, external_id): reason
        for row_target, row_entity, external_id, reason in con.execute(
            "SELECT target, entity, external_id, reason FROM ops.mapping_quarantine "
            "WHERE NOT (target = ? AND entity = ?) "
            "UNION ALL SELECT target, entity, external_id, 'dead letter: ' || error_class "
            "FROM ops.outbox WHERE status = 'dead' AND resolved_at IS NULL "
            "AND NOT (target = ? AND entity = ?)",
            [target, entity, target, entity],
        ).fetchall()
    }


def counts_by_status(
    con: duckdb.DuckDBPyConnection, target: str | None = None, entity: str | None = None
) -> dict[str, int]:
    where, params = _filters(target=target, entity=entity)
    return {
        status: int(count)
        for status, count in con.execute(
            f"SELECT status, count(*) FROM ops.outbox{where} GROUP BY status", params
        ).fetchall()
    }


def _filters(
    target: str | None = None,
    entity: str | None = None,
    error_class: str | None = None,
    status: str | None = None,
    open_only: bool = False,
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (
        ("target", target),
        ("entity", entity),
        ("error_class", error_class),
        ("status", status),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if open_only:
        clauses.append("resolved_at IS NULL")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def list_rows(
    con: duckdb.DuckDBPyConnection,
    status: str | None = None,
    target: str | None = None,
    entity: str | None = None,
    error_class: str | None = None,
    open_only: bool = False,
) -> list[dict[str, Any]]:
    where, params = _filters(target, entity, error_class, status, open_only)
    cursor = con.execute(
        f"SELECT {', '.join(ROW_COLUMNS)} FROM ops.outbox{where} ORDER BY enqueued_at, idempotency_key",
        params,
    )
    return [dict(zip(ROW_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def get_row(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any]:
    row = con.execute(
        f"SELECT {', '.join(ROW_COLUMNS)} FROM ops.outbox WHERE idempotency_key = ?", [key]
    ).fetchone()
    if row is None:
        raise OutboxError(f"no outbox row with idempotency key {key!r}")
    return dict(zip(ROW_COLUMNS, row, strict=True))


def _audit_action(
    con: duckdb.DuckDBPyConnection,
    actor: str,
    action: str,
    key: str,
    reason: str | None,
    details: Mapping[str, Any] | None = None,
) -> None:
    con.execute(
        "INSERT INTO ops.operator_actions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [uuid.uuid4().hex, utc_now_naive(), actor, action, key, reason, _json(dict(details or {}))],
    )


def _require_actor(actor: str, reason: str | None, needs_reason: bool) -> None:
    if not actor.strip():
        raise OutboxError(
            "say who you are (--by): every operator action is audited with its author"
        )
    if needs_reason and not (reason or "").strip():
        raise OutboxError("give a reason (--reason): it is kept with the decision")


def decide(
    con: duckdb.DuckDBPyConnection, key: str, approve: bool, actor: str, reason: str
) -> dict[str, Any]:
    """Approve (the write becomes pending and is sent on the next delivery) or reject it."""
    _require_actor(actor, reason, needs_reason=True)
    row = get_row(con, key)
    if row["status"] != rules.AWAITING_APPROVAL:
        raise OutboxError(f"{key} is {row['status']}, not awaiting approval: nothing to decide")
    requested_by = {a["actor"] for a in actions(con, key) if a["action"] == "request"}
    if approve and actor in requested_by:
        raise OutboxError(
            f"{actor} requested this write and cannot also approve it: another person must (four eyes)"
        )
    status = rules.PENDING if approve else rules.REJECTED
    now = utc_now_naive()
    con.execute(
        "UPDATE ops.outbox SET status = ?, decided_by = ?, decision_reason = ?, decided_at = ?, "
        "resolved_at = CASE WHEN ? = 'rejected' THEN ? ELSE resolved_at END WHERE idempotency_key = ?",
        [status, actor, reason, now, status, now, key],
    )
    _audit_action(
        con,
        actor,
        "approve" if approve else "reject",
        key,
        reason,
        {"approval_rule": row["approval_rule"]},
    )
    return get_row(con, key)


def retry(
    con: duckdb.DuckDBPyConnection,
    key: str,
    actor: str,
    reason: str | None = None,
    override: Mapping[str, Any] | None = None,
    owner_approved_by: str | None = None,
    registry: OwnershipRegistry | None = None,
) -> dict[str, Any]:
    """Put a dead letter back in the queue, optionally with field edits (audited with before and after).

    An edit of a field whose attribute's system of record is not the target (the storefront's email
    on an ERP customer) is refused (OwnershipRefused, nothing changed) unless `owner_approved_by`
    names that attribute's registered owner (email or key); the approval is kept in the audit row.
    """
    _require_actor(actor, reason, needs_reason=bool(override))
    row = get_row(con, key)
    if row["status"] != rules.DEAD:
        raise OutboxError(f"{key} is {row['status']}, not a dead letter: nothing to retry")
    if row["resolved_at"] is not None:
        raise OutboxError(f"{key} was already resolved: {row['resolution']}")
    try:
        approvals = (
            check_override(
                registry or load_ownership(),
                row["target"],
                row["entity"],
                override,
                owner_approved_by,
            )
            if override
            else []
        )
    except OwnershipRefused as refused:
        raise OutboxError(f"not retried, nothing changed: {refused}") from None
    previous = orjson.loads(row["override"]) if row["override"] else {}
    merged = {**previous, **(override or {})}
    payload = orjson.loads(row["payload"])
    con.execute(
        "UPDATE ops.outbox SET status = 'pending', attempts = 0, override = ? WHERE idempotency_key = ?",
        [_json(merged) if merged else None, key],
    )
    details: dict[str, Any] = {"error_class": row["error_class"], "message": row["target_message"]}
    if override:
        details["override"] = dict(override)
        details["before"] = {
            field: _get_dotted(rules.apply_override(payload, previous), field) for field in override
        }
        details["payload_hash_after"] = payload_hash(rules.apply_override(payload, merged))
    if approvals:
        details["owner_approved_by"] = approvals[0].approved_by
        details["owner_approvals"] = [approval.as_dict() for approval in approvals]
    _audit_action(con, actor, "edit_and_retry" if override else "retry", key, reason, details)
    return get_row(con, key)


def resolve(con: duckdb.DuckDBPyConnection, key: str, actor: str, reason: str) -> dict[str, Any]:
    """Close a dead letter by hand (fixed in the target directly, or not wanted): it stays for the record."""
    _require_actor(actor, reason, needs_reason=True)
    row = get_row(con, key)
    if row["status"] != rules.DEAD or row["resolved_at"] is not None:
        raise OutboxError(f"{key} is not an open dead letter (status {row['status']})")
    con.execute(
        "UPDATE ops.outbox SET resolution = ?, resolved_at = ? WHERE idempotency_key = ?",
        [f"resolved by {actor}: {reason}", utc_now_naive(), key],
    )
    _audit_action(con, actor, "resolve", key, reason)
    return get_row(con, key)


def request_write(
    con: duckdb.DuckDBPyConnection,
    intent: rules.WriteIntent,
    actor: str,
    reason: str,
    run_id: str = "operator",
) -> rules.EnqueuePlan:
    """An operator-initiated write (e.g. a credit limit change): enqueued like any other, audited.

    Held to the same ownership rule as the pipeline's writes (delivery/ownership_guard.py).
    """
    _require_actor(actor, reason, needs_reason=True)
    refusal = write_refusal(intent, load_ownership())
    if refusal is not None:
        raise OutboxError(f"not requested: {refusal}")
    plan = enqueue(con, intent.target, intent.entity, [intent], run_id)
    for row in plan.new_rows:
        _audit_action(
            con,
            actor,
            "request",
            row.idempotency_key,
            reason,
            {"payload": dict(intent.payload), "approval_rule": intent.approval_rule},
        )
    return plan


def actions(con: duckdb.DuckDBPyConnection, key: str | None = None) -> list[dict[str, Any]]:
    columns = ("action_id", "acted_at", "actor", "action", "idempotency_key", "reason", "details")
    where, params = (" WHERE idempotency_key = ?", [key]) if key else ("", [])
    return [
        dict(zip(columns, row, strict=True))
        for row in con.execute(
            f"SELECT {', '.join(columns)} FROM ops.operator_actions{where} ORDER BY acted_at",
            params,
        ).fetchall()
    ]


def _get_dotted(payload: Mapping[str, Any], dotted: str) -> Any:
    node: Any = payload
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def find_key(con: duckdb.DuckDBPyConnection, prefix: str) -> str:
    """The idempotency key that is `prefix` or starts with it (operators type the start of a long key)."""
    rows = con.execute(
        "SELECT idempotency_key FROM ops.outbox WHERE idempotency_key = ? OR starts_with(idempotency_key, ?) "
        "ORDER BY idempotency_key LIMIT 6",
        [prefix, prefix],
    ).fetchall()
    keys = [row[0] for row in rows]
    if prefix in keys:
        return prefix
    if not keys:
        raise OutboxError(f"no outbox row whose idempotency key starts with {prefix!r}")
    if len(keys) > 1:
        shown = ", ".join(keys[:5])
        raise OutboxError(f"{prefix!r} matches several rows ({shown}...): give more of the key")
    return keys[0]
