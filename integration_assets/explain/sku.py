"""explain sku SKU: its catalog history, every stock movement, positions, oversells, drift, reservations."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from integration_assets.explain.exceptions import exceptions_for, open_exceptions
from integration_assets.explain.order import ExplainNotFound, _plain
from integration_assets.explain.reading import rows


def explain_sku(con: duckdb.DuckDBPyConnection, sku: str) -> dict[str, Any]:
    sku = str(sku).strip()
    history = rows(
        con,
        "core.product_history",
        "SELECT product_id, variant_id, price_minor, currency, available, category, bundle_components,"
        " valid_from, valid_to, raw_ref FROM core.product_history WHERE sku = ? ORDER BY valid_from",
        [sku],
    )
    moves = rows(
        con,
        "core.inventory_ledger",
        "SELECT movement_id, occurred_at, location, kind, quantity, on_hand_delta, committed_delta,"
        " source_ref, CAST(order_id AS BIGINT) AS order_id FROM core.inventory_ledger WHERE sku = ?"
        " ORDER BY occurred_at, movement_id",
        [sku],
    )
    if not history and not moves:
        raise ExplainNotFound(
            f"no SKU {sku} in the warehouse (not in core.product_history or core.inventory_ledger)"
        )
    position = rows(
        con,
        "core.inventory_positions",
        "SELECT on_hand, committed, available, on_hand_by_location FROM core.inventory_positions WHERE sku = ?",
        [sku],
    )
    oversells = rows(
        con,
        "core.inventory_oversells",
        "SELECT started_at, ended_at, lowest_available, orders, channels FROM core.inventory_oversells"
        " WHERE sku = ? ORDER BY started_at",
        [sku],
    )
    drift = rows(
        con,
        "core.inventory_drift",
        "SELECT location, counted_at, ledger_on_hand, counted, delta, cause, explanation"
        " FROM core.inventory_drift WHERE sku = ? ORDER BY counted_at, location",
        [sku],
    )
    reservations = []
    for row in rows(
        con,
        "ops.outbox",
        "SELECT external_id, status, payload, sent_at, target_message FROM ops.outbox"
        " WHERE target = 'wms' AND entity = 'reservation' ORDER BY external_id, sequence",
    ):
        payload = json.loads(row["payload"])
        for line in payload.get("lines") or []:
            if line.get("sku") == sku:
                reservations.append(
                    {
                        "reservation": row["external_id"],
                        "order_id": payload.get("order_id"),
                        "quantity": line.get("quantity"),
                        "status": row["status"],
                        "target_message": row["target_message"],
                    }
                )
    if position:
        position[0]["on_hand_by_location"] = json.loads(position[0]["on_hand_by_location"] or "{}")
    return {
        "kind": "sku",
        "id": sku,
        "product_history": [_plain(h) for h in history],
        "position": position[0] if position else None,
        "inventory_moves": [_plain(m) for m in moves],
        "oversells": [_plain(o) for o in oversells],
        "drift": [_plain(d) for d in drift],
        "reservations": reservations,
        "exceptions": exceptions_for(open_exceptions(con), "sku", sku),
    }
