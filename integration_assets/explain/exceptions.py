"""Open exceptions: everything that waits for a person, each named by the entity it concerns.

Kinds: `quarantine` (a staged record refused by its contract), `file_quarantine` (a WMS file refused
whole), `dead_letter` (a write the target refused), `awaiting_approval`, `mapping_quarantine` (a write
that could not be built), `stuck_return`, `oversell`, `count_drift` (unexplained) and
`reconciliation` (a money difference no rule explains). Each exception carries the exact
`integration-assets explain ...` command that tells its entity's whole story.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from integration_assets.explain.reading import rows
from integration_assets.explain.timeline import iso, money
from integration_assets.streams.inventory_ledger import NAMED_SHORT_ORDERS, short_orders_text
from integration_assets.streams.returns import STUCK_RULES

ORDER_REF = re.compile(r"^core/order_heads:(\d+)@")
CUSTOMER_REF = re.compile(r"^core/customers:([^@\s/]+)")
CUSTOMER_ENTITIES = ("customer", "account", "contact", "credit_limit")


def explain_command(entity: str | None, entity_id: str | None) -> str | None:
    if entity not in ("order", "customer", "sku") or not entity_id:
        return None
    return f"integration-assets explain {entity} {entity_id}"


def write_subject(entity: str, external_id: str, source_ref: str) -> tuple[str | None, str | None]:
    """The order or customer a write (or a write not built) is about, from how it was sourced."""
    if match := ORDER_REF.match(source_ref or ""):
        return "order", match.group(1)
    if match := CUSTOMER_REF.match(source_ref or ""):
        return "customer", match.group(1)
    if entity in CUSTOMER_ENTITIES:
        return "customer", external_id
    if entity == "sales_order":
        return "order", external_id
    return None, None


def _exception(
    kind, entity, entity_id, detail, ref, since, stream=None, writes=None
) -> dict[str, Any]:
    """One open exception. `stream` (the source stream a quarantined record or file came from) and
    `writes` (the `target/entity` of an outbox write) say whose it is (`owners.exception_owner`)."""
    entity_id = None if entity_id is None else str(entity_id)
    return {
        "kind": kind,
        "entity": entity,
        "entity_id": entity_id,
        "detail": detail,
        "ref": ref,
        "since": iso(since),
        "command": explain_command(entity, entity_id),
        "stream": stream,
        "writes": writes,
    }


def _quarantine(con) -> list[dict[str, Any]]:
    found = []
    for row in rows(
        con,
        "ops.quarantine",
        "SELECT stream, record_key, rule, field, message, raw_ref, quarantined_at FROM ops.quarantine"
        " ORDER BY quarantined_at, raw_ref",
    ):
        entity = (
            "order"
            if row["stream"].startswith("storefront/orders")
            else "customer"
            if row["stream"].startswith(("crm/", "erp/", "customers"))
            else None
        )
        found.append(
            _exception(
                "quarantine",
                entity,
                row["record_key"],
                f"{row['stream']}: {row['rule']} on {row['field']!r}: {row['message']}",
                row["raw_ref"],
                row["quarantined_at"],
                stream=row["stream"],
            )
        )
    return found


def _file_quarantine(con) -> list[dict[str, Any]]:
    return [
        _exception(
            "file_quarantine",
            None,
            None,
            f"WMS file {row['file_name']}: {row['rule']}: {row['reason']}",
            row["raw_ref"],
            row["quarantined_at"],
            stream="warehouse/files",
        )
        for row in rows(
            con,
            "ops.file_quarantine",
            "SELECT file_name, rule, reason, raw_ref, quarantined_at FROM ops.file_quarantine"
            " ORDER BY quarantined_at, file_name",
        )
    ]


def _outbox(con) -> list[dict[str, Any]]:
    found = []
    for row in rows(
        con,
        "ops.outbox",
        "SELECT idempotency_key, target, entity, external_id, source_ref, status, error_class,"
        " target_message, approval_rule, dead_at, enqueued_at FROM ops.outbox"
        " WHERE resolution IS NULL AND status IN ('dead', 'awaiting_approval')"
        " ORDER BY coalesce(dead_at, enqueued_at), idempotency_key",
    ):
        entity, entity_id = write_subject(row["entity"], row["external_id"], row["source_ref"])
        if row["status"] == "dead":
            kind = "dead_letter"
            detail = f"{row['target']}/{row['entity']} {row['external_id']}: {row['error_class']}: {row['target_message']}"
        else:
            kind = "awaiting_approval"
            detail = (
                f"{row['target']}/{row['entity']} {row['external_id']} ({row['approval_rule']})"
            )
        found.append(
            _exception(
                kind,
                entity,
                entity_id,
                detail,
                row["idempotency_key"],
                row["dead_at"] or row["enqueued_at"],
                writes=f"{row['target']}/{row['entity']}",
            )
        )
    return found


def _mapping_quarantine(con) -> list[dict[str, Any]]:
    found = []
    for row in rows(
        con,
        "ops.mapping_quarantine",
        "SELECT target, entity, external_id, reason, source_ref, quarantined_at"
        " FROM ops.mapping_quarantine ORDER BY quarantined_at, target, entity, external_id",
    ):
        entity, entity_id = write_subject(row["entity"], row["external_id"], row["source_ref"])
        found.append(
            _exception(
                "mapping_quarantine",
                entity,
                entity_id,
                f"{row['target']}/{row['entity']} {row['external_id']} not built: {row['reason']}",
                row["source_ref"],
                row["quarantined_at"],
                writes=f"{row['target']}/{row['entity']}",
            )
        )
    return found


def _stuck_returns(con) -> list[dict[str, Any]]:
    found = []
    for row in rows(
        con,
        "core.returns",
        "SELECT return_id, order_id, sku, stage, stage_entered_at, age_hours, flags FROM core.returns"
        f" WHERE len(list_intersect(flags, {list(STUCK_RULES)!r})) > 0 ORDER BY order_id, return_id",
    ):
        rules = [flag for flag in row["flags"] if flag in STUCK_RULES]
        found.append(
            _exception(
                "stuck_return",
                "order",
                row["order_id"],
                f"{', '.join(rules)}: {row['return_id']} ({row['sku']}) {float(row['age_hours']):.1f} h in {row['stage']}",
                row["return_id"],
                row["stage_entered_at"],
            )
        )
    return found


def _oversell_detail(row: dict[str, Any]) -> str:
    """`LIMITED-ED: available -2 at lowest, oversold since 2026-11-20T20:05:00Z, orders [1 (web), 2 (pos)]`."""
    if row["ended_at"] is None:
        when = f"oversold since {iso(row['started_at'])}"
    else:
        when = f"oversold from {iso(row['started_at'])} to {iso(row['ended_at'])}"
    orders = short_orders_text(row["named_orders"], row["named_channels"], row["short_orders"])
    return f"{row['sku']}: available {row['lowest_available']} at lowest, {when}, orders {orders}"


def _inventory(con) -> list[dict[str, Any]]:
    # One exception per oversell episode, referred to by its SKU and start so that it keeps its key
    # while it grows; the first short orders are named, the rest counted (the detail stays bounded).
    found = [
        _exception(
            "oversell",
            "sku",
            row["sku"],
            _oversell_detail(row),
            f"core/inventory_oversells:{row['sku']}@{iso(row['started_at'])}",
            row["started_at"],
        )
        for row in rows(
            con,
            "core.inventory_oversells",
            "SELECT sku, started_at, ended_at, lowest_available, orders[1:?] AS named_orders,"
            " channels[1:?] AS named_channels, len(orders) AS short_orders"
            " FROM core.inventory_oversells ORDER BY started_at, sku",
            [NAMED_SHORT_ORDERS, NAMED_SHORT_ORDERS],
        )
    ]
    found += [
        _exception(
            "count_drift",
            "sku",
            row["sku"],
            f"{row['sku']} at {row['location']}: counted {row['counted']}, ledger says"
            f" {row['ledger_on_hand']} ({int(row['delta']):+d}): {row['explanation'] or 'no rule explains it'}",
            None,
            row["counted_at"],
        )
        for row in rows(
            con,
            "core.inventory_drift",
            "SELECT sku, location, counted_at, ledger_on_hand, counted, delta, explanation FROM core.inventory_drift"
            " WHERE cause = 'unexplained' ORDER BY counted_at, sku, location",
        )
    ]
    return found


def _reconciliation(con) -> list[dict[str, Any]]:
    return [
        _exception(
            "reconciliation",
            "order" if row["order_id"] is not None else None,
            row["order_id"],
            f"{row['rule']}: {money(row['amount_minor'], row['currency'])}: {row['detail']}",
            None,
            None,
        )
        for row in rows(
            con,
            "core.payment_reconciliation",
            "SELECT order_id, rule, amount_minor, currency, detail FROM core.payment_reconciliation"
            " WHERE NOT explained ORDER BY order_id, rule",
        )
    ]


def open_exceptions(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every open exception in the warehouse, grouped by kind, oldest first within a kind."""
    return [
        *_quarantine(con),
        *_file_quarantine(con),
        *_outbox(con),
        *_mapping_quarantine(con),
        *_stuck_returns(con),
        *_inventory(con),
        *_reconciliation(con),
    ]


def exceptions_for(
    exceptions: list[dict[str, Any]], entity: str, entity_id: str
) -> list[dict[str, Any]]:
    return [
        item
        for item in exceptions
        if item["entity"] == entity and item["entity_id"] == str(entity_id)
    ]
