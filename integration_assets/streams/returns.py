"""The returns stream: request -> approval -> in transit -> receipt -> refund, joined from three systems.

Pure, no Dagster. Inputs are plain rows:

* return authorizations (RMA) from the warehouse's `return_authorizations_*.csv` files, re-sent as an
  RMA advances: the newest row per `rma_id` (highest `seq`, the file and line order) wins;
* return receipts from the warehouse's `return_receipts_*.csv` files (`return_id` = the RMA id when
  the return was authorized; anything else is a receipt without an RMA);
* the storefront's refunds (`refund_created` order events: when, and which SKUs and quantities) and
  the payment provider's refunds (by order).

`build_returns` gives one `ReturnRow` per RMA, per receipt without an RMA and per storefront refund
that matched no return (`refund_without_return`), with the furthest stage reached, the hours spent
in it as of `as_of` (default: the newest timestamp in the inputs, never the wall clock, so the same
inputs always give the same ages) and flags. Three rules mark a return as stuck (thresholds in
`contracts/returns.yaml`):

* `received_not_refunded`   received back, no refund after `received_not_refunded_after_hours`;
* `refunded_never_received` an authorized return refunded, nothing received after
                            `refunded_not_received_after_hours`;
* `approved_not_shipped`    approved, not shipped back after `approved_not_shipped_after_hours`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

STAGES = ("requested", "approved", "in_transit", "received", "refunded")
STUCK_RULES = ("received_not_refunded", "refunded_never_received", "approved_not_shipped")
SOURCE_RMA = "rma"
SOURCE_RECEIPT = "receipt_without_rma"
SOURCE_REFUND = "refund_without_return"


@dataclass(frozen=True)
class Thresholds:
    received_not_refunded_after_hours: float = 48
    refunded_not_received_after_hours: float = 72
    approved_not_shipped_after_hours: float = 120


def load_thresholds(path: Path) -> Thresholds:
    data = yaml.safe_load(Path(path).read_text()) or {}
    known = set(Thresholds.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    return Thresholds(**{key: float(value) for key, value in data.items()})


@dataclass
class ReturnRow:
    return_id: str  # the rma_id, a receipt's return_id, or refund:<refund id>:<sku>
    source: str  # rma | receipt_without_rma | refund_without_return
    rma_id: str | None
    order_id: int
    sku: str | None
    quantity: int | None
    requested_at: datetime | None = None
    approved_at: datetime | None = None
    shipped_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    received_at: datetime | None = None
    received_quantity: int | None = None
    condition: str | None = None
    refunded_at: datetime | None = None  # the storefront's refund
    provider_refunded_at: datetime | None = None  # the payment provider's refund
    stage: str = "requested"
    stage_entered_at: datetime | None = None
    age_hours: float = 0.0
    flags: list[str] = field(default_factory=list)

    @property
    def stuck(self) -> list[str]:
        return [flag for flag in self.flags if flag in STUCK_RULES]


def newest_rma_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The newest row per rma_id: the highest `seq` (file, then line order) wins."""
    newest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        current = newest.get(row["rma_id"])
        if current is None or row["seq"] >= current["seq"]:
            newest[row["rma_id"]] = row
    return newest


def _hours(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds() / 3600, 2)


def _stage(row: ReturnRow) -> tuple[str, datetime | None]:
    refunded = [t for t in (row.refunded_at, row.provider_refunded_at) if t is not None]
    for stage, at in (
        ("refunded", min(refunded) if refunded else None),
        ("received", row.received_at),
        ("in_transit", row.shipped_at),
        ("approved", row.approved_at),
        ("requested", row.requested_at),
    ):
        if at is not None:
            return stage, at
    return "requested", None


def build_returns(
    rma_rows: Iterable[Mapping[str, Any]],
    receipts: Iterable[Mapping[str, Any]],
    storefront_refunds: Iterable[Mapping[str, Any]],
    provider_refunds: Iterable[Mapping[str, Any]],
    thresholds: Thresholds = Thresholds(),
    as_of: datetime | None = None,
) -> list[ReturnRow]:
    """Join the three systems into one row per return (see the module docstring).

    rma_rows:           rma_id, order_id, sku, quantity, requested_at, approved_at, carrier,
                        tracking_number, shipped_at, seq
    receipts:           return_id, order_id, sku, quantity, condition, received_at
    storefront_refunds: refund_id, order_id, created_at, skus ({sku: quantity}; the key None for
                        lines whose SKU is unknown; empty for a refund without lines)
    provider_refunds:   refund_id, order_id, created_at (succeeded refunds only)
    """
    receipts = list(receipts)
    storefront_refunds = sorted(storefront_refunds, key=lambda r: (r["created_at"], r["refund_id"]))
    provider_refunds = list(provider_refunds)
    rmas = newest_rma_rows(rma_rows)
    stamps: list[datetime] = []

    provider_by_order: dict[int, datetime] = {}
    for refund in provider_refunds:
        stamps.append(refund["created_at"])
        order = int(refund["order_id"])
        if order not in provider_by_order or refund["created_at"] < provider_by_order[order]:
            provider_by_order[order] = refund["created_at"]
    # Storefront refunds by (order, sku); each refund line is used by one return at most.
    open_refunds: list[dict[str, Any]] = []
    for refund in storefront_refunds:
        stamps.append(refund["created_at"])
        skus = refund.get("skus") or {None: None}
        for sku, quantity in sorted(skus.items(), key=lambda item: str(item[0])):
            open_refunds.append({**refund, "sku": sku, "quantity": quantity, "used": False})

    # Each (order, SKU)'s refund lines in time order: the unused ones are always the tail, since only
    # take_refund uses them (a scan of every refund per return grew with their product).
    unused: dict[tuple[int, str | None], deque[dict[str, Any]]] = defaultdict(deque)
    for refund in open_refunds:
        unused[(int(refund["order_id"]), refund["sku"])].append(refund)

    def take_refund(order_id: int, sku: str | None) -> datetime | None:
        # The refund of this SKU, else one of the order whose lines name no known SKU.
        for wanted in (sku, None):
            waiting = unused.get((order_id, wanted))
            if waiting:
                refund = waiting.popleft()
                refund["used"] = True
                return refund["created_at"]
        return None

    receipts_by_id: dict[str, list[Mapping[str, Any]]] = {}
    for receipt in receipts:
        stamps.append(receipt["received_at"])
        receipts_by_id.setdefault(str(receipt["return_id"]), []).append(receipt)

    rows: list[ReturnRow] = []
    for rma_id, rma in sorted(rmas.items(), key=lambda item: (item[1]["requested_at"], item[0])):
        stamps += [rma[k] for k in ("requested_at", "approved_at", "shipped_at") if rma.get(k)]
        row = ReturnRow(
            rma_id,
            SOURCE_RMA,
            rma_id,
            int(rma["order_id"]),
            rma["sku"],
            int(rma["quantity"]),
            requested_at=rma["requested_at"],
            approved_at=rma.get("approved_at"),
            shipped_at=rma.get("shipped_at"),
            carrier=rma.get("carrier") or None,
            tracking_number=rma.get("tracking_number") or None,
        )
        _receive(row, receipts_by_id.pop(rma_id, []))
        rows.append(row)
    for return_id, found in sorted(
        receipts_by_id.items(), key=lambda item: (min(r["received_at"] for r in item[1]), item[0])
    ):
        first = found[0]
        row = ReturnRow(return_id, SOURCE_RECEIPT, None, int(first["order_id"]), first["sku"], None)
        _receive(row, found)
        row.quantity = row.received_quantity
        row.flags.append(SOURCE_RECEIPT)
        rows.append(row)
    for row in rows:
        row.refunded_at = take_refund(row.order_id, row.sku)
        row.provider_refunded_at = provider_by_order.get(row.order_id)
    for refund in open_refunds:
        if refund["used"]:
            continue
        row = ReturnRow(
            f"refund:{refund['refund_id']}:{refund['sku'] or '-'}",
            SOURCE_REFUND,
            None,
            int(refund["order_id"]),
            refund["sku"],
            refund["quantity"],
            refunded_at=refund["created_at"],
            provider_refunded_at=provider_by_order.get(int(refund["order_id"])),
            flags=[SOURCE_REFUND],
        )
        rows.append(row)

    moment = as_of or max(stamps, default=None)
    for row in rows:
        row.stage, row.stage_entered_at = _stage(row)
        row.age_hours = (
            max(0.0, _hours(moment, row.stage_entered_at))
            if moment and row.stage_entered_at
            else 0.0
        )
        if row.condition == "damaged":
            row.flags.append("damaged")
        if moment is None:
            continue
        refunded = row.stage == "refunded"
        rules = (
            (
                "received_not_refunded",
                row.received_at if not refunded else None,
                thresholds.received_not_refunded_after_hours,
            ),
            (
                "refunded_never_received",
                row.stage_entered_at
                if row.source == SOURCE_RMA and refunded and row.received_at is None
                else None,
                thresholds.refunded_not_received_after_hours,
            ),
            (
                "approved_not_shipped",
                row.approved_at if not (row.shipped_at or row.received_at or refunded) else None,
                thresholds.approved_not_shipped_after_hours,
            ),
        )
        row.flags += [
            rule
            for rule, since, limit in rules
            if since is not None and _hours(moment, since) > limit
        ]
    return rows


def _receive(row: ReturnRow, found: list[Mapping[str, Any]]) -> None:
    if not found:
        return
    found = sorted(found, key=lambda r: r["received_at"])
    row.received_at = found[0]["received_at"]
    row.received_quantity = sum(int(r["quantity"]) for r in found)
    row.condition = found[0]["condition"]


def stage_counts(rows: Iterable[ReturnRow]) -> dict[str, int]:
    counts = dict.fromkeys(STAGES, 0)
    for row in rows:
        counts[row.stage] += 1
    return counts
