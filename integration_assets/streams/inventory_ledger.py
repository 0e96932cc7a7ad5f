"""The inventory ledger: every stock movement per SKU and location as a signed entry.

On hand is what is physically at a location; committed is what orders have claimed and the warehouse
has not shipped yet; available-to-promise is on hand minus committed. Commitments are made at the
shop level (an order does not choose a location until it is fulfilled), so `location` is None there.

Invariants the tests hold this module to: the same movements in any order, with any duplication,
give the same positions; a movement is applied once, by its id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

# kind -> (sign on on_hand, sign on committed) for a positive quantity
EFFECTS = {
    "sale_commitment": (0, 1),
    "reservation": (0, 1),
    "release": (0, -1),
    "shipment": (-1, -1),
    "receipt": (1, 0),
    "return_to_stock": (1, 0),
    "adjustment": (1, 0),
    "count_correction": (1, 0),
}


@dataclass(frozen=True, order=True)
class Movement:
    occurred_at: datetime
    movement_id: str
    sku: str
    location: str | None
    kind: str
    quantity: int
    source_ref: str
    order_id: int | None = None

    @property
    def on_hand_delta(self) -> int:
        return EFFECTS[self.kind][0] * self.quantity

    @property
    def committed_delta(self) -> int:
        return EFFECTS[self.kind][1] * self.quantity


@dataclass
class Position:
    sku: str
    on_hand_by_location: dict[str, int] = field(default_factory=dict)
    committed: int = 0

    @property
    def on_hand(self) -> int:
        return sum(self.on_hand_by_location.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.committed


@dataclass(frozen=True)
class Oversell:
    sku: str
    at: datetime
    available_after: int
    orders: tuple[int, ...]


def unique_movements(movements: Iterable[Movement]) -> tuple[list[Movement], int]:
    """Each movement once (by id), in time order; and how many duplicates were dropped."""
    seen: dict[str, Movement] = {}
    duplicates = 0
    for movement in movements:
        if movement.kind not in EFFECTS:
            raise ValueError(f"unknown movement kind {movement.kind!r} ({movement.movement_id})")
        if movement.movement_id in seen:
            duplicates += 1
        else:
            seen[movement.movement_id] = movement
    return sorted(seen.values()), duplicates


def positions(movements: Iterable[Movement]) -> dict[str, Position]:
    result: dict[str, Position] = {}
    for movement in unique_movements(movements)[0]:
        position = result.setdefault(movement.sku, Position(movement.sku))
        if movement.on_hand_delta:
            location = movement.location or "unassigned"
            position.on_hand_by_location[location] = (
                position.on_hand_by_location.get(location, 0) + movement.on_hand_delta
            )
        position.committed += movement.committed_delta
    return dict(sorted(result.items()))


def oversells(movements: Iterable[Movement]) -> list[Oversell]:
    """Every commitment that took a SKU's available-to-promise below zero, naming the orders short of stock.

    The orders named are those whose commitments are still open and were made while nothing was
    left to promise: for example the same last unit sold on two channels.
    """
    found = []
    on_hand: dict[str, int] = defaultdict(int)
    committed: dict[str, int] = defaultdict(int)
    short_orders: dict[str, list[int]] = defaultdict(list)
    for movement in unique_movements(movements)[0]:
        on_hand[movement.sku] += movement.on_hand_delta
        committed[movement.sku] += movement.committed_delta
        available = on_hand[movement.sku] - committed[movement.sku]
        if available >= 0:
            short_orders[movement.sku].clear()
            continue
        if movement.kind in ("sale_commitment", "reservation") and movement.order_id is not None:
            short_orders[movement.sku].append(movement.order_id)
            found.append(
                Oversell(
                    movement.sku, movement.occurred_at, available, tuple(short_orders[movement.sku])
                )
            )
    return found


@dataclass(frozen=True)
class Drift:
    sku: str
    location: str
    counted_at: datetime
    ledger_on_hand: int
    counted: int
    cause: str
    explanation: str

    @property
    def delta(self) -> int:
        return self.counted - self.ledger_on_hand


def on_hand_at(movements: Iterable[Movement], sku: str, location: str, moment: datetime) -> int:
    return sum(
        m.on_hand_delta
        for m in unique_movements(movements)[0]
        if m.sku == sku and (m.location or "unassigned") == location and m.occurred_at <= moment
    )


def classify_drift(
    movements: list[Movement],
    sku: str,
    location: str,
    counted_at: datetime,
    counted: int,
    unrecorded_shipments: int = 0,
    unrecorded_returns: int = 0,
) -> Drift | None:
    """Compare the warehouse's count with the ledger; explain the difference by a rule where one fits.

    Rules, in order: units the storefront shows fulfilled that the warehouse has not reported shipped
    (`shipment_not_yet_recorded`), restocked returns refunded but not received (`return_not_yet_recorded`);
    anything else is `unexplained` and listed for a person.
    """
    expected = on_hand_at(movements, sku, location, counted_at)
    delta = counted - expected
    if delta == 0:
        return None
    if unrecorded_shipments and delta == -unrecorded_shipments:
        return Drift(
            sku,
            location,
            counted_at,
            expected,
            counted,
            "shipment_not_yet_recorded",
            f"{unrecorded_shipments} unit(s) fulfilled at the storefront, not yet in a shipments file",
        )
    if unrecorded_returns and delta == unrecorded_returns:
        return Drift(
            sku,
            location,
            counted_at,
            expected,
            counted,
            "return_not_yet_recorded",
            f"{unrecorded_returns} unit(s) returned to stock, not yet in a return receipts file",
        )
    return Drift(
        sku,
        location,
        counted_at,
        expected,
        counted,
        "unexplained",
        f"counted {counted}, ledger says {expected}: no rule explains {delta:+d}",
    )


@dataclass(frozen=True)
class StockCount:
    count_id: str
    sku: str
    location: str
    counted: int
    counted_at: datetime


def apply_counts(
    movements: Iterable[Movement], counts: Iterable[StockCount]
) -> tuple[list[Movement], list[Drift]]:
    """Turn the warehouse's stock counts into count corrections, and say why each count differed.

    The first count of a SKU at a location with no earlier movement there is its opening balance.
    Every later count is compared with the ledger at that moment; a difference is a drift, classified
    by `classify_drift`, and booked as a `count_correction` so the ledger follows the shelves again.
    """
    ledger = unique_movements(movements)[0]
    corrections: list[Movement] = []
    drifts: list[Drift] = []
    for count in sorted(counts, key=lambda c: (c.counted_at, c.count_id)):
        known = [*ledger, *corrections]
        seen_before = any(
            m.sku == count.sku
            and (m.location or "unassigned") == count.location
            and m.occurred_at <= count.counted_at
            and m.on_hand_delta
            for m in known
        )
        expected = on_hand_at(known, count.sku, count.location, count.counted_at)
        if not seen_before:
            if count.counted:
                corrections.append(
                    Movement(
                        count.counted_at,
                        f"count:{count.count_id}",
                        count.sku,
                        count.location,
                        "count_correction",
                        count.counted,
                        f"opening balance {count.count_id}",
                    )
                )
            continue
        drift = classify_drift(known, count.sku, count.location, count.counted_at, count.counted)
        if drift is None:
            continue
        drifts.append(drift)
        corrections.append(
            Movement(
                count.counted_at,
                f"count:{count.count_id}",
                count.sku,
                count.location,
                "count_correction",
                count.counted - expected,
                f"count {count.count_id}: {drift.cause}",
            )
        )
    return corrections, drifts
