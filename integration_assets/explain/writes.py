"""What was sent where: ops.outbox rows for an entity, their HTTP exchanges and operator decisions."""

from __future__ import annotations

import json
import re
from typing import Any

import duckdb

from integration_assets.explain.exceptions import CUSTOMER_ENTITIES
from integration_assets.explain.reading import rows
from integration_assets.explain.timeline import iso

WRITE_COLUMNS = (
    "idempotency_key, target, entity, external_id, sequence, payload, source_ref, status, attempts,"
    " error_class, target_status, target_message, target_record_id, approval_rule, decided_by,"
    " resolution, enqueued_at, last_attempt_at, sent_at, dead_at"
)


def _with_history(con: duckdb.DuckDBPyConnection, found: list[dict[str, Any]]) -> list[dict]:
    keys = [row["idempotency_key"] for row in found]
    exchanges: dict[str, list[dict]] = {key: [] for key in keys}
    actions: dict[str, list[dict]] = {key: [] for key in keys}
    if keys:
        for exchange in rows(
            con,
            "ops.audit_log",
            "SELECT idempotency_key, occurred_at, system, method, endpoint, status, attempt,"
            " response_short, run_id FROM ops.audit_log WHERE idempotency_key IN"
            " (SELECT unnest(?::VARCHAR[])) ORDER BY occurred_at, audit_id",
            [keys],
        ):
            key = exchange.pop("idempotency_key")
            exchange["occurred_at"] = iso(exchange["occurred_at"])
            exchanges[key].append(exchange)
        for action in rows(
            con,
            "ops.operator_actions",
            "SELECT idempotency_key, acted_at, actor, action, reason FROM ops.operator_actions"
            " WHERE idempotency_key IN (SELECT unnest(?::VARCHAR[])) ORDER BY acted_at, action_id",
            [keys],
        ):
            key = action.pop("idempotency_key")
            action["acted_at"] = iso(action["acted_at"])
            actions[key].append(action)
    writes = []
    for row in found:
        write = {
            key: iso(value) if hasattr(value, "isoformat") else value for key, value in row.items()
        }
        write["payload"] = json.loads(write["payload"]) if write["payload"] else None
        write["exchanges"] = exchanges[row["idempotency_key"]]
        write["operator_actions"] = actions[row["idempotency_key"]]
        writes.append(write)
    return writes


def order_writes(con: duckdb.DuckDBPyConnection, order_id: int) -> list[dict[str, Any]]:
    """Every write built from the order (sales order, invoice, payments, credit notes, reservation)."""
    found = rows(
        con,
        "ops.outbox",
        f"SELECT {WRITE_COLUMNS} FROM ops.outbox WHERE source_ref LIKE ? OR"
        " (entity = 'sales_order' AND external_id = ?) ORDER BY enqueued_at, target, entity, sequence",
        [f"core/order_heads:{order_id}@%", str(order_id)],
    )
    return _with_history(con, found)


def customer_writes(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[dict[str, Any]]:
    """Every write of the customer's own record (ERP customer, CRM account/contact, credit limit)."""
    found = rows(
        con,
        "ops.outbox",
        f"SELECT {WRITE_COLUMNS} FROM ops.outbox WHERE regexp_matches(source_ref, ?) OR"
        " (entity IN (SELECT unnest(?::VARCHAR[])) AND external_id = ?)"
        " ORDER BY enqueued_at, target, entity, sequence",
        [
            f"^core/customers:{re.escape(customer_id)}($|[@ /])",
            list(CUSTOMER_ENTITIES),
            str(customer_id),
        ],
    )
    return _with_history(con, found)


def targets_knowledge(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each target system knows from us: per target, each document's latest write and outcome.

    Pure. `as_of` is when the newest of those writes was last attempted (our clock, not the shop's).
    """
    latest: dict[str, dict[tuple[str, str], dict]] = {}
    for write in sorted(writes, key=lambda w: (w["sequence"], w["enqueued_at"] or "")):
        latest.setdefault(write["target"], {})[(write["entity"], write["external_id"])] = write
    known = []
    for target in sorted(latest):
        documents = latest[target].values()
        state = "; ".join(
            f"{w['entity']} {w['external_id']}: {w['status']}"
            + (
                f" ({w['target_record_id']})"
                if w["status"] == "sent" and w["target_record_id"]
                else ""
            )
            for w in documents
        )
        times = [w["sent_at"] or w["last_attempt_at"] or w["enqueued_at"] for w in documents]
        known.append(
            {
                "system": target,
                "state": state,
                "as_of": max((t for t in times if t), default=None),
                "ref": "ops.outbox",
            }
        )
    return known
