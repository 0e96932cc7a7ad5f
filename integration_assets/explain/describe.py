"""One readable line per order event (pure): what changed, in the shop's words."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from integration_assets.explain.timeline import money


def _load(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _lines(quantities: Mapping[str, Any] | None, skus: Mapping[str, str]) -> str:
    if not quantities:
        return ""
    return ", ".join(f"{skus.get(str(line), line)} x{qty}" for line, qty in quantities.items())


def describe_event(event: Mapping[str, Any], currency: str | None, skus: Mapping[str, str]) -> str:
    """`event` is a core.order_events row; `skus` maps line item ids to SKUs (from earlier events)."""
    kind = event["event_type"]
    before, after = _load(event["before"]), _load(event["after"])
    if kind == "order_created" and isinstance(after, Mapping):
        totals = after.get("totals") or {}
        return f"order_created {after.get('name') or ''} total {money(totals.get('total_price_minor'), currency)}".replace(
            "  ", " "
        )
    if kind.startswith("line_item_"):
        line = (
            after if isinstance(after, Mapping) else before if isinstance(before, Mapping) else {}
        )
        sku = line.get("sku", event["attribute"])
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            return f"{kind} {sku} quantity {before.get('quantity')} -> {after.get('quantity')}"
        return f"{kind} {sku} x{line.get('quantity')}"
    if kind.startswith("fulfillment_") and isinstance(after, Mapping):
        return f"{kind} {_lines(after.get('lines'), skus)} ({after.get('status')})"
    if kind.startswith("refund_") and isinstance(after, Mapping):
        lines = _lines(after.get("lines"), skus)
        return f"{kind} {money(after.get('amount_minor'), currency)}" + (
            f" ({lines})" if lines else ""
        )
    if (
        event["attribute"] == "totals"
        and isinstance(before, Mapping)
        and isinstance(after, Mapping)
    ):
        return (
            f"{kind} total {money(before.get('total_price_minor'), currency)}"
            f" -> {money(after.get('total_price_minor'), currency)}"
        )
    if isinstance(before, str | type(None)) and isinstance(after, str | type(None)):
        return f"{kind}: {before or '-'} -> {after or '-'}" if before else f"{kind}: {after or '-'}"
    text = f"{kind} {event['attribute']}: {json.dumps(before)} -> {json.dumps(after)}"
    return text if len(text) <= 100 else text[:97] + "..."


def line_skus(events: list[Mapping[str, Any]]) -> dict[str, str]:
    """Line item id -> SKU, from the line events' values."""
    skus: dict[str, str] = {}
    for event in events:
        if event["event_type"].startswith("line_item_"):
            line_id = str(event["attribute"]).removeprefix("lines.")
            for value in (_load(event["after"]), _load(event["before"])):
                if isinstance(value, Mapping) and value.get("sku"):
                    skus[line_id] = value["sku"]
    return skus
