"""core/inventory_ledger: stock movements from the order stream and the warehouse's files, signed per SKU
and location, with positions, oversells and count drift."""

from datetime import UTC

import dagster as dg

from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.orders.names import ORDER_EVENTS
from integration_assets.defs.warehouse.names import STAGING_BY_KIND
from integration_assets.storage.balances import record_balance
from integration_assets.storage.inventory_ledger import rebuild
from integration_assets.storage.oversells import oversell_text, oversold_skus
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.balances import Balance

INVENTORY_LEDGER = dg.AssetKey(["core", "inventory_ledger"])
OWNER = "warehouse-ops@example.com"
CHECK_NO_OVERSELL = "no_oversell"
CHECK_DRIFT_EXPLAINED = "count_drift_explained"


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
    Rebuilt whole every run in set-based SQL (storage/inventory_ledger.py), so re-materializing is
    always safe.
    """
    with warehouse.warehouse().transaction() as con:
        found = rebuild(con)
        balance = Balance(
            "movements_equal_ledger_duplicates_and_before_opening",
            {"movements_derived": found.movements_derived},
            {
                "ledger_entries": found.ledger_entries,
                "duplicates": found.duplicates,
                "before_opening": found.before_opening,
            },
        )
        record_balance(con, context.run_id, INVENTORY_LEDGER.to_user_string(), "run", balance)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": found.ledger_entries,
            "movements_by_kind": dg.MetadataValue.json(found.by_kind),
            "duplicate_movements": found.duplicates,
            "order_movements_before_opening": found.before_opening,
            "oversell_episodes": found.oversell_episodes,
            "opening_stock_take": found.opening.replace(tzinfo=UTC).isoformat()
            if found.opening
            else "none yet: oversell not judged",
            "count_drifts": found.drifts,
            "unexplained_drifts": found.unexplained_drifts,
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
