"""Shopify order -> WMS reservation: hold stock for what an activated order still has to ship.

A reservation is written whole every time (the WMS replaces its lines), so it follows the order's
story: fulfilment activated (`fulfilment_activated` in contracts/timing.yaml; by default once paid)
-> reserved for every unshipped unit; edited -> the new quantities; partially shipped -> what is
left; cancelled, fully refunded, or its payment voided or expired -> released, so the stock is free
to sell again.
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
from integration_assets.streams.timing import (
    DEFAULT_TIMING,
    Timing,
    fulfilment_activated,
    is_released,
)

TARGET = "wms"


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


def wms_reservation(
    order_snapshot: Mapping[str, Any], timing: Timing = DEFAULT_TIMING
) -> Mapped | None:
    """The reservation (RES-<order id>) of an order: `reserved` with the unshipped units per SKU once
    its fulfilment is activated (`timing.fulfilment_activated`); `released` with no lines when it is
    cancelled, fully refunded, or its payment voided or expired (the planner sends a release only for
    a reservation it made); None while not activated (nothing to hold, and nothing held)."""
    external_id = reservation_id(str(order_snapshot.get("id")))

    def build() -> Mapped | None:
        released = is_released(order_snapshot)
        if not released and not fulfilment_activated(order_snapshot, timing):
            return None
        eid = order_id(order_snapshot)
        if released:
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
