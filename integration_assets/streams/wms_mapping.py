"""Shopify order -> WMS reservation: hold stock for what a paid order still has to ship.

A reservation is written whole every time (the WMS replaces its lines), so it follows the order's
story: paid -> reserved for every unshipped unit; edited -> the new quantities; partially shipped ->
what is left; cancelled or fully refunded -> released, so the stock is free to sell again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from integration_assets.streams.mapped import (
    Mapped,
    MappingInputError,
    count,
    guarded,
    line_items,
    order_id,
)

TARGET = "wms"
# Money taken and not all of it given back: the goods are owed, so stock is held.
RESERVED_STATUSES = ("paid", "partially_refunded")


def reservation_id(order_external_id: str) -> str:
    return f"RES-{order_external_id}"


def _fulfilled_units_by_line(order: Mapping[str, Any]) -> Counter[str]:
    units: Counter[str] = Counter()
    for fulfillment in order.get("fulfillments") or []:
        if (fulfillment or {}).get("status") != "success":
            continue  # a failed or cancelled fulfillment shipped nothing
        for item in fulfillment.get("line_items") or []:
            units[str(item.get("id"))] += count(
                item.get("quantity"), "fulfillments.line_items.quantity"
            )
    return units


def unfulfilled_by_sku(order: Mapping[str, Any]) -> dict[str, int]:
    """Units still to ship per SKU, over the lines that need shipping, sorted by SKU.

    Shopify's `fulfillable_quantity` says it directly (after edits, refunds and shipments); older
    payloads without it fall back to current_quantity (or quantity) minus units in successful
    fulfillments. A SKU with nothing left stays in with 0, so the WMS releases it explicitly.
    """
    shipped = _fulfilled_units_by_line(order)
    by_sku: Counter[str] = Counter()
    for index, line in enumerate(line_items(order)):
        where = f"line_items[{index}]"
        if line.get("requires_shipping") is False:
            continue  # gift cards, services: nothing in the warehouse to hold
        sku = line.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise MappingInputError(f"{where}.sku: a line to ship without a SKU cannot be reserved")
        if "fulfillable_quantity" in line:
            left = count(line["fulfillable_quantity"], f"{where}.fulfillable_quantity")
        else:
            current = line.get("current_quantity", line.get("quantity"))
            left = max(0, count(current, f"{where}.quantity") - shipped[str(line.get("id"))])
        by_sku[sku.strip()] += left
    return dict(sorted(by_sku.items()))


def wms_reservation(order_snapshot: Mapping[str, Any]) -> Mapped | None:
    """The reservation (RES-<order id>) of an order: `reserved` with the unshipped units per SKU once
    paid; `released` with no lines when cancelled or fully refunded; None while not paid yet (nothing
    to hold, and nothing held)."""
    external_id = reservation_id(str(order_snapshot.get("id")))
    status = order_snapshot.get("financial_status")
    cancelled = bool(order_snapshot.get("cancelled_at"))
    if not cancelled and status not in (*RESERVED_STATUSES, "refunded"):
        return None

    def build() -> Mapped:
        eid = order_id(order_snapshot)
        if cancelled or status == "refunded":
            body = {"order_id": eid, "status": "released", "lines": []}
        else:
            body = {
                "order_id": eid,
                "status": "reserved",
                "lines": [
                    {"sku": sku, "quantity": quantity}
                    for sku, quantity in unfulfilled_by_sku(order_snapshot).items()
                ],
            }
        return Mapped(TARGET, "reservation", reservation_id(eid), body)

    return guarded(TARGET, "reservation", external_id, build)
