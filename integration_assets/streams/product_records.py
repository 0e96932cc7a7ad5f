"""One storefront product version -> one typed row per variant (SKU), or the contract rule it broke.

Pure, no Dagster. What a row means:
- `price_minor`: the variant's price in integer minor units of the shop's currency (Shopify prices
  products in the shop currency; the product JSON does not repeat it, so the caller passes it);
- `available`: the product is `active` (no `status`, as in API versions before 2021-07, reads as
  active) and the variant can be sold: `inventory_policy: continue`, or stock not tracked, or
  `inventory_quantity > 0`;
- `category`: the product's `product_type` ("" when it has none);
- `bundle`: when the product's tags contain `bundle`, its `bundle_components` as canonical JSON
  sorted by SKU (the sandbox's simplification of a bundle definition), else None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from integration_assets.contracts import Contract
from integration_assets.streams.contract_rules import (
    RuleBroken,
    Violation,
    break_rule,
    check_field,
    typed_fields,
)
from integration_assets.streams.hashing import payload_hash

BUNDLE_TAG = "bundle"


@dataclass(frozen=True)
class StagedVariant:
    product_id: int
    variant_id: int
    sku: str
    price_minor: int
    compare_at_price_minor: int | None
    currency: str
    available: bool
    inventory_quantity: int | None
    inventory_policy: str | None
    product_status: str
    category: str
    bundle: str | None
    updated_at: datetime  # the product's: the source version
    variant_updated_at: datetime | None
    payload_hash: str


def tags_of(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(tag).strip().lower() for tag in value if str(tag).strip()]
    if isinstance(value, str):
        return [tag.strip().lower() for tag in value.split(",") if tag.strip()]
    return []


def canonical_bundle(components: Any, where: str = "bundle_components") -> str:
    """[{sku, quantity}] -> canonical JSON sorted by SKU; a broken component breaks the rule."""
    if not isinstance(components, list) or not components:
        break_rule(
            "bundle_without_components",
            where,
            f"a product tagged '{BUNDLE_TAG}' needs a non-empty '{where}' list",
        )
    parts: dict[str, int] = {}
    for index, component in enumerate(components):
        label = f"{where}[{index}]"
        sku = component.get("sku") if isinstance(component, dict) else None
        quantity = component.get("quantity") if isinstance(component, dict) else None
        if not isinstance(sku, str) or not sku:
            break_rule("bad_bundle_component", f"{label}.sku", f"'{label}.sku' must be a SKU")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            break_rule(
                "bad_bundle_component",
                f"{label}.quantity",
                f"'{label}.quantity' must be an integer >= 1, got {quantity!r}",
            )
        if sku in parts:
            break_rule("bad_bundle_component", f"{label}.sku", f"SKU {sku!r} is listed twice")
        parts[sku] = quantity
    return orjson.dumps(
        [{"quantity": parts[sku], "sku": sku} for sku in sorted(parts)],
        option=orjson.OPT_SORT_KEYS,
    ).decode()


def stage_product(
    payload: Any, contract: Contract, currency: str
) -> list[StagedVariant] | Violation:
    """Every variant of one product version typed against the contract, or the first rule broken."""
    typed = typed_fields(payload, contract, currency)
    if isinstance(typed, Violation):
        return typed
    try:
        variants = payload["variants"]
        if not variants:
            break_rule("required_field_empty", "variants", "a product needs at least one variant")
        status = typed.get("status") or "active"
        bundle = None
        if BUNDLE_TAG in tags_of(payload.get("tags")):
            bundle = canonical_bundle(payload.get("bundle_components"))
        rows = []
        seen_skus: set[str] = set()
        digest = payload_hash(payload)
        for index, variant in enumerate(variants):
            where = f"variants[{index}]."
            if not isinstance(variant, dict):
                break_rule("not_an_object", where[:-1], f"'{where[:-1]}' must be a JSON object")
            values = {
                rule.name: check_field(variant, rule, currency, where)
                for rule in contract.line_item_fields
            }
            sku = values["sku"]
            if sku in seen_skus:
                break_rule(
                    "duplicate_sku", f"{where}sku", f"SKU {sku!r} appears twice in the product"
                )
            seen_skus.add(sku)
            quantity, policy = values.get("inventory_quantity"), values.get("inventory_policy")
            sellable = policy == "continue" or quantity is None or quantity > 0
            rows.append(
                StagedVariant(
                    product_id=typed["id"],
                    variant_id=values["id"],
                    sku=sku,
                    price_minor=values["price"],
                    compare_at_price_minor=values.get("compare_at_price"),
                    currency=currency,
                    available=status == "active" and sellable,
                    inventory_quantity=quantity,
                    inventory_policy=policy,
                    product_status=status,
                    category=typed.get("product_type") or "",
                    bundle=bundle,
                    updated_at=typed["updated_at"],
                    variant_updated_at=values.get("updated_at"),
                    payload_hash=digest,
                )
            )
        return rows
    except RuleBroken as broken:
        return broken.violation
