"""core/products: the SCD2 history of every SKU (core.product_history) and its current rows."""

from datetime import UTC

import dagster as dg
import pandas as pd

from integration_assets.defs.automation.conditions import FOLLOW_UPSTREAM
from integration_assets.defs.products.names import (
    GATING_CHECKS,
    GROUP,
    OWNER,
    PRODUCT_HISTORY,
    STAGING_PRODUCTS,
    STREAM,
)
from integration_assets.storage.balances import record_balance
from integration_assets.storage.gates import passed_batches_sql
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.balances import Balance
from integration_assets.streams.product_history import SkuVersion, build_history
from integration_assets.streams.timestamps import naive_utc

HISTORY_COLUMNS = [
    "sku",
    "product_id",
    "variant_id",
    "price_minor",
    "currency",
    "available",
    "category",
    "bundle_components",
    "valid_from",
    "valid_to",
    "source_version",
    "raw_ref",
]


def gated_versions(con) -> list[SkuVersion]:
    """Every staged variant version from batches that passed every gating check."""
    rows = con.execute(
        f"""
        WITH passed AS ({passed_batches_sql(STREAM, GATING_CHECKS)})
        SELECT s.sku, s.updated_at, s.payload_hash, s.price_minor, s.currency, s.available,
               s.category, s.bundle_components, s.product_id, s.variant_id, s.raw_ref
        FROM staging.storefront_products s JOIN passed p USING (batch_id)
        """
    ).fetchall()
    return [
        SkuVersion(
            sku=sku,
            updated_at=updated_at.replace(tzinfo=UTC),
            payload_hash=digest,
            price_minor=int(price),
            currency=currency,
            available=bool(available),
            category=category,
            bundle=bundle,
            product_id=int(product_id),
            variant_id=int(variant_id),
            raw_ref=raw_ref,
        )
        for sku, updated_at, digest, price, currency, available, category, bundle, product_id, variant_id, raw_ref in rows
    ]


@dg.asset(
    key=PRODUCT_HISTORY,
    deps=[STAGING_PRODUCTS],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core", "source": "storefront"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def product_history(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Price, availability, category and bundle of every SKU as a history (SCD2), never overwritten.

    `core.product_history`: one row per period in which a SKU's attributes did not change, from
    `valid_from` to `valid_to` (exclusive; NULL = the current row), with the source version and raw
    reference of the product version that opened it. `core.products_current` is its current rows.
    Rebuilt whole from every staged version the gate let through (integration_assets/streams/
    product_history.py), so re-running, re-reading a window or a replay from raw gives the same rows.
    Balance: versions = duplicates + conflicts + unchanged + rows.
    """
    with warehouse.warehouse().transaction() as con:
        versions = gated_versions(con)
        rows, stats = build_history(versions)
        frame = pd.DataFrame(
            [
                [
                    r.sku,
                    r.product_id,
                    r.variant_id,
                    r.price_minor,
                    r.currency,
                    r.available,
                    r.category,
                    r.bundle,
                    naive_utc(r.valid_from),
                    naive_utc(r.valid_to),
                    r.source_version,
                    r.raw_ref,
                ]
                for r in rows
            ],
            columns=HISTORY_COLUMNS,
        )
        con.execute("DELETE FROM core.product_history")
        if len(frame):
            con.register("history", frame)
            con.execute(
                f"INSERT INTO core.product_history ({', '.join(HISTORY_COLUMNS)}) "
                f"SELECT {', '.join(HISTORY_COLUMNS)} FROM history"
            )
            con.unregister("history")
        balance = Balance(
            "versions_equal_duplicates_conflicts_unchanged_rows",
            {"versions": stats.versions},
            {
                "duplicates": stats.duplicates,
                "conflicts": stats.conflicts,
                "unchanged": stats.unchanged,
                "rows": stats.rows,
            },
        )
        record_balance(con, context.run_id, PRODUCT_HISTORY.to_user_string(), "history", balance)
    for sku, updated_at, winner, loser in stats.conflict_details:
        context.log.warning(
            f"{sku}: two versions at {updated_at.isoformat()} with different content; "
            f"{winner[:12]} wins over {loser[:12]} (higher payload hash)"
        )
    current = sum(1 for r in rows if r.is_current)
    return dg.MaterializeResult(
        metadata={
            **stats.as_dict(),
            "skus": current,
            "closed_rows": len(rows) - current,
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
            "dagster/row_count": len(rows),
        }
    )
