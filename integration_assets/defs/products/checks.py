"""Blocking checks on staging/storefront/products (Great Expectations, batch by batch) and a check on
the history's shape."""

import dagster as dg
import pandas as pd

from integration_assets.defs.gate_run import GateRun, count_balance_verdict
from integration_assets.defs.products.names import (
    CHECK_COUNT_BALANCE,
    CHECK_HISTORY_WELL_FORMED,
    CHECK_KEYS_AND_VALUES,
    GATING_CHECKS,
    PRODUCT_HISTORY,
    STAGING_PRODUCTS,
    STREAM,
)
from integration_assets.quality import gx_runner
from integration_assets.storage import gates
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

DESCRIPTIONS = {
    CHECK_KEYS_AND_VALUES: "Variant versions are unique (variant, updated_at, payload), every row has a product, "
    "a variant and a SKU, prices are non-negative minor units, currencies ISO 4217.",
    CHECK_COUNT_BALANCE: "Every product version read is accounted for: read = staged + quarantined + duplicates.",
}


def judge_product_keys_and_values(frame: pd.DataFrame) -> tuple[bool, str]:
    if frame.empty:
        return True, "no staged rows"
    gxe = gx_runner.expectations()
    suite = [
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["variant_id", "updated_at", "payload_hash"]
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="product_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="variant_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="sku"),
        gxe.ExpectColumnValuesToBeBetween(column="price_minor", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
    ]
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    return (not failures), (
        "; ".join(failures) or f"{len(frame)} rows: keys unique, values allowed"
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset=STAGING_PRODUCTS, blocking=True, description=DESCRIPTIONS[name]
        )
        for name in GATING_CHECKS
    ],
    pool=WAREHOUSE_POOL,
)
def staging_products_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Judge every product batch staged since the last gate; record each verdict for core to respect."""
    gate = GateRun(GATING_CHECKS, context.op_execution_context.run_id)
    with warehouse.warehouse().connect() as con:
        for batch_id in gates.pending_batches(con, STREAM, GATING_CHECKS):
            frame = con.execute(
                "SELECT product_id, variant_id, sku, price_minor, currency, updated_at, payload_hash "
                "FROM staging.storefront_products WHERE batch_id = ?",
                [batch_id],
            ).df()
            judged = {
                CHECK_KEYS_AND_VALUES: judge_product_keys_and_values(frame),
                CHECK_COUNT_BALANCE: count_balance_verdict(con, STAGING_PRODUCTS, batch_id),
            }
            gate.record(con, STREAM, batch_id, judged)
    yield from gate.results(STAGING_PRODUCTS)


@dg.asset_check(
    asset=PRODUCT_HISTORY,
    name=CHECK_HISTORY_WELL_FORMED,
    blocking=True,
    description="Every SKU has exactly one current row (valid_to NULL), and its periods neither overlap "
    "nor leave gaps: each row ends where the next begins.",
    pool=WAREHOUSE_POOL,
)
def product_history_well_formed(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        current = con.execute(
            "SELECT sku, count(*) FILTER (WHERE valid_to IS NULL) AS n FROM core.product_history "
            "GROUP BY sku HAVING n <> 1 ORDER BY sku"
        ).fetchall()
        broken = con.execute(
            """
            SELECT sku, valid_from, valid_to, next_from FROM (
                SELECT sku, valid_from, valid_to,
                       lead(valid_from) OVER (PARTITION BY sku ORDER BY valid_from) AS next_from
                FROM core.product_history)
            WHERE (next_from IS NOT NULL AND valid_to IS DISTINCT FROM next_from)
               OR (valid_to IS NOT NULL AND valid_to <= valid_from)
            ORDER BY sku, valid_from
            """
        ).fetchall()
        skus = con.execute("SELECT count(DISTINCT sku) FROM core.product_history").fetchone()[0]
    problems = [f"{sku}: {n} current rows" for sku, n in current] + [
        f"{sku}: row from {start} to {end} but the next starts at {nxt}"
        for sku, start, end, nxt in broken
    ]
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems[:20]) or None,
        metadata={"skus": skus, "problems": len(problems)},
    )
