"""core/inventory_ledger: stock movements from the order stream and the warehouse's files, signed per SKU
and location, with positions, oversells and count drift."""

from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.orders.names import ORDER_EVENTS
from integration_assets.defs.warehouse.names import STAGING_BY_KIND
from integration_assets.storage.balances import record_balance
from integration_assets.storage.oversells import oversell_text, oversold_skus, write_oversells
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL, replace_table
from integration_assets.streams.balances import Balance
from integration_assets.streams.inventory_ledger import (
    Movement,
    StockCount,
    apply_counts,
    oversells,
    positions,
    unique_movements,
)

INVENTORY_LEDGER = dg.AssetKey(["core", "inventory_ledger"])
OWNER = "warehouse-ops@example.com"
CHECK_NO_OVERSELL = "no_oversell"
CHECK_DRIFT_EXPLAINED = "count_drift_explained"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def commitments(con) -> list[Movement]:
    """What orders claim: a line added commits its quantity, an edit commits or releases the difference,
    a removed line or a cancelled order releases what is still open. Shipments close commitments."""
    moves: list[Movement] = []
    open_lines: dict[int, dict[str, tuple[str, int]]] = defaultdict(dict)
    rows = con.execute(
        """
        SELECT order_id, sequence, event_type, attribute, before, after, occurred_at FROM core.order_events
        WHERE event_type IN ('line_item_added', 'line_item_removed', 'line_item_quantity_changed',
                             'line_item_changed', 'order_cancelled')
        ORDER BY order_id, sequence
        """
    ).fetchall()
    shipped = defaultdict(int)
    for order_id, sku, quantity in con.execute(
        "SELECT order_id, sku, sum(quantity) FROM staging.wms_shipments GROUP BY ALL"
    ).fetchall():
        shipped[(order_id, sku)] = int(quantity)
    for order_id, sequence, event_type, attribute, before, after, occurred_at in rows:
        before = orjson.loads(before) if before else None
        after = orjson.loads(after) if after else None
        lines = open_lines[order_id]
        line_id = attribute.split(".", 1)[1] if attribute.startswith("lines.") else None
        bookings: list[tuple[str, str, int, str]] = []  # (kind, sku, quantity, suffix)
        if event_type == "order_cancelled":
            for line, (sku, quantity) in sorted(lines.items()):
                bookings.append(
                    (
                        "release",
                        sku,
                        quantity - min(quantity, shipped[(order_id, sku)]),
                        f"cancel:{line}",
                    )
                )
            lines.clear()
        else:
            old = lines.get(line_id)
            new = (after["sku"], int(after["quantity"])) if after else None
            if old and new and old[0] == new[0]:
                delta = new[1] - old[1]
                bookings.append(
                    (
                        "sale_commitment" if delta > 0 else "release",
                        new[0],
                        abs(delta),
                        f"edit:{line_id}",
                    )
                )
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
                _utc(occurred_at),
                f"order:{order_id}:{sequence}:{suffix}",
                sku,
                None,
                kind,
                quantity,
                f"core/order_events {order_id}#{sequence}",
                order_id,
            )
            for kind, sku, quantity, suffix in bookings
            if sku and quantity > 0
        )
    return moves


def warehouse_movements(con) -> tuple[list[Movement], list[StockCount]]:
    moves = [
        Movement(
            _utc(at),
            f"receipt:{receipt_id}:{sku}",
            sku,
            location,
            "receipt",
            int(quantity),
            raw_ref,
        )
        for receipt_id, sku, quantity, location, at, raw_ref in con.execute(
            "SELECT receipt_id, sku, quantity, location, received_at, raw_ref FROM staging.wms_receipts"
        ).fetchall()
    ]
    moves += [
        Movement(
            _utc(at),
            f"shipment:{shipment_id}:{sku}",
            sku,
            location,
            "shipment",
            int(quantity),
            raw_ref,
            int(order_id),
        )
        for shipment_id, order_id, sku, quantity, location, at, raw_ref in con.execute(
            "SELECT shipment_id, order_id, sku, quantity, location, shipped_at, raw_ref FROM staging.wms_shipments"
        ).fetchall()
    ]
    moves += [
        Movement(
            _utc(at),
            f"return:{return_id}:{sku}",
            sku,
            location,
            "return_to_stock",
            int(quantity),
            raw_ref,
            int(order_id),
        )
        for return_id, order_id, sku, quantity, location, at, raw_ref in con.execute(
            "SELECT return_id, order_id, sku, quantity, location, received_at, raw_ref FROM staging.wms_return_receipts "
            "WHERE condition = 'sellable'"
        ).fetchall()
    ]
    counts = [
        StockCount(count_id, sku, location, int(counted), _utc(at))
        for count_id, sku, location, counted, at in con.execute(
            "SELECT count_id, sku, location, counted_quantity, counted_at FROM staging.wms_stock_counts"
        ).fetchall()
    ]
    return moves, counts


@dg.asset(
    key=INVENTORY_LEDGER,
    deps=[ORDER_EVENTS, *STAGING_BY_KIND.values()],
    group_name="inventory",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def inventory_ledger(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every stock movement per SKU and location as a signed entry: sale commitments and releases (from
    the order stream), shipments, receipts, returns to stock and count corrections (from the warehouse's
    files). Positions give on hand, committed and available-to-promise; `core.inventory_oversells` holds
    each oversell episode (a stretch below zero) of a SKU with its lowest available and the orders short
    of stock in it, each once; `core.inventory_drift` explains each count that disagreed.
    Rebuilt whole every run, so re-materializing is always safe.
    """
    with warehouse.warehouse().transaction() as con:
        wms_moves, counts = warehouse_movements(con)
        # The ledger opens with the warehouse's first stock take: claims made before it are already
        # reflected on the shelves (or long gone), so they are counted, not booked.
        opening = min((c.counted_at for c in counts), default=None)
        all_claims = commitments(con)
        order_moves = [m for m in all_claims if opening is None or m.occurred_at >= opening]
        before_opening = len(all_claims) - len(order_moves)
        corrections, drifts = apply_counts([*order_moves, *wms_moves], counts)
        ledger, duplicates = unique_movements([*order_moves, *wms_moves, *corrections])
        replace_table(
            con,
            "core.inventory_ledger",
            pd.DataFrame(
                [
                    [
                        m.movement_id,
                        m.occurred_at.replace(tzinfo=None),
                        m.sku,
                        m.location,
                        m.kind,
                        m.quantity,
                        m.on_hand_delta,
                        m.committed_delta,
                        m.source_ref,
                        m.order_id,
                    ]
                    for m in ledger
                ],
                columns=[
                    "movement_id",
                    "occurred_at",
                    "sku",
                    "location",
                    "kind",
                    "quantity",
                    "on_hand_delta",
                    "committed_delta",
                    "source_ref",
                    "order_id",
                ],
            ),
        )
        replace_table(
            con,
            "core.inventory_positions",
            pd.DataFrame(
                [
                    [
                        p.sku,
                        p.on_hand,
                        p.committed,
                        p.available,
                        orjson.dumps(p.on_hand_by_location).decode(),
                    ]
                    for p in positions(ledger).values()
                ],
                columns=["sku", "on_hand", "committed", "available", "on_hand_by_location"],
            ),
        )
        # Before the first stock take, on hand is unknown: judging available-to-promise would be a guess.
        found = oversells(ledger) if opening is not None else []
        write_oversells(con, found)
        replace_table(
            con,
            "core.inventory_drift",
            pd.DataFrame(
                [
                    [
                        d.sku,
                        d.location,
                        d.counted_at.replace(tzinfo=None),
                        d.ledger_on_hand,
                        d.counted,
                        d.delta,
                        d.cause,
                        d.explanation,
                    ]
                    for d in drifts
                ],
                columns=[
                    "sku",
                    "location",
                    "counted_at",
                    "ledger_on_hand",
                    "counted",
                    "delta",
                    "cause",
                    "explanation",
                ],
            ),
        )
        sources = len(all_claims) + len(wms_moves) + len(corrections)
        balance = Balance(
            "movements_equal_ledger_duplicates_and_before_opening",
            {"movements_derived": sources},
            {
                "ledger_entries": len(ledger),
                "duplicates": duplicates,
                "before_opening": before_opening,
            },
        )
        record_balance(con, context.run_id, INVENTORY_LEDGER.to_user_string(), "run", balance)
    by_kind = defaultdict(int)
    for movement in ledger:
        by_kind[movement.kind] += 1
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(ledger),
            "movements_by_kind": dg.MetadataValue.json(dict(sorted(by_kind.items()))),
            "duplicate_movements": duplicates,
            "order_movements_before_opening": before_opening,
            "oversell_episodes": len(found),
            "opening_stock_take": opening.isoformat()
            if opening
            else "none yet: oversell not judged",
            "count_drifts": len(drifts),
            "unexplained_drifts": sum(1 for d in drifts if d.cause == "unexplained"),
            "balance": balance.as_text(),
        }
    )


@dg.asset_check(
    asset=INVENTORY_LEDGER,
    name=CHECK_NO_OVERSELL,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description="Available-to-promise never went below zero; otherwise names, per SKU, its oversell "
    "episodes, the lowest available, the orders short of stock and the channels they were sold on.",
)
def no_oversell(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        oversold = oversold_skus(con)
    return dg.AssetCheckResult(
        passed=not oversold,
        description="; ".join(oversell_text(item) for item in oversold) or None,
        metadata={
            "skus_oversold": len(oversold),
            "oversell_episodes": sum(item.episodes for item in oversold),
            "skus_oversold_now": sum(1 for item in oversold if item.open_since is not None),
        },
    )


@dg.asset_check(
    asset=INVENTORY_LEDGER,
    name=CHECK_DRIFT_EXPLAINED,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description="Every difference between a warehouse count and the ledger is explained by a rule.",
)
def drift_explained(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        rows = con.execute(
            "SELECT sku, location, counted_at, delta, explanation FROM core.inventory_drift WHERE cause = 'unexplained' ORDER BY counted_at"
        ).fetchall()
        explained = con.execute(
            "SELECT count(*) FROM core.inventory_drift WHERE cause <> 'unexplained'"
        ).fetchone()[0]
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(
            f"{sku} at {loc} ({at:%Y-%m-%d %H:%M}): {delta:+d}, {why}"
            for sku, loc, at, delta, why in rows
        )
        or None,
        metadata={"unexplained_drifts": len(rows), "explained_drifts": int(explained)},
    )
