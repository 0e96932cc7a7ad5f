"""When an order counts as confirmed, when its revenue is recognised, when its fulfilment is activated.

Each definition is a choice among named *moments* of an order, read from the order as the storefront
sends it (contracts/timing.yaml picks the choice; contracts/timing.py reads it):

- `created`: the order exists (its `created_at`).
- `authorized`: money was secured: the financial status is `authorized` or past it (partially_paid,
  paid, partially_refunded, refunded). `voided` and `expired` are not: the storefront voids a
  pending payment too, so they do not say money was ever secured.
- `paid`: money was taken: paid, partially_refunded or refunded (a refund implies a payment).
- `first_fulfilment`: a shipment left: a fulfilment with status `success` (a failed or cancelled one
  shipped nothing), or the order's fulfillment_status says partial / fulfilled.
- `fulfilled`: everything shipped: fulfillment_status `fulfilled`.

Moments are *sticky* where the payload allows: a cancellation or a full refund does not un-confirm
an order or un-recognise its revenue (a paid order stays `paid` through `refunded`); each is an event
of its own (the ERP sales order gets status `cancelled`, a refund becomes a credit note, a
reservation is released). An order cancelled before a moment never reaches it: a cancelled unpaid
order is never `paid`, a cancelled unshipped order never has a `first_fulfilment`, and so its revenue
is never recognised and nothing is invoiced or credited for it. A voided or expired authorization
leaves `authorized` (see above): the planners keep following a sales order already sent, so the ERP
still hears of the cancellation.

When each moment happened: `created` at `created_at`; `authorized` and `paid` at `processed_at`
(falling back to `created_at`), because the order payload does not carry its payment's time
(transactions are a resource of their own) and Shopify's `processed_at` is when checkout processed the
payment, the date its own reports use; `first_fulfilment` at the earliest successful fulfilment's
`created_at`; `fulfilled` at the latest one's. A fulfilment moment the payload shows only by status
(fulfilments left out of a partial representation) is dated at the order's `updated_at`. Times keep
the offset they were written with, so their date is the shop's own day.

Revenue is recognised only for a confirmed order (an invoice needs its sales order), at the moment
its definition names. The functions are pure and raise `MappingInputError` on an unreadable
timestamp, which the target mappings turn into a quarantine reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.streams.mapped import MappingInputError, minor, order_currency, order_id

CREATED = "created"
AUTHORIZED = "authorized"
PAID = "paid"
FIRST_FULFILMENT = "first_fulfilment"
FULFILLED = "fulfilled"
CONFIRMED = "confirmed"  # fulfilment_activated: whenever order_confirmed says

MOMENTS = {
    CREATED: "the order exists (created_at)",
    AUTHORIZED: "the payment is authorized, or has moved past authorized (processed_at)",
    PAID: "money was taken: paid, partially_refunded or refunded (processed_at)",
    FIRST_FULFILMENT: "a first shipment left: a successful fulfilment (its created_at)",
    FULFILLED: "everything shipped: fulfillment_status fulfilled (the last fulfilment's created_at)",
    CONFIRMED: "the order is confirmed, by the order_confirmed definition",
}
# The moments each definition may choose, in the order they happen.
CHOICES = {
    "order_confirmed": (CREATED, AUTHORIZED, PAID),
    "revenue_recognised": (PAID, FIRST_FULFILMENT, FULFILLED),
    "fulfilment_activated": (CONFIRMED, PAID),
}

PAID_STATUSES = ("paid", "partially_refunded", "refunded")
AUTHORIZED_STATUSES = ("authorized", "partially_paid", *PAID_STATUSES)
# Money taken and not all given back: goods are owed. Refunded, voided or expired: nothing is owed.
RELEASED_STATUSES = ("refunded", "voided", "expired")
STARTED_FULFILMENT_STATUSES = ("partial", "fulfilled")


@dataclass(frozen=True)
class Timing:
    """The chosen moment of each definition; the default is what the code did before it was a file."""

    order_confirmed: str = CREATED
    revenue_recognised: str = PAID
    fulfilment_activated: str = PAID

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}"
                )

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in CHOICES}


DEFAULT_TIMING = Timing()


def _moment_time(value: Any, where: str) -> datetime:
    """A timestamp as written (its own offset kept, so its date is the shop's day)."""
    if not isinstance(value, str) or not value.strip():
        raise MappingInputError(f"{where}: missing timestamp")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MappingInputError(f"{where}: not an ISO-8601 timestamp: {value!r:.40}") from None
    if moment.tzinfo is None:
        raise MappingInputError(f"{where}: timestamp without a UTC offset")
    return moment


def _successful_fulfilment_times(order: Mapping[str, Any]) -> list[datetime]:
    times = []
    for index, fulfilment in enumerate(order.get("fulfillments") or []):
        if (fulfilment or {}).get("status") == "success":
            times.append(_moment_time(fulfilment.get("created_at"), f"fulfillments[{index}]"))
    return sorted(times)


def _payment_time(order: Mapping[str, Any]) -> datetime:
    if order.get("processed_at"):
        return _moment_time(order["processed_at"], "processed_at")
    return _moment_time(order.get("created_at"), "created_at")


def moment_at(order: Mapping[str, Any], moment: str) -> datetime | None:
    """When the order reached `moment` (one of MOMENTS except `confirmed`), None if it has not."""
    status = order.get("financial_status")
    if moment == CREATED:
        return _moment_time(order.get("created_at"), "created_at")
    if moment == AUTHORIZED:
        return _payment_time(order) if status in AUTHORIZED_STATUSES else None
    if moment == PAID:
        return _payment_time(order) if status in PAID_STATUSES else None
    if moment in (FIRST_FULFILMENT, FULFILLED):
        shipped = _successful_fulfilment_times(order)
        fulfilment_status = order.get("fulfillment_status")
        if moment == FULFILLED and fulfilment_status != "fulfilled":
            return None
        if not shipped and fulfilment_status not in STARTED_FULFILMENT_STATUSES:
            return None
        if not shipped:  # the fulfilments were left out of this representation
            return _moment_time(order.get("updated_at"), "updated_at")
        return shipped[0] if moment == FIRST_FULFILMENT else shipped[-1]
    raise ValueError(f"unknown moment {moment!r} (known: {', '.join(MOMENTS)})")


def confirmed_at(order: Mapping[str, Any], timing: Timing = DEFAULT_TIMING) -> datetime | None:
    """When the order counts as confirmed (`order_confirmed`), None while it does not."""
    return moment_at(order, timing.order_confirmed)


def is_confirmed(order: Mapping[str, Any], timing: Timing = DEFAULT_TIMING) -> bool:
    return confirmed_at(order, timing) is not None


def revenue_recognised_at(
    order: Mapping[str, Any], timing: Timing = DEFAULT_TIMING
) -> datetime | None:
    """When the order's revenue is recognised (`revenue_recognised`), None while it is not.

    Only a confirmed order's revenue is recognised; an order cancelled before the moment never is.
    """
    if not is_confirmed(order, timing):
        return None
    return moment_at(order, timing.revenue_recognised)


def is_paid(order: Mapping[str, Any]) -> bool:
    """Money was taken (whatever the definitions): the order's payments have something to apply to."""
    return order.get("financial_status") in PAID_STATUSES


def fulfilment_activated(order: Mapping[str, Any], timing: Timing = DEFAULT_TIMING) -> bool:
    """Stock should be held for the order (`fulfilment_activated`), unless it is to be released.

    `is_released` wins: a cancelled, fully refunded, voided or expired order holds nothing.
    """
    if timing.fulfilment_activated == CONFIRMED:
        return is_confirmed(order, timing)
    return moment_at(order, timing.fulfilment_activated) is not None


def is_released(order: Mapping[str, Any]) -> bool:
    """Nothing is owed any more: cancelled, fully refunded, or a payment voided or expired."""
    return bool(order.get("cancelled_at")) or order.get("financial_status") in RELEASED_STATUSES


@dataclass(frozen=True)
class OrderTiming:
    """One order's moments under the definitions, for the marts (times as written, offset kept)."""

    order_id: int
    currency: str
    confirmed_at: datetime | None
    revenue_recognised_at: datetime | None
    fulfilment_activated: bool
    # What recognition books: the total as sold (after edits, before refunds), as the invoice does.
    recognised_minor: int


def order_timing(order: Mapping[str, Any], timing: Timing = DEFAULT_TIMING) -> OrderTiming:
    """The order's moments; raises MappingInputError on an id, amount or time it cannot read."""
    currency = order_currency(order)
    recognised = revenue_recognised_at(order, timing)
    return OrderTiming(
        order_id=int(order_id(order)),
        currency=currency,
        confirmed_at=confirmed_at(order, timing),
        revenue_recognised_at=recognised,
        fulfilment_activated=fulfilment_activated(order, timing) and not is_released(order),
        recognised_minor=minor(order.get("total_price"), currency, "total_price")
        if recognised is not None
        else 0,
    )
