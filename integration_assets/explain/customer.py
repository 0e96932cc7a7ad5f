"""explain customer ID: the golden record, where each attribute came from, and what was written."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from integration_assets.explain.exceptions import exceptions_for, open_exceptions
from integration_assets.explain.order import ExplainNotFound, _plain
from integration_assets.explain.reading import rows
from integration_assets.explain.timeline import iso
from integration_assets.explain.writes import customer_writes, targets_knowledge

ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "region", "postal_code", "country")


def attribute_origins(golden: dict[str, Any]) -> list[dict[str, Any]]:
    """Each golden attribute with its value and the system it came from (pure)."""
    sources = golden.get("attribute_sources") or {}
    if isinstance(sources, str):
        sources = json.loads(sources)
    origins = []
    for attribute, system in sorted(sources.items()):
        if attribute == "address":
            value = ", ".join(str(golden[f]) for f in ADDRESS_FIELDS if golden.get(f))
        else:
            value = golden.get(attribute)
        origins.append({"attribute": attribute, "value": value, "system": system})
    return origins


def explain_customer(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, Any]:
    customer_id = str(customer_id).strip()
    found = rows(
        con, "core.customers", "SELECT * FROM core.customers WHERE customer_id = ?", [customer_id]
    )
    references = rows(
        con,
        "staging.customer_references",
        "SELECT system, source_record_id, modified_at, raw_ref FROM staging.customer_references"
        " WHERE customer_id = ? ORDER BY modified_at, system, raw_ref",
        [customer_id],
    )
    if not found and not references:
        raise ExplainNotFound(f"no customer {customer_id} in the warehouse (core.customers)")
    golden = found[0] if found else {}
    conflicts = rows(
        con,
        "core.customer_conflicts",
        "SELECT attribute, chosen_system, chosen_value, overridden_system, overridden_value, rule"
        " FROM core.customer_conflicts WHERE customer_id = ? ORDER BY attribute, overridden_system",
        [customer_id],
    )
    email = golden.get("email")
    sales_orders = {
        row["external_id"]
        for row in rows(
            con,
            "ops.outbox",
            "SELECT DISTINCT external_id FROM ops.outbox WHERE entity = 'sales_order'"
            " AND json_extract_string(payload, '$.customer_eid') = ?",
            [customer_id],
        )
    }
    orders = rows(
        con,
        "core.orders_current",
        "SELECT order_id, name, created_at, financial_status, fulfillment_status, total_price_minor,"
        " currency, refunded_minor FROM core.orders_current"
        " WHERE lower(email) = lower(?) OR CAST(order_id AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))"
        " ORDER BY created_at, order_id",
        [email or "", sorted(sales_orders)],
    )
    writes = customer_writes(con, customer_id)
    exceptions = open_exceptions(con)
    order_ids = {str(order["order_id"]) for order in orders}
    return {
        "kind": "customer",
        "id": customer_id,
        "golden": _plain(golden) if golden else None,
        "attributes": attribute_origins(golden) if golden else [],
        "sources": list(golden.get("sources") or []),
        "references": [_plain(r) for r in references],
        "conflicts": conflicts,
        "orders": [
            {
                **_plain(order),
                "order_id": str(order["order_id"]),
                "command": f"integration-assets explain order {order['order_id']}",
            }
            for order in orders
        ],
        "writes": writes,
        "knowledge": [
            *[
                {
                    "system": r["system"],
                    "state": f"record {r['source_record_id']} (as we last read it)",
                    "as_of": iso(r["modified_at"]),
                    "ref": r["raw_ref"],
                }
                for r in {r["system"]: r for r in references}.values()
            ],
            *targets_knowledge(writes),
        ],
        "exceptions": [
            *exceptions_for(exceptions, "customer", customer_id),
            *[e for e in exceptions if e["entity"] == "order" and e["entity_id"] in order_ids],
        ],
    }
