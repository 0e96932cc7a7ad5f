"""Read one Shopify order payload into a typed, validated staging record, or say which rule it broke.

Row rules come from the stream contract. A record that breaks a rule is quarantined with the rule and
its raw reference; known quirks of real payloads that do not make the record wrong are kept as
quality flags so that they are counted and visible, never silently "fixed".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.contracts import Contract
from integration_assets.streams.contract_rules import RuleBroken, Violation, break_rule, check_field
from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.money import MoneyFormatError, to_minor_units
from integration_assets.streams.timestamps import TimestampFormatError, parse_utc, to_iso_utc

# Collections a partial representation (Shopify `fields=`, trimmed fixtures) may leave out. Absent means
# "not said in this version", which is different from an empty list.
OPTIONAL_GROUPS = ("line_items", "fulfillments", "refunds")
ADDRESS_FIELDS = ("name", "address1", "address2", "city", "zip", "province_code", "country_code")


@dataclass(frozen=True)
class StagedOrder:
    order_id: int
    updated_at: datetime
    created_at: datetime
    payload_hash: str
    name: str | None
    email: str | None
    currency: str
    financial_status: str
    fulfillment_status: str | None
    cancelled_at: datetime | None
    closed_at: datetime | None
    total_price_minor: int
    subtotal_price_minor: int
    total_tax_minor: int
    total_discounts_minor: int
    shipping_minor: int
    totals_mismatch_minor: int
    gateway: str | None
    snapshot: dict[str, Any]
    quality_flags: tuple[str, ...]
    # The sales channel ("web", "pos", a sales-channel app's id). Not in the snapshot: a channel never
    # changes after creation, and the snapshot is what order events are diffed from.
    source_name: str | None = None


def _minor(value: Any, currency: str, label: str) -> int:
    try:
        return to_minor_units(value, currency)
    except MoneyFormatError as error:
        break_rule("bad_money", label, f"'{label}': {error}")
    raise AssertionError("unreachable")


def _timestamp_iso(value: Any, label: str) -> str | None:
    if value is None:
        return None
    try:
        return to_iso_utc(parse_utc(value))
    except TimestampFormatError as error:
        break_rule("bad_timestamp", label, f"'{label}': {error}")
    raise AssertionError("unreachable")


def _lines(payload: dict, contract: Contract, currency: str) -> dict[str, dict]:
    lines: dict[str, dict] = {}
    for index, line in enumerate(payload["line_items"]):
        where = f"line_items.{index}."
        if not isinstance(line, dict):
            break_rule("wrong_type", where.rstrip("."), f"line item {index} is not an object")
        values = {
            rule.name: check_field(line, rule, currency, where)
            for rule in contract.line_item_fields
        }
        current = line.get("current_quantity", values["quantity"])
        if isinstance(current, bool) or not isinstance(current, int) or current < 0:
            break_rule(
                "below_minimum",
                f"{where}current_quantity",
                f"'{where}current_quantity' must be >= 0, got {current!r}",
            )
        if current == 0:
            continue  # removed by an order edit: Shopify keeps the line with current_quantity 0
        lines[str(values["id"])] = {
            "sku": values.get("sku"),
            "quantity": current,
            "price_minor": values["price"],
        }
    return lines


def _line_quantities(items: Any, label: str) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for index, item in enumerate(items or []):
        line_id = item.get("line_item_id", item.get("id")) if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if line_id is None or isinstance(quantity, bool) or not isinstance(quantity, int):
            break_rule(
                "wrong_type",
                f"{label}.{index}",
                f"'{label}.{index}' needs a line id and an integer quantity",
            )
        quantities[str(line_id)] = quantities.get(str(line_id), 0) + quantity
    return quantities


def _fulfillments(payload: dict) -> dict[str, dict]:
    result = {}
    for index, fulfillment in enumerate(payload["fulfillments"] or []):
        label = f"fulfillments.{index}"
        if not isinstance(fulfillment, dict) or "id" not in fulfillment:
            break_rule("wrong_type", label, f"'{label}' must be an object with an id")
        result[str(fulfillment["id"])] = {
            "status": fulfillment.get("status"),
            "created_at": _timestamp_iso(fulfillment.get("created_at"), f"{label}.created_at"),
            "lines": _line_quantities(fulfillment.get("line_items"), f"{label}.line_items"),
        }
    return result


def _refunds(payload: dict, currency: str, flags: set[str]) -> dict[str, dict]:
    result = {}
    for index, refund in enumerate(payload["refunds"] or []):
        label = f"refunds.{index}"
        if not isinstance(refund, dict) or "id" not in refund:
            break_rule("wrong_type", label, f"'{label}' must be an object with an id")
        amount = 0
        for t_index, transaction in enumerate(refund.get("transactions") or []):
            if (
                transaction.get("kind") == "refund"
                and transaction.get("status", "success") == "success"
            ):
                amount += _minor(
                    transaction.get("amount"), currency, f"{label}.transactions.{t_index}.amount"
                )
        for line in refund.get("refund_line_items") or []:
            if isinstance(line, dict) and isinstance(line.get("subtotal"), float | int):
                flags.add("refund_line_subtotal_is_json_number")
        line_items = [
            {"line_item_id": line.get("line_item_id"), "quantity": line.get("quantity")}
            for line in refund.get("refund_line_items") or []
            if isinstance(line, dict)
        ]
        result[str(refund["id"])] = {
            "created_at": _timestamp_iso(refund.get("created_at"), f"{label}.created_at"),
            "amount_minor": amount,
            "lines": _line_quantities(line_items, f"{label}.refund_line_items"),
        }
    return result


def _address(value: Any) -> dict | None:
    if not isinstance(value, dict):
        return None
    return {key: value.get(key) for key in ADDRESS_FIELDS}


def stage_order(payload: Any, contract: Contract) -> StagedOrder | Violation:
    """Validate and type one order payload; return the staged record or the first rule it broke."""
    try:
        return _stage(payload, contract)
    except RuleBroken as broken:
        return broken.violation


def _stage(payload: Any, contract: Contract) -> StagedOrder:
    if not isinstance(payload, dict):
        break_rule(
            "not_an_object",
            "",
            f"order payload must be a JSON object, got {type(payload).__name__}",
        )
    currency_rule = next(rule for rule in contract.fields if rule.name == "currency")
    currency = check_field(payload, currency_rule, None)
    values = {rule.name: check_field(payload, rule, currency) for rule in contract.fields}
    flags: set[str] = set()

    shipping = sum(
        _minor(line.get("price"), currency, f"shipping_lines.{i}.price")
        for i, line in enumerate(payload.get("shipping_lines") or [])
        if isinstance(line, dict)
    )
    discounts = values.get("total_discounts") or 0
    line_items_total = values.get("total_line_items_price")
    if line_items_total is None:
        line_items_total = values["subtotal_price"] + discounts
    expected_total = line_items_total - discounts + values["total_tax"] + shipping
    if payload.get("taxes_included"):
        expected_total = line_items_total - discounts + shipping
    mismatch = values["total_price"] - expected_total
    tolerance = int(contract.batch_rules.get("totals_tolerance_minor", 1))
    if abs(mismatch) > tolerance:
        flags.add("totals_do_not_add_up")
    if values["subtotal_price"] != line_items_total - discounts:
        flags.add("subtotal_excludes_discounts")
    codes = payload.get("discount_codes") or []
    if codes and all(isinstance(c, dict) and c.get("type") == "fixed_amount" for c in codes):
        code_total = sum(_minor(c.get("amount"), currency, "discount_codes.amount") for c in codes)
        if code_total != discounts:
            flags.add("discount_codes_disagree_with_total_discounts")
    elif codes and discounts == 0:
        flags.add("discount_codes_disagree_with_total_discounts")
    if payload.get("cancel_reason") and payload.get("cancelled_at") is None:
        flags.add("cancel_reason_without_cancelled_at")

    snapshot: dict[str, Any] = {
        "name": values.get("name"),
        "email": values.get("email"),
        "currency": currency,
        "created_at": to_iso_utc(values["created_at"]),
        "financial_status": values["financial_status"],
        "fulfillment_status": values.get("fulfillment_status"),
        "cancelled_at": _timestamp_iso(payload.get("cancelled_at"), "cancelled_at"),
        "cancel_reason": values.get("cancel_reason"),
        "closed_at": _timestamp_iso(payload.get("closed_at"), "closed_at"),
        "shipping_address": _address(values.get("shipping_address")),
        "totals": {
            "total_price_minor": values["total_price"],
            "subtotal_price_minor": values["subtotal_price"],
            "total_tax_minor": values["total_tax"],
            "total_discounts_minor": discounts,
            "shipping_minor": shipping,
        },
        "tags": payload.get("tags") or "",
        "note": payload.get("note"),
    }
    for group in OPTIONAL_GROUPS:
        if group not in payload:
            flags.add(f"partial_representation:{group}")
    if "line_items" in payload:
        snapshot["lines"] = _lines(payload, contract, currency)
    if "fulfillments" in payload:
        snapshot["fulfillments"] = _fulfillments(payload)
    if "refunds" in payload:
        snapshot["refunds"] = _refunds(payload, currency, flags)

    return StagedOrder(
        order_id=values["id"],
        updated_at=values["updated_at"],
        created_at=values["created_at"],
        payload_hash=payload_hash(payload),
        name=values.get("name"),
        email=values.get("email"),
        currency=currency,
        financial_status=values["financial_status"],
        fulfillment_status=values.get("fulfillment_status"),
        cancelled_at=values.get("cancelled_at"),
        closed_at=values.get("closed_at"),
        total_price_minor=values["total_price"],
        subtotal_price_minor=values["subtotal_price"],
        total_tax_minor=values["total_tax"],
        total_discounts_minor=discounts,
        shipping_minor=shipping,
        totals_mismatch_minor=mismatch,
        gateway=payload.get("gateway") if isinstance(payload.get("gateway"), str) else None,
        snapshot=snapshot,
        quality_flags=tuple(sorted(flags)),
        source_name=_source_name(payload.get("source_name")),
    )


def _source_name(value: Any) -> str | None:
    """Shopify sends a string; an app id has been seen as a bare number in older payloads."""
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, str | int) else None
