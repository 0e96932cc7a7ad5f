"""The inventory ledger: every stock movement per SKU and location as a signed entry.

This module is the reference: the rules, one movement at a time, in Python. The asset applies the
same rules set-based in DuckDB (`storage/inventory_ledger.py`), and the tests hold the two equal.

On hand is what is physically at a location; committed is what orders have claimed and the warehouse
has not shipped yet; available-to-promise is on hand minus committed. Commitments are made at the
shop level (an order does not choose a location until it is fulfilled), so `location` is None there.

Invariants the tests hold this module to: the same movements in any order, with any duplication,
give the same positions; a movement is applied once, by its id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
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


COMMITMENT_KINDS = ("sale_commitment", "reservation")
# How many short orders a one-line text (check, exception, report) names before "and K more".
NAMED_SHORT_ORDERS = 10


@dataclass(frozen=True)
class Oversell:
    """One oversell episode of a SKU: from the movement that took available-to-promise below zero to
    the one that brought it back to zero or more (`ended_at` None while it is still below), its lowest
    available, and each order short of stock in it once, in the order they were first short."""

    sku: str
    started_at: datetime
    ended_at: datetime | None
    lowest_available: int
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


@dataclass
class _OpenEpisode:
    started_at: datetime
    lowest_available: int
    orders: dict[int, None]  # insertion-ordered set: each short order once


def oversells(movements: Iterable[Movement]) -> list[Oversell]:
    """Every oversell episode: each stretch during which a SKU's available-to-promise was below zero,
    naming the orders short of stock in it, once each (in time order, then by SKU).

    An order is short when its commitment was made while nothing was left to promise (available below
    zero after it): for example the same last unit sold on two channels. A stretch below zero with no
    commitment in it (a count correction alone) names no order and is not an oversell. One pass over
    the movements, so the cost follows the movements, not how long a SKU stays oversold.
    """
    found: list[Oversell] = []
    on_hand: dict[str, int] = defaultdict(int)
    committed: dict[str, int] = defaultdict(int)
    below_zero: dict[str, _OpenEpisode] = {}
    for movement in unique_movements(movements)[0]:
        sku = movement.sku
        on_hand[sku] += movement.on_hand_delta
        committed[sku] += movement.committed_delta
        available = on_hand[sku] - committed[sku]
        episode = below_zero.get(sku)
        if available >= 0:
            if episode is not None:
                del below_zero[sku]
                if episode.orders:
                    found.append(_closed(sku, episode, movement.occurred_at))
            continue
        if episode is None:
            episode = below_zero[sku] = _OpenEpisode(movement.occurred_at, available, {})
        episode.lowest_available = min(episode.lowest_available, available)
        if movement.kind in COMMITMENT_KINDS and movement.order_id is not None:
            episode.orders.setdefault(movement.order_id)
    found.extend(
        _closed(sku, episode, None) for sku, episode in below_zero.items() if episode.orders
    )
    return sorted(found, key=lambda o: (o.started_at, o.sku))


def _closed(sku: str, episode: _OpenEpisode, ended_at: datetime | None) -> Oversell:
    return Oversell(
        sku, episode.started_at, ended_at, episode.lowest_available, tuple(episode.orders)
    )


def short_orders_text(orders: list[int], channels: list[str], total: int | None = None) -> str:
    """`[1 (web), 2 (pos)]`, or `[1 (web), 2 (pos), and 48 more]` when `total` orders were short and only
    the first ones are given: a bounded text however long an oversell lasts."""
    named = [f"{order} ({channel})" for order, channel in zip(orders, channels, strict=True)]
    more = (total or len(named)) - len(named)
    if more > 0:
        named.append(f"and {more} more")
    return f"[{', '.join(named)}]"


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

    @property
    def movement_id(self) -> str:
        """The id of the correction this count books (a session counts many SKUs and locations)."""
        return f"count:{self.count_id}:{self.sku}:{self.location}"


def apply_counts(
    movements: Iterable[Movement], counts: Iterable[StockCount]
) -> tuple[list[Movement], list[Drift]]:
    """Turn the warehouse's stock counts into count corrections, and say why each count differed.

    The first count of a SKU at a location with no earlier movement there is its opening balance.
    Every later count is compared with the ledger at that moment; a difference is a drift, classified
    by `classify_drift`, and booked as a `count_correction` so the ledger follows the shelves again.
    A count is its session's `count_id` at one SKU and location (the file's key): the same one
    received again is applied once, as it was first read.
    """
    # Each count reads only its own SKU and location's movements (a peak day has a million
    # movements and a count per SKU and location per day: rescanning them all per count grew with
    # their product).
    by_place: dict[tuple[str, str], list[Movement]] = defaultdict(list)
    for movement in unique_movements(movements)[0]:
        by_place[(movement.sku, movement.location or "unassigned")].append(movement)
    corrections: list[Movement] = []
    drifts: list[Drift] = []
    first_of: dict[tuple[str, str, str], StockCount] = {}
    for count in counts:
        first_of.setdefault((count.count_id, count.sku, count.location), count)
    for count in sorted(first_of.values(), key=lambda c: (c.counted_at, c.count_id)):
        known = by_place[(count.sku, count.location)]
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
                opening = Movement(
                    count.counted_at,
                    count.movement_id,
                    count.sku,
                    count.location,
                    "count_correction",
                    count.counted,
                    f"opening balance {count.count_id}",
                )
                corrections.append(opening)
                known.append(opening)
            continue
        drift = classify_drift(known, count.sku, count.location, count.counted_at, count.counted)
        if drift is None:
            continue
        drifts.append(drift)
        correction = Movement(
            count.counted_at,
            count.movement_id,
            count.sku,
            count.location,
            "count_correction",
            count.counted - expected,
            f"count {count.count_id}: {drift.cause}",
        )
        corrections.append(correction)
        known.append(correction)
    return corrections, drifts


@dataclass(frozen=True)
class LineEvent:
    """An order event the ledger reads: a line added, removed or changed (`line` the line's new state
    as the storefront sent it, None when removed), or the order cancelled."""

    order_id: int
    sequence: int
    event_type: str
    attribute: str
    line: Mapping | None
    occurred_at: datetime


def claims(events: Iterable[LineEvent], shipped: Mapping[tuple[int, str], int]) -> list[Movement]:
    """What orders claim: a line added commits its quantity, an edit commits or releases the difference,
    a removed line or a cancelled order releases what is still open, less what was already shipped of
    its SKU (`shipped[(order_id, sku)]`). `events` in (order_id, sequence) order."""
    moves: list[Movement] = []
    open_lines: dict[int, dict[str | None, tuple[str, int]]] = defaultdict(dict)
    for event in events:
        lines = open_lines[event.order_id]
        bookings: list[tuple[str, str, int, str]] = []  # (kind, sku, quantity, suffix)
        if event.event_type == "order_cancelled":
            for line, (sku, quantity) in sorted(lines.items(), key=lambda item: str(item[0])):
                left = quantity - min(quantity, shipped.get((event.order_id, sku), 0))
                bookings.append(("release", sku, left, f"cancel:{line}"))
            lines.clear()
        else:
            attribute = event.attribute
            line_id = attribute.split(".", 1)[1] if attribute.startswith("lines.") else None
            old = lines.get(line_id)
            new = (event.line["sku"], int(event.line["quantity"])) if event.line else None
            if old and new and old[0] == new[0]:
                delta = new[1] - old[1]
                kind = "sale_commitment" if delta > 0 else "release"
                bookings.append((kind, new[0], abs(delta), f"edit:{line_id}"))
            else:
                if old:
                    bookings.append(("release", old[0], old[1], f"out:{line_id}"))
                if new:
                    bookings.append(("sale_commitment", new[0], new[1], f"in:{line_id}"))
            if new:
                lines[line_id] = new
            else:
                lines.pop(line_id, None)
        moves.extend(
            Movement(
                event.occurred_at,
                f"order:{event.order_id}:{event.sequence}:{suffix}",
                sku,
                None,
                kind,
                quantity,
                f"core/order_events {event.order_id}#{event.sequence}",
                event.order_id,
            )
            for kind, sku, quantity, suffix in bookings
            if sku and quantity > 0
        )
    return moves
