"""Seeded volume: hundreds of plausible order stories from a mix of lifecycles.

Hand-written stories show each lifecycle step once; load and variety come from here. Everything
is drawn from one `random.Random(seed)`, so the same seed gives the same stories (and therefore
the same JSON) on every machine, which is what lets tests and benchmarks compare runs.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from integration_assets.sandbox.scenario import (
    MIX_KEYS,
    CatalogItem,
    Customer,
    OrderStory,
    StoryEvent,
    VolumeSpec,
)

# Orders in no listed lifecycle are simply created and paid (the remainder of the mix).
PAID_ONLY = "paid_unfulfilled"
SHIPPING_OPTIONS = (
    ("Standard", Decimal("5.00")),
    ("Express", Decimal("12.50")),
    ("Free Shipping", Decimal("0.00")),
)
DISCOUNT_CODES = (
    ("WELCOME10", {"percent": Decimal("10")}),
    ("FIVEOFF", {"amount": Decimal("5.00")}),
)
CANCEL_REASONS = ("customer", "customer", "inventory", "fraud", "declined")


def generate_stories(
    volume_spec: VolumeSpec,
    catalog: tuple[CatalogItem, ...] | list[CatalogItem],
    customers: tuple[Customer, ...] | list[Customer],
) -> list[OrderStory]:
    """`volume_spec.orders` stories, created uniformly between start and end, lifecycles per the mix."""
    if volume_spec.orders <= 0:
        return []
    rng = random.Random(volume_spec.seed)
    catalog = [item for item in catalog if item.in_volume]
    customers = [customer for customer in customers if customer.in_volume]
    span = max(0.0, (volume_spec.end - volume_spec.start).total_seconds())
    created_times = sorted(
        volume_spec.start + timedelta(seconds=int(rng.uniform(0, span)))
        for _ in range(volume_spec.orders)
    )
    kinds = [key for key in MIX_KEYS if volume_spec.mix.get(key, 0) > 0]
    weights = [volume_spec.mix[key] for key in kinds]
    remainder = max(0.0, 1.0 - sum(weights))
    if remainder > 1e-9 or not kinds:
        kinds.append(PAID_ONLY)
        weights.append(remainder or 1.0)
    stories = []
    for created_at in created_times:
        kind = rng.choices(kinds, weights)[0]
        customer = rng.choice(list(customers))
        events = _lifecycle(rng, kind, created_at, list(catalog), customer)
        stories.append(
            OrderStory(
                customer=customer,
                events=tuple(sorted(events, key=lambda event: event.at)),
                label=f"generated:{kind}",
                source="generated",
            )
        )
    return stories


def _after(rng: random.Random, moment: datetime, low_minutes: int, high_minutes: int) -> datetime:
    return moment + timedelta(minutes=rng.randint(low_minutes, high_minutes))


def _created(
    rng: random.Random, at: datetime, catalog: list[CatalogItem], min_lines: int, min_units: int
) -> StoryEvent:
    line_count = min(len(catalog), max(min_lines, rng.choice((1, 1, 2, 2, 3))))
    items = rng.sample(catalog, line_count)
    lines = [{"sku": item.sku, "quantity": rng.choice((1, 1, 1, 2, 3))} for item in items]
    while sum(line["quantity"] for line in lines) < min_units:
        lines[0]["quantity"] += 1
    fields: dict[str, Any] = {"lines": lines}
    if rng.random() < 0.85:
        title, price = rng.choice(SHIPPING_OPTIONS)
        fields["shipping"] = {"title": title, "code": title, "price": price}
    if rng.random() < 0.2:
        code, terms = rng.choice(DISCOUNT_CODES)
        fields["discount"] = {"code": code, **terms}
    return StoryEvent(at=at, type="created", fields=fields)


def _lifecycle(
    rng: random.Random,
    kind: str,
    created_at: datetime,
    catalog: list[CatalogItem],
    customer: Customer,
) -> list[StoryEvent]:
    needs_two_lines = kind == "edited" and len(catalog) >= 2
    created = _created(
        rng,
        created_at,
        catalog,
        min_lines=2 if needs_two_lines else 1,
        min_units=2 if kind in ("partially_fulfilled", "refunded_partial") else 1,
    )
    lines = created.fields["lines"]
    events = [created]
    if kind == "pending":
        return events
    if kind == "cancelled":
        moment = created_at
        if rng.random() < 0.5:
            moment = _after(rng, moment, 1, 20)
            events.append(StoryEvent(moment, "authorized", {}))
        events.append(
            StoryEvent(
                _after(rng, moment, 30, 360), "cancelled", {"reason": rng.choice(CANCEL_REASONS)}
            )
        )
        return events
    paid_at = _after(rng, created_at, 1, 30)
    events.append(StoryEvent(paid_at, "paid", {}))
    if kind == PAID_ONLY:
        return events
    moment = paid_at
    if kind == "edited":
        moment = _after(rng, moment, 10, 120)
        events.append(_edit(rng, moment, lines, catalog))
    if kind == "address_updated":
        moment = _after(rng, moment, 10, 180)
        address = dict(customer.address)
        address["address1"] = (
            f"{rng.randint(1, 999)} {rng.choice(('Elm', 'Oak', 'Pine', 'Maple'))} Street"
        )
        events.append(StoryEvent(moment, "address_updated", {"address": address}))
    fulfilled_at = _after(rng, moment, 120, 720)
    if kind == "partially_fulfilled":
        first = lines[0]
        partial = [{"sku": first["sku"], "quantity": max(1, first["quantity"] - 1)}]
        events.append(StoryEvent(fulfilled_at, "fulfilled", {"lines": partial}))
        return events
    if kind == "refunded_full" and rng.random() < 0.4:
        # Refunded before anything shipped: the whole order comes back, shipping too.
        events.append(
            StoryEvent(
                _after(rng, moment, 30, 240), "refunded", {"shipping": True, "restock": True}
            )
        )
        return events
    events.append(StoryEvent(fulfilled_at, "fulfilled", {}))
    if kind == "refunded_partial":
        first = lines[0]
        refund_at = _after(rng, fulfilled_at, 600, 2880)
        events.append(
            StoryEvent(
                refund_at,
                "refunded",
                {
                    "lines": [{"sku": first["sku"], "quantity": 1}],
                    "restock": True,
                    "shipping": False,
                },
            )
        )
    elif kind == "refunded_full":
        refund_at = _after(rng, fulfilled_at, 600, 2880)
        events.append(StoryEvent(refund_at, "refunded", {"shipping": True, "restock": True}))
    elif rng.random() < 0.3:
        events.append(StoryEvent(_after(rng, fulfilled_at, 60, 600), "closed", {}))
    return events


def _edit(
    rng: random.Random, at: datetime, lines: list[dict[str, Any]], catalog: list[CatalogItem]
) -> StoryEvent:
    present = {line["sku"] for line in lines}
    choices = ["quantity_changed"]
    if len(lines) >= 2:
        choices.append("line_removed")
    if len(present) < len(catalog):
        choices.append("line_added")
    edit = rng.choice(choices)
    if edit == "line_removed":
        return StoryEvent(at, "line_removed", {"sku": rng.choice(lines)["sku"]})
    if edit == "line_added":
        item = rng.choice([item for item in catalog if item.sku not in present])
        return StoryEvent(at, "line_added", {"sku": item.sku, "quantity": rng.randint(1, 2)})
    line = rng.choice(lines)
    new_quantity = line["quantity"] + 1 if line["quantity"] == 1 else line["quantity"] - 1
    return StoryEvent(at, "quantity_changed", {"sku": line["sku"], "quantity": new_quantity})
