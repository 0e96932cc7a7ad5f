"""explain order ID: the order's whole story, from every system, read from the warehouse."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import duckdb

from integration_assets.explain.describe import describe_event, line_skus
from integration_assets.explain.exceptions import exceptions_for, open_exceptions
from integration_assets.explain.reading import rows
from integration_assets.explain.timeline import Entry, in_time_order, iso, knowledge, money
from integration_assets.explain.writes import order_writes, targets_knowledge
from integration_assets.streams.money import MoneyFormatError, to_minor_units


class ExplainNotFound(LookupError):
    """The warehouse knows nothing about the entity asked for."""


def _order_id(value: str | int) -> int:
    try:
        return int(str(value).strip().lstrip("#"))
    except ValueError:
        raise ExplainNotFound(f"{value!r} is not an order id (a number like 5100001000)") from None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as ISO strings, JSON text as values, lists as lists: ready for --json."""
    out = {}
    for key, value in row.items():
        if hasattr(value, "isoformat"):
            value = iso(value)
        elif key in ("before", "after", "snapshot", "payload", "attribute_sources") and isinstance(
            value, str
        ):
            value = json.loads(value)
        out[key] = value
    return out


def _versions(con, order_id: int) -> tuple[list[dict], list[dict]]:
    staged = rows(
        con,
        "staging.storefront_orders",
        "SELECT updated_at, financial_status, fulfillment_status, total_price_minor, currency, raw_ref,"
        " quality_flags FROM staging.storefront_orders WHERE order_id = ? ORDER BY updated_at, payload_hash",
        [order_id],
    )
    quarantined = rows(
        con,
        "ops.quarantine",
        "SELECT rule, field, message, raw_ref, quarantined_at FROM ops.quarantine"
        " WHERE stream LIKE 'storefront/orders%' AND record_key = ? ORDER BY quarantined_at, raw_ref",
        [str(order_id)],
    )
    return staged, quarantined


def _storefront(events: list[dict], versions: list[dict], currency: str | None) -> list[Entry]:
    skus = line_skus(events)
    entries = [
        Entry(
            e["occurred_at"],
            "storefront",
            e["event_type"],
            describe_event(e, currency, skus),
            e["raw_ref"],
        )
        for e in events
    ]
    # The storefront's state as of each version (knowledge only: the events above tell the changes).
    entries += [
        Entry(
            v["updated_at"],
            "storefront",
            "version",
            "",
            v["raw_ref"],
            f"{v['financial_status']}, {v['fulfillment_status'] or 'unfulfilled'},"
            f" total {money(v['total_price_minor'], v['currency'])}",
        )
        for v in versions
    ]
    return entries


def _payments(con, order_id: int) -> dict[str, Any]:
    objects = rows(
        con,
        "staging.payments_objects",
        "SELECT resource, object_id, created, amount_minor, currency, status, raw_ref, staged_at"
        " FROM staging.payments_objects WHERE order_id = ? ORDER BY resource, object_id, staged_at, raw_ref",
        [order_id],
    )
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    first_ref: dict[tuple[str, str], str] = {}
    for obj in objects:
        key = (obj["resource"], obj["object_id"])
        first_ref.setdefault(key, obj["raw_ref"])
        latest[key] = {**obj, "first_raw_ref": first_ref[key]}
    ledger = rows(
        con,
        "core.financial_ledger",
        "SELECT entry_id, kind, amount_minor, currency, occurred_at, balance_transaction, source, payout"
        " FROM core.financial_ledger WHERE order_id = ? ORDER BY occurred_at, entry_id",
        [order_id],
    )
    payout_ids = sorted({entry["payout"] for entry in ledger if entry["payout"]})
    payouts = []
    for payout_id in payout_ids:
        found = rows(
            con,
            "staging.payments_objects",
            "SELECT object_id, created, amount_minor, currency, status, raw_ref, payload"
            " FROM staging.payments_objects WHERE resource = 'payouts' AND object_id = ?"
            " ORDER BY staged_at DESC, raw_ref DESC LIMIT 1",
            [payout_id],
        )
        for payout in found:
            payload = json.loads(payout.pop("payload"))
            payout["arrival_date"] = payload.get("arrival_date")
            payouts.append(payout)
    by_resource: dict[str, list[dict]] = defaultdict(list)
    for (resource, _), obj in sorted(latest.items()):
        by_resource[resource].append(obj)
    return {
        "charges": by_resource.get("charges", []),
        "refunds": by_resource.get("refunds", []),
        "disputes": by_resource.get("disputes", []),
        "ledger": ledger,
        "payouts": payouts,
    }


def _payment_entries(payments: dict[str, Any]) -> list[Entry]:
    entries = []
    names = {"charges": "charge", "refunds": "refund", "disputes": "dispute"}
    for resource, kind in names.items():
        for obj in payments[resource]:
            entries.append(
                Entry(
                    obj["created"],
                    "payments",
                    kind,
                    f"{kind} {obj['object_id']} {money(obj['amount_minor'], obj['currency'])}: {obj['status']}",
                    obj["raw_ref"],
                )
            )
    for payout in payments["payouts"]:
        entries.append(
            Entry(
                payout["created"],
                "payments",
                "payout",
                f"payout {payout['object_id']} {money(payout['amount_minor'], payout['currency'])}:"
                f" {payout['status']} (the order's money went into it)",
                payout["raw_ref"],
            )
        )
    charged = sum(o["amount_minor"] or 0 for o in payments["charges"])
    refunded = sum(o["amount_minor"] or 0 for o in payments["refunds"])
    currency = next((o["currency"] for o in payments["charges"]), None)
    state = f"charged {money(charged, currency)}, refunded {money(refunded, currency)}"
    for dispute in payments["disputes"]:
        state += f", disputed {money(dispute['amount_minor'], dispute['currency'])} ({dispute['status']})"
    newest = [e for e in entries if e.at is not None]
    if newest:
        last = in_time_order(newest)[-1]
        entries.append(Entry(last.at, "payments", "state", "", last.ref, state))
    return entries


def _warehouse(con, order_id: int) -> dict[str, list[dict]]:
    return {
        "shipments": rows(
            con,
            "staging.wms_shipments",
            "SELECT shipment_id, sku, quantity, location, shipped_at, raw_ref FROM staging.wms_shipments"
            " WHERE order_id = ? ORDER BY shipped_at, raw_ref",
            [order_id],
        ),
        "return_authorizations": rows(
            con,
            "staging.wms_return_authorizations",
            "SELECT rma_id, sku, quantity, requested_at, approved_at, carrier, tracking_number, shipped_at,"
            " raw_ref FROM staging.wms_return_authorizations WHERE order_id = ? ORDER BY rma_id, raw_ref",
            [order_id],
        ),
        "return_receipts": rows(
            con,
            "staging.wms_return_receipts",
            "SELECT return_id, sku, quantity, condition, location, received_at, raw_ref"
            " FROM staging.wms_return_receipts WHERE order_id = ? ORDER BY received_at, raw_ref",
            [order_id],
        ),
    }


def _warehouse_entries(files: dict[str, list[dict]]) -> list[Entry]:
    entries = [
        Entry(
            s["shipped_at"],
            "warehouse",
            "shipment",
            f"shipped {s['sku']} x{s['quantity']} from {s['location']} ({s['shipment_id']})",
            s["raw_ref"],
            f"shipped {s['sku']} x{s['quantity']}",
        )
        for s in files["shipments"]
    ]
    seen: set[tuple[str, str]] = set()
    for rma in files["return_authorizations"]:  # each file line is a version: the first says when
        for stage in ("requested_at", "approved_at", "shipped_at"):
            if rma[stage] is None or (rma["rma_id"], stage) in seen:
                continue
            seen.add((rma["rma_id"], stage))
            verb = stage.removesuffix("_at")
            via = f" via {rma['carrier']} {rma['tracking_number']}" if stage == "shipped_at" else ""
            entries.append(
                Entry(
                    rma[stage],
                    "warehouse",
                    f"rma_{verb}",
                    f"return {rma['rma_id']} {rma['sku']} x{rma['quantity']} {verb} back{via}"
                    if verb == "shipped"
                    else f"return {rma['rma_id']} {rma['sku']} x{rma['quantity']} {verb}",
                    rma["raw_ref"],
                    f"return {rma['rma_id']} {verb}",
                )
            )
    entries += [
        Entry(
            r["received_at"],
            "warehouse",
            "return_received",
            f"return {r['return_id']} received: {r['sku']} x{r['quantity']} {r['condition']} at {r['location']}",
            r["raw_ref"],
            f"return {r['return_id']} received ({r['condition']})",
        )
        for r in files["return_receipts"]
    ]
    return entries


def _erp_amount(payload: dict[str, Any]) -> int | None:
    try:
        return to_minor_units(payload.get("amount"), payload.get("currency") or "USD")
    except (MoneyFormatError, TypeError, ValueError):
        return None


def _reconciliation(con, order_id, current, payments, writes) -> dict[str, Any]:
    rules = rows(
        con,
        "core.payment_reconciliation",
        "SELECT rule, amount_minor, currency, explained, detail FROM core.payment_reconciliation"
        " WHERE order_id = ? ORDER BY rule",
        [order_id],
    )
    currency = current["currency"] if current else None
    storefront_net = (
        None
        if current is None
        else int(current["total_price_minor"]) - int(current["refunded_minor"])
    )
    provider_net = sum(
        int(e["amount_minor"]) for e in payments["ledger"] if e["kind"] in ("sale", "refund")
    )
    provider_disputed = sum(
        int(e["amount_minor"])
        for e in payments["ledger"]
        if e["kind"].startswith("dispute_") and not e["kind"].endswith("fee")
    )
    erp_net = None
    erp_open = []
    latest_sent: dict[tuple[str, str], dict] = {}
    for write in writes:
        if write["target"] != "erp" or write["entity"] not in ("invoice", "credit_note"):
            continue
        if write["status"] == "sent":
            latest_sent[(write["entity"], write["external_id"])] = write
        elif write["status"] not in ("superseded", "rejected"):
            erp_open.append(f"{write['entity']} {write['external_id']}: {write['status']}")
    if latest_sent:
        erp_net = 0
        for (entity, _), write in latest_sent.items():
            amount = _erp_amount(write["payload"]) or 0
            erp_net += -amount if entity == "credit_note" else amount
    unexplained = [r for r in rules if not r["explained"]]
    erp_agrees = erp_net is None or storefront_net is None or erp_net == storefront_net
    return {
        "storefront_net_minor": storefront_net,
        "provider_net_minor": provider_net if payments["ledger"] else None,
        "provider_disputed_minor": provider_disputed,
        "erp_net_minor": erp_net,
        "erp_open_documents": erp_open,
        "currency": currency,
        "rules": rules,
        "unexplained": unexplained,
        "erp_agrees": bool(erp_agrees),
        "reconciles": bool(not unexplained and erp_agrees),
    }


def explain_order(con: duckdb.DuckDBPyConnection, order_id: str | int) -> dict[str, Any]:
    """Everything the warehouse knows about one order, as a plain dict (the `--json` output)."""
    order_id = _order_id(order_id)
    current_rows = rows(
        con,
        "core.orders_current",
        "SELECT * FROM core.orders_current WHERE order_id = ?",
        [order_id],
    )
    current = current_rows[0] if current_rows else None
    versions, quarantined = _versions(con, order_id)
    if current is None and not versions and not quarantined:
        raise ExplainNotFound(
            f"no order {order_id} in the warehouse (not in core.orders_current, staging or quarantine)"
        )
    currency = current["currency"] if current else next((v["currency"] for v in versions), None)
    events = rows(
        con,
        "core.order_events",
        "SELECT sequence, event_type, attribute, before, after, occurred_at, observed_at, raw_ref"
        " FROM core.order_events WHERE order_id = ? ORDER BY sequence",
        [order_id],
    )
    payments = _payments(con, order_id)
    files = _warehouse(con, order_id)
    moves = rows(
        con,
        "core.inventory_ledger",
        "SELECT movement_id, occurred_at, sku, location, kind, quantity, on_hand_delta, committed_delta,"
        " source_ref FROM core.inventory_ledger WHERE order_id = ? ORDER BY occurred_at, movement_id",
        [order_id],
    )
    returns = rows(
        con,
        "core.returns",
        "SELECT return_id, source, sku, quantity, stage, stage_entered_at, received_at, condition,"
        " refunded_at, provider_refunded_at, age_hours, flags FROM core.returns WHERE order_id = ?"
        " ORDER BY return_id",
        [order_id],
    )
    writes = order_writes(con, order_id)
    entries = [
        *_storefront(events, versions, currency),
        *_payment_entries(payments),
        *_warehouse_entries(files),
    ]
    timeline = [e for e in in_time_order(entries) if e.kind not in ("version", "state")]
    known = knowledge(entries) + targets_knowledge(writes)
    reconciliation = _reconciliation(con, order_id, current, payments, writes)
    customer_id = next(
        (
            w["payload"].get("customer_eid")
            for w in writes
            if w["entity"] == "sales_order" and isinstance(w["payload"], dict)
        ),
        None,
    )
    if customer_id is None and current and current["email"]:
        customer_id = next(
            (
                c["customer_id"]
                for c in rows(
                    con,
                    "core.customers",
                    "SELECT customer_id FROM core.customers WHERE lower(email) = lower(?)"
                    " ORDER BY customer_id LIMIT 1",
                    [current["email"]],
                )
            ),
            None,
        )
    return {
        "kind": "order",
        "id": str(order_id),
        "name": current["name"] if current else None,
        "customer_id": customer_id,
        "email": current["email"] if current else None,
        "current": _plain(current) if current else None,
        "storefront_versions": [_plain(v) for v in versions],
        "quarantined_versions": [_plain(q) for q in quarantined],
        "timeline": [e.as_dict() for e in timeline],
        "knowledge": known,
        "payments": {key: [_plain(r) for r in value] for key, value in payments.items()},
        "warehouse": {key: [_plain(r) for r in value] for key, value in files.items()},
        "inventory_moves": [_plain(m) for m in moves],
        "returns": [_plain(r) for r in returns],
        "writes": writes,
        "reconciliation": {
            **reconciliation,
            "rules": [_plain(r) for r in reconciliation["rules"]],
            "unexplained": [_plain(r) for r in reconciliation["unexplained"]],
        },
        "exceptions": exceptions_for(open_exceptions(con), "order", str(order_id)),
    }
