"""The storefront's orders as of any scenario time: pure state, no HTTP.

Each story is replayed once, at start-up, into one rendered Shopify order per applied event
("versions"). Serving time T is then a binary search per story for the last event at or before T,
so polling every order again and again costs O(orders x log events), never a replay. Fixture
orders are real third-party payloads and are served exactly as they are written.

A version is kept as its answer's JSON bytes, zlib-compressed (about 1.2 kB instead of ~25 kB of
Python objects per version): a big scenario's order book fits in memory, and a page is answered by
joining those bytes rather than by encoding dictionaries again.
"""

from __future__ import annotations

import bisect
import copy
import json
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from integration_assets.sandbox.generator import generate_stories
from integration_assets.sandbox.scenario import (
    CHANNEL_SOURCE_NAMES,
    CatalogItem,
    Fault,
    OrderStory,
    Scenario,
    StoryEvent,
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
FIRST_ORDER_ID = 5_100_000_000
ORDER_ID_STEP = 1_000
FIRST_ORDER_NUMBER = 2001
DEFAULT_LOCATION_ID = 487838322  # the demo shop's location in the real fixtures
PAID_STATUSES = ("paid", "partially_paid", "partially_refunded")


class StoryError(ValueError):
    """A story event that cannot happen to the order as it stands (names the event's path)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money_set(amount: Decimal, currency: str) -> dict[str, Any]:
    text = money(amount)
    return {
        "shop_money": {"amount": text, "currency_code": currency},
        "presentment_money": {"amount": text, "currency_code": currency},
    }


def parse_shopify_time(value: Any) -> datetime | None:
    """A Shopify timestamp string -> aware UTC datetime, or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def encode_answer(value: Any) -> bytes:
    """`value` as the storefront answers it: compact JSON, UTF-8 (json_response's encoding)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _pack(value: Any) -> bytes:
    return zlib.compress(encode_answer(value), 1)


_NO_TRANSACTIONS = _pack([])


@dataclass(frozen=True)
class ServedOrder:
    """An order as served at some time, plus the facts the API filters on.

    The facts come from the story, not from `body`, so a deliberately corrupted body (no
    `updated_at`, a non-numeric `id`) is still listed, paged and found like any other order.
    `body` and `transactions` are decoded (a fresh copy) from the packed answer on each access.
    """

    id: int
    created_at: datetime
    updated_at: datetime
    cancelled: bool
    closed: bool
    packed_body: bytes
    packed_transactions: bytes = _NO_TRANSACTIONS

    @classmethod
    def of(
        cls,
        id: int,
        created_at: datetime,
        updated_at: datetime,
        cancelled: bool,
        closed: bool,
        body: dict[str, Any],
        transactions: Any = (),
    ) -> ServedOrder:
        return cls(
            id,
            created_at,
            updated_at,
            cancelled,
            closed,
            _pack(body),
            _pack(list(transactions)) if transactions else _NO_TRANSACTIONS,
        )

    @property
    def body_json(self) -> bytes:
        """The order exactly as an answer carries it (compact JSON bytes)."""
        return zlib.decompress(self.packed_body)

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.body_json)

    @property
    def transactions(self) -> tuple[dict[str, Any], ...]:
        return tuple(json.loads(zlib.decompress(self.packed_transactions)))

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        return "closed" if self.closed else "open"


@dataclass
class _Line:
    id: int
    item: CatalogItem
    price: Decimal
    quantity: int  # as ordered (or as added by an edit); Shopify never changes it afterwards
    edited_quantity: int  # after edits, before refunds: what the totals are computed from
    refunded: int = 0
    fulfilled: int = 0

    @property
    def current_quantity(self) -> int:
        return max(0, self.edited_quantity - self.refunded)

    @property
    def fulfillable_quantity(self) -> int:
        return max(0, self.current_quantity - self.fulfilled)

    @property
    def total(self) -> Decimal:
        return self.price * self.edited_quantity


@dataclass
class _Totals:
    line_items: Decimal
    discounts: Decimal
    subtotal: Decimal
    tax: Decimal
    shipping: Decimal
    total: Decimal


@dataclass
class _OrderState:
    """One story's order, mutated event by event, rendered after each one."""

    order_id: int
    order_number: int
    story: OrderStory
    scenario: Scenario
    tz: timezone
    currency: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    lines: list[_Line] = field(default_factory=list)
    shipping: dict[str, Any] | None = None
    shipping_refunded: bool = False
    discount: dict[str, Any] | None = None
    financial_status: str = "pending"
    paid_amount: Decimal = ZERO
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    note: str | None = None
    tags: str = ""
    email: str = ""
    source_name: str = "web"  # the sales channel: "web", "pos", or a sales-channel app's id
    shipping_address: dict[str, Any] = field(default_factory=dict)
    fulfillments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    refunded_amount: Decimal = ZERO
    transactions: list[dict[str, Any]] = field(default_factory=list)
    corruptions: list[tuple[str, str, Any]] = field(default_factory=list)
    _sequence: int = 0

    # ---- helpers -------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._sequence += 1
        return self.order_id * 1000 + self._sequence

    def _time(self, moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(self.tz).isoformat(timespec="seconds")

    def _line_for(self, sku: str, path: str, need: str = "current") -> _Line:
        candidates = [line for line in self.lines if line.item.sku == sku]
        if not candidates:
            raise StoryError(path, f"the order has no line with SKU {sku!r}")
        for line in candidates:
            if (line.current_quantity if need == "current" else line.fulfillable_quantity) > 0:
                return line
        return candidates[-1]

    def totals(self) -> _Totals:
        line_items = sum((line.total for line in self.lines), ZERO)
        discounts = ZERO
        if self.discount:
            if "percent" in self.discount:
                discounts = cents(line_items * self.discount["percent"] / 100)
            else:
                discounts = min(self.discount["amount"], line_items)
        subtotal = line_items - discounts
        taxable = sum((line.total for line in self.lines if line.item.taxable), ZERO)
        tax_base = subtotal * taxable / line_items if line_items else ZERO
        tax = cents(tax_base * self.scenario.shop.tax_rate)
        shipping = self.shipping["price"] if self.shipping else ZERO
        return _Totals(line_items, discounts, subtotal, tax, shipping, subtotal + tax + shipping)

    def _payment_parent(self) -> dict[str, Any] | None:
        for transaction in reversed(self.transactions):
            if transaction["kind"] in ("sale", "capture"):
                return transaction
        return None

    def _transaction(
        self, kind: str, amount: Decimal, at: datetime, gateway: str, parent_id: int | None
    ) -> dict[str, Any]:
        transaction_id = self._next_id()
        return {
            "id": transaction_id,
            "order_id": self.order_id,
            "kind": kind,
            "gateway": gateway,
            "status": "success",
            "message": None,
            "created_at": self._time(at),
            "test": False,
            "authorization": f"auth-{transaction_id}"
            if kind in ("authorization", "sale")
            else None,
            "location_id": None,
            "user_id": None,
            "parent_id": parent_id,
            "processed_at": self._time(at),
            "device_id": None,
            "error_code": None,
            "source_name": self.source_name,
            "receipt": {},
            "amount": money(amount),
            "currency": self.currency,
            "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{transaction_id}",
        }

    # ---- events ----------------------------------------------------------------------------
    def apply(self, event: StoryEvent, path: str) -> None:
        handler = getattr(self, f"_on_{event.type}")
        if event.type != "created" and self.created_at is None:
            raise StoryError(path, "the order does not exist yet (no 'created' event before it)")
        if self.cancelled_at is not None and event.type not in (
            "refunded",
            "closed",
            "note_changed",
            "corrupt",
        ):
            raise StoryError(path, f"a cancelled order cannot be {event.type.replace('_', ' ')}")
        handler(event, path)
        self.updated_at = event.at

    def _on_created(self, event: StoryEvent, path: str) -> None:
        catalog = self.scenario.catalog_by_sku()
        self.created_at = event.at
        for line in event.fields["lines"]:
            item = catalog[line["sku"]]
            quantity = line["quantity"]
            self.lines.append(
                _Line(self._next_id(), item, line.get("price", item.price), quantity, quantity)
            )
        self.discount = event.fields.get("discount")
        shipping = event.fields.get("shipping")
        if shipping:
            self.shipping = dict(shipping, id=self._next_id())
        self.note = event.fields.get("note")
        tags = event.fields.get("tags") or ""
        self.tags = ", ".join(str(tag) for tag in tags) if isinstance(tags, list) else str(tags)
        self.email = str(event.fields.get("email") or self.story.customer.email)
        self.source_name = CHANNEL_SOURCE_NAMES[event.fields.get("channel", "web")]
        self.shipping_address = _address(self.story.customer)

    def _on_authorized(self, event: StoryEvent, path: str) -> None:
        if self.financial_status != "pending":
            raise StoryError(
                path, f"only a pending order can be authorized (it is {self.financial_status})"
            )
        self.financial_status = "authorized"
        amount = self.totals().total
        gateway = str(event.fields.get("gateway", "shopify_payments"))
        self.transactions.append(
            self._transaction("authorization", amount, event.at, gateway, None)
        )

    def _on_paid(self, event: StoryEvent, path: str) -> None:
        outstanding = self.totals().total - self.paid_amount
        if outstanding <= 0 and self.paid_amount == 0:
            # A free order (discount covers everything) is paid without moving money.
            self.financial_status = "paid"
            return
        if outstanding <= 0:
            raise StoryError(path, "nothing is outstanding on this order, so it cannot be paid")
        amount = min(event.fields.get("amount", outstanding), outstanding)
        gateway = str(event.fields.get("gateway", "shopify_payments"))
        authorization = next(
            (t for t in reversed(self.transactions) if t["kind"] == "authorization"), None
        )
        if self.financial_status == "authorized" and authorization is not None:
            gateway = authorization["gateway"]
            transaction = self._transaction(
                "capture", amount, event.at, gateway, authorization["id"]
            )
        else:
            transaction = self._transaction("sale", amount, event.at, gateway, None)
        self.transactions.append(transaction)
        self.paid_amount += amount
        self.financial_status = (
            "paid" if self.paid_amount >= self.totals().total else "partially_paid"
        )

    def _on_line_added(self, event: StoryEvent, path: str) -> None:
        item = self.scenario.catalog_by_sku()[event.fields["sku"]]
        quantity = event.fields["quantity"]
        self.lines.append(_Line(self._next_id(), item, item.price, quantity, quantity))

    def _on_line_removed(self, event: StoryEvent, path: str) -> None:
        line = self._line_for(event.fields["sku"], f"{path}.sku")
        if line.current_quantity == 0:
            raise StoryError(
                f"{path}.sku", f"the line with SKU {line.item.sku!r} is already removed"
            )
        if line.fulfilled:
            raise StoryError(
                f"{path}.sku", "a line with fulfilled units cannot be removed by an edit"
            )
        line.edited_quantity = line.refunded

    def _on_quantity_changed(self, event: StoryEvent, path: str) -> None:
        line = self._line_for(event.fields["sku"], f"{path}.sku")
        quantity = event.fields["quantity"]
        if quantity < line.fulfilled:
            raise StoryError(
                f"{path}.quantity",
                f"cannot go below the {line.fulfilled} unit(s) already fulfilled",
            )
        line.edited_quantity = quantity + line.refunded

    def _on_address_updated(self, event: StoryEvent, path: str) -> None:
        self.shipping_address = {**self.shipping_address, **event.fields["address"]}
        if {"first_name", "last_name"} & event.fields["address"].keys():
            self.shipping_address["name"] = (
                f"{self.shipping_address.get('first_name', '')} "
                f"{self.shipping_address.get('last_name', '')}".strip()
            )

    def _on_fulfilled(self, event: StoryEvent, path: str) -> None:
        requested = event.fields.get("lines")
        shipped: list[tuple[_Line, int]] = []
        if requested is None:
            shipped = [
                (line, line.fulfillable_quantity)
                for line in self.lines
                if line.fulfillable_quantity
            ]
        else:
            for index, wanted in enumerate(requested):
                line_path = f"{path}.lines[{index}]"
                line = self._line_for(wanted["sku"], f"{line_path}.sku", need="fulfillable")
                if wanted["quantity"] > line.fulfillable_quantity:
                    raise StoryError(
                        f"{line_path}.quantity",
                        f"only {line.fulfillable_quantity} unit(s) of {line.item.sku!r} are left to fulfil",
                    )
                shipped.append((line, wanted["quantity"]))
        if not shipped:
            raise StoryError(path, "nothing is left to fulfil")
        for line, quantity in shipped:
            line.fulfilled += quantity
        fulfillment_id = self._next_id()
        self.fulfillments.append(
            {
                "id": fulfillment_id,
                "order_id": self.order_id,
                "status": "success",
                "created_at": self._time(event.at),
                "updated_at": self._time(event.at),
                "service": "manual",
                "location_id": int(event.fields.get("location_id", DEFAULT_LOCATION_ID)),
                "shipment_status": None,
                "tracking_company": "UPS",
                "tracking_number": str(event.fields.get("tracking_number", f"1Z{fulfillment_id}")),
                "name": f"#{self.order_number}.{len(self.fulfillments) + 1}",
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
                "line_items": [
                    {
                        "id": line.id,
                        "variant_id": line.item.variant_id,
                        "product_id": line.item.product_id,
                        "sku": line.item.sku,
                        "title": line.item.title,
                        "quantity": quantity,
                        "price": money(line.price),
                    }
                    for line, quantity in shipped
                ],
            }
        )

    def _on_cancelled(self, event: StoryEvent, path: str) -> None:
        self.cancelled_at = event.at
        self.cancel_reason = event.fields.get("reason", "customer")
        if self.financial_status == "authorized":
            authorization = next(
                t for t in reversed(self.transactions) if t["kind"] == "authorization"
            )
            self.transactions.append(
                self._transaction(
                    "void",
                    self.totals().total,
                    event.at,
                    authorization["gateway"],
                    authorization["id"],
                )
            )
            self.financial_status = "voided"
        elif self.financial_status == "pending":
            self.financial_status = "voided"

    def _on_refunded(self, event: StoryEvent, path: str) -> None:
        if self.financial_status not in PAID_STATUSES:
            raise StoryError(
                path, f"only a paid order can be refunded (it is {self.financial_status})"
            )
        requested = event.fields.get("lines")
        if requested is None:
            back = [(line, line.current_quantity) for line in self.lines if line.current_quantity]
            refund_shipping = event.fields.get("shipping", True)
        else:
            back = []
            for index, wanted in enumerate(requested):
                line_path = f"{path}.lines[{index}]"
                line = self._line_for(wanted["sku"], f"{line_path}.sku")
                if wanted["quantity"] > line.current_quantity:
                    raise StoryError(
                        f"{line_path}.quantity",
                        f"only {line.current_quantity} unit(s) of {line.item.sku!r} can still be refunded",
                    )
                back.append((line, wanted["quantity"]))
            refund_shipping = event.fields.get("shipping", False)
        refund_shipping = bool(refund_shipping and self.shipping and not self.shipping_refunded)
        if not back and not refund_shipping:
            raise StoryError(path, "nothing is left to refund")
        totals = self.totals()
        restock = bool(event.fields.get("restock", False))
        refund_id = self._next_id()
        refund_lines = []
        amount = ZERO
        for line, quantity in back:
            gross = line.price * quantity
            share = (
                cents(totals.discounts * gross / totals.line_items) if totals.line_items else ZERO
            )
            subtotal = gross - share
            tax = cents(subtotal * self.scenario.shop.tax_rate) if line.item.taxable else ZERO
            amount += subtotal + tax
            restock_type = "no_restock"
            if restock:
                restock_type = "return" if line.fulfilled else "cancel"
            refund_lines.append(
                {
                    "id": self._next_id(),
                    "line_item_id": line.id,
                    "quantity": quantity,
                    "restock_type": restock_type,
                    "location_id": DEFAULT_LOCATION_ID if restock else None,
                    "subtotal": money(subtotal),
                    "total_tax": money(tax),
                    "subtotal_set": money_set(subtotal, self.currency),
                    "total_tax_set": money_set(tax, self.currency),
                }
            )
            line.refunded += quantity
        if refund_shipping:
            amount += totals.shipping
            self.shipping_refunded = True
        remaining = totals.total - self.refunded_amount
        everything_back = all(line.current_quantity == 0 for line in self.lines) and (
            not self.shipping or self.shipping_refunded
        )
        if everything_back or amount > remaining:
            amount = remaining  # absorb rounding so a full refund brings the order to exactly 0.00
        self.refunded_amount += amount
        parent = self._payment_parent()
        transaction = self._transaction(
            "refund",
            amount,
            event.at,
            parent["gateway"] if parent else "shopify_payments",
            parent["id"] if parent else None,
        )
        self.transactions.append(transaction)
        self.financial_status = (
            "refunded" if self.refunded_amount >= totals.total else "partially_refunded"
        )
        self.refunds.append(
            {
                "id": refund_id,
                "order_id": self.order_id,
                "created_at": self._time(event.at),
                "processed_at": self._time(event.at),
                "note": event.fields.get("note"),
                "restock": restock,
                "user_id": None,
                "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
                "refund_line_items": refund_lines,
                "transactions": [{key: transaction[key] for key in _REFUND_TRANSACTION_KEYS}],
                "order_adjustments": [],
                "refund_shipping_lines": (
                    [
                        {
                            "shipping_line_id": self.shipping["id"],
                            "subtotal_amount_set": money_set(self.shipping["price"], self.currency),
                        }
                    ]
                    if refund_shipping and self.shipping
                    else []
                ),
            }
        )

    def _on_closed(self, event: StoryEvent, path: str) -> None:
        self.closed_at = event.at

    def _on_note_changed(self, event: StoryEvent, path: str) -> None:
        self.note = None if event.fields["note"] is None else str(event.fields["note"])

    def _on_corrupt(self, event: StoryEvent, path: str) -> None:
        for dotted, value in event.fields.get("set", {}).items():
            self.corruptions.append(("set", str(dotted), value))
        for dotted in event.fields.get("remove", []):
            self.corruptions.append(("remove", dotted, None))

    # ---- rendering ------------------------------------------------------------------------
    def render(self, path: str) -> dict[str, Any]:
        """The order as served now. It may share the state's own lists and dicts (the caller packs
        it at once); only a corrupt event, which edits the body in place, needs copies of them."""
        own = copy.deepcopy if self.corruptions else _shared
        totals = self.totals()
        currency = self.currency
        tax_rate = self.scenario.shop.tax_rate
        line_taxes = _allocate(
            totals.tax, [line.total if line.item.taxable else ZERO for line in self.lines]
        )
        customer = self.story.customer
        billing = _address(customer)
        fulfillment_status = self._fulfillment_status()
        current_total = totals.total - self.refunded_amount
        body: dict[str, Any] = {
            "id": self.order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{self.order_id}",
            "name": f"#{self.order_number}",
            "order_number": self.order_number,
            "number": self.order_number - 1000,
            "email": self.email,
            "contact_email": self.email,
            "created_at": self._time(self.created_at),
            "updated_at": self._time(self.updated_at),
            "processed_at": self._time(self.created_at),
            "cancelled_at": self._time(self.cancelled_at),
            "cancel_reason": self.cancel_reason,
            "closed_at": self._time(self.closed_at),
            "currency": currency,
            "presentment_currency": currency,
            "financial_status": self.financial_status,
            "fulfillment_status": fulfillment_status,
            "confirmed": True,
            "test": False,
            "taxes_included": False,
            "source_name": self.source_name,
            "gateway": self.transactions[0]["gateway"] if self.transactions else "",
            "payment_gateway_names": sorted({t["gateway"] for t in self.transactions}),
            "total_price": money(totals.total),
            "subtotal_price": money(totals.subtotal),
            "total_line_items_price": money(totals.line_items),
            "total_tax": money(totals.tax),
            "total_discounts": money(totals.discounts),
            "total_shipping_price_set": money_set(totals.shipping, currency),
            "current_total_price": money(current_total),
            "total_price_set": money_set(totals.total, currency),
            "subtotal_price_set": money_set(totals.subtotal, currency),
            "total_tax_set": money_set(totals.tax, currency),
            "total_discounts_set": money_set(totals.discounts, currency),
            "current_total_price_set": money_set(current_total, currency),
            "total_weight": sum(line.item.grams * line.current_quantity for line in self.lines),
            "discount_codes": (
                [
                    {
                        "code": self.discount["code"],
                        "amount": money(totals.discounts),
                        "type": "percentage" if "percent" in self.discount else "fixed_amount",
                    }
                ]
                if self.discount
                else []
            ),
            "tags": self.tags,
            "note": self.note,
            "line_items": [
                _render_line(line, tax, tax_rate, currency, self.cancelled_at is not None)
                for line, tax in zip(self.lines, line_taxes, strict=True)
            ],
            "shipping_lines": (
                [
                    {
                        "id": self.shipping["id"],
                        "title": self.shipping["title"],
                        "code": self.shipping["code"],
                        "source": "shopify",
                        "price": money(self.shipping["price"]),
                        "price_set": money_set(self.shipping["price"], currency),
                        "discounted_price": money(self.shipping["price"]),
                        "tax_lines": [],
                    }
                ]
                if self.shipping
                else []
            ),
            "tax_lines": (
                [{"title": "Sales Tax", "rate": float(tax_rate), "price": money(totals.tax)}]
                if totals.tax
                else []
            ),
            "shipping_address": own(self.shipping_address),
            "billing_address": billing,
            "customer": {
                "id": customer.id,
                "email": customer.email,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "phone": customer.phone,
                "tags": ", ".join(customer.tags),
                "admin_graphql_api_id": f"gid://shopify/Customer/{customer.id}",
            },
            "fulfillments": own(self.fulfillments),
            "refunds": own(self.refunds),
        }
        for operation, dotted, value in self.corruptions:
            try:
                _apply_path(body, operation, dotted, copy.deepcopy(value))
            except (KeyError, IndexError, TypeError, ValueError) as error:
                raise StoryError(path, f"corrupt cannot {operation} {dotted!r}: {error}") from None
        return body

    def _fulfillment_status(self) -> str | None:
        active = [line for line in self.lines if line.current_quantity > 0]
        if not any(line.fulfilled for line in self.lines):
            return None
        if active and all(line.fulfilled >= line.current_quantity for line in active):
            return "fulfilled"
        if not active:
            return "fulfilled"
        return "partial"


_REFUND_TRANSACTION_KEYS = (
    "id",
    "order_id",
    "kind",
    "gateway",
    "status",
    "message",
    "created_at",
    "test",
    "authorization",
    "parent_id",
    "processed_at",
    "amount",
    "currency",
    "admin_graphql_api_id",
)


def _shared(value: Any) -> Any:
    return value


def _address(customer: Any) -> dict[str, Any]:
    address = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": f"{customer.first_name} {customer.last_name}",
        "address1": None,
        "address2": None,
        "city": None,
        "province": None,
        "province_code": None,
        "country": None,
        "country_code": None,
        "zip": None,
        "phone": None,
        "company": None,
    }
    address["company"] = customer.company
    address.update(copy.deepcopy(customer.address))
    return address


def _allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` over lines in proportion to `weights`, to the cent, summing exactly to total."""
    weight_sum = sum(weights, ZERO)
    if not weights or weight_sum == 0:
        return [ZERO for _ in weights]
    shares = [cents(total * weight / weight_sum) for weight in weights]
    last = max(range(len(weights)), key=lambda index: (weights[index], index))
    shares[last] += total - sum(shares, ZERO)
    return shares


def _render_line(
    line: _Line, tax: Decimal, tax_rate: Decimal, currency: str, cancelled: bool
) -> dict[str, Any]:
    if line.fulfilled == 0:
        status = None
    elif line.fulfilled >= line.current_quantity:
        status = "fulfilled"
    else:
        status = "partial"
    item = line.item
    return {
        "id": line.id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line.id}",
        "variant_id": item.variant_id,
        "product_id": item.product_id,
        "sku": item.sku,
        "title": item.title,
        "variant_title": item.variant_title,
        "name": f"{item.title} - {item.variant_title}" if item.variant_title else item.title,
        "vendor": None,
        "quantity": line.quantity,
        "current_quantity": line.current_quantity,
        # A cancelled order has nothing left to fulfil, whatever was ordered.
        "fulfillable_quantity": 0 if cancelled else line.fulfillable_quantity,
        "fulfillment_status": status,
        "fulfillment_service": "manual",
        "price": money(line.price),
        "price_set": money_set(line.price, currency),
        "total_discount": "0.00",
        "grams": item.grams,
        "requires_shipping": item.requires_shipping,
        "taxable": item.taxable,
        "gift_card": False,
        "tax_lines": (
            [{"title": "Sales Tax", "rate": float(tax_rate), "price": money(tax)}]
            if item.taxable and line.edited_quantity
            else []
        ),
    }


def _apply_path(body: Any, operation: str, dotted: str, value: Any) -> None:
    """Set or remove `a.b.0.c` inside nested dicts/lists (list parts are integer indexes)."""
    parts = dotted.split(".")
    target = body
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        if operation == "set":
            target[int(last)] = value
        else:
            del target[int(last)]
    elif operation == "set":
        target[last] = value
    else:
        del target[last]


def apply_schema_change(body: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """The order as a client sees it after the source renamed, dropped or added fields."""
    changed = dict(body)
    for old, new in fault.rename.items():
        if old in changed:
            changed = {(new if key == old else key): value for key, value in changed.items()}
    for name in fault.remove:
        changed.pop(name, None)
    for name, value in fault.add.items():
        changed[name] = copy.deepcopy(value)
    return changed


@dataclass(frozen=True)
class _Timeline:
    """One order's versions: `times[k]` is when `versions[k]` starts to be served."""

    times: tuple[datetime, ...]
    versions: tuple[ServedOrder, ...]

    def at(self, moment: datetime) -> ServedOrder | None:
        index = bisect.bisect_right(self.times, moment) - 1
        return self.versions[index] if index >= 0 else None


class OrderBook:
    """Every order of a scenario, as it stands at any scenario time."""

    SNAPSHOT_CACHE_SIZE = 8

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.tz = scenario.shop.tz
        self.ids_by_label: dict[str, int] = {}
        self.generated_ids: list[int] = []
        self._timelines: dict[int, _Timeline] = {}
        self._schema_changes = [fault for fault in scenario.faults if fault.kind == "schema_change"]
        self._snapshots: OrderedDict[datetime, list[ServedOrder]] = OrderedDict()
        self._lock = threading.Lock()
        self._build_stories()
        self._build_fixtures()

    # ---- construction -----------------------------------------------------------------------
    def _build_stories(self) -> None:
        scenario = self.scenario
        stories: list[tuple[str, OrderStory]] = [
            (f"stories[{index}]", story) for index, story in enumerate(scenario.stories)
        ]
        if scenario.volume is not None:
            generated = generate_stories(scenario.volume, scenario.catalog, scenario.customers)
            stories += [
                (f"volume (generated order {index})", story)
                for index, story in enumerate(generated)
            ]
        explicit = {}
        for path, story in stories:
            if story.order_id is not None:
                if story.order_id in explicit:
                    raise StoryError(f"{path}.id", f"order id {story.order_id} is used twice")
                explicit[story.order_id] = path

        def created_at(entry: tuple[str, OrderStory]) -> datetime:
            return next(event.at for event in entry[1].events if event.type == "created")

        # Ids and order numbers grow with creation time, as in a real shop.
        next_id = FIRST_ORDER_ID
        for number, (path, story) in enumerate(sorted(stories, key=created_at)):
            order_id = story.order_id
            if order_id is None:
                next_id += ORDER_ID_STEP
                while next_id in explicit:
                    next_id += ORDER_ID_STEP
                order_id = next_id
            self._timelines[order_id] = self._replay(
                story, order_id, FIRST_ORDER_NUMBER + number, path
            )
            if story.label and story.source == "story":
                self.ids_by_label[story.label] = order_id
            if story.source == "generated":
                self.generated_ids.append(order_id)

    def _replay(self, story: OrderStory, order_id: int, number: int, path: str) -> _Timeline:
        state = _OrderState(
            order_id=order_id,
            order_number=number,
            story=story,
            scenario=self.scenario,
            tz=self.tz,
            currency=story.currency or self.scenario.shop.currency,
        )
        ordered = sorted(enumerate(story.events), key=lambda pair: pair[1].at)
        times: list[datetime] = []
        versions: list[ServedOrder] = []
        for index, event in ordered:
            event_path = f"{path}.events[{index}]"
            state.apply(event, event_path)
            served = ServedOrder.of(
                id=order_id,
                created_at=state.created_at,
                updated_at=event.at,
                cancelled=state.cancelled_at is not None,
                closed=state.closed_at is not None,
                body=state.render(event_path),  # packed now: shares nothing with the state
                transactions=state.transactions,
            )
            if times and times[-1] == event.at:
                versions[-1] = served  # same second: only the last state is ever visible
            else:
                times.append(event.at)
                versions.append(served)
        return _Timeline(tuple(times), tuple(versions))

    def _build_fixtures(self) -> None:
        entries: dict[int, list[tuple[datetime, ServedOrder]]] = {}
        for index, ref in enumerate(
            sorted(self.scenario.fixture_orders, key=lambda ref: ref.appears_at)
        ):
            path = f"fixture_orders[{index}].file"
            try:
                document = json.loads(ref.file.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise StoryError(path, f"cannot read {ref.name}: {error}") from None
            if isinstance(document, dict) and isinstance(document.get("order"), dict):
                orders = [document["order"]]
            elif isinstance(document, dict) and isinstance(document.get("orders"), list):
                orders = document["orders"]
            else:
                raise StoryError(
                    path, f"{ref.name} has neither an 'order' object nor an 'orders' list"
                )
            for order in orders:
                if (
                    not isinstance(order, dict)
                    or isinstance(order.get("id"), bool)
                    or not isinstance(order.get("id"), int)
                ):
                    raise StoryError(path, f"{ref.name}: every order needs an integer 'id'")
                served = ServedOrder.of(
                    id=order["id"],
                    created_at=parse_shopify_time(order.get("created_at")) or ref.appears_at,
                    updated_at=parse_shopify_time(order.get("updated_at")) or ref.appears_at,
                    cancelled=order.get("cancelled_at") is not None,
                    closed=order.get("closed_at") is not None,
                    body=order,
                    transactions=tuple(
                        transaction
                        for refund in order.get("refunds") or []
                        if isinstance(refund, dict)
                        for transaction in refund.get("transactions") or []
                    ),
                )
                entries.setdefault(order["id"], []).append((ref.appears_at, served))
        for order_id, versions in entries.items():
            earlier = self._timelines.get(order_id)
            times = list(earlier.times) if earlier else []
            served_versions = list(earlier.versions) if earlier else []
            for appears_at, served in versions:
                # A later entry with the same id replaces the earlier one from its appears_at on.
                cut = bisect.bisect_left(times, appears_at)
                times, served_versions = times[:cut], served_versions[:cut]
                times.append(appears_at)
                served_versions.append(served)
            self._timelines[order_id] = _Timeline(tuple(times), tuple(served_versions))

    # ---- queries ---------------------------------------------------------------------------
    def order_ids(self) -> list[int]:
        return sorted(self._timelines)

    def orders_at(self, moment: datetime) -> list[ServedOrder]:
        """Every order that exists at `moment`, by id ascending, schema changes applied."""
        with self._lock:
            cached = self._snapshots.get(moment)
            if cached is not None:
                self._snapshots.move_to_end(moment)
                return cached
        snapshot = []
        for order_id in sorted(self._timelines):
            served = self._timelines[order_id].at(moment)
            if served is not None:
                snapshot.append(self._with_schema_changes(served))
        with self._lock:
            self._snapshots[moment] = snapshot
            while len(self._snapshots) > self.SNAPSHOT_CACHE_SIZE:
                self._snapshots.popitem(last=False)
        return snapshot

    def order_at(self, order_id: int, moment: datetime) -> ServedOrder | None:
        timeline = self._timelines.get(order_id)
        served = timeline.at(moment) if timeline else None
        return None if served is None else self._with_schema_changes(served)

    def _with_schema_changes(self, served: ServedOrder) -> ServedOrder:
        faults = [
            fault
            for fault in self._schema_changes
            if fault.at is not None and served.updated_at >= fault.at
        ]
        if not faults:
            return served
        body = served.body
        for fault in faults:
            body = apply_schema_change(body, fault)
        return ServedOrder(
            served.id,
            served.created_at,
            served.updated_at,
            served.cancelled,
            served.closed,
            _pack(body),
            served.packed_transactions,
        )
