"""The storefront's products as of any scenario time: pure state, no HTTP.

Products are the scenario's `catalog` grouped by `product_id` (one variant per catalog entry), as
Shopify's `products.json` renders them. `catalog_changes` change them over scenario time (a price,
a variant's availability, the category, a bundle definition), each bumping the product's and, for
a variant change, the variant's `updated_at`. Like the order book, every version is rendered once at
start-up; serving time T is a binary search per product.

Sandbox simplifications (docs/scenario-format.md, "Products"):
- every catalog product exists from `CATALOG_AGE` before the clock's start and is `active`;
- a variant is available with `inventory_quantity: 100`; `available: false` sets it to 0 with
  `inventory_policy: deny` (Shopify's "don't sell when out of stock"), `available: true` restores 100;
- a bundle is the product's `tags` containing `bundle` plus a `bundle_components` list
  ([{sku, quantity}]) on the product JSON: real Shopify keeps bundles in product metafields or a
  bundles app, which the sandbox does not serve;
- orders keep using the catalog price and ignore availability (the order stream is unchanged).
"""

from __future__ import annotations

import bisect
import copy
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from integration_assets.sandbox.scenario import CatalogItem, Scenario

CATALOG_AGE = timedelta(days=7)
IN_STOCK_QUANTITY = 100
PRODUCT_STATUSES = ("active", "archived", "draft")
BUNDLE_TAG = "bundle"


@dataclass(frozen=True)
class ServedProduct:
    """A product as served at some time, plus the facts the API filters on."""

    id: int
    created_at: datetime
    updated_at: datetime
    status: str
    body: dict[str, Any]


@dataclass
class _Variant:
    item: CatalogItem
    position: int
    price: Decimal
    available: bool = True
    updated_at: datetime | None = None


@dataclass
class _Product:
    product_id: int
    title: str
    category: str
    created_at: datetime
    updated_at: datetime
    variants: list[_Variant]
    bundle: tuple[tuple[str, int], ...] = ()
    status: str = "active"


@dataclass(frozen=True)
class _Timeline:
    times: tuple[datetime, ...]
    versions: tuple[ServedProduct, ...]

    def at(self, moment: datetime) -> ServedProduct | None:
        index = bisect.bisect_right(self.times, moment) - 1
        return self.versions[index] if index >= 0 else None


def _handle(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


class ProductCatalog:
    """Every product of a scenario, as it stands at any scenario time."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.tz = scenario.shop.tz
        self._timelines: dict[int, _Timeline] = {}
        self._build()

    def _time(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).isoformat(timespec="seconds")

    def _build(self) -> None:
        created_at = self.scenario.clock.start - CATALOG_AGE
        products: dict[int, _Product] = {}
        for item in self.scenario.catalog:
            product = products.get(item.product_id)
            if product is None:
                product = products[item.product_id] = _Product(
                    product_id=item.product_id,
                    title=item.title,
                    category=item.category,
                    created_at=created_at,
                    updated_at=created_at,
                    variants=[],
                )
            product.category = product.category or item.category
            product.variants.append(
                _Variant(item=item, position=len(product.variants) + 1, price=item.price)
            )
        by_sku = {v.item.sku: (p, v) for p in products.values() for v in p.variants}
        times: dict[int, list[datetime]] = {pid: [created_at] for pid in products}
        versions: dict[int, list[ServedProduct]] = {
            pid: [self._render(product)] for pid, product in products.items()
        }
        # Stable sort: changes at the same time apply in the order written.
        for change in sorted(self.scenario.catalog_changes, key=lambda c: c.at):
            if change.sku is not None:
                product, variant = by_sku[change.sku]
                if change.price is not None:
                    variant.price = change.price
                if change.available is not None:
                    variant.available = change.available
                variant.updated_at = change.at
            else:
                product = products[change.product_id]
                if change.category is not None:
                    product.category = change.category
                if change.bundle is not None:
                    product.bundle = change.bundle
            product.updated_at = max(product.updated_at, change.at)
            served = self._render(product)
            pid = product.product_id
            if times[pid][-1] == product.updated_at:
                versions[pid][-1] = served  # same second: only the last state is ever visible
            else:
                times[pid].append(product.updated_at)
                versions[pid].append(served)
        self._timelines = {
            pid: _Timeline(tuple(times[pid]), tuple(versions[pid])) for pid in products
        }

    def _render(self, product: _Product) -> ServedProduct:
        tags = [BUNDLE_TAG] if product.bundle else []
        body: dict[str, Any] = {
            "id": product.product_id,
            "title": product.title,
            "body_html": None,
            "vendor": "Sandbox Supply Co.",
            "product_type": product.category,
            "handle": _handle(product.title),
            "status": product.status,
            "tags": ", ".join(tags),
            "created_at": self._time(product.created_at),
            "updated_at": self._time(product.updated_at),
            "published_at": self._time(product.created_at),
            "template_suffix": None,
            "options": [{"name": "Title"}],
            "images": [],
            "variants": [self._render_variant(product, variant) for variant in product.variants],
        }
        if product.bundle:
            body["bundle_components"] = [
                {"sku": sku, "quantity": quantity} for sku, quantity in product.bundle
            ]
        return ServedProduct(
            id=product.product_id,
            created_at=product.created_at,
            updated_at=product.updated_at,
            status=product.status,
            body=json.loads(json.dumps(body)),
        )

    def _render_variant(self, product: _Product, variant: _Variant) -> dict[str, Any]:
        item = variant.item
        return {
            "id": item.variant_id,
            "product_id": product.product_id,
            "title": item.variant_title or "Default Title",
            "sku": item.sku,
            "position": variant.position,
            "price": str(variant.price),
            "compare_at_price": None,
            "inventory_quantity": IN_STOCK_QUANTITY if variant.available else 0,
            "inventory_policy": "deny",
            "inventory_management": "shopify",
            "fulfillment_service": "manual",
            "grams": item.grams,
            "taxable": item.taxable,
            "requires_shipping": item.requires_shipping,
            "option1": item.variant_title or "Default Title",
            "option2": None,
            "option3": None,
            "created_at": self._time(product.created_at),
            "updated_at": self._time(variant.updated_at or product.created_at),
        }

    # ---- queries ---------------------------------------------------------------------------
    def products_at(self, moment: datetime) -> list[ServedProduct]:
        """Every product that exists at `moment`, by id ascending."""
        return [
            served
            for product_id in sorted(self._timelines)
            if (served := self._timelines[product_id].at(moment)) is not None
        ]

    def product_at(self, product_id: int, moment: datetime) -> ServedProduct | None:
        timeline = self._timelines.get(product_id)
        return None if timeline is None else timeline.at(moment)

    def versions(self, product_id: int) -> list[ServedProduct]:
        """Every version of a product (for tests and the docs), oldest first."""
        timeline = self._timelines.get(product_id)
        return [] if timeline is None else [copy.deepcopy(v) for v in timeline.versions]
